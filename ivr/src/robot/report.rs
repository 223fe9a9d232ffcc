//! What a robot call returns: the timeline, turn latencies, prompts, transfer, failure and
//! (optionally) the recording, and how the command line prints them.
//!
//! Pure data and formatting; [`Recording::write_wav`] is the only IO.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use speech::SampleRate;

/// The outcome and record of one robot call.
#[derive(Clone, Debug)]
pub struct CallReport {
    /// The call id sent in `CallStart` (over SIP the robot's own; the SIP Call-ID differs).
    pub call_id: String,
    /// Everything that happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// `Event.latency` of every turn, in order.
    pub turns: Vec<TurnLatency>,
    /// Every prompt the assistant announced (`Event.prompt`), in order.
    pub prompts: Vec<PromptRecord>,
    /// The transfer target, when the assistant transferred the call.
    pub transfer: Option<String>,
    /// Why the script did not run to its end with every expectation met; `None` when it did.
    pub failure: Option<Failure>,
    /// Both directions of the call, when recording was asked for.
    pub recording: Option<Recording>,
    /// From `CallStart` to the end of the call.
    pub duration: Duration,
}

impl CallReport {
    /// True when the script ran to its end with every expectation met.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Prints the timeline, one line per event: milliseconds since the call started, then what
    /// happened.
    pub fn write_timeline(&self, out: &mut dyn Write) -> io::Result<()> {
        for entry in &self.timeline {
            writeln!(out, "{:>7} ms  {}", entry.at.as_millis(), entry.event)?;
        }
        Ok(())
    }

    /// Prints only the conversation: `caller: ...` and `assistant: ...` lines.
    pub fn write_transcript(&self, out: &mut dyn Write) -> io::Result<()> {
        for entry in &self.timeline {
            match &entry.event {
                TimelineEvent::Caller { said, .. } => match said {
                    Said::Words(text) => writeln!(out, "caller: {text}")?,
                    Said::Keys(keys) => writeln!(out, "caller: [keys {keys}]")?,
                    Said::Recording(file) => writeln!(out, "caller: [plays {file}]")?,
                    Said::Nothing => {}
                },
                TimelineEvent::Prompt { text, .. } => writeln!(out, "assistant: {text}")?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Prints the table of turn latencies with their median and maximum; nothing when the
    /// assistant reported no turn.
    pub fn write_latencies(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.turns.is_empty() {
            return Ok(());
        }
        writeln!(
            out,
            "turn  endpoint ms  transcript ms  decision ms  first audio ms"
        )?;
        for (i, t) in self.turns.iter().enumerate() {
            let spec = if t.speculative { "  (speculative)" } else { "" };
            writeln!(
                out,
                "{:>4}  {:>11}  {:>13}  {:>11}  {:>14}{spec}",
                i + 1,
                t.endpoint_ms,
                t.transcript_ms,
                t.decision_ms,
                t.first_audio_ms
            )?;
        }
        let column = |f: fn(&TurnLatency) -> u32| -> (u32, u32) {
            let mut v: Vec<u32> = self.turns.iter().map(f).collect();
            v.sort_unstable();
            (median(&v), v.last().copied().unwrap_or(0))
        };
        let cols = [
            column(|t| t.endpoint_ms),
            column(|t| t.transcript_ms),
            column(|t| t.decision_ms),
            column(|t| t.first_audio_ms),
        ];
        writeln!(
            out,
            "{:>4}  {:>11}  {:>13}  {:>11}  {:>14}",
            "med", cols[0].0, cols[1].0, cols[2].0, cols[3].0
        )?;
        writeln!(
            out,
            "{:>4}  {:>11}  {:>13}  {:>11}  {:>14}",
            "max", cols[0].1, cols[1].1, cols[2].1, cols[3].1
        )?;
        Ok(())
    }
}

/// The median of sorted values (the mean of the middle two, rounded down, for an even count).
fn median(sorted: &[u32]) -> u32 {
    match sorted.len() {
        0 => 0,
        n if n % 2 == 1 => sorted[n / 2],
        n => ((u64::from(sorted[n / 2 - 1]) + u64::from(sorted[n / 2])) / 2) as u32,
    }
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineEntry {
    /// Since the call started (`CallStart` sent).
    pub at: Duration,
    /// What happened.
    pub event: TimelineEvent,
}

/// What the caller put on the line in one step.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Said {
    /// Spoken words (`say`).
    Words(String),
    /// Keys (`key`).
    Keys(String),
    /// A WAV file (`play`), by name.
    Recording(String),
    /// Nothing (`silence`).
    Nothing,
}

/// Something that happened during a call.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TimelineEvent {
    /// The caller began a script step that puts something on the line.
    Caller {
        /// The step as written in the script.
        command: String,
        /// What it puts on the line.
        said: Said,
    },
    /// The assistant announced a prompt.
    Prompt {
        /// Its playout mark.
        mark: u64,
        /// Its words.
        text: String,
    },
    /// What the assistant understood of a caller turn.
    Heard {
        /// The recogniser's words (empty for keys).
        text: String,
        /// Keys pressed, when the input was keys.
        keys: String,
        /// The meaning chosen (empty for no match).
        meaning: String,
        /// What the dialog decided (accept, confirm, no match, ...).
        decision: String,
        /// The recogniser's confidence.
        confidence: f32,
    },
    /// The assistant cut its prompt short because the caller spoke (`ClearPlayout`).
    BargeIn {
        /// The mark the assistant says was playing.
        mark: u64,
        /// The marks whose queued audio was dropped.
        dropped: Vec<u64>,
    },
    /// An expectation was met.
    Met {
        /// The step as written in the script.
        command: String,
        /// What Whisper heard in the prompts' audio and the word error rate against their
        /// text, when the audio was checked.
        audio_check: Option<(String, f64)>,
    },
    /// The assistant transferred the call.
    Transfer {
        /// The target (a SIP URI).
        target: String,
    },
    /// The assistant ended the call.
    AssistantHangup {
        /// Its reason.
        reason: String,
    },
    /// The caller hung up.
    CallerHangup {
        /// Why.
        reason: String,
    },
    /// The script failed here.
    Failed {
        /// The one-line reason.
        reason: String,
    },
}

impl fmt::Display for TimelineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimelineEvent::Caller { command, .. } => write!(f, "caller: {command}"),
            TimelineEvent::Prompt { mark, text } => write!(f, "assistant: {text}  [mark {mark}]"),
            TimelineEvent::Heard {
                text,
                keys,
                meaning,
                decision,
                confidence,
            } => {
                let what = if keys.is_empty() {
                    format!("{text:?}")
                } else {
                    format!("keys {keys}")
                };
                let meaning = if meaning.is_empty() {
                    "no meaning"
                } else {
                    meaning
                };
                write!(
                    f,
                    "heard: {what} -> {meaning} ({decision}, confidence {confidence:.2})"
                )
            }
            TimelineEvent::BargeIn { mark, dropped } => {
                write!(f, "barge-in: prompt {mark} cleared")?;
                if !dropped.is_empty() {
                    let d: Vec<String> = dropped.iter().map(u64::to_string).collect();
                    write!(f, " (dropped audio of mark {})", d.join(", "))?;
                }
                Ok(())
            }
            TimelineEvent::Met {
                command,
                audio_check,
            } => {
                write!(f, "ok: {command}")?;
                if let Some((heard, wer)) = audio_check {
                    write!(
                        f,
                        "  (audio: {heard:?}, word error rate {:.0} %)",
                        wer * 100.0
                    )?;
                }
                Ok(())
            }
            TimelineEvent::Transfer { target } => write!(f, "transfer to {target}"),
            TimelineEvent::AssistantHangup { reason } => write!(f, "assistant hung up: {reason}"),
            TimelineEvent::CallerHangup { reason } => write!(f, "caller hung up: {reason}"),
            TimelineEvent::Failed { reason } => write!(f, "FAILED: {reason}"),
        }
    }
}

