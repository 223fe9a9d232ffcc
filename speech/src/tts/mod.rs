//! Speaking: text (already verbalized into [`Segment`]s) into [`Pcm`] audio.
//!
//! | item | owns |
//! |---|---|
//! | [`Synthesizer`] | the engine-independent contract: segments + [`SpeakOptions`] → audio |
//! | [`FliteSynthesizer`] | CMU Flite (`flite` program), the English engine |
//! | [`EspeakSynthesizer`] | espeak-ng (`espeak-ng` program, GPL-3, never linked), every other language |
//! | [`Speaker`] / [`VoiceConfig`] | which engine and voice speak each [`Locale`](crate::Locale) |
//! | [`PromptPack`] | recorded prompts and digit clips that override synthesis |
//! | [`RenderCache`] / [`CachedSynthesizer`] | rendered audio kept in sled, keyed by what was spoken and how |
//!
//! What it does not do: it never reads the clock, never sleeps and never spawns long-lived
//! threads. It does IO: the engines run as child processes on the calling thread (a scoped
//! helper thread feeds a child's stdin), prompt packs read files, the render cache writes a
//! sled directory. A call blocks until its audio is ready, so async callers run it on a
//! blocking pool.
//!
//! How speech is assembled, for every engine: consecutive [`Segment::Text`] pieces are joined
//! with a space into one *run* and spoken by one program call; a [`Segment::Pause`] becomes
//! exactly that much digital silence (rounded to the nearest sample at the output rate). The
//! engines pad their output with 0.1–0.3 s of near-silence at both ends (measured: Flite ~0.2 s
//! lead and trail, espeak-ng ~0.3 s trail); that padding would make explicit pauses sloppy, so
//! each run is trimmed to [`EDGE_KEEP`] of silence either side of the first and last sample
//! louder than [`SILENCE_THRESHOLD`]. A run with letters or digits that comes back silent is
//! an error ([`Error::Synthesis`]): it means the voice cannot read that script (Flite given
//! Cyrillic), and a silent prompt is worse than a fallback.
//!
//! Units: sample rates in Hz ([`SampleRate`]), pauses as [`Duration`], samples `f32` in
//! `[-1, 1]`.
//!
//! ```no_run
//! use speech::tts::{FliteSynthesizer, Segment, SpeakOptions, SpeechRate, Synthesizer};
//! use speech::SampleRate;
//! # fn main() -> speech::Result<()> {
//! let flite = FliteSynthesizer::new();
//! let opts = SpeakOptions { rate: SpeechRate::Slow, output_rate: SampleRate::HZ_8000, ..Default::default() };
//! let audio = flite.synthesize(
//!     &[
//!         Segment::Text("Your number is".into()),
//!         Segment::Pause(std::time::Duration::from_millis(300)),
//!         Segment::Text("one two three".into()),
//!     ],
//!     &opts,
//! )?;
//! assert_eq!(audio.rate(), SampleRate::HZ_8000);
//! # Ok(()) }
//! ```

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::audio::{Pcm, SampleRate};
use crate::{Error, Result};

mod cache;
mod espeak;
mod flite;
mod pack;
mod voices;

pub use cache::{CacheKey, CachedSynthesizer, RenderCache};
pub use espeak::EspeakSynthesizer;
pub use flite::FliteSynthesizer;
pub use pack::PromptPack;
pub use voices::{Engine, Speaker, VoiceChoice, VoiceConfig};

/// A piece of what is to be spoken: words, or a pause between them.
///
/// The verbalizer produces these (for example a case number read in groups with pauses), the
/// synthesizers consume them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Words to speak, already verbalized (no digits left to interpret).
    Text(String),
    /// Silence of this length.
    Pause(Duration),
}

/// How fast to speak. Seniors and callers on poor lines ask for slower speech ("8" / "slower").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SpeechRate {
    /// The voice's natural pace.
    #[default]
    Normal,
    /// About 20 % slower.
    Slow,
    /// About 40 % slower.
    Slower,
}

