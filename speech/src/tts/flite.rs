//! CMU Flite, run as the `flite` program: the English engine.
//!
//! One program call per run of text: `flite -voice VOICE --setf duration_stretch=S
//! -o /dev/stdout -t TEXT`. `-t` takes the next argument as text whatever it looks like
//! (verified with texts such as `-o`, `--help`, `-voice`), and with `-t` Flite synthesizes the
//! whole text before writing one WAV, so its output can go to a pipe; `-f FILE -o /dev/stdout`
//! cannot be used, because file mode appends utterance by utterance and reopens the output to
//! patch its header, which hangs on a pipe.
//!
//! Flite silently falls back to its default voice for an unknown `-voice` name, so the name is
//! checked against `flite -lv` (asked once per synthesizer, then remembered) and refused with
//! [`Error::UnknownVoice`]. Output is 16 kHz (8 kHz for `kal`), converted to the requested rate.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{
    assemble, decode_wav, run_program, shorten, stderr_summary, Segment, SpeakOptions, SpeechRate,
    Synthesizer,
};
use crate::audio::Pcm;
use crate::{Error, Locale, Result};

/// Flite through its command-line program.
#[derive(Debug)]
pub struct FliteSynthesizer {
    program: PathBuf,
    /// The compiled-in voices, once `flite -lv` has answered.
    voices: Mutex<Option<Arc<[String]>>>,
}

impl FliteSynthesizer {
    /// The engine name.
    pub const ENGINE: &'static str = "flite";
    /// The voice used when none is named: `slt`, the most natural of Debian's voices.
    pub const DEFAULT_VOICE: &'static str = "slt";

    /// Flite from `PATH` (`flite`).
    pub fn new() -> Self {
        Self::with_program("flite")
    }

    /// Flite at `program` (a path, or a name looked up in `PATH`).
    pub fn with_program(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            voices: Mutex::new(None),
        }
    }

    /// The voices compiled into the program (`flite -lv`), asked once and then remembered.
    /// A failure is not remembered: the next call asks again.
    pub fn voices(&self) -> Result<Arc<[String]>> {
        // A poisoned lock only means another thread panicked while holding it; the cached
        // list is either complete or absent, so it is still valid.
        let mut cached = self.voices.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(voices) = cached.as_ref() {
            return Ok(Arc::clone(voices));
        }
        let output = run_program(&self.program, &[OsStr::new("-lv")], None)?;
        let text = String::from_utf8_lossy(&output.stdout);
        let list = text
            .lines()
            .find_map(|line| line.strip_prefix("Voices available:"))
            .filter(|_| output.status.success())
            .ok_or_else(|| Error::Synthesis {
                engine: Self::ENGINE,
                text: "-lv".into(),
                reason: format!(
                    "unexpected voice list {:?} ({})",
                    shorten(text.trim()),
                    stderr_summary(&output)
                ),
            })?;
        let voices: Arc<[String]> = list.split_whitespace().map(str::to_owned).collect();
        *cached = Some(Arc::clone(&voices));
        Ok(voices)
    }

    /// Speaks one clean, non-empty run of text at the voice's own rate.
    fn render(&self, text: &str, voice: &str, rate: SpeechRate) -> Result<Pcm> {
        if !self.voices()?.iter().any(|v| v == voice) {
            return Err(Error::UnknownVoice {
                locale: "any".into(),
                voice: voice.to_owned(),
            });
        }
        let stretch = match rate {
            SpeechRate::Normal => "duration_stretch=1.0",
            SpeechRate::Slow => "duration_stretch=1.25",
            SpeechRate::Slower => "duration_stretch=1.5",
        };
        let args = [
            OsStr::new("-voice"),
            OsStr::new(voice),
            OsStr::new("--setf"),
            OsStr::new(stretch),
            OsStr::new("-o"),
            OsStr::new("/dev/stdout"),
            OsStr::new("-t"),
            OsStr::new(text),
        ];
        let output = run_program(&self.program, &args, None)?;
        let failed = |reason: String| Error::Synthesis {
            engine: Self::ENGINE,
            text: shorten(text),
            reason,
        };
        if !output.status.success() {
            return Err(failed(stderr_summary(&output)));
        }
        decode_wav(&output.stdout).map_err(|e| failed(format!("{e} ({})", stderr_summary(&output))))
    }
}

impl Default for FliteSynthesizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Synthesizer for FliteSynthesizer {
    fn synthesize(&self, speech: &[Segment], opts: &SpeakOptions) -> Result<Pcm> {
        let voice = opts.voice.as_deref().unwrap_or(Self::DEFAULT_VOICE);
        assemble(Self::ENGINE, speech, opts.output_rate, |text| {
            self.render(text, voice, opts.rate)
        })
    }

