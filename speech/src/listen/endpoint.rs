//! The endpointer: turns a stream of audio frames, each marked speech or not, into
//! utterances, speculative pauses and no-input timeouts for one listening turn at a time.
//!
//! It owns the audio of the turn in progress (a ring of recent audio before speech starts,
//! then the utterance) and the turn's timers. It does no IO, never reads the clock and starts
//! no threads: every input carries `now`, and the caller asks [`Endpointer::poll_timeout`]
//! when to call [`Endpointer::handle_timeout`] (the str0m/quinn sans-IO pattern). It does not
//! decide what speech is; the VAD ([`super::vad`]) does, and [`super::Listener`] wires the two.
//!
//! # Driving it
//!
//! ```
//! use std::time::{Duration, Instant};
//! use speech::{Pcm, SampleRate};
//! use speech::listen::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
//! # fn main() -> speech::Result<()> {
//! let t0 = Instant::now(); // the driver's clock; the endpointer never reads one
//! let mut ep = Endpointer::new(EndpointConfig::menu())?;
//! ep.start(t0); // the prompt has finished: the no-input timer runs from here
//! let frame = Pcm::silence(SampleRate::HZ_16000, Duration::from_millis(16));
//! ep.handle_frame(t0, &frame, false)?;
//! assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(8)));
//! ep.handle_timeout(t0 + Duration::from_secs(8)); // nothing was said
//! assert_eq!(ep.poll_event(), Some(EndpointEvent::NoInput { at: t0 + Duration::from_secs(8) }));
//! assert_eq!(ep.poll_event(), None); // idle until the next start
//! # Ok(()) }
//! ```
//!
//! After every input, drain [`Endpointer::poll_event`], then sleep until
//! [`Endpointer::poll_timeout`] or the next frame, whichever comes first.
//!
//! # Time model
//!
//! A frame's `now` is the instant of its first sample; it lasts as long as its samples
//! ([`Pcm::duration`]), so a frame that *ends* at or after a deadline proves the deadline
//! passed, and the endpointer acts on it without waiting for `handle_timeout`. Frames should
//! be contiguous; audio that never arrived (packet loss, DTX) is not invented, and the
//! timers still fire from `handle_timeout`.
//!
//! # A turn
//!
//! [`Endpointer::start`] opens a turn and arms the no-input timer. Speech begins when
//! speech frames have run without a break for [`EndpointConfig::min_speech`] (shorter runs
//! are clicks and coughs, and are ignored); the event carries the first speech frame's
//! instant. From then on any speech frame extends the utterance. Silence of
//! [`EndpointConfig::pause`] emits [`EndpointEvent::Paused`] (transcribe speculatively);
//! speech after it emits [`EndpointEvent::Resumed`]; silence of
//! [`EndpointConfig::end_silence`] ends the utterance. [`EndpointConfig::max_utterance`] of
//! speech cuts it, and [`Endpointer::finish`] forces the end (the caller pressed `#`).
//! Every turn ends in exactly one [`EndpointEvent::Utterance`] or
//! [`EndpointEvent::NoInput`]; the endpointer is then idle, ignoring frames, until the next
//! `start`.
//!
//! If a caller starts speaking just before the no-input deadline, the verdict waits until
//! that onset is confirmed as speech or dismissed as a blip, so a caller is never cut off in
//! their first syllable.
//!
//! # Audio
//!
//! An utterance's audio is: up to [`EndpointConfig::leading_pad`] of what came before the
//! speech onset (less if the turn had not been running that long), everything from the onset
//! to the end of the last speech frame, and up to [`EndpointConfig::trailing_pad`] of what
//! followed. Pads are counted in samples at the frames' rate
//! ([`SampleRate::samples_in`]), so they are exact. All frames of an endpointer must share
//! one rate (the first frame's).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::audio::{Pcm, SampleRate};
use crate::{Error, Result};

/// Timers and pads of a listening turn. All durations are audio time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// How long to wait for speech to begin before [`EndpointEvent::NoInput`].
    pub no_input_timeout: Duration,
    /// Silence after speech that ends the utterance.
    pub end_silence: Duration,
    /// A shorter silence that emits [`EndpointEvent::Paused`] so the caller can start
    /// transcribing; `None` disables it. Must be shorter than `end_silence`.
    pub pause: Option<Duration>,
    /// Longest utterance, measured from the speech onset; longer speech is cut here.
    pub max_utterance: Duration,
    /// Audio kept from before the speech onset (the VAD is late on soft onsets such as
    /// "f" and "h").
    pub leading_pad: Duration,
    /// Audio kept after the last speech frame (trailing consonants). At most `end_silence`.
    pub trailing_pad: Duration,
    /// Speech shorter than this (a click, a cough, a bump of the handset) is ignored.
    pub min_speech: Duration,
}