/// How to speak: which voice, how fast, at which output sample rate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpeakOptions {
    /// The engine's voice name (`slt`, `kk`…); `None` is the engine's default voice.
    pub voice: Option<String>,
    /// Speaking rate.
    pub rate: SpeechRate,
    /// The sample rate of the returned audio (the engine's own rate is converted).
    pub output_rate: SampleRate,
}

impl Default for SpeakOptions {
    /// The engine's default voice at normal pace, 16 kHz.
    fn default() -> Self {
        Self {
            voice: None,
            rate: SpeechRate::Normal,
            output_rate: SampleRate::HZ_16000,
        }
    }
}

/// A text-to-speech engine.
///
/// Implementations join consecutive [`Segment::Text`] pieces into one engine call, turn each
/// [`Segment::Pause`] into exactly that much silence, and return audio at
/// [`SpeakOptions::output_rate`]. Text that is empty or only whitespace yields empty audio
/// without running the engine.
pub trait Synthesizer: Send + Sync {
    /// Speaks `speech` as `opts` say.
    fn synthesize(&self, speech: &[Segment], opts: &SpeakOptions) -> Result<Pcm>;

    /// The engine's name, `flite` or `espeak-ng` (part of render-cache keys).
    fn engine(&self) -> &'static str;

    /// Speaks one piece of text (no pauses).
    fn speak(&self, text: &str, opts: &SpeakOptions) -> Result<Pcm> {
        self.synthesize(&[Segment::Text(text.to_owned())], opts)
    }

    /// The voice this engine uses for `locale` when configuration names none, or `None` when
    /// it has no voice for that language.
    fn default_voice(&self, locale: crate::Locale) -> Option<String> {
        let _ = locale;
        None
    }
}

/// Samples quieter than this (about −42 dBFS) count as silence when trimming engine padding.
pub const SILENCE_THRESHOLD: f32 = 0.008;

/// How much of an engine's padding silence is kept before the first and after the last
/// audible sample of a run (protects soft onsets and releases).
pub const EDGE_KEEP: Duration = Duration::from_millis(50);

/// The longest single pause accepted; longer ones are a caller's mistake, not a prompt.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);

/// The most text (in UTF-8 bytes) spoken by one engine call; stays well inside the
/// operating system's limit on a program argument.
pub const MAX_RUN_BYTES: usize = 32 * 1024;

/// Builds the audio for `speech` at `output_rate`, calling `render` once per run of text
/// (cleaned, never empty) and trimming each run's padding. Shared by every engine.
fn assemble(
    engine: &'static str,
    speech: &[Segment],
    output_rate: SampleRate,
    mut render: impl FnMut(&str) -> Result<Pcm>,
) -> Result<Pcm> {
    let mut out = Pcm::new(output_rate, Vec::new());
    let mut run = String::new();
    for segment in speech {
        match segment {
            Segment::Text(text) => {
                run.push(' ');
                run.push_str(text);
            }
            Segment::Pause(pause) => {
                speak_run(engine, &mut run, &mut out, &mut render)?;
                if *pause > MAX_PAUSE {
                    return Err(Error::InvalidArgument(format!(
                        "pause of {pause:?} is longer than {MAX_PAUSE:?}"
                    )));
                }
                out.push_silence(*pause);
            }
        }
    }
    speak_run(engine, &mut run, &mut out, &mut render)?;
    Ok(out)
}

/// Speaks the pending `run` (if it has any text) onto `out`, and empties it.
fn speak_run(
    engine: &'static str,
    run: &mut String,
    out: &mut Pcm,
    render: &mut impl FnMut(&str) -> Result<Pcm>,
) -> Result<()> {
    let text = clean_text(run);
    run.clear();
    if text.is_empty() {
        return Ok(());
    }
    if text.len() > MAX_RUN_BYTES {
        return Err(Error::InvalidArgument(format!(
            "{} bytes of text in one run (at most {MAX_RUN_BYTES}); split it with pauses",
            text.len()
        )));
    }
    let audio = trim_silence(&render(&text)?);
    if audio.is_empty() && text.chars().any(char::is_alphanumeric) {
        return Err(Error::Synthesis {
            engine,
            text: shorten(&text),
            reason: "the voice produced only silence (it probably cannot read this language)"
                .into(),
        });
    }
    out.append(&to_rate(&audio, out.rate())?)
}

