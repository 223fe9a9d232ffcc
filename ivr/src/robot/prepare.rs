//! Turning a [`Script`] into what the call sends, before dialling: every `say` synthesized and
//! every `play` file read, so that a call never waits on a synthesizer or a disk mid-turn.
//!
//! The caller's voice is Flite `rms` for English (the assistant speaks with `slt`) and the
//! speaker's default voice for Mongolian, spoken [`CALLER_SPEED`] times the voice's normal
//! pace. All audio is resampled to the call rate and, at 8 kHz, passed through G.711 µ-law
//! like a telephone line, then cut into [`FRAME`] frames.
//!
//! Blocking: synthesis runs Flite/espeak-ng child processes and `play` reads files.

use std::time::Duration;

use regex::Regex;
use speech::audio::g711::Law;
use speech::audio::{resample::resample, wav};
use speech::tts::{Engine, Speaker, SpeechRate, VoiceChoice, VoiceConfig};
use speech::{verbalize, Locale, Pcm, SampleRate};

use super::report::Said;
use super::script::{Command, Problem, Script, ScriptError};

/// How much audio one `Audio` message carries: 20 ms, as RTP sends it.
pub const FRAME: Duration = Duration::from_millis(20);
/// How long a key is held (`Dtmf.duration_ms`).
pub const KEY_TONE: Duration = Duration::from_millis(120);
/// The pause after each key.
pub const KEY_GAP: Duration = Duration::from_millis(120);
/// The robot speaks this much faster than the voice's normal pace (and so a little higher),
/// so that it never sounds like the assistant and the recogniser hears a second speaker.
pub const CALLER_SPEED: f64 = 1.08;

/// The voices the robot caller speaks with: Flite `rms` for English, the default for
/// Mongolian.
pub fn caller_voices() -> VoiceConfig {
    let mut voices = VoiceConfig::default();
    voices.set(
        Locale::En,
        VoiceChoice {
            engine: Engine::Flite,
            voice: Some("rms".into()),
        },
    );
    voices
}

/// A script ready to be played on a call at one sample rate.
#[derive(Clone, Debug)]
pub struct PreparedScript {
    /// Where the script came from.
    pub origin: String,
    /// The call rate the audio was prepared for.
    pub rate: SampleRate,
    pub(crate) steps: Vec<PreparedStep>,
}

#[derive(Clone, Debug)]
pub(crate) struct PreparedStep {
    /// `origin:line`.
    pub at: String,
    /// The step as written.
    pub command: String,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// Put these frames on the line, one per tick.
    Send {
        ticks: Vec<Tick>,
        said: Said,
    },
    WaitPrompt,
    Expect(Regex),
    ExpectTransfer(Option<Regex>),
    Hangup,
}

/// What one 20 ms tick sends.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tick {
    /// A frame of audio (exactly one frame long).
    Audio(Vec<i16>),
    /// A silent frame.
    Silence,
    /// A `Dtmf` message for this key, with a silent frame.
    Key(char),
}