/// The longest duration any [`EndpointConfig`] field may have.
pub const MAX_CONFIG_DURATION: Duration = Duration::from_secs(3600);

impl EndpointConfig {
    /// For menu prompts ("say or press 2"): answers are a word or two, so the turn ends
    /// after 0.8 s of silence; the hotline's ~8 s no-input rule applies.
    pub fn menu() -> Self {
        Self {
            no_input_timeout: Duration::from_secs(8),
            end_silence: Duration::from_millis(800),
            pause: Some(Duration::from_millis(400)),
            max_utterance: Duration::from_secs(15),
            leading_pad: Duration::from_millis(300),
            trailing_pad: Duration::from_millis(200),
            min_speech: Duration::from_millis(100),
        }
    }

    /// For free speech after a tone (describing a complaint): patient, because seniors pause
    /// mid-sentence to think. 2.5 s of silence ends it, 3 minutes at most.
    pub fn free_speech() -> Self {
        Self {
            no_input_timeout: Duration::from_secs(10),
            end_silence: Duration::from_millis(2500),
            pause: Some(Duration::from_secs(1)),
            max_utterance: Duration::from_secs(180),
            leading_pad: Duration::from_millis(500),
            trailing_pad: Duration::from_millis(300),
            min_speech: Duration::from_millis(150),
        }
    }

    /// Checks that the timers are positive where they must be, no longer than
    /// [`MAX_CONFIG_DURATION`], and consistent (pause < end silence, trailing pad ≤ end
    /// silence, min speech < max utterance).
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("no_input_timeout", self.no_input_timeout),
            ("end_silence", self.end_silence),
            ("pause", self.pause.unwrap_or_default()),
            ("max_utterance", self.max_utterance),
            ("leading_pad", self.leading_pad),
            ("trailing_pad", self.trailing_pad),
            ("min_speech", self.min_speech),
        ];
        for (name, value) in fields {
            if value > MAX_CONFIG_DURATION {
                return Err(bad_config(format!("{name} {value:?} is over an hour")));
            }
        }
        for (name, value) in [
            ("no_input_timeout", self.no_input_timeout),
            ("end_silence", self.end_silence),
            ("max_utterance", self.max_utterance),
        ] {
            if value.is_zero() {
                return Err(bad_config(format!("{name} must be positive")));
            }
        }
        if let Some(pause) = self.pause {
            if pause.is_zero() || pause >= self.end_silence {
                return Err(bad_config(format!(
                    "pause {pause:?} must be positive and shorter than end_silence {:?}",
                    self.end_silence
                )));
            }
        }
        if self.trailing_pad > self.end_silence {
            return Err(bad_config(format!(
                "trailing_pad {:?} is longer than end_silence {:?}",
                self.trailing_pad, self.end_silence
            )));
        }
        if self.min_speech >= self.max_utterance {
            return Err(bad_config(format!(
                "min_speech {:?} must be shorter than max_utterance {:?}",
                self.min_speech, self.max_utterance
            )));
        }
        Ok(())
    }
}

impl Default for EndpointConfig {
    /// [`EndpointConfig::menu`].
    fn default() -> Self {
        Self::menu()
    }
}

/// Why an utterance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The caller stopped speaking for [`EndpointConfig::end_silence`].
    Silence,
    /// The utterance reached [`EndpointConfig::max_utterance`] and was cut.
    MaxLength,
    /// [`Endpointer::finish`] ended it.
    Forced,
}

/// One thing the caller said.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// Leading pad, speech, trailing pad (see the module docs).
    pub audio: Pcm,
    /// The first speech frame's instant.
    pub speech_started: Instant,
    /// The end of the last speech frame (for [`EndReason::MaxLength`]: at most the cut).
    pub speech_ended: Instant,
    /// Why it ended.
    pub end: EndReason,
}

