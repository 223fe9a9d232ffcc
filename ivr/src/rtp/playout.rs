//! Outgoing audio: the 20 ms [`Pacer`] and the [`PlayoutQueue`] of marked audio it drains.
//!
//! - [`Pacer`]: frame `n` is due at `start + n × 20 ms`, computed from the start instant
//!   every time, so timer lateness never accumulates into drift. [`Pacer::tick`] says how many
//!   frames are due now. Catch-up rule: when the caller is late (a stalled task), up to
//!   [`MAX_BURST`] overdue frames (60 ms) are sent back to back; frames overdue beyond that
//!   are *skipped*: reported in [`Due::skipped`], not sent. The caller advances its RTP clock
//!   over skipped frames (`RtpSender::silence`) and does not take audio from the queue for
//!   them, so the prompt is delayed, never cut.
//! - [`PlayoutQueue`]: audio segments, each tagged with a mark (the assistant's prompt or
//!   mark id), cut into 160-sample frames back to back (a segment ending mid-frame is followed
//!   in the same frame by the next one). Each frame carries the marks whose last sample it
//!   holds. [`PlayoutQueue::clear`] (barge-in) drops everything and returns the marks that
//!   were interrupted. When the queue is empty, frames are comfort silence: digital zeros
//!   (µ-law 0xFF, A-law 0xD5), which every PBX and phone plays as silence; no comfort-noise
//!   generation (RFC 3389) is attempted.
//!
//! No clock, no IO: `now` is an input.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ivr::rtp::playout::{Pacer, PlayoutQueue};
//! # let start = Instant::now();
//! let mut pacer = Pacer::new(start);
//! let mut queue = PlayoutQueue::new();
//! queue.push("greeting", vec![100i16; 200]);
//! assert_eq!(pacer.tick(start).frames, 1);
//! let first = queue.next_frame();
//! assert!(first.finished.is_empty());
//! assert_eq!(pacer.next_deadline(), start + Duration::from_millis(20));
//! assert_eq!(queue.next_frame().finished, vec!["greeting"]);
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{FRAME, FRAME_SAMPLES};

/// Most overdue frames sent back to back by one [`Pacer::tick`].
pub const MAX_BURST: u32 = 3;

/// What is due at a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Due {
    /// Frames to send now.
    pub frames: u32,
    /// Overdue frames beyond [`MAX_BURST`], not to be sent (advance the RTP clock over them).
    pub skipped: u32,
}

/// A 20 ms schedule anchored at a start instant.
#[derive(Clone, Debug)]
pub struct Pacer {
    start: Instant,
    next: u64,
}

impl Pacer {
    /// A schedule whose first frame is due at `start`.
    pub fn new(start: Instant) -> Self {
        Pacer { start, next: 0 }
    }

    /// When the next frame is due.
    pub fn next_deadline(&self) -> Instant {
        self.deadline(self.next)
    }

    /// The frames due at `now` (see the catch-up rule in the module docs).
    pub fn tick(&mut self, now: Instant) -> Due {
        if now < self.next_deadline() {
            return Due::default();
        }
        let elapsed = now.saturating_duration_since(self.start);
        let last_due = (elapsed.as_nanos() / FRAME.as_nanos()) as u64;
        let overdue = last_due + 1 - self.next;
        let frames = overdue.min(u64::from(MAX_BURST));
        let skipped = overdue - frames;
        self.next += overdue;
        Due {
            frames: frames as u32,
            skipped: skipped.min(u64::from(u32::MAX)) as u32,
        }
    }

    fn deadline(&self, n: u64) -> Instant {
        self.start + Duration::from_millis(n.saturating_mul(FRAME.as_millis() as u64))
    }
}

/// One frame of outgoing audio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayoutFrame<M> {
    /// 160 samples, zero-padded; all zeros when nothing is playing.
    pub samples: [i16; FRAME_SAMPLES],
    /// Marks whose audio ended in this frame, in order.
    pub finished: Vec<M>,
    /// Whether any queued audio is in this frame (else it is comfort silence).
    pub audio: bool,
}

/// Queued audio segments with marks, played out frame by frame.
#[derive(Clone, Debug)]
pub struct PlayoutQueue<M> {
    segments: VecDeque<(M, Vec<i16>)>,
    /// Samples of the front segment already played.
    offset: usize,
}

impl<M> Default for PlayoutQueue<M> {
    fn default() -> Self {
        PlayoutQueue {
            segments: VecDeque::new(),
            offset: 0,
        }
    }
}

