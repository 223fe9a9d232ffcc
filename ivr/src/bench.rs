//! `ivr bench stt`: how fast and how well Whisper hears the hotline's callers.
//!
//! Builds utterances of about 1, 2, 4 and 8 s from the hotline phrase set
//! ([`speech::corpus`]), spoken by caller voices that differ from the assistant's, passed
//! through the telephone path (8 kHz, G.711 µ-law) and back to 16 kHz; then, for every model ×
//! window policy × thread count, transcribes them all and prints one table row per length:
//! median and p90 processing time, real-time factor, word error rate, fallbacks to the full
//! window. Measures; asserts nothing.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use speech::audio::{g711::Law, resample::resample};
use speech::corpus::{hotline_phrases, PhraseKind};
use speech::models::ModelStore;
use speech::stt::{
    word_error_rate, SttRequest, Transcriber, WhisperConfig, WindowPolicy, WordErrors,
};
use speech::tts::{SpeakOptions, SpeechRate, Synthesizer};
use speech::{verbalize, Locale, Pcm, SampleRate};

use crate::cli::load_whisper;

/// Options of `ivr bench stt`.
#[derive(Debug, Args)]
pub struct SttBenchArgs {
    /// Models to compare (names or paths), comma separated.
    #[arg(long, default_value = "tiny.en")]
    models: String,
    /// Window policies: `full`, `trim:FLOOR` or `trim:FLOOR:MARGIN_MS`, comma separated.
    #[arg(long, default_value = "full,trim:512,trim:384")]
    policies: String,
    /// Thread counts, comma separated.
    #[arg(long, default_value = "2")]
    threads: String,
    /// Caller voices (Flite), comma separated.
    #[arg(long, default_value = "rms,awb")]
    voices: String,
    /// Keep the audio at 16 kHz instead of the 8 kHz µ-law telephone path.
    #[arg(long)]
    wideband: bool,
    /// Use flash attention.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    flash_attn: bool,
    /// Print every transcript.
    #[arg(long)]
    verbose: bool,
}

struct Utterance {
    bucket: usize,
    reference: String,
    audio: Pcm,
}

const BUCKETS: [&str; 4] = ["~1 s", "~2 s", "~4 s", "~8 s"];

fn parse_policy(s: &str) -> anyhow::Result<WindowPolicy> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        ["full"] => Ok(WindowPolicy::Full),
        ["trim", floor] => Ok(WindowPolicy::Trimmed {
            floor: floor.parse().context("trim floor")?,
            margin: Duration::from_millis(2000),
        }),
        ["trim", floor, margin] => Ok(WindowPolicy::Trimmed {
            floor: floor.parse().context("trim floor")?,
            margin: Duration::from_millis(margin.parse().context("trim margin")?),
        }),
        _ => bail!("unknown window policy {s:?} (full, trim:FLOOR, trim:FLOOR:MARGIN_MS)"),
    }
}