/// What the endpointer tells its driver.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EndpointEvent {
    /// Speech began at `at` (and has lasted [`EndpointConfig::min_speech`]).
    SpeechStarted {
        /// The first speech frame's instant.
        at: Instant,
    },
    /// The caller has been silent for [`EndpointConfig::pause`]. `audio` is the utterance so
    /// far, pads included, as it would be if the caller said nothing more.
    Paused {
        /// When the pause was reached.
        at: Instant,
        /// The utterance so far.
        audio: Pcm,
    },
    /// Speech resumed after a [`EndpointEvent::Paused`]: discard the speculative result.
    Resumed {
        /// The instant of the first speech frame after the pause.
        at: Instant,
    },
    /// The turn ended with speech.
    Utterance(Utterance),
    /// The turn ended without speech.
    NoInput {
        /// When the no-input timeout expired (or when [`Endpointer::finish`] was called).
        at: Instant,
    },
}

/// The endpointer for one call's listening turns. See the module docs.
#[derive(Debug)]
pub struct Endpointer {
    config: EndpointConfig,
    /// Fixed by the first frame.
    rate: Option<SampleRate>,
    state: State,
    events: VecDeque<EndpointEvent>,
}

impl Endpointer {
    /// An idle endpointer with `config` (validated).
    pub fn new(config: EndpointConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            rate: None,
            state: State::Idle,
            events: VecDeque::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Whether a turn is open (started and not yet ended).
    pub fn is_listening(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// Opens a turn at `now` and arms the no-input timer. A turn already open is abandoned
    /// without an event.
    pub fn start(&mut self, now: Instant) {
        tracing::debug!("endpointer: listening");
        self.state = State::AwaitingSpeech(AwaitingSpeech {
            deadline: later(now, self.config.no_input_timeout),
            recent: VecDeque::new(),
            onset: None,
        });
    }

    /// Takes one frame of audio that starts at `now`, with the VAD's verdict on it.
    ///
    /// Ignored while idle. Refuses a frame whose rate differs from the first frame's.
    pub fn handle_frame(&mut self, now: Instant, frame: &Pcm, is_speech: bool) -> Result<()> {
        if matches!(self.state, State::Idle) {
            return Ok(());
        }
        let rate = *self.rate.get_or_insert(frame.rate());
        if frame.rate() != rate {
            return Err(Error::InvalidArgument(format!(
                "endpointer frames are {rate}, got a {} frame",
                frame.rate()
            )));
        }
        // Deadlines that passed before this frame began come first.
        self.advance(now);
        let end = later(now, frame.duration());
        let lead_cap = rate.samples_in(self.config.leading_pad);
        match &mut self.state {
            State::Idle => return Ok(()),
            State::AwaitingSpeech(awaiting) => {
                if awaiting.take_frame(now, end, frame, is_speech, lead_cap, &self.config) {
                    // `take_frame` returned true: the onset is confirmed, so it exists.
                    if let Some(onset) = awaiting.onset.take() {
                        let recent = std::mem::take(&mut awaiting.recent);
                        tracing::debug!("endpointer: speech started");
                        self.events
                            .push_back(EndpointEvent::SpeechStarted { at: onset.at });
                        self.state = State::InSpeech(InSpeech {
                            started: onset.at,
                            last_speech_end: end,
                            lead_samples: onset.start_index,
                            audio: recent.into(),
                            tail: Vec::new(),
                            paused: false,
                        });
                    }
                }
            }
            State::InSpeech(speech) => {
                if is_speech {
                    speech.audio.append(&mut speech.tail);
                    speech.audio.extend_from_slice(frame.samples());
                    speech.last_speech_end = end;
                    if speech.paused {
                        speech.paused = false;
                        self.events.push_back(EndpointEvent::Resumed { at: now });
                    }
                } else {
                    speech.tail.extend_from_slice(frame.samples());
                }
            }
        }
        self.advance(end);
        Ok(())
    }

    /// Tells the endpointer that `now` has come: fires every timer due at or before it.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    /// Ends the turn now: the speech so far becomes an utterance ([`EndReason::Forced`]);
    /// without confirmed speech the turn ends in [`EndpointEvent::NoInput`] at `now`.
    /// Timers already due fire first. Does nothing while idle.
    pub fn finish(&mut self, now: Instant) {
        self.advance(now);
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => {}
            State::AwaitingSpeech(_) => {
                tracing::debug!("endpointer: finished without speech");
                self.events.push_back(EndpointEvent::NoInput { at: now });
            }
            State::InSpeech(speech) => self.end_utterance(speech, EndReason::Forced),
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// When [`Endpointer::handle_timeout`] must be called next, if a turn is open.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Idle => None,
            State::AwaitingSpeech(awaiting) => Some(awaiting.no_input_at(&self.config)),
            State::InSpeech(speech) => {
                let mut next = speech
                    .end_silence_at(&self.config)
                    .min(speech.max_at(&self.config));
                if let Some(pause_at) = speech.pause_at(&self.config) {
                    next = next.min(pause_at);
                }
                Some(next)
            }
        }
    }

    /// Fires the timers due at `now`.
    fn advance(&mut self, now: Instant) {
        match &mut self.state {
            State::Idle => {}
            State::AwaitingSpeech(awaiting) => {
                if now >= awaiting.no_input_at(&self.config) {
                    let at = awaiting.deadline;
                    self.state = State::Idle;
                    tracing::debug!("endpointer: no input");
                    self.events.push_back(EndpointEvent::NoInput { at });
                }
            }
            State::InSpeech(speech) => {
                let silence_at = speech.end_silence_at(&self.config);
                let max_at = speech.max_at(&self.config);
                if now >= silence_at.min(max_at) {
                    let reason = if silence_at <= max_at {
                        EndReason::Silence
                    } else {
                        EndReason::MaxLength
                    };
                    if let State::InSpeech(speech) = std::mem::replace(&mut self.state, State::Idle)
                    {
                        self.end_utterance(speech, reason);
                    }
                } else if let Some(pause_at) = speech.pause_at(&self.config) {
                    if now >= pause_at {
                        speech.paused = true;
                        let audio = speech.audio_so_far(self.rate, &self.config);
                        self.events.push_back(EndpointEvent::Paused {
                            at: pause_at,
                            audio,
                        });
                    }
                }
            }
        }
    }

    fn end_utterance(&mut self, speech: InSpeech, end: EndReason) {
        // A turn reaches speech only through a frame, which set the rate; the fallback is
        // never used.
        let rate = self.rate.unwrap_or(SampleRate::HZ_16000);
        let mut audio = speech.audio;
        let trailing = rate
            .samples_in(self.config.trailing_pad)
            .min(speech.tail.len());
        audio.extend_from_slice(&speech.tail[..trailing]);
        let mut speech_ended = speech.last_speech_end;
        if end == EndReason::MaxLength {
            audio.truncate(speech.lead_samples + rate.samples_in(self.config.max_utterance));
            speech_ended = speech_ended.min(later(speech.started, self.config.max_utterance));
        }
        tracing::debug!(reason = ?end, "endpointer: utterance");
        self.events.push_back(EndpointEvent::Utterance(Utterance {
            audio: Pcm::new(rate, audio),
            speech_started: speech.started,
            speech_ended,
            end,
        }));
    }
}

/// Where a turn stands.
#[derive(Debug)]
enum State {
    /// No turn open: frames are ignored.
    Idle,
    /// Waiting for speech to begin.
    AwaitingSpeech(AwaitingSpeech),
    /// Speech has begun: collecting the utterance.
    InSpeech(InSpeech),
}

#[derive(Debug)]
struct AwaitingSpeech {
    /// The no-input deadline.
    deadline: Instant,
    /// Recent audio: at most the leading pad before the onset, then the onset's frames.
    recent: VecDeque<f32>,
    /// A run of speech frames not yet long enough to count.
    onset: Option<Onset>,
}

#[derive(Debug)]
struct Onset {
    /// The run's first frame's instant.
    at: Instant,
    /// Index in `recent` of the run's first sample.
    start_index: usize,
}

impl AwaitingSpeech {
    /// The no-input deadline, held back while an onset that began before it is undecided.
    fn no_input_at(&self, config: &EndpointConfig) -> Instant {
        match &self.onset {
            Some(onset) => self.deadline.max(later(onset.at, config.min_speech)),
            None => self.deadline,
        }
    }