impl<M> PlayoutQueue<M> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `samples` (8 kHz mono) under `mark`. A segment with no samples finishes with
    /// the next frame.
    pub fn push(&mut self, mark: M, samples: Vec<i16>) {
        self.segments.push_back((mark, samples));
    }

    /// Queues `samples` under `mark`, continuing the last queued segment when it has the
    /// same mark (a prompt that arrives in several pieces finishes once, after its last).
    pub fn extend(&mut self, mark: M, samples: Vec<i16>)
    where
        M: PartialEq,
    {
        match self.segments.back_mut() {
            Some((last, queued)) if *last == mark => queued.extend_from_slice(&samples),
            _ => self.segments.push_back((mark, samples)),
        }
    }

    /// The mark of the last queued segment.
    pub fn last_mark(&self) -> Option<&M> {
        self.segments.back().map(|(mark, _)| mark)
    }

    /// The next 20 ms frame, and the marks finished with it.
    pub fn next_frame(&mut self) -> PlayoutFrame<M> {
        let mut samples = [0i16; FRAME_SAMPLES];
        let mut fill = 0;
        let mut finished = Vec::new();
        let mut audio = false;
        while let Some((_, segment)) = self.segments.front() {
            let left = segment.len().saturating_sub(self.offset);
            if fill == FRAME_SAMPLES && left > 0 {
                break;
            }
            let n = left.min(FRAME_SAMPLES - fill);
            samples[fill..fill + n].copy_from_slice(&segment[self.offset..self.offset + n]);
            fill += n;
            self.offset += n;
            audio = true;
            if self.offset >= segment.len() {
                if let Some((mark, _)) = self.segments.pop_front() {
                    finished.push(mark);
                }
                self.offset = 0;
            }
        }
        PlayoutFrame {
            samples,
            finished,
            audio,
        }
    }

    /// Drops everything queued (barge-in) and returns the marks that will not finish, the
    /// one playing first.
    pub fn clear(&mut self) -> Vec<M> {
        self.offset = 0;
        self.segments.drain(..).map(|(mark, _)| mark).collect()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Queued audio not yet played.
    pub fn remaining(&self) -> Duration {
        let samples: usize = self.segments.iter().map(|(_, s)| s.len()).sum();
        super::duration_of(samples.saturating_sub(self.offset) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // the one real instant the simulated clock starts from
    fn base() -> Instant {
        Instant::now()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn pacer_deadlines_do_not_drift_with_late_ticks() {
        let t0 = base();
        let mut pacer = Pacer::new(t0);
        let mut sent = 0;
        // Every tick 3 ms late: after 500 frames the schedule is still start + n × 20 ms.
        for n in 0..500u64 {
            let due = pacer.tick(t0 + ms(20 * n + 3));
            assert_eq!(
                due,
                Due {
                    frames: 1,
                    skipped: 0
                }
            );
            sent += due.frames;
        }
        assert_eq!(sent, 500);
        assert_eq!(pacer.next_deadline(), t0 + ms(20 * 500));
    }

    #[test]
    fn pacer_sends_nothing_early_and_one_frame_per_slot() {
        let t0 = base();
        let mut pacer = Pacer::new(t0);
        assert_eq!(pacer.tick(t0).frames, 1);
        assert_eq!(pacer.tick(t0 + ms(19)).frames, 0);
        assert_eq!(pacer.tick(t0 + ms(20)).frames, 1);
        assert_eq!(pacer.tick(t0 + ms(20)).frames, 0);
    }

    #[test]
    fn pacer_catches_up_three_frames_then_skips() {
        let t0 = base();
        let mut pacer = Pacer::new(t0);
        pacer.tick(t0);
        // 50 ms late for frame 1: frames 1, 2, 3 due (20, 40, 60 ms).
        assert_eq!(
            pacer.tick(t0 + ms(70)),
            Due {
                frames: 3,
                skipped: 0
            }
        );
        // A 200 ms stall: frames 4..=13 due, 3 sent, 7 skipped.
        assert_eq!(
            pacer.tick(t0 + ms(260)),
            Due {
                frames: 3,
                skipped: 7
            }
        );
        assert_eq!(pacer.next_deadline(), t0 + ms(280));
    }

    #[test]
    fn queue_cuts_segments_into_frames_and_reports_marks_where_they_end() {
        let mut q = PlayoutQueue::new();
        q.push(1, vec![1; 200]);
        q.push(2, vec![2; 100]);
        q.push(3, vec![3; 20]);
        let f1 = q.next_frame();
        assert!(f1.samples.iter().all(|&s| s == 1) && f1.finished.is_empty());
        let f2 = q.next_frame();
        assert_eq!(&f2.samples[..40], &[1; 40]);
        assert_eq!(&f2.samples[40..140], &[2; 100]);
        assert_eq!(&f2.samples[140..], &[3; 20]);
        assert_eq!(f2.finished, vec![1, 2, 3]);
        assert!(q.is_empty());
        let f3 = q.next_frame();
        assert!(!f3.audio && f3.samples == [0; FRAME_SAMPLES] && f3.finished.is_empty());
    }

    #[test]
    fn a_short_last_frame_is_padded_with_silence() {
        let mut q = PlayoutQueue::new();
        q.push('a', vec![5; 170]);
        q.next_frame();
        let last = q.next_frame();
        assert!(last.audio);
        assert_eq!(&last.samples[..10], &[5; 10]);
        assert_eq!(&last.samples[10..], &[0; 150]);
        assert_eq!(last.finished, vec!['a']);
    }

    #[test]
    fn empty_segments_finish_with_the_next_frame() {
        let mut q = PlayoutQueue::new();
        q.push("a", vec![7; FRAME_SAMPLES]);
        q.push("mark", vec![]);
        assert_eq!(q.next_frame().finished, vec!["a", "mark"]);
    }

    #[test]
    fn clear_returns_interrupted_marks_and_silence_follows() {
        let mut q = PlayoutQueue::new();
        q.push("prompt", vec![9; 800]);
        q.push("next", vec![9; 800]);
        q.next_frame();
        assert_eq!(q.remaining(), ms(80) + ms(100));
        assert_eq!(q.clear(), vec!["prompt", "next"]);
        assert!(q.is_empty());
        let f = q.next_frame();
        assert!(!f.audio && f.finished.is_empty());
        q.push("again", vec![4; 160]);
        assert_eq!(
            q.next_frame().samples,
            [4; FRAME_SAMPLES],
            "no stale offset after clear"
        );
    }
}