/// Prepares `script` for a call at `rate` in `locale`: synthesizes `say` lines with
/// `speaker` (see [`caller_voices`]) and reads `play` files. Every problem is reported at once,
/// as `script:line: message`.
pub fn prepare(
    script: &Script,
    rate: SampleRate,
    locale: Locale,
    speaker: &Speaker,
) -> Result<PreparedScript, ScriptError> {
    let frame_len = rate.samples_in(FRAME);
    let mut steps = Vec::with_capacity(script.steps.len());
    let mut problems = Vec::new();
    for step in &script.steps {
        let at = format!("{}:{}", script.origin, step.line);
        let action = match &step.command {
            Command::Say(text) => speak(speaker, locale, text, rate).map(|pcm| Action::Send {
                ticks: audio_ticks(&pcm, frame_len),
                said: Said::Words(text.clone()),
            }),
            Command::Play(path) => wav::read(path)
                .map_err(|e| e.to_string())
                .and_then(|pcm| line_audio(&pcm, rate))
                .map(|pcm| Action::Send {
                    ticks: audio_ticks(&pcm, frame_len),
                    said: Said::Recording(path.display().to_string()),
                }),
            Command::Key(keys) => Ok(Action::Send {
                ticks: key_ticks(keys),
                said: Said::Keys(keys.clone()),
            }),
            Command::Silence(d) => Ok(Action::Send {
                ticks: vec![Tick::Silence; ticks_in(*d)],
                said: Said::Nothing,
            }),
            Command::WaitPrompt => Ok(Action::WaitPrompt),
            Command::Expect(re) => Ok(Action::Expect(re.clone())),
            Command::ExpectTransfer(re) => Ok(Action::ExpectTransfer(re.clone())),
            Command::Hangup => Ok(Action::Hangup),
        };
        match action {
            Ok(action) => steps.push(PreparedStep {
                at,
                command: step.command.to_string(),
                action,
            }),
            Err(message) => problems.push(Problem {
                origin: script.origin.clone(),
                line: step.line,
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(PreparedScript {
            origin: script.origin.clone(),
            rate,
            steps,
        })
    } else {
        Err(ScriptError { problems })
    }
}

fn speak(speaker: &Speaker, locale: Locale, text: &str, rate: SampleRate) -> Result<Pcm, String> {
    let spoken = speaker
        .speak(
            locale,
            &verbalize::expand(locale, text),
            SpeechRate::Normal,
            SampleRate::HZ_16000,
        )
        .map_err(|e| format!("cannot synthesize {text:?}: {e}"))?;
    // Played back at a higher rate than it was rendered at: faster and a little higher.
    let faster_hz = (16_000.0 * CALLER_SPEED).round() as u32;
    let faster = SampleRate::new(faster_hz).map_err(|e| e.to_string())?;
    line_audio(&Pcm::new(faster, spoken.into_samples()), rate)
}

/// The audio as it reaches the assistant over a line at `rate`: resampled, and at 8 kHz
/// through µ-law.
fn line_audio(pcm: &Pcm, rate: SampleRate) -> Result<Pcm, String> {
    let at_rate = resample(pcm, rate).map_err(|e| e.to_string())?;
    Ok(if rate == SampleRate::HZ_8000 {
        Law::Mu.round_trip(&at_rate)
    } else {
        at_rate
    })
}

pub(crate) fn audio_ticks(pcm: &Pcm, frame_len: usize) -> Vec<Tick> {
    pcm.to_i16()
        .chunks(frame_len.max(1))
        .map(|c| {
            let mut frame = c.to_vec();
            frame.resize(frame_len, 0);
            Tick::Audio(frame)
        })
        .collect()
}

/// How many whole frames `d` spans (at least one).
fn ticks_in(d: Duration) -> usize {
    ((d.as_secs_f64() / FRAME.as_secs_f64()).round() as usize).max(1)
}

fn key_ticks(keys: &str) -> Vec<Tick> {
    let per_key = ticks_in(KEY_TONE + KEY_GAP);
    let mut ticks = Vec::with_capacity(keys.len() * per_key);
    for key in keys.chars() {
        ticks.push(Tick::Key(key));
        ticks.extend(std::iter::repeat_n(Tick::Silence, per_key - 1));
    }
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(src: &str) -> Script {
        Script::parse(src, "t.call").expect("valid script")
    }

    #[test]
    fn keys_are_paced_one_per_240_ms() {
        let p = prepare(
            &script("key 1#"),
            SampleRate::HZ_8000,
            Locale::En,
            &Speaker::new(caller_voices()),
        )
        .expect("prepares");
        let Action::Send { ticks, said } = &p.steps[0].action else {
            panic!("key sends");
        };
        assert_eq!(said, &Said::Keys("1#".into()));
        assert_eq!(ticks.len(), 24);
        assert_eq!(ticks[0], Tick::Key('1'));
        assert_eq!(ticks[12], Tick::Key('#'));
        assert!(ticks
            .iter()
            .enumerate()
            .all(|(i, t)| (i % 12 == 0) == matches!(t, Tick::Key(_))));
    }

    #[test]
    fn silence_is_whole_frames() {
        let p = prepare(
            &script("silence 0.5\nsilence 0.001"),
            SampleRate::HZ_16000,
            Locale::En,
            &Speaker::new(caller_voices()),
        )
        .expect("prepares");
        let lens: Vec<usize> = p
            .steps
            .iter()
            .map(|s| match &s.action {
                Action::Send { ticks, .. } => ticks.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(lens, [25, 1]);
    }

    #[test]
    fn play_resamples_and_companders_to_the_line() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("tone.wav");
        let tone: Vec<f32> = (0..1600).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        wav::write(&path, &Pcm::new(SampleRate::HZ_16000, tone)).expect("write WAV");
        let src = format!("play {}", path.display());
        let p = prepare(
            &script(&src),
            SampleRate::HZ_8000,
            Locale::En,
            &Speaker::new(caller_voices()),
        )
        .expect("prepares");
        let Action::Send { ticks, .. } = &p.steps[0].action else {
            panic!("play sends");
        };
        // 100 ms at 8 kHz: five frames of 160 samples.
        assert_eq!(ticks.len(), 5);
        for t in ticks {
            let Tick::Audio(frame) = t else {
                panic!("audio ticks")
            };
            assert_eq!(frame.len(), 160);
            for &s in frame {
                // Every sample is a µ-law reconstruction value.
                assert_eq!(Law::Mu.decode_sample(Law::Mu.encode_sample(s)), s);
            }
        }
    }

    #[test]
    fn a_missing_wav_is_reported_with_its_line() {
        let e = prepare(
            &script("key 1\nplay /nonexistent/x.wav"),
            SampleRate::HZ_8000,
            Locale::En,
            &Speaker::new(caller_voices()),
        )
        .expect_err("missing file");
        assert_eq!(e.problems.len(), 1);
        assert!(e.to_string().starts_with("t.call:2: "), "{e}");
        assert!(e.to_string().contains("/nonexistent/x.wav"), "{e}");
    }
}