    /// Takes a frame `[now, end)`; true when it confirms the onset as speech.
    fn take_frame(
        &mut self,
        now: Instant,
        end: Instant,
        frame: &Pcm,
        is_speech: bool,
        lead_cap: usize,
        config: &EndpointConfig,
    ) -> bool {
        if !is_speech {
            self.onset = None;
        } else if self.onset.is_none() {
            self.onset = Some(Onset {
                at: now,
                start_index: self.recent.len(),
            });
        }
        self.recent.extend(frame.samples());
        // Keep at most `lead_cap` samples before the onset (or in all, without one).
        let before = self
            .onset
            .as_ref()
            .map_or(self.recent.len(), |o| o.start_index);
        let drop = before.saturating_sub(lead_cap);
        self.recent.drain(..drop);
        if let Some(onset) = &mut self.onset {
            onset.start_index -= drop;
            return end.saturating_duration_since(onset.at) >= config.min_speech;
        }
        false
    }
}

#[derive(Debug)]
struct InSpeech {
    /// The onset's instant.
    started: Instant,
    /// The end of the latest speech frame.
    last_speech_end: Instant,
    /// Samples of leading pad at the start of `audio`.
    lead_samples: usize,
    /// Leading pad and everything up to the latest speech frame.
    audio: Vec<f32>,
    /// Audio since the latest speech frame: part of the utterance only if speech resumes.
    tail: Vec<f32>,
    /// Whether [`EndpointEvent::Paused`] was sent for the current silence.
    paused: bool,
}

impl InSpeech {
    fn end_silence_at(&self, config: &EndpointConfig) -> Instant {
        later(self.last_speech_end, config.end_silence)
    }

