//! Barge-in: noticing that the caller has started talking over a prompt, so the assistant
//! can stop playing it and listen.
//!
//! Owns only the current run of speech frames and whether it has fired. No IO, no clock,
//! no threads: each VAD frame comes in with its instant and length, and the detector
//! answers on the spot. A run of speech counts once it has lasted
//! [`BargeInConfig::min_speech`], with gaps of up to [`BargeInConfig::max_gap`] inside it
//! tolerated (the stops inside a word); a cough or a click is shorter and never interrupts.
//! After firing it stays quiet until [`BargeIn::reset`] (the next prompt).
//!
//! Echo of the prompt itself is the gateway's concern (it hears the caller's leg only); a
//! line with strong echo wants a higher `min_speech`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use speech::listen::barge_in::{BargeIn, BargeInConfig};
//! let t0 = Instant::now();
//! let frame = Duration::from_millis(16);
//! let mut barge_in = BargeIn::new(BargeInConfig::default());
//! let mut fired = None;
//! for i in 0..25 {
//!     // 400 ms of speech, 16 ms per VAD frame
//!     fired = fired.or(barge_in.handle_frame(t0 + frame * i, frame, true));
//! }
//! let event = fired.expect("300 ms of speech interrupts");
//! assert_eq!(event.speech_started, t0);
//! assert_eq!(event.detected_at, t0 + Duration::from_millis(304)); // the 19th frame's end
//! ```

use std::time::{Duration, Instant};

/// What counts as the caller talking over a prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BargeInConfig {
    /// Speech must last this long to interrupt (default 300 ms: longer than a cough or a
    /// "hm", shorter than any word a caller would interrupt with).
    pub min_speech: Duration,
    /// Non-speech gaps up to this long do not break a run (default 60 ms).
    pub max_gap: Duration,
}

impl Default for BargeInConfig {
    fn default() -> Self {
        Self {
            min_speech: Duration::from_millis(300),
            max_gap: Duration::from_millis(60),
        }
    }
}

/// The caller interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BargeInEvent {
    /// The first speech frame of the interrupting run.
    pub speech_started: Instant,
    /// The end of the frame that made the run long enough.
    pub detected_at: Instant,
}

/// The barge-in detector for one prompt at a time. See the module docs.
#[derive(Clone, Debug)]
pub struct BargeIn {
    config: BargeInConfig,
    run: Option<Run>,
    fired: bool,
}

#[derive(Clone, Copy, Debug)]
struct Run {
    started: Instant,
    /// End of the run's latest speech frame.
    last_speech_end: Instant,
}