/// Runs the benchmark and prints the table.
pub fn stt(store: &ModelStore, data: &Path, args: SttBenchArgs) -> anyhow::Result<()> {
    let policies: Vec<(String, WindowPolicy)> = args
        .policies
        .split(',')
        .map(|p| Ok((p.trim().to_string(), parse_policy(p.trim())?)))
        .collect::<anyhow::Result<_>>()?;
    let threads: Vec<usize> = args
        .threads
        .split(',')
        .map(|t| t.trim().parse::<usize>().context("thread count"))
        .collect::<anyhow::Result<_>>()?;
    let voices: Vec<&str> = args.voices.split(',').map(str::trim).collect();

    eprintln!("synthesizing utterances ({} voices)…", voices.len());
    let utterances = build_utterances(data, &voices, !args.wideband)?;
    for (b, name) in BUCKETS.iter().enumerate() {
        let n = utterances.iter().filter(|u| u.bucket == b).count();
        let mean = utterances
            .iter()
            .filter(|u| u.bucket == b)
            .map(|u| u.audio.duration().as_secs_f64())
            .sum::<f64>()
            / n.max(1) as f64;
        eprintln!("  {name}: {n} utterances, mean {mean:.2} s");
    }

    println!(
        "| model | window | threads | length | n | median ms | p90 ms | RTF | WER % | full-window retries |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for model in args.models.split(',').map(str::trim) {
        for &t in &threads {
            for (pname, policy) in &policies {
                let config = WhisperConfig {
                    threads: t,
                    pool_size: 1,
                    window: *policy,
                    flash_attn: args.flash_attn,
                    ..WhisperConfig::default()
                };
                let stt = load_whisper(store, model, config)?;
                // Warm-up: the first decode allocates buffers.
                stt.transcribe(&utterances[0].audio, &SttRequest::default())?;
                let mut rows: Vec<Vec<(f64, WordErrors, u8, f64)>> =
                    vec![Vec::new(); BUCKETS.len()];
                for u in &utterances {
                    let r = stt.transcribe(&u.audio, &SttRequest::default())?;
                    let errors = word_error_rate(&u.reference, &r.text);
                    if args.verbose {
                        eprintln!(
                            "{model} {pname} t{t} [{}] {:>5} ms  ref={:?} hyp={:?}",
                            BUCKETS[u.bucket],
                            r.timings.processing.as_millis(),
                            u.reference,
                            r.text
                        );
                    }
                    rows[u.bucket].push((
                        r.timings.processing.as_secs_f64() * 1000.0,
                        errors,
                        r.timings.attempts,
                        u.audio.duration().as_secs_f64(),
                    ));
                }
                for (b, row) in rows.iter().enumerate() {
                    if row.is_empty() {
                        continue;
                    }
                    let mut ms: Vec<f64> = row.iter().map(|r| r.0).collect();
                    ms.sort_by(f64::total_cmp);
                    let errors: WordErrors = row.iter().map(|r| r.1).sum();
                    let retries = row.iter().filter(|r| r.2 > 1).count();
                    let audio_s: f64 = row.iter().map(|r| r.3).sum();
                    let rtf = ms.iter().sum::<f64>() / 1000.0 / audio_s;
                    println!(
                        "| {model} | {pname} | {t} | {} | {} | {:.0} | {:.0} | {rtf:.2} | {:.1} | {retries} |",
                        BUCKETS[b],
                        row.len(),
                        percentile(&ms, 0.5),
                        percentile(&ms, 0.9),
                        errors.rate() * 100.0,
                    );
                }
            }
        }
    }
    Ok(())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Phrases spoken by each voice through the telephone path, grouped by length: single
/// phrases make the ~1 s and ~2 s groups, phrases joined with short pauses the ~4 s and ~8 s.
fn build_utterances(
    data: &Path,
    voices: &[&str],
    telephone: bool,
) -> anyhow::Result<Vec<Utterance>> {
    let _ = data;
    let flite = speech::tts::FliteSynthesizer::new();
    let phrases = hotline_phrases();
    let mut out = Vec::new();
    for voice in voices {
        let opts = SpeakOptions {
            voice: Some((*voice).to_string()),
            rate: SpeechRate::Normal,
            output_rate: if telephone {
                SampleRate::HZ_8000
            } else {
                SampleRate::HZ_16000
            },
        };
        let mut singles = Vec::new();
        for p in &phrases {
            let audio = flite.synthesize(&verbalize::expand(Locale::En, p.text), &opts)?;
            let audio = if telephone {
                Law::Mu.round_trip(&audio)
            } else {
                audio
            };
            let audio = resample(&audio, SampleRate::HZ_16000)?;
            singles.push((p, audio));
        }
        for (p, audio) in &singles {
            let secs = audio.duration().as_secs_f64();
            let bucket = if secs < 1.5 {
                0
            } else if secs < 3.0 {
                1
            } else {
                continue;
            };
            out.push(Utterance {
                bucket,
                reference: p.text.to_string(),
                audio: audio.clone(),
            });
        }
        // Longer utterances: join sentences (not isolated words) until the target length.
        let sentences: Vec<_> = singles
            .iter()
            .filter(|(p, _)| p.kind != PhraseKind::Word)
            .collect();
        for (bucket, target) in [(2usize, 3.5f64), (3, 7.0)] {
            let mut i = 0;
            let mut made = 0;
            while made < 6 && i < sentences.len() {
                let mut audio = Pcm::new(SampleRate::HZ_16000, Vec::new());
                let mut words = Vec::new();
                while audio.duration().as_secs_f64() < target && i < sentences.len() {
                    if !audio.is_empty() {
                        audio.push_silence(Duration::from_millis(400));
                    }
                    audio.append(&sentences[i].1)?;
                    words.push(sentences[i].0.text);
                    i += 1;
                }
                if audio.duration().as_secs_f64() >= target {
                    out.push(Utterance {
                        bucket,
                        reference: words.join(" "),
                        audio,
                    });
                    made += 1;
                }
            }
        }
    }
    if out.is_empty() {
        bail!("no utterances could be built");
    }
    Ok(out)
}