    fn max_at(&self, config: &EndpointConfig) -> Instant {
        later(self.started, config.max_utterance)
    }

    /// The pause deadline, unless it was already reported for this silence.
    fn pause_at(&self, config: &EndpointConfig) -> Option<Instant> {
        match (self.paused, config.pause) {
            (false, Some(pause)) => Some(later(self.last_speech_end, pause)),
            _ => None,
        }
    }

    fn audio_so_far(&self, rate: Option<SampleRate>, config: &EndpointConfig) -> Pcm {
        let rate = rate.unwrap_or(SampleRate::HZ_16000);
        let trailing = rate.samples_in(config.trailing_pad).min(self.tail.len());
        let mut audio = Vec::with_capacity(self.audio.len() + trailing);
        audio.extend_from_slice(&self.audio);
        audio.extend_from_slice(&self.tail[..trailing]);
        Pcm::new(rate, audio)
    }
}

/// `t + d`; if that is past what `Instant` can represent (not for validated configs and a
/// real clock), `t` itself, so a timer fires at once rather than the program aborting.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

fn bad_config(reason: String) -> Error {
    Error::InvalidArgument(format!("endpointer config: {reason}"))
}

#[cfg(test)]
// Each test takes one origin instant from the clock; time then advances by arithmetic.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    const RATE: SampleRate = SampleRate::HZ_16000;
    const FRAME: Duration = Duration::from_millis(16);
    const FRAME_SAMPLES: usize = 256;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds 16 ms frames on a fake clock. Every frame's samples hold its index (+1), so
    /// tests can tell exactly which frames ended up in an utterance.
    struct Feed {
        ep: Endpointer,
        t0: Instant,
        t: Instant,
        frames: usize,
        events: Vec<EndpointEvent>,
    }

    impl Feed {
        fn new(config: EndpointConfig) -> Self {
            let t0 = Instant::now();
            let mut ep = Endpointer::new(config).unwrap();
            ep.start(t0);
            Self {
                ep,
                t0,
                t: t0,
                frames: 0,
                events: Vec::new(),
            }
        }

        fn at(&self, d: Duration) -> Instant {
            self.t0 + d
        }

        fn frame(&mut self, is_speech: bool) {
            self.frames += 1;
            let frame = Pcm::new(RATE, vec![self.frames as f32; FRAME_SAMPLES]);
            self.ep.handle_frame(self.t, &frame, is_speech).unwrap();
            self.t += FRAME;
            self.drain();
        }

        /// `d` (a multiple of 16 ms) of speech or silence.
        fn run(&mut self, d: Duration, is_speech: bool) {
            assert_eq!(d.as_millis() % 16, 0);
            for _ in 0..d.as_millis() / 16 {
                self.frame(is_speech);
            }
        }

        /// Silence until the turn ends (at most a minute).
        fn until_idle(&mut self) {
            for _ in 0..3750 {
                if !self.ep.is_listening() {
                    return;
                }
                self.frame(false);
            }
            panic!("the turn never ended");
        }

        fn drain(&mut self) {
            while let Some(e) = self.ep.poll_event() {
                self.events.push(e);
            }
        }

