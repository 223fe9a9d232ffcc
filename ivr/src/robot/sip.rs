//! The robot's SIP leg: `ivr call sip:USER@HOST[:PORT]` calls like a phone, over SIP/UDP and
//! RTP, and turns the line into the `Up`/`Down` messages the robot's [`Caller`] speaks.
//!
//! [`Caller`]: super::caller::Caller
//!
//! The pieces are the sans-IO cores of [`crate::sip`] and [`crate::rtp`]; this module is their
//! tokio driver for one outgoing call:
//!
//! - Signalling: one UDP socket bound on the interface that routes to the target; a
//!   [`crate::sip::ua::Ua`] places the INVITE with an SDP offer of PCMU, PCMA and
//!   telephone-event ([`crate::sip::sdp::offer`], RFC 3264 §5) and reads the 200's answer.
//!   A final response other than 2xx refuses the call; no final response within the robot's
//!   timeout is a connect failure.
//! - Up, caller to far end: `Audio` (20 ms at 8000 Hz) is G.711-encoded in the negotiated law
//!   and sent as RTP (RFC 3550) to the address of the answer; `Dtmf` becomes RFC 4733 event
//!   packets, and audio is withheld while a key is being sent (RFC 4733 §2.5.1.3 leaves it
//!   to the sender; a phone mutes); `Hangup` (or the up stream's end) sends BYE and waits up
//!   to [`BYE_WAIT`] for its response; `PlayoutMark` has no meaning on a phone line and is
//!   dropped.
//! - Down, far end to caller: RTP of the negotiated codec goes through the jitter buffer and
//!   comes out as one 20 ms frame per tick. A [`Segmenter`] cuts the frames into the
//!   assistant's utterances by energy: a segment starts on a voiced frame and ends after
//!   [`SEGMENT_END`] of unvoiced frames. A segment's frames go down as `Audio{mark}` (mark =
//!   the segment's number, from 1) and the silence between segments is not sent, so that the
//!   robot's `wait-prompt` sees the quiet. When a segment ends its audio is transcribed with
//!   the robot's Whisper (one segment at a time, in order, on a blocking thread) and an
//!   `Event.Prompt{mark, text: transcript, locale "en"}` follows: `expect` matches the words
//!   heard on the line. A segment is the speech between pauses, not the assistant's prompt:
//!   two prompts played without a pause are one segment.
//! - REFER from the far end (RFC 3515) becomes `Transfer{target: Refer-To}`; BYE becomes
//!   `Hangup`. Both go down after the transcripts of the audio heard before them.
//!
//! Deviations: UDP only (no TCP, no TLS: `sips:` is refused); no re-INVITE of our own; the
//! robot does not answer RTCP; incoming DTMF is ignored.

use std::time::Duration;

use ivr_proto::v1::{self as pb, down, event};
use tokio::sync::mpsc;

use super::{CallOptions, DownStream, OpenError};
use crate::sip::uri::{Scheme, Uri};

/// How long the line must stay quiet for `wait-prompt` to pass over SIP: a segment's end is
/// known [`SEGMENT_END`] after its last voiced frame and the assistant's next sentence may
/// follow a pause about that long, so the robot waits for more.
pub const QUIET: Duration = Duration::from_millis(1000);
/// How long an utterance may pause before it counts as over.
pub const SEGMENT_END: Duration = Duration::from_millis(600);
/// How long a hangup waits for the BYE's response.
pub const BYE_WAIT: Duration = Duration::from_secs(2);

/// The duration of one frame of far-end audio.
const FRAME: Duration = super::prepare::FRAME;
/// Samples in one 20 ms frame at 8000 Hz.
const FRAME_LEN: usize = 160;
/// A frame whose RMS is at least this is voiced: about −40 dBFS, well above comfort noise
/// and well below speech.
const VOICED_RMS: f64 = 330.0;
/// The longest segment: a longer utterance is cut here (bounded memory, and a transcript
/// comes out within this time).
const MAX_SEGMENT: Duration = Duration::from_secs(30);