/// A prompt the assistant announced.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptRecord {
    /// When its `Event.prompt` arrived, since the call started.
    pub at: Duration,
    /// Its playout mark.
    pub mark: u64,
    /// The prompt id (empty for generated sentences, and over SIP).
    pub prompt_id: String,
    /// Its words (over SIP: what Whisper heard in one stretch of the assistant's speech).
    pub text: String,
    /// Its locale (`en`, `mn`).
    pub locale: String,
    /// True when a barge-in dropped some of its audio.
    pub interrupted: bool,
}

/// One turn's latencies, from `Event.latency` (milliseconds since the end of the caller's
/// speech).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnLatency {
    /// The endpointer decided the turn was over.
    pub endpoint_ms: u32,
    /// The transcript was ready.
    pub transcript_ms: u32,
    /// The dialog engine decided.
    pub decision_ms: u32,
    /// The first answer audio was sent.
    pub first_audio_ms: u32,
    /// The transcript came from a speculative run.
    pub speculative: bool,
}

/// Why a robot call failed. Each variant says whose fault it is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The assistant could not be reached (refused, unreachable, timed out).
    Connect(String),
    /// The assistant broke the call: an error status, or a breach of the stream contract.
    Protocol(String),
    /// An `expect`, `expect-transfer` or `wait-prompt` was not met.
    Expectation {
        /// `script:line` of the step.
        at: String,
        /// What was expected and what happened instead.
        message: String,
    },
    /// The assistant hung up or transferred before the script's end.
    EndedEarly {
        /// `script:line` of the step that could not run.
        at: String,
        /// What happened.
        message: String,
    },
    /// The robot itself failed (for example its transcriber).
    Robot(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(m) => write!(f, "cannot reach the assistant: {m}"),
            Failure::Protocol(m) => write!(f, "{m}"),
            Failure::Expectation { at, message } | Failure::EndedEarly { at, message } => {
                write!(f, "{at}: {message}")
            }
            Failure::Robot(m) => write!(f, "the robot failed: {m}"),
        }
    }
}

