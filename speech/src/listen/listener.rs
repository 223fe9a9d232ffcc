//! The listener: one call's ear. Takes the caller's raw 16 kHz audio as it arrives, runs
//! the VAD on every 16 ms of it, and feeds the verdicts to the barge-in detector (while a
//! prompt plays) and the endpointer (while a turn is open).
//!
//! Owns a [`Vad`], a [`BargeIn`], the current turn's [`Endpointer`] and a short history of
//! recent frames. No IO, no clock, no threads: `now` comes with every input, outputs are
//! drained with [`Listener::poll_event`], and [`Listener::poll_timeout`] says when to call
//! [`Listener::handle_timeout`].
//!
//! # Time
//!
//! `now` in [`Listener::handle_audio`] is the instant of the chunk's first sample. The
//! listener cuts the stream into 256-sample VAD frames across chunk boundaries and stamps
//! each with the instant of its own first sample (a frame that began in an earlier chunk
//! keeps that chunk's time base), so timestamps do not depend on how the gateway packetises.
//!
//! # Prompts, turns and barge-in
//!
//! - [`Listener::prompt_playing`]`(now, true)` when a prompt starts: barge-in detection is
//!   armed; `false` when it ends or was stopped.
//! - [`Listener::listen`] opens a turn with an [`EndpointConfig`]. Called while no prompt
//!   plays, the turn starts at once. Called while a prompt plays (the usual way: right
//!   after starting the prompt), the turn is *armed*: its no-input timer starts only when the
//!   prompt ends, and if the caller barges in, the turn starts at the interruption with the
//!   interrupting words already in it (replayed from the history, leading pad included, up
//!   to [`MAX_REPLAY_LEAD`]).
//! - On [`ListenEvent::BargeIn`] the driver stops playout; the listener already considers
//!   the prompt over.
//! - A turn ends with one [`EndpointEvent::Utterance`] or [`EndpointEvent::NoInput`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use speech::{Pcm, SampleRate};
//! use speech::listen::{EndpointConfig, Listener, ListenEvent, EndpointEvent};
//! # fn main() -> speech::Result<()> {
//! let t0 = Instant::now();
//! let mut ear = Listener::new(Default::default(), Default::default())?;
//! ear.prompt_playing(t0, true);            // "For a complaint, say complaint or press 2."
//! ear.listen(t0, EndpointConfig::menu())?; // armed: no timer while the prompt plays
//! assert_eq!(ear.poll_timeout(), None);
//! let t1 = t0 + Duration::from_secs(3);
//! ear.prompt_playing(t1, false);           // prompt done: 8 s to answer
//! assert_eq!(ear.poll_timeout(), Some(t1 + Duration::from_secs(8)));
//! let silence = Pcm::silence(SampleRate::HZ_16000, Duration::from_millis(20));
//! ear.handle_audio(t1, &silence)?;
//! ear.handle_timeout(t1 + Duration::from_secs(8));
//! assert!(matches!(ear.poll_event(), Some(ListenEvent::Endpoint(EndpointEvent::NoInput { .. }))));
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::barge_in::{BargeIn, BargeInConfig, BargeInEvent};
use super::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
use super::vad::{Vad, VadConfig, VAD_FRAME, VAD_FRAME_SAMPLES, VAD_RATE};
use crate::audio::Pcm;
use crate::{Error, Result};

/// The most leading pad a barge-in replay can supply (the history is this long plus the
/// barge-in run).
pub const MAX_REPLAY_LEAD: Duration = Duration::from_secs(1);

/// What the listener tells its driver.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ListenEvent {
    /// The caller is talking over the prompt: stop playing it.
    BargeIn(BargeInEvent),
    /// From the current turn's endpointer.
    Endpoint(EndpointEvent),
}

/// One call's listener. See the module docs.
#[derive(Debug)]
pub struct Listener {
    vad: Vad,
    barge_in: BargeIn,
    prompt_playing: bool,
    turn: Turn,
    /// Samples that do not fill a VAD frame yet, and the instant of the first of them.
    pending: Vec<f32>,
    pending_at: Option<Instant>,
    /// Recent frames, for replay into a turn that starts at a barge-in.
    history: VecDeque<HeardFrame>,
    history_frames: usize,
    events: VecDeque<ListenEvent>,
}