        fn utterances(&self) -> Vec<&Utterance> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    EndpointEvent::Utterance(u) => Some(u),
                    _ => None,
                })
                .collect()
        }

        /// The frame indices (1-based) in some audio, in order, deduplicated.
        fn frame_ids(audio: &Pcm) -> Vec<usize> {
            let mut ids: Vec<usize> = audio.samples().iter().map(|&s| s as usize).collect();
            ids.dedup();
            ids
        }
    }

    fn quick() -> EndpointConfig {
        EndpointConfig {
            no_input_timeout: Duration::from_secs(5),
            end_silence: ms(800),
            pause: Some(ms(320)),
            max_utterance: Duration::from_secs(10),
            leading_pad: ms(160),
            trailing_pad: ms(96),
            min_speech: ms(96),
        }
    }

    #[test]
    fn no_input_fires_exactly_at_the_timeout() {
        let t0 = Instant::now();
        let mut ep = Endpointer::new(EndpointConfig::menu()).unwrap();
        assert_eq!(ep.poll_timeout(), None);
        ep.start(t0);
        let deadline = t0 + Duration::from_secs(8);
        assert_eq!(ep.poll_timeout(), Some(deadline));
        ep.handle_timeout(deadline - Duration::from_nanos(1));
        assert_eq!(ep.poll_event(), None);
        assert!(ep.is_listening());
        ep.handle_timeout(deadline);
        assert_eq!(
            ep.poll_event(),
            Some(EndpointEvent::NoInput { at: deadline })
        );
        assert_eq!(ep.poll_event(), None);
        assert_eq!(ep.poll_timeout(), None);
        assert!(!ep.is_listening());
    }

    #[test]
    fn no_input_fires_once_from_frames_alone() {
        let mut f = Feed::new(quick());
        f.run(Duration::from_secs(6), false);
        assert_eq!(
            f.events,
            vec![EndpointEvent::NoInput {
                at: f.at(Duration::from_secs(5))
            }]
        );
        // Idle afterwards: speech is ignored until the next start.
        f.run(ms(480), true);
        assert_eq!(f.events.len(), 1);
        assert_eq!(f.ep.poll_timeout(), None);
    }

    #[test]
    fn utterance_ends_after_end_silence() {
        let mut f = Feed::new(quick());
        f.run(ms(992), false);
        f.run(ms(1008), true);
        let speech_start = f.at(ms(992));
        let speech_end = f.at(ms(2000));
        // Just short of the end silence: still listening, and the timer says when.
        f.run(ms(784), false);
        assert!(f.utterances().is_empty());
        assert_eq!(f.ep.poll_timeout(), Some(speech_end + ms(800)));
        f.frame(false);
        assert_eq!(f.t, speech_end + ms(800));
        let u = f.utterances();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].speech_started, speech_start);
        assert_eq!(u[0].speech_ended, speech_end);
        assert_eq!(u[0].end, EndReason::Silence);
        assert_eq!(
            f.events[0],
            EndpointEvent::SpeechStarted { at: speech_start }
        );
        assert!(!f.ep.is_listening());
    }

    #[test]
    fn leading_and_trailing_pads_are_exact() {
        let mut f = Feed::new(quick());
        f.run(ms(480), false); // frames 1..=30
        f.run(ms(320), true); // frames 31..=50
        f.until_idle();
        let u = f.utterances()[0].clone();
        let lead = RATE.samples_in(ms(160));
        let speech = RATE.samples_in(ms(320));
        let trail = RATE.samples_in(ms(96));
        assert_eq!(u.audio.len(), lead + speech + trail);
        assert_eq!(u.audio.rate(), RATE);
        // 10 frames of lead (21..=30), the speech, 6 frames of trail (51..=56).
        assert_eq!(Feed::frame_ids(&u.audio), (21..=56).collect::<Vec<_>>());
    }

    #[test]
    fn leading_pad_is_what_there_is_when_speech_starts_at_once() {
        let mut f = Feed::new(quick());
        f.run(ms(48), false);
        f.run(ms(320), true);
        f.until_idle();
        let u = f.utterances()[0];
        assert_eq!(Feed::frame_ids(&u.audio).first(), Some(&1));
        assert_eq!(
            u.audio.len(),
            RATE.samples_in(ms(48 + 320)) + RATE.samples_in(ms(96))
        );
    }

    #[test]
    fn short_pause_emits_paused_then_resumed_and_one_utterance() {
        let mut f = Feed::new(quick());
        f.run(ms(160), false);
        f.run(ms(480), true);
        f.run(ms(496), false); // a 496 ms pause: past `pause`, short of `end_silence`
        f.run(ms(480), true);
        f.until_idle();

        let kinds: Vec<&str> = f
            .events
            .iter()
            .map(|e| match e {
                EndpointEvent::SpeechStarted { .. } => "started",
                EndpointEvent::Paused { .. } => "paused",
                EndpointEvent::Resumed { .. } => "resumed",
                EndpointEvent::Utterance(_) => "utterance",
                EndpointEvent::NoInput { .. } => "noinput",
            })
            .collect();
        assert_eq!(
            kinds,
            ["started", "paused", "resumed", "paused", "utterance"]
        );
        let EndpointEvent::Paused { at, audio } = &f.events[1] else {
            unreachable!("checked above")
        };
        assert_eq!(*at, f.at(ms(640 + 320)));
        // The speculative audio: lead, first phrase, trailing pad.
        assert_eq!(
            audio.len(),
            RATE.samples_in(ms(160 + 480)) + RATE.samples_in(ms(96))
        );
        assert_eq!(
            f.events[2],
            EndpointEvent::Resumed {
                at: f.at(ms(160 + 480 + 496))
            }
        );
        // The utterance keeps the whole pause.
        let u = f.utterances()[0];
        assert_eq!(
            u.audio.len(),
            RATE.samples_in(ms(160 + 480 + 496 + 480 + 96))
        );
        assert_eq!(u.speech_started, f.at(ms(160)));
        assert_eq!(u.speech_ended, f.at(ms(1616)));
    }

    #[test]
    fn paused_audio_matches_the_utterance_when_nothing_follows() {
        let mut f = Feed::new(quick());
        f.run(ms(320), true);
        f.until_idle();
        let EndpointEvent::Paused { audio, .. } = &f.events[1] else {
            panic!("expected Paused, got {:?}", f.events[1]);
        };
        assert_eq!(audio, &f.utterances()[0].audio);
    }

    #[test]
    fn max_length_cuts_the_utterance() {
        let config = EndpointConfig {
            max_utterance: ms(2000),
            ..quick()
        };
        let mut f = Feed::new(config);
        f.run(ms(320), false);
        f.run(ms(4000), true);
        let u = f.utterances();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].end, EndReason::MaxLength);
        assert_eq!(u[0].speech_started, f.at(ms(320)));
        assert_eq!(u[0].speech_ended, f.at(ms(2320)));
        assert_eq!(
            u[0].audio.len(),
            RATE.samples_in(ms(160)) + RATE.samples_in(ms(2000))
        );
        // Cut as soon as the audio reached the limit.
        assert_eq!(f.events.len(), 2, "SpeechStarted and the utterance only");
        assert!(!f.ep.is_listening());
    }

    #[test]
    fn timers_end_the_turn_when_frames_stop() {
        let mut f = Feed::new(quick());
        f.run(ms(480), true);
        // The line goes quiet and no frames come (DTX): the timers carry the turn.
        assert_eq!(f.ep.poll_timeout(), Some(f.at(ms(480 + 320))));
        f.ep.handle_timeout(f.at(ms(800)));
        f.drain();
        assert!(matches!(
            f.events.last(),
            Some(EndpointEvent::Paused { .. })
        ));
        assert_eq!(f.ep.poll_timeout(), Some(f.at(ms(480 + 800))));
        f.ep.handle_timeout(f.at(ms(1280)));
        f.drain();
        let u = f.utterances();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].end, EndReason::Silence);
        assert_eq!(u[0].speech_ended, f.at(ms(480)));
        // Nothing is invented for the audio that never came.
        assert_eq!(u[0].audio.len(), RATE.samples_in(ms(480)));
    }

    #[test]
    fn max_length_fires_from_the_timer() {
        let config = EndpointConfig {
            max_utterance: ms(1000),
            ..quick()
        };
        let mut f = Feed::new(config);
        f.run(ms(480), true);
        f.ep.handle_timeout(f.at(ms(999)));
        f.drain();
        assert!(f.utterances().is_empty());
        f.ep.handle_timeout(f.at(ms(1000)));
        f.drain();
        let u = f.utterances();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].end, EndReason::MaxLength);
        assert_eq!(u[0].speech_ended, f.at(ms(480)));
    }

    #[test]
    fn blip_shorter_than_min_speech_is_ignored() {
        let mut f = Feed::new(quick());
        f.run(ms(480), false);
        f.run(ms(80), true); // a click: 80 ms < 96 ms
        f.run(ms(480), false);
        f.run(ms(64), true); // a cough
        f.run(ms(4992), false);
        assert_eq!(
            f.events,
            vec![EndpointEvent::NoInput {
                at: f.at(Duration::from_secs(5))
            }]
        );
    }

    #[test]
    fn speech_of_exactly_min_speech_counts() {
        let mut f = Feed::new(quick());
        f.run(ms(96), true);
        f.until_idle();
        assert_eq!(f.utterances().len(), 1);
        assert_eq!(f.events[0], EndpointEvent::SpeechStarted { at: f.t0 });
    }

    #[test]
    fn onset_at_the_no_input_deadline_is_not_cut_off() {
        let mut f = Feed::new(quick());
        f.run(ms(4960), false);
        f.run(ms(400), true); // starts 40 ms before the 5 s deadline
        f.until_idle();
        assert!(matches!(f.events[0], EndpointEvent::SpeechStarted { .. }));
        assert_eq!(f.utterances().len(), 1);
        assert!(!f
            .events
            .iter()
            .any(|e| matches!(e, EndpointEvent::NoInput { .. })));
    }

    #[test]
    fn blip_straddling_the_deadline_ends_in_no_input() {
        let mut f = Feed::new(quick());
        f.run(ms(4960), false);
        f.run(ms(48), true);
        assert!(
            f.events.is_empty(),
            "held back while the onset is undecided"
        );
        assert_eq!(f.ep.poll_timeout(), Some(f.at(ms(4960 + 96))));
        f.frame(false);
        assert_eq!(
            f.events,
            vec![EndpointEvent::NoInput {
                at: f.at(Duration::from_secs(5))
            }]
        );
    }

    #[test]
    fn finish_forces_the_utterance() {
        let mut f = Feed::new(quick());
        f.run(ms(320), false);
        f.run(ms(400), true);
        f.run(ms(48), false);
        f.ep.finish(f.t);
        f.drain();
        let u = f.utterances();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].end, EndReason::Forced);
        assert_eq!(u[0].speech_ended, f.at(ms(720)));
        assert_eq!(u[0].audio.len(), RATE.samples_in(ms(160 + 400 + 48)));
        f.ep.finish(f.t);
        assert_eq!(f.ep.poll_event(), None, "finish while idle does nothing");
    }

    #[test]
    fn finish_without_speech_is_no_input_now() {
        let mut f = Feed::new(quick());
        f.run(ms(1600), false);
        f.ep.finish(f.t);
        f.drain();
        assert_eq!(f.events, vec![EndpointEvent::NoInput { at: f.t }]);
    }

    #[test]
    fn restart_opens_a_fresh_turn() {
        let mut f = Feed::new(quick());
        f.run(ms(320), true);
        f.until_idle();
        let later_start = f.t + Duration::from_secs(1);
        f.ep.start(later_start);
        assert_eq!(
            f.ep.poll_timeout(),
            Some(later_start + Duration::from_secs(5))
        );
        f.t = later_start;
        f.events.clear();
        f.run(ms(320), true);
        f.until_idle();
        let u = f.utterances();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].speech_started, later_start);
        // No audio from the earlier turn.
        assert_eq!(u[0].audio.len(), RATE.samples_in(ms(320 + 96)));
    }

    #[test]
    fn frames_after_a_gap_see_the_deadline_first() {
        let mut f = Feed::new(quick());
        f.run(ms(320), true);
        // No frames for 2 s and no timer call; then speech again.
        f.t += Duration::from_secs(2);
        f.run(ms(320), true);
        let u = f.utterances();
        assert_eq!(u.len(), 1, "{:?}", f.events);
        assert_eq!(u[0].speech_ended, f.at(ms(320)));
    }

    #[test]
    fn mixed_rates_are_refused() {
        let t0 = Instant::now();
        let mut ep = Endpointer::new(quick()).unwrap();
        ep.start(t0);
        ep.handle_frame(t0, &Pcm::silence(RATE, FRAME), false)
            .unwrap();
        let narrow = Pcm::silence(SampleRate::HZ_8000, ms(20));
        assert!(ep.handle_frame(t0 + FRAME, &narrow, true).is_err());
    }

    #[test]
    fn inconsistent_configs_are_refused() {
        let bad = [
            EndpointConfig {
                pause: Some(ms(800)),
                ..quick()
            },
            EndpointConfig {
                trailing_pad: ms(900),
                ..quick()
            },
            EndpointConfig {
                end_silence: Duration::ZERO,
                pause: None,
                trailing_pad: Duration::ZERO,
                ..quick()
            },
            EndpointConfig {
                min_speech: Duration::from_secs(10),
                ..quick()
            },
            EndpointConfig {
                no_input_timeout: Duration::MAX,
                ..quick()
            },
        ];
        for config in bad {
            assert!(Endpointer::new(config).is_err(), "{config:?}");
        }
        for good in [
            EndpointConfig::menu(),
            EndpointConfig::free_speech(),
            quick(),
        ] {
            good.validate().unwrap();
        }
    }
}