/// Collapses whitespace and control characters (NUL, escapes, line breaks) into single
/// spaces and trims the ends: engines see one clean line.
fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The text as it appears in error messages: at most 60 characters.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

/// Cuts leading and trailing silence down to [`EDGE_KEEP`]; all-silent audio becomes empty.
fn trim_silence(pcm: &Pcm) -> Pcm {
    let samples = pcm.samples();
    let loud = |s: &f32| s.abs() > SILENCE_THRESHOLD;
    let (Some(first), Some(last)) = (
        samples.iter().position(loud),
        samples.iter().rposition(loud),
    ) else {
        return Pcm::new(pcm.rate(), Vec::new());
    };
    let keep = pcm.rate().samples_in(EDGE_KEEP);
    let start = first.saturating_sub(keep);
    let end = (last + 1 + keep).min(samples.len());
    Pcm::new(pcm.rate(), samples[start..end].to_vec())
}

/// Decodes a WAV held in memory (any PCM or float format, channels averaged to mono).
fn decode_wav(bytes: &[u8]) -> Result<Pcm> {
    crate::audio::wav::read_bytes(bytes)
}

/// Converts `pcm` to `rate` with the band-limited resampler.
fn to_rate(pcm: &Pcm, rate: SampleRate) -> Result<Pcm> {
    crate::audio::resample::resample(pcm, rate)
}