/// The `HOST:PORT` an INVITE to `uri` (`sip:[USER@]HOST[:PORT][;params]`) goes to.
///
/// IPv6 hosts keep their brackets; the port defaults to 5060 (RFC 3261 §19.1.2; no DNS SRV
/// lookup, RFC 3263, is made).
pub fn destination(uri: &str) -> Result<String, String> {
    let parsed = Uri::parse(uri).map_err(|e| format!("{uri:?}: {e}"))?;
    if parsed.scheme != Scheme::Sip {
        return Err(format!("{uri:?}: expected sip:USER@HOST[:PORT]"));
    }
    if parsed.port == Some(0) {
        return Err(format!("{uri:?}: port 0"));
    }
    let (host, port) = parsed.host_port();
    Ok(format!("{host}:{port}"))
}

/// What the [`Segmenter`] found in a frame.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Segment {
    /// Audio of segment `mark`, to go down now.
    Audio { mark: u64, samples: Vec<i16> },
    /// Segment `mark` is over; `audio` is all of it, to transcribe.
    End { mark: u64, audio: Vec<i16> },
}

/// Cuts the far end's 20 ms frames into utterances by energy (see the module docs).
///
/// Unvoiced frames after a segment's last voiced one are held back: they go down (before the
/// next voiced frame) only when the segment goes on, so its audio keeps its pauses and the
/// quiet after it is not sent at all.
#[derive(Debug, Default)]
pub(crate) struct Segmenter {
    last_mark: u64,
    /// The segment under way: its mark and its audio so far (sent down).
    current: Option<(u64, Vec<i16>)>,
    /// Unvoiced frames since the current segment's last voiced frame.
    held: Vec<i16>,
}

impl Segmenter {
    /// Takes the next frame of far-end audio (any length; 20 ms at 8000 Hz on the line).
    pub fn push(&mut self, frame: &[i16]) -> Vec<Segment> {
        let mut out = Vec::new();
        let voiced = rms(frame) >= VOICED_RMS;
        match (&mut self.current, voiced) {
            (None, false) => {}
            (None, true) => {
                self.last_mark += 1;
                self.current = Some((self.last_mark, frame.to_vec()));
                out.push(Segment::Audio {
                    mark: self.last_mark,
                    samples: frame.to_vec(),
                });
            }
            (Some((mark, audio)), true) => {
                let mut samples = std::mem::take(&mut self.held);
                samples.extend_from_slice(frame);
                audio.extend_from_slice(&samples);
                out.push(Segment::Audio {
                    mark: *mark,
                    samples,
                });
            }
            (Some(_), false) => {
                self.held.extend_from_slice(frame);
                if self.held.len() >= samples_in(SEGMENT_END) {
                    out.extend(self.finish());
                }
            }
        }
        if let Some((_, audio)) = &self.current {
            if audio.len() + self.held.len() >= samples_in(MAX_SEGMENT) {
                out.extend(self.finish());
            }
        }
        out
    }

    /// Ends the segment under way, if any (the line went quiet for good: BYE, REFER).
    pub fn finish(&mut self) -> Option<Segment> {
        self.held.clear();
        self.current
            .take()
            .map(|(mark, audio)| Segment::End { mark, audio })
    }
}

/// Samples in `d` at 8000 Hz.
fn samples_in(d: Duration) -> usize {
    (d.as_millis() as usize) * FRAME_LEN / FRAME.as_millis() as usize
}

/// The root mean square of `samples` (0 for none).
fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Places the call to `uri` at `dest` and runs it with `ups` as the caller's side.
pub(super) async fn dial(
    uri: &str,
    dest: &str,
    ups: mpsc::Receiver<pb::Up>,
    options: &CallOptions,
) -> Result<DownStream, OpenError> {
    let _ = (uri, ups, options);
    Err(OpenError::Connect(format!(
        "{dest}: the SIP user agent is not built in yet"
    )))
}

/// `Down::Audio` of `samples` for `mark`.
fn audio_down(mark: u64, seq: u64, samples: &[i16]) -> pb::Down {
    pb::Down {
        msg: Some(down::Msg::Audio(pb::Audio {
            pcm16: samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            seq,
            mark,
        })),
    }
}