#[derive(Debug)]
enum Turn {
    None,
    /// Waiting for the prompt to end or be interrupted.
    Armed(Endpointer),
    Open(Endpointer),
}

#[derive(Debug)]
struct HeardFrame {
    at: Instant,
    audio: Pcm,
    is_speech: bool,
}

impl Listener {
    /// A listener with no prompt playing and no turn open.
    pub fn new(vad: VadConfig, barge_in: BargeInConfig) -> Result<Self> {
        let history = MAX_REPLAY_LEAD + barge_in.min_speech + barge_in.max_gap + VAD_FRAME;
        let history_frames = VAD_RATE.samples_in(history).div_ceil(VAD_FRAME_SAMPLES);
        Ok(Self {
            vad: Vad::new(vad)?,
            barge_in: BargeIn::new(barge_in),
            prompt_playing: false,
            turn: Turn::None,
            pending: Vec::with_capacity(VAD_FRAME_SAMPLES),
            pending_at: None,
            history: VecDeque::with_capacity(history_frames),
            history_frames,
            events: VecDeque::new(),
        })
    }

    /// Takes the caller's audio, 16 kHz, any length; `now` is its first sample's instant.
    /// Refuses other rates (resample first).
    pub fn handle_audio(&mut self, now: Instant, pcm: &Pcm) -> Result<()> {
        if pcm.rate() != VAD_RATE {
            return Err(Error::InvalidArgument(format!(
                "the listener takes {VAD_RATE} audio, got {}: resample it first",
                pcm.rate()
            )));
        }
        let samples = pcm.samples();
        let mut i = 0;
        while i < samples.len() {
            if self.pending.is_empty() {
                self.pending_at = Some(offset(now, i));
            }
            let take = (VAD_FRAME_SAMPLES - self.pending.len()).min(samples.len() - i);
            self.pending.extend_from_slice(&samples[i..i + take]);
            i += take;
            if self.pending.len() == VAD_FRAME_SAMPLES {
                // `pending_at` is set whenever `pending` goes from empty to non-empty, so it
                // is always there for a full frame; `now` is an unreachable fallback.
                let at = self.pending_at.take().unwrap_or(now);
                let frame = Pcm::new(VAD_RATE, std::mem::take(&mut self.pending));
                self.pending = Vec::with_capacity(VAD_FRAME_SAMPLES);
                self.handle_vad_frame(at, frame)?;
            }
        }
        Ok(())
    }

    /// Opens a listening turn with `config` (see the module docs for the prompt case). A
    /// turn already open or armed is abandoned without an event.
    pub fn listen(&mut self, now: Instant, config: EndpointConfig) -> Result<()> {
        let mut endpointer = Endpointer::new(config)?;
        self.turn = if self.prompt_playing {
            Turn::Armed(endpointer)
        } else {
            endpointer.start(now);
            Turn::Open(endpointer)
        };
        Ok(())
    }

    /// A prompt started (`true`: barge-in detection re-armed) or ended (`false`: an armed
    /// turn starts now).
    pub fn prompt_playing(&mut self, now: Instant, playing: bool) {
        if playing {
            self.prompt_playing = true;
            self.barge_in.reset();
            return;
        }
        self.prompt_playing = false;
        if let Turn::Armed(mut endpointer) = std::mem::replace(&mut self.turn, Turn::None) {
            endpointer.start(now);
            self.turn = Turn::Open(endpointer);
        }
    }

    /// Ends the open turn now (the caller pressed `#`): see [`Endpointer::finish`]. An armed
    /// turn is dropped without an event.
    pub fn finish(&mut self, now: Instant) {
        match std::mem::replace(&mut self.turn, Turn::None) {
            Turn::Open(mut endpointer) => {
                endpointer.finish(now);
                self.drain(&mut endpointer);
            }
            Turn::Armed(_) | Turn::None => {}
        }
    }

    /// Drops the turn, open or armed, without an event (the dialog moved on, or hangup).
    pub fn cancel(&mut self) {
        self.turn = Turn::None;
    }

    /// Whether a turn is open or armed.
    pub fn is_listening(&self) -> bool {
        !matches!(self.turn, Turn::None)
    }