/// Runs `program` with `args`, feeding `stdin` (if any) from a scoped thread while the
/// output is collected, and returns its output whatever its exit status.
///
/// A program that cannot be started is [`Error::MissingProgram`].
fn run_program(program: &Path, args: &[&OsStr], stdin: Option<&[u8]>) -> Result<Output> {
    let missing = |e: std::io::Error| Error::MissingProgram {
        program: program.display().to_string(),
        reason: e.to_string(),
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(missing)?;
    let pipe = child.stdin.take();
    let output = std::thread::scope(|scope| {
        if let (Some(mut pipe), Some(input)) = (pipe, stdin) {
            // A child that exits without reading everything closes the pipe; the write then
            // fails with BrokenPipe, and the exit status reports what went wrong.
            scope.spawn(move || pipe.write_all(input));
        }
        child.wait_with_output()
    });
    output.map_err(|e| Error::io(program, e))
}

/// The first lines of a program's stderr, for error messages.
fn stderr_summary(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let summary = shorten(text.trim());
    if summary.is_empty() {
        format!("exited with {}", output.status)
    } else {
        format!("exited with {}: {summary}", output.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: SampleRate, secs: f32) -> Pcm {
        let n = (secs * rate.hz() as f32) as usize;
        let samples = (0..n)
            .map(|i| 0.5 * (i as f32 * 440.0 * std::f32::consts::TAU / rate.hz() as f32).sin())
            .collect();
        Pcm::new(rate, samples)
    }

    fn wav_bytes(spec: hound::WavSpec, samples: &[i16]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        buf.into_inner()
    }

    #[test]
    fn consecutive_text_is_one_run_and_pauses_are_exact_silence() {
        let rate = SampleRate::HZ_8000;
        let mut runs = Vec::new();
        let speech = [
            Segment::Text("one".into()),
            Segment::Text(" two\n".into()),
            Segment::Pause(Duration::from_millis(250)),
            Segment::Text("three".into()),
        ];
        let out = assemble("test", &speech, rate, |text| {
            runs.push(text.to_owned());
            Ok(tone(rate, 0.1))
        })
        .unwrap();
        assert_eq!(runs, ["one two", "three"]);
        assert_eq!(out.len(), 800 + 2000 + 800);
        assert!(out.samples()[800..2800].iter().all(|&s| s == 0.0));
    }

    #[test]
    fn whitespace_only_text_never_runs_the_engine() {
        let speech = [
            Segment::Text("  \n\t".into()),
            Segment::Pause(Duration::from_millis(10)),
        ];
        let out = assemble("test", &speech, SampleRate::HZ_16000, |_| {
            Err(Error::InvalidArgument("engine must not run".into()))
        })
        .unwrap();
        assert_eq!(out.len(), 160);
        let none = assemble("test", &[], SampleRate::HZ_16000, |_| unreachable!()).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn engine_padding_is_trimmed_to_the_edge_keep() {
        let rate = SampleRate::HZ_16000;
        let mut padded = Pcm::silence(rate, Duration::from_millis(300));
        padded.append(&tone(rate, 0.5)).unwrap();
        padded.push_silence(Duration::from_millis(400));
        let trimmed = trim_silence(&padded);
        let keep = rate.samples_in(EDGE_KEEP);
        // The tone starts at a zero crossing, so its first audible sample is a little later.
        let expected = 8000 + 2 * keep;
        assert!(trimmed.len().abs_diff(expected) < 10, "{}", trimmed.len());
    }

    #[test]
    fn silent_output_for_words_is_an_error() {
        let err = assemble(
            "test",
            &[Segment::Text("Сайн байна уу".into())],
            SampleRate::HZ_16000,
            |_| {
                Ok(Pcm::silence(
                    SampleRate::HZ_16000,
                    Duration::from_millis(300),
                ))
            },
        )
        .map(|pcm| pcm.duration())
        .unwrap_err();
        assert!(matches!(err, Error::Synthesis { .. }), "{err}");
        // Punctuation alone may legitimately be silent.
        let out = assemble(
            "test",
            &[Segment::Text("…".into())],
            SampleRate::HZ_16000,
            |_| {
                Ok(Pcm::silence(
                    SampleRate::HZ_16000,
                    Duration::from_millis(300),
                ))
            },
        )
        .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn absurd_pauses_and_runs_are_refused() {
        let long_pause = [Segment::Pause(Duration::from_secs(3600))];
        let err = assemble("test", &long_pause, SampleRate::HZ_8000, |_| unreachable!());
        assert!(matches!(err, Err(Error::InvalidArgument(_))));
        let long_text = [Segment::Text("word ".repeat(10_000))];
        let err = assemble("test", &long_text, SampleRate::HZ_8000, |_| unreachable!());
        assert!(matches!(err, Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn clean_text_removes_controls_and_collapses_space() {
        assert_eq!(clean_text(" a\0b \r\n c\u{1b}[0m "), "a b c [0m");
        assert_eq!(clean_text("-voice"), "-voice");
    }

    #[test]
    fn decode_wav_downmixes_and_scales() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let pcm = decode_wav(&wav_bytes(spec, &[16384, 0, -16384, -16384])).unwrap();
        assert_eq!(pcm.rate(), SampleRate::HZ_8000);
        assert_eq!(pcm.samples(), [0.25, -0.5]);
        assert!(matches!(
            decode_wav(b"RIFF nonsense"),
            Err(Error::Wav { .. })
        ));
    }

    #[test]
    fn to_rate_keeps_duration() {
        let pcm = tone(SampleRate::HZ_22050, 1.0);
        let out = to_rate(&pcm, SampleRate::HZ_16000).unwrap();
        assert_eq!(out.rate(), SampleRate::HZ_16000);
        assert_eq!(out.len(), 16000);
        assert!((out.rms() - pcm.rms()).abs() < 0.01);
        let same = to_rate(&out, SampleRate::HZ_16000).unwrap();
        assert_eq!(same, out);
    }

    #[test]
    fn missing_program_is_reported_not_panicked() {
        let err = run_program(Path::new("/nonexistent/flite"), &[], None).unwrap_err();
        assert!(matches!(err, Error::MissingProgram { .. }), "{err}");
    }

    #[test]
    fn stdin_is_fed_to_the_program() {
        let out = run_program(Path::new("cat"), &[], Some(b"-t \"quoted\"\n")).unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"-t \"quoted\"\n");
    }
}