/// `Down::Event{Prompt}`: what was heard in segment `mark`.
fn prompt_down(mark: u64, text: String) -> pb::Down {
    pb::Down {
        msg: Some(down::Msg::Event(pb::Event {
            kind: Some(event::Kind::Prompt(pb::Prompt {
                mark,
                prompt_id: String::new(),
                text,
                locale: "en".into(),
            })),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voiced() -> Vec<i16> {
        (0..FRAME_LEN)
            .map(|i| if i % 2 == 0 { 2000 } else { -2000 })
            .collect()
    }

    fn quiet() -> Vec<i16> {
        vec![20; FRAME_LEN]
    }

    fn marks_and_lens(out: &[Segment]) -> Vec<(char, u64, usize)> {
        out.iter()
            .map(|s| match s {
                Segment::Audio { mark, samples } => ('a', *mark, samples.len()),
                Segment::End { mark, audio } => ('e', *mark, audio.len()),
            })
            .collect()
    }

    #[test]
    fn silence_before_speech_is_not_sent() {
        let mut s = Segmenter::default();
        for _ in 0..100 {
            assert!(s.push(&quiet()).is_empty());
        }
        assert_eq!(marks_and_lens(&s.push(&voiced())), [('a', 1, FRAME_LEN)]);
    }

    #[test]
    fn a_short_pause_stays_inside_the_utterance_and_goes_down_with_the_next_word() {
        let mut s = Segmenter::default();
        s.push(&voiced());
        // 400 ms pause: held back, not the end.
        for _ in 0..20 {
            assert!(s.push(&quiet()).is_empty());
        }
        assert_eq!(
            marks_and_lens(&s.push(&voiced())),
            [('a', 1, 21 * FRAME_LEN)]
        );
    }

    #[test]
    fn a_long_pause_ends_the_utterance_with_all_its_audio_and_the_next_word_starts_another() {
        let mut s = Segmenter::default();
        s.push(&voiced());
        s.push(&voiced());
        let mut out = Vec::new();
        for _ in 0..30 {
            out.extend(s.push(&quiet()));
        }
        // The end comes on the 30th quiet frame (600 ms) and carries the voiced audio only.
        assert_eq!(marks_and_lens(&out), [('e', 1, 2 * FRAME_LEN)]);
        for _ in 0..50 {
            assert!(s.push(&quiet()).is_empty());
        }
        assert_eq!(marks_and_lens(&s.push(&voiced())), [('a', 2, FRAME_LEN)]);
        assert_eq!(
            s.finish().map(|e| marks_and_lens(&[e])),
            Some(vec![('e', 2, FRAME_LEN)])
        );
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn endless_speech_is_cut_into_bounded_segments() {
        let mut s = Segmenter::default();
        let mut ends = Vec::new();
        for _ in 0..(2 * 1500 + 10) {
            for seg in s.push(&voiced()) {
                if let Segment::End { mark, audio } = seg {
                    ends.push((mark, audio.len()));
                }
            }
        }
        assert_eq!(ends, [(1, 1500 * FRAME_LEN), (2, 1500 * FRAME_LEN)]);
    }

    #[test]
    fn sip_uris_name_their_destination() {
        assert_eq!(
            destination("sip:1111@127.0.0.1:5070").as_deref(),
            Ok("127.0.0.1:5070")
        );
        assert_eq!(
            destination("sip:1111@hotline.example;transport=udp?subject=x").as_deref(),
            Ok("hotline.example:5060")
        );
        assert_eq!(destination("sip:[::1]:5062").as_deref(), Ok("[::1]:5062"));
        assert_eq!(destination("sip:1111@[::1]").as_deref(), Ok("[::1]:5060"));
        for bad in [
            "sip:",
            "sip:1111@",
            "sip:1111@host:0",
            "sip:1111@host:99999",
            "sip:1111@ho st",
            "sip:1111@[::1",
            "tel:1111",
        ] {
            assert!(destination(bad).is_err(), "{bad}");
        }
    }
}