impl BargeIn {
    /// A detector that has not fired.
    pub fn new(config: BargeInConfig) -> Self {
        Self {
            config,
            run: None,
            fired: false,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &BargeInConfig {
        &self.config
    }

    /// Whether it has fired since the last reset.
    pub fn has_fired(&self) -> bool {
        self.fired
    }

    /// Takes the VAD verdict on a frame that starts at `now` and lasts `frame`; returns the
    /// event when this frame completes an interrupting run (once per reset).
    pub fn handle_frame(
        &mut self,
        now: Instant,
        frame: Duration,
        is_speech: bool,
    ) -> Option<BargeInEvent> {
        if self.fired {
            return None;
        }
        let end = now.checked_add(frame).unwrap_or(now);
        // A gap longer than `max_gap` (counted up to this frame's start, so frames that
        // never arrived count as gap) breaks the run.
        if let Some(run) = self.run {
            if now.saturating_duration_since(run.last_speech_end) > self.config.max_gap {
                self.run = None;
            }
        }
        if !is_speech {
            return None;
        }
        let run = self.run.get_or_insert(Run {
            started: now,
            last_speech_end: end,
        });
        run.last_speech_end = end;
        if end.saturating_duration_since(run.started) < self.config.min_speech {
            return None;
        }
        let event = BargeInEvent {
            speech_started: run.started,
            detected_at: end,
        };
        self.fired = true;
        self.run = None;
        tracing::debug!("barge-in");
        Some(event)
    }

    /// Forgets the run and re-arms the detector (a new prompt starts).
    pub fn reset(&mut self) {
        self.run = None;
        self.fired = false;
    }
}

#[cfg(test)]
// Each test takes one origin instant from the clock; time then advances by arithmetic.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(16);

    /// Feeds a pattern of 16 ms frames ('#' speech, '.' not) from `t0`; returns the events
    /// with the index of the frame that produced each.
    fn feed(b: &mut BargeIn, t0: Instant, pattern: &str) -> Vec<(usize, BargeInEvent)> {
        pattern
            .chars()
            .enumerate()
            .filter_map(|(i, c)| {
                let now = t0 + FRAME * i as u32;
                b.handle_frame(now, FRAME, c == '#').map(|e| (i, e))
            })
            .collect()
    }

    fn speech(ms: u32) -> String {
        "#".repeat((ms / 16) as usize)
    }

    fn quiet(ms: u32) -> String {
        ".".repeat((ms / 16) as usize)
    }

    #[test]
    fn fires_once_speech_has_lasted_min_speech() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(BargeInConfig::default());
        let pattern = quiet(160) + &speech(800);
        let events = feed(&mut b, t0, &pattern);
        assert_eq!(
            events.len(),
            1,
            "fires once, not again while speech goes on"
        );
        let (i, e) = events[0];
        // 300 ms is 18.75 frames: the 19th speech frame completes it.
        assert_eq!(i, 10 + 18);
        assert_eq!(e.speech_started, t0 + Duration::from_millis(160));
        assert_eq!(e.detected_at, t0 + Duration::from_millis(160 + 304));
        assert!(b.has_fired());
    }

    #[test]
    fn a_cough_never_interrupts() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(BargeInConfig::default());
        let cough = speech(112);
        let pattern = [quiet(320), cough.clone(), quiet(480), cough, quiet(480)].concat();
        assert!(feed(&mut b, t0, &pattern).is_empty());
        assert!(!b.has_fired());
    }

    #[test]
    fn short_gaps_are_tolerated_and_counted() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(BargeInConfig::default());
        // 160 ms, a 48 ms gap, 160 ms: one 368 ms run.
        let pattern = [speech(160), quiet(48), speech(160)].concat();
        let events = feed(&mut b, t0, &pattern);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1.speech_started, t0);
        // Gap included: 160 + 48 + 96 = 304 ms.
        assert_eq!(events[0].1.detected_at, t0 + Duration::from_millis(304));
    }

    #[test]
    fn long_gaps_split_runs() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(BargeInConfig::default());
        // Two 160 ms bursts 80 ms apart: neither is 300 ms on its own.
        let pattern = [speech(160), quiet(80), speech(160), quiet(320)].concat();
        assert!(feed(&mut b, t0, &pattern).is_empty());
    }

    #[test]
    fn missing_frames_count_as_gap() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(BargeInConfig::default());
        assert!(feed(&mut b, t0, &speech(160)).is_empty());
        // The next frame comes 200 ms after the last one ended.
        let resume = t0 + Duration::from_millis(360);
        assert!(feed(&mut b, resume, &speech(160)).is_empty());
    }

    #[test]
    fn reset_rearms() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(BargeInConfig::default());
        assert_eq!(feed(&mut b, t0, &speech(320)).len(), 1);
        let t1 = t0 + Duration::from_secs(1);
        assert!(feed(&mut b, t1, &speech(320)).is_empty());
        b.reset();
        assert!(!b.has_fired());
        let t2 = t0 + Duration::from_secs(2);
        let events = feed(&mut b, t2, &speech(320));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1.speech_started, t2);
    }

    #[test]
    fn reset_drops_a_partial_run() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(BargeInConfig::default());
        assert!(feed(&mut b, t0, &speech(240)).is_empty());
        b.reset();
        let t1 = t0 + Duration::from_millis(240);
        let events = feed(&mut b, t1, &speech(320));
        assert_eq!(events[0].1.speech_started, t1);
    }
}