    fn engine(&self) -> &'static str {
        Self::ENGINE
    }

    /// `slt` for English; Flite's voices speak no other language.
    fn default_voice(&self, locale: Locale) -> Option<String> {
        match locale {
            Locale::En => Some(Self::DEFAULT_VOICE.to_owned()),
            Locale::Mn => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audio::SampleRate;

    fn opts(rate: SpeechRate, output_rate: SampleRate) -> SpeakOptions {
        SpeakOptions {
            voice: None,
            rate,
            output_rate,
        }
    }

    const GREETING: &str = "Thank you for calling the Government eleven eleven Centre.";

    #[test]
    fn speaks_audible_english_of_plausible_length() {
        let flite = FliteSynthesizer::new();
        let audio = flite
            .speak(GREETING, &opts(SpeechRate::Normal, SampleRate::HZ_16000))
            .unwrap();
        assert_eq!(audio.rate(), SampleRate::HZ_16000);
        let secs = audio.duration().as_secs_f32();
        // Nine words at a natural pace: 2–5 s.
        assert!((2.0..5.0).contains(&secs), "{secs} s");
        assert!(audio.rms() > 0.02, "rms {}", audio.rms());
    }

    #[test]
    fn output_comes_at_the_requested_rate() {
        let flite = FliteSynthesizer::new();
        let wide = flite
            .speak("hello", &opts(SpeechRate::Normal, SampleRate::HZ_16000))
            .unwrap();
        let narrow = flite
            .speak("hello", &opts(SpeechRate::Normal, SampleRate::HZ_8000))
            .unwrap();
        assert_eq!(narrow.rate(), SampleRate::HZ_8000);
        assert!(narrow.len().abs_diff(wide.len() / 2) <= 1);
    }

    #[test]
    fn slower_rates_are_measurably_longer() {
        let flite = FliteSynthesizer::new();
        let len = |rate| {
            flite
                .speak(GREETING, &opts(rate, SampleRate::HZ_16000))
                .unwrap()
                .duration()
                .as_secs_f32()
        };
        let (normal, slow, slower) = (
            len(SpeechRate::Normal),
            len(SpeechRate::Slow),
            len(SpeechRate::Slower),
        );
        let (r1, r2) = (slow / normal, slower / normal);
        assert!((1.15..1.35).contains(&r1), "slow/normal = {r1}");
        assert!((1.35..1.65).contains(&r2), "slower/normal = {r2}");
    }

    #[test]
    fn pauses_add_exactly_their_silence() {
        let flite = FliteSynthesizer::new();
        let o = opts(SpeechRate::Normal, SampleRate::HZ_8000);
        let one = flite.speak("one two three", &o).unwrap();
        let two = flite.speak("four five six", &o).unwrap();
        let pause = Duration::from_millis(700);
        let both = flite
            .synthesize(
                &[
                    Segment::Text("one two three".into()),
                    Segment::Pause(pause),
                    Segment::Text("four five six".into()),
                ],
                &o,
            )
            .unwrap();
        assert_eq!(both.len(), one.len() + 5600 + two.len());
        assert!(both.samples()[one.len()..one.len() + 5600]
            .iter()
            .all(|&s| s == 0.0));
    }

    #[test]
    fn texts_that_look_like_options_or_have_quotes_are_spoken() {
        let flite = FliteSynthesizer::new();
        let o = opts(SpeechRate::Normal, SampleRate::HZ_16000);
        for text in [
            "-o minus five degrees",
            "--help me",
            "She said \"yes\" and it's 'fine'",
            "line one\nline two",
        ] {
            let audio = flite.speak(text, &o).unwrap();
            assert!(audio.duration() > Duration::from_millis(500), "{text:?}");
            assert!(audio.rms() > 0.02, "{text:?}");
        }
    }

    #[test]
    fn cyrillic_is_refused_rather_than_spoken_as_silence() {
        let flite = FliteSynthesizer::new();
        let err = flite
            .speak("Сайн байна уу", &SpeakOptions::default())
            .map(|pcm| pcm.duration())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Synthesis {
                    engine: "flite",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_voice_is_an_error() {
        let flite = FliteSynthesizer::new();
        assert!(flite.voices().unwrap().iter().any(|v| v == "slt"));
        let o = SpeakOptions {
            voice: Some("nosuchvoice".into()),
            ..SpeakOptions::default()
        };
        let err = flite
            .speak("hello", &o)
            .map(|pcm| pcm.duration())
            .unwrap_err();
        assert!(matches!(err, Error::UnknownVoice { ref voice, .. } if voice == "nosuchvoice"));
    }

    #[test]
    fn missing_program_is_an_error_not_a_panic() {
        let flite = FliteSynthesizer::with_program("/nonexistent/flite");
        let err = flite
            .speak("hello", &SpeakOptions::default())
            .map(|pcm| pcm.duration())
            .unwrap_err();
        assert!(matches!(err, Error::MissingProgram { .. }), "{err}");
        // Whitespace needs no program at all.
        let empty = flite.speak(" \n ", &SpeakOptions::default()).unwrap();
        assert!(empty.is_empty());
    }
}