impl std::error::Error for Failure {}

/// Both directions of a call, time-aligned, 16-bit samples at the call rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// The call's sample rate.
    pub rate: SampleRate,
    /// What the caller sent.
    pub caller: Vec<i16>,
    /// What the assistant sent, as played out.
    pub assistant: Vec<i16>,
}

impl Recording {
    /// The WAV file: 16-bit PCM stereo, the caller left, the assistant right (the shorter
    /// side padded with silence).
    pub fn to_wav_bytes(&self) -> Vec<u8> {
        let frames = self.caller.len().max(self.assistant.len());
        let data_len = frames * 4;
        let rate = self.rate.hz();
        let mut out = Vec::with_capacity(44 + data_len);
        out.extend_from_slice(b"RIFF");
        // WAV sizes are 32-bit; a call would need to last over 18 hours at 16 kHz to overflow.
        out.extend_from_slice(
            &u32::try_from(36 + data_len)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&2u16.to_le_bytes()); // channels
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 4).to_le_bytes()); // bytes per second
        out.extend_from_slice(&4u16.to_le_bytes()); // block align
        out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        out.extend_from_slice(b"data");
        out.extend_from_slice(&u32::try_from(data_len).unwrap_or(u32::MAX).to_le_bytes());
        for i in 0..frames {
            let l = self.caller.get(i).copied().unwrap_or(0);
            let r = self.assistant.get(i).copied().unwrap_or(0);
            out.extend_from_slice(&l.to_le_bytes());
            out.extend_from_slice(&r.to_le_bytes());
        }
        out
    }

    /// Writes [`Recording::to_wav_bytes`] to `path`.
    pub fn write_wav(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.to_wav_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(turns: Vec<TurnLatency>) -> CallReport {
        CallReport {
            call_id: "c".into(),
            timeline: vec![
                TimelineEntry {
                    at: Duration::from_millis(5),
                    event: TimelineEvent::Prompt {
                        mark: 1,
                        text: "Hello.".into(),
                    },
                },
                TimelineEntry {
                    at: Duration::from_millis(1200),
                    event: TimelineEvent::Caller {
                        command: "key 2".into(),
                        said: Said::Keys("2".into()),
                    },
                },
                TimelineEntry {
                    at: Duration::from_millis(1500),
                    event: TimelineEvent::Heard {
                        text: String::new(),
                        keys: "2".into(),
                        meaning: "english".into(),
                        decision: "accept".into(),
                        confidence: 1.0,
                    },
                },
            ],
            turns,
            prompts: Vec::new(),
            transfer: None,
            failure: None,
            recording: None,
            duration: Duration::from_secs(2),
        }
    }

    fn text(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).expect("writing to memory");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn timeline_lines_carry_milliseconds_since_the_start() {
        let r = report(Vec::new());
        assert_eq!(
            text(|o| r.write_timeline(o)),
            "      5 ms  assistant: Hello.  [mark 1]\n   1200 ms  caller: key 2\n   \
             1500 ms  heard: keys 2 -> english (accept, confidence 1.00)\n"
        );
    }

    #[test]
    fn transcript_has_only_the_conversation() {
        let r = report(Vec::new());
        assert_eq!(
            text(|o| r.write_transcript(o)),
            "assistant: Hello.\ncaller: [keys 2]\n"
        );
    }

    #[test]
    fn latency_table_ends_with_median_and_max() {
        let t = |ms: u32| TurnLatency {
            endpoint_ms: ms,
            transcript_ms: ms * 2,
            decision_ms: ms * 3,
            first_audio_ms: ms * 4,
            speculative: false,
        };
        let r = report(vec![t(100), t(300), t(200), t(400)]);
        let table = text(|o| r.write_latencies(o));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 7, "{table}");
        assert_eq!(
            lines[5].split_whitespace().collect::<Vec<_>>(),
            ["med", "250", "500", "750", "1000"]
        );
        assert_eq!(
            lines[6].split_whitespace().collect::<Vec<_>>(),
            ["max", "400", "800", "1200", "1600"]
        );
        assert_eq!(text(|o| report(Vec::new()).write_latencies(o)), "");
    }

    #[test]
    fn recording_is_a_stereo_wav_with_caller_left() {
        let rec = Recording {
            rate: SampleRate::HZ_8000,
            caller: vec![1, 2, 3],
            assistant: vec![-1],
        };
        let bytes = rec.to_wav_bytes();
        assert_eq!(bytes.len(), 44 + 12);
        assert_eq!(&bytes[22..24], &2u16.to_le_bytes());
        assert_eq!(&bytes[24..28], &8000u32.to_le_bytes());
        let samples: Vec<i16> = bytes[44..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(samples, [1, -1, 2, 0, 3, 0]);
        // The speech crate's reader downmixes it: (1 + -1) / 2 = 0 for the first frame.
        let mono = speech::audio::wav::read_bytes(&bytes).expect("a readable WAV");
        assert_eq!(mono.len(), 3);
        assert_eq!(mono.rate(), SampleRate::HZ_8000);
    }
}