    /// Fires the open turn's timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Turn::Open(endpointer) = &mut self.turn {
            endpointer.handle_timeout(now);
        }
        self.drain_turn();
    }

    /// When to call [`Listener::handle_timeout`] next (only an open turn has timers).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.turn {
            Turn::Open(endpointer) => endpointer.poll_timeout(),
            Turn::Armed(_) | Turn::None => None,
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<ListenEvent> {
        self.events.pop_front()
    }

    fn handle_vad_frame(&mut self, at: Instant, audio: Pcm) -> Result<()> {
        let is_speech = self.vad.handle_frame(audio.samples())?.is_speech;
        if self.history.len() == self.history_frames {
            self.history.pop_front();
        }
        self.history.push_back(HeardFrame {
            at,
            audio,
            is_speech,
        });

        if self.prompt_playing {
            if let Some(event) = self.barge_in.handle_frame(at, VAD_FRAME, is_speech) {
                self.prompt_playing = false;
                self.events.push_back(ListenEvent::BargeIn(event));
                if matches!(self.turn, Turn::Armed(_)) {
                    if let Turn::Armed(endpointer) = std::mem::replace(&mut self.turn, Turn::None) {
                        return self.replay_into(endpointer, event);
                    }
                }
            }
        }
        if let Turn::Open(endpointer) = &mut self.turn {
            // The frame was just pushed, so the history is not empty.
            if let Some(frame) = self.history.back() {
                endpointer.handle_frame(frame.at, &frame.audio, frame.is_speech)?;
            }
        }
        self.drain_turn();
        Ok(())
    }

    /// Starts an armed turn at a barge-in and feeds it the history from the leading pad
    /// before the interruption up to the current frame.
    fn replay_into(&mut self, mut endpointer: Endpointer, event: BargeInEvent) -> Result<()> {
        let lead = endpointer.config().leading_pad.min(MAX_REPLAY_LEAD);
        let from = event
            .speech_started
            .checked_sub(lead)
            .unwrap_or(event.speech_started);
        // The frame that holds `from`, so the endpointer can cut the pad to the sample.
        let first = self.history.iter().rposition(|f| f.at <= from).unwrap_or(0);
        let start_at = self
            .history
            .get(first)
            .map_or(event.speech_started, |f| f.at);
        endpointer.start(start_at);
        for frame in self.history.iter().skip(first) {
            endpointer.handle_frame(frame.at, &frame.audio, frame.is_speech)?;
        }
        self.turn = Turn::Open(endpointer);
        self.drain_turn();
        Ok(())
    }

    fn drain_turn(&mut self) {
        let mut turn = std::mem::replace(&mut self.turn, Turn::None);
        if let Turn::Open(endpointer) = &mut turn {
            self.drain(endpointer);
            if !endpointer.is_listening() {
                turn = Turn::None;
            }
        }
        self.turn = turn;
    }

    fn drain(&mut self, endpointer: &mut Endpointer) {
        while let Some(event) = endpointer.poll_event() {
            self.events.push_back(ListenEvent::Endpoint(event));
        }
    }
}

/// The instant of sample `i` of a 16 kHz chunk whose first sample is at `now`.
fn offset(now: Instant, i: usize) -> Instant {
    // 16 kHz: 62,500 ns per sample, exactly.
    let nanos = i as u64 * (1_000_000_000 / u64::from(VAD_RATE.hz()));
    now.checked_add(Duration::from_nanos(nanos)).unwrap_or(now)
}

#[cfg(test)]
// Each test takes one origin instant from the clock; time then advances by arithmetic.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use crate::audio::SampleRate;
    use crate::listen::endpoint::{EndReason, Utterance};
    use crate::listen::test_audio::{flite_speech, white_noise};

    /// 20 ms chunks, as RTP delivers them.
    const CHUNK: usize = 320;

    /// Feeds `audio` from `t` in 20 ms chunks; returns the instant after it.
    fn feed(ear: &mut Listener, t: Instant, audio: &Pcm) -> Instant {
        for (k, chunk) in audio.samples().chunks(CHUNK).enumerate() {
            let at = offset(t, k * CHUNK);
            ear.handle_audio(at, &Pcm::new(VAD_RATE, chunk.to_vec()))
                .unwrap();
        }
        offset(t, audio.len())
    }

    fn events(ear: &mut Listener) -> Vec<ListenEvent> {
        std::iter::from_fn(|| ear.poll_event()).collect()
    }

    fn utterances(events: &[ListenEvent]) -> Vec<&Utterance> {
        events
            .iter()
            .filter_map(|e| match e {
                ListenEvent::Endpoint(EndpointEvent::Utterance(u)) => Some(u),
                _ => None,
            })
            .collect()
    }

    fn ear() -> Listener {
        Listener::new(VadConfig::default(), BargeInConfig::default()).unwrap()
    }

    fn silence(ms: u64) -> Pcm {
        Pcm::silence(VAD_RATE, Duration::from_millis(ms))
    }

    /// Half a second of quiet, the sentence, two seconds of quiet.
    fn spoken_turn() -> Pcm {
        let mut audio = silence(500);
        audio.append(&flite_speech()).unwrap();
        audio.append(&silence(2000)).unwrap();
        audio
    }

    #[test]
    fn real_speech_becomes_one_utterance() {
        let t0 = Instant::now();
        let mut ear = ear();
        ear.listen(t0, EndpointConfig::menu()).unwrap();
        feed(&mut ear, t0, &spoken_turn());
        let events = events(&mut ear);
        let u = utterances(&events);
        assert_eq!(u.len(), 1, "{events:?}");
        assert_eq!(u[0].end, EndReason::Silence);
        // The sentence starts after the 500 ms of quiet plus flite's own lead-in.
        let start = u[0].speech_started - t0;
        assert!(start >= Duration::from_millis(500), "{start:?}");
        assert!(start < Duration::from_millis(900), "{start:?}");
        let spoken = u[0].speech_ended - u[0].speech_started;
        assert!(spoken > Duration::from_secs(2), "{spoken:?}");
        assert!(!ear.is_listening());
    }

    #[test]
    fn frame_times_come_from_sample_offsets_not_chunking() {
        let t0 = Instant::now();
        let audio = spoken_turn();

        let mut whole = ear();
        whole.listen(t0, EndpointConfig::menu()).unwrap();
        whole.handle_audio(t0, &audio).unwrap();
        let expected = events(&mut whole);

        let mut chunked = ear();
        chunked.listen(t0, EndpointConfig::menu()).unwrap();
        feed(&mut chunked, t0, &audio);
        assert_eq!(events(&mut chunked), expected);

        // And the onset is a VAD frame boundary: 16 ms steps from the stream's start.
        let started = utterances(&expected)[0].speech_started - t0;
        assert_eq!(started.as_nanos() % VAD_FRAME.as_nanos(), 0, "{started:?}");
    }

    #[test]
    fn noise_alone_is_no_input() {
        let t0 = Instant::now();
        let mut ear = ear();
        ear.listen(t0, EndpointConfig::menu()).unwrap();
        feed(&mut ear, t0, &white_noise(Duration::from_secs(9), -40.0, 5));
        assert_eq!(
            events(&mut ear),
            vec![ListenEvent::Endpoint(EndpointEvent::NoInput {
                at: t0 + Duration::from_secs(8)
            })]
        );
    }

    #[test]
    fn no_input_timer_waits_for_the_prompt_to_end() {
        let t0 = Instant::now();
        let mut ear = ear();
        ear.prompt_playing(t0, true);
        ear.listen(t0, EndpointConfig::menu()).unwrap();
        assert!(ear.is_listening());
        assert_eq!(ear.poll_timeout(), None);
        let t1 = feed(&mut ear, t0, &silence(3000));
        ear.prompt_playing(t1, false);
        assert_eq!(ear.poll_timeout(), Some(t1 + Duration::from_secs(8)));
        ear.handle_timeout(t1 + Duration::from_secs(8));
        assert_eq!(
            events(&mut ear),
            vec![ListenEvent::Endpoint(EndpointEvent::NoInput {
                at: t1 + Duration::from_secs(8)
            })]
        );
    }

    #[test]
    fn barge_in_stops_the_prompt_and_keeps_the_interrupting_words() {
        let t0 = Instant::now();
        let mut ear = ear();
        ear.prompt_playing(t0, true);
        ear.listen(t0, EndpointConfig::menu()).unwrap();
        feed(&mut ear, t0, &spoken_turn());
        let events = events(&mut ear);

        let ListenEvent::BargeIn(barge_in) = events[0] else {
            panic!("barge-in first: {events:?}");
        };
        assert!(barge_in.detected_at - barge_in.speech_started >= Duration::from_millis(300));
        let u = utterances(&events);
        assert_eq!(u.len(), 1, "{events:?}");
        // The utterance begins no later than the interruption: its first words are kept.
        assert!(u[0].speech_started <= barge_in.speech_started + Duration::from_millis(64));
        let lead = EndpointConfig::menu().leading_pad;
        assert!(u[0].audio.duration() > (u[0].speech_ended - u[0].speech_started) + lead);
        assert!(!events
            .iter()
            .any(|e| matches!(e, ListenEvent::Endpoint(EndpointEvent::NoInput { .. }))));
    }

    #[test]
    fn same_utterance_with_or_without_barge_in() {
        // Interrupting a prompt must not cost the caller any audio compared with waiting.
        let t0 = Instant::now();
        let audio = spoken_turn();

        let mut waited = ear();
        waited.listen(t0, EndpointConfig::menu()).unwrap();
        feed(&mut waited, t0, &audio);
        let waited = events(&mut waited);

        let mut interrupted = ear();
        interrupted.prompt_playing(t0, true);
        interrupted.listen(t0, EndpointConfig::menu()).unwrap();
        feed(&mut interrupted, t0, &audio);
        let interrupted = events(&mut interrupted);

        let summary = |events: &[ListenEvent]| -> Vec<_> {
            utterances(events)
                .iter()
                .map(|u| {
                    (
                        u.speech_started - t0,
                        u.speech_ended - t0,
                        u.end,
                        u.audio.len(),
                    )
                })
                .collect()
        };
        assert_eq!(summary(&interrupted), summary(&waited));
        assert!(utterances(&interrupted) == utterances(&waited));
    }

    #[test]
    fn barge_in_without_a_turn_only_reports() {
        let t0 = Instant::now();
        let mut ear = ear();
        ear.prompt_playing(t0, true);
        feed(&mut ear, t0, &spoken_turn());
        let events = events(&mut ear);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(matches!(events[0], ListenEvent::BargeIn(_)));
    }

    #[test]
    fn no_barge_in_on_noise_or_silence() {
        let t0 = Instant::now();
        let mut ear = ear();
        ear.prompt_playing(t0, true);
        let t1 = feed(&mut ear, t0, &silence(1000));
        feed(&mut ear, t1, &white_noise(Duration::from_secs(3), -40.0, 9));
        assert!(events(&mut ear).is_empty());
    }

    #[test]
    fn finish_forces_the_turn_and_cancel_drops_it() {
        let t0 = Instant::now();
        let mut ear = ear();
        ear.listen(t0, EndpointConfig::free_speech()).unwrap();
        let mut audio = silence(500);
        audio.append(&flite_speech()).unwrap();
        let t1 = feed(&mut ear, t0, &audio);
        ear.finish(t1);
        let events = events(&mut ear);
        let u = utterances(&events);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].end, EndReason::Forced);
        assert!(!ear.is_listening());

        ear.listen(t1, EndpointConfig::menu()).unwrap();
        ear.cancel();
        assert!(!ear.is_listening());
        assert_eq!(ear.poll_timeout(), None);
        ear.handle_timeout(t1 + Duration::from_secs(60));
        assert_eq!(ear.poll_event(), None);
    }

    #[test]
    fn narrowband_audio_is_refused() {
        let mut ear = ear();
        let narrow = Pcm::silence(SampleRate::HZ_8000, Duration::from_millis(20));
        let err = ear.handle_audio(Instant::now(), &narrow).unwrap_err();
        assert!(err.to_string().contains("resample"), "{err}");
    }

    #[test]
    fn bad_endpoint_config_is_refused() {
        let mut ear = ear();
        let bad = EndpointConfig {
            end_silence: Duration::ZERO,
            ..EndpointConfig::menu()
        };
        assert!(ear.listen(Instant::now(), bad).is_err());
        assert!(!ear.is_listening());
    }
}
