//! The adaptive jitter buffer: caller audio in as it arrives, one 20 ms frame out per tick.
//!
//! The caller decodes each RTP payload to 8 kHz `i16` PCM (G.711 through
//! `speech::audio::g711`) before [`JitterBuffer::push`]: the buffer holds PCM keyed by RTP
//! timestamp, so a codec change mid-call (re-INVITE) needs nothing from it, and packets of
//! any ptime are cut into 160-sample frames. [`JitterBuffer::pop`] is called once per 20 ms
//! tick and returns a [`Frame`]:
//!
//! - `Audio`: the samples for the next 160 timestamps (a part no packet covers is zeros);
//! - `Concealed`: the frame is missing: the last frame repeated, attenuated by 0.7 per frame,
//!   for up to [`CONCEAL_FRAMES`] frames (100 ms);
//! - `Silence`: nothing to play (before the first packet, while buffering, after the
//!   concealment has faded, in a silence-suppression gap).
//!
//! **Delay.** Every packet's relative transit (arrival time minus timestamp, in RTP units) goes
//! into a window of the last [`WINDOW`] packets (~3 s). The *target delay* is the 95th
//! percentile of the transit spread above the window's minimum, plus 10 ms, clamped to
//! [`MIN_DELAY`]..=[`MAX_DELAY`]: a rare straggler is concealed rather than paid for in delay
//! by everyone. The *current delay* is how long ago the frame being played would have
//! arrived on the fastest path. Playback starts once the first packet's current delay reaches
//! the target. The delay grows when the next frame has not arrived and the current delay is
//! below the target (playout holds and conceals instead of declaring the frame lost); it
//! shrinks by skipping one frame, at most every 10 frames, while it exceeds the target by
//! more than a frame (clock drift, a burst that has left the window).
//!
//! **Late, duplicate, reordered.** A packet whose samples all precede the playout point is
//! late (or a duplicate of one played): dropped and counted. A second copy of a buffered
//! packet is dropped as a duplicate. Reordered packets are simply placed by timestamp.
//!
//! **Resync.** After the concealment has faded with nothing buffered (silence suppression /
//! DTX, a long outage), playout stops and restarts at the next packet after the target delay,
//! so a gap costs nothing and the delay adapts at talkspurt boundaries. A missing stretch
//! just before a packet with the marker set (a talkspurt start) is played as silence, not
//! concealed. A packet whose transit differs from the window's minimum by more than 1 s (the
//! sender jumped its timestamps) flushes the buffer and restarts; so does
//! [`JitterBuffer::reset`], which the caller invokes on an SSRC change
//! (`session::Received::is_resync`).
//!
//! Memory is bounded: at most [`MAX_PACKETS`] packets are held (the oldest is dropped first).
//! No clock, no IO: `now` is an input.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ivr::rtp::jitter::{Frame, JitterBuffer};
//! # let t0 = Instant::now();
//! let mut jb = JitterBuffer::new();
//! jb.push(t0, 1, 0, true, vec![1000; 160]);
//! assert_eq!(jb.pop(t0), Frame::Silence); // buffering up to the target delay (20 ms)
//! let now = t0 + Duration::from_millis(20);
//! jb.push(now, 2, 160, false, vec![2000; 160]);
//! assert_eq!(jb.pop(now), Frame::Audio(vec![1000; 160]));
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::{duration_of, samples_in, FRAME_SAMPLES};

/// The smallest target delay.
pub const MIN_DELAY: Duration = Duration::from_millis(20);
/// The largest target delay (and the most the delay grows to).
pub const MAX_DELAY: Duration = Duration::from_millis(200);
/// Frames concealed after the last audio before playout falls silent.
pub const CONCEAL_FRAMES: u32 = 5;
/// Packets of transit history the target delay is computed from.
pub const WINDOW: usize = 150;
/// Most packets held.
pub const MAX_PACKETS: usize = 64;

const FRAME: i64 = FRAME_SAMPLES as i64;
const MIN_UNITS: i64 = 160;
const MAX_UNITS: i64 = 1600;
const MARGIN_UNITS: i64 = 80;
/// A transit change beyond this (1 s) is a timestamp jump, not jitter.
const JUMP_UNITS: i64 = 8000;
/// Concealment attenuation per frame.
const FADE: f32 = 0.7;
/// Frames between two delay reductions.
const SHRINK_EVERY: u32 = 10;
/// Timestamps of played frames remembered to tell duplicates from late packets.
const PLAYED_MEMORY: usize = 16;

/// One 20 ms frame for the listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Received audio, 160 samples.
    Audio(Vec<i16>),
    /// A missing frame filled in, 160 samples.
    Concealed(Vec<i16>),
    /// Nothing to play: silence.
    Silence,
}

impl Frame {
    /// The frame's 160 samples (zeros for silence).
    pub fn into_samples(self) -> Vec<i16> {
        match self {
            Frame::Audio(s) | Frame::Concealed(s) => s,
            Frame::Silence => vec![0; FRAME_SAMPLES],
        }
    }
}

/// Counters and delays, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub pushed: u64,
    /// Frames of received audio popped.
    pub played: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Packets that came after their playout time.
    pub late: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Packets that came after a packet with a later sequence number.
    pub reordered: u64,
    /// Packets dropped because the buffer was full.
    pub overflow: u64,
    /// Frames skipped to reduce the delay.
    pub skipped: u64,
    /// Restarts (timestamp jumps, resets).
    pub resyncs: u64,
    /// The target delay now.
    pub target_delay: Duration,
    /// The current playout delay (zero when not playing).
    pub delay: Duration,
}

#[derive(Debug, Clone)]
struct Packet {
    marker: bool,
    samples: Vec<i16>,
}

/// The adaptive jitter buffer (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct JitterBuffer {
    /// Buffered packets by extended timestamp.
    packets: BTreeMap<i64, Packet>,
    /// The last extended timestamp, for unwrapping.
    last_ts: Option<i64>,
    /// Added to extended timestamps to place them on the playout timeline (changed by
    /// timestamp jumps).
    offset: i64,
    /// Origin of the arrival clock.
    epoch: Option<Instant>,
    /// Relative transits of recent packets (arrival units − extended timestamp).
    transits: VecDeque<i64>,
    /// The target delay, in RTP units.
    target: i64,
    /// The extended timestamp of the next frame to play; `None` when not playing.
    playout: Option<i64>,
    /// Where playout stopped, while stopped: anything before it is late.
    floor: Option<i64>,
    /// The last frame of audio played, for concealment.
    last_frame: Vec<i16>,
    /// Frames concealed since the last audio.
    concealed_run: u32,
    /// Frames since the delay was last reduced.
    since_shrink: u32,
    highest_seq: Option<u16>,
    played: VecDeque<i64>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        JitterBuffer {
            target: MIN_UNITS,
            ..Default::default()
        }
    }

    /// Adds a packet that arrived at `now`: its sequence number, RTP timestamp, marker bit and
    /// decoded samples.
    pub fn push(
        &mut self,
        now: Instant,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        samples: Vec<i16>,
    ) {
        self.stats.pushed += 1;
        if samples.is_empty() {
            return;
        }
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = samples_in(now.saturating_duration_since(epoch)) as i64;
        let raw = self.unwrap(timestamp);
        self.last_ts = Some(raw);
        let mut ts = raw + self.offset;
        if let Some(&min) = self.transits.iter().min() {
            if (arrival - ts - min).abs() > JUMP_UNITS {
                self.rebase(arrival - ts - min);
                ts = raw + self.offset;
            }
        }

        if let Some(high) = self.highest_seq {
            if (sequence.wrapping_sub(high) as i16) < 0 {
                self.stats.reordered += 1;
            } else {
                self.highest_seq = Some(sequence);
            }
        } else {
            self.highest_seq = Some(sequence);
        }

        let end = ts + samples.len() as i64;
        if self.packets.contains_key(&ts) || self.played.contains(&ts) {
            self.stats.duplicates += 1;
            return;
        }
        // Late packets still count toward the delay estimate: they are what it is for.
        if self.transits.len() == WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(arrival - ts);
        self.update_target();
        if self.playout.or(self.floor).is_some_and(|p| end <= p) {
            self.stats.late += 1;
            return;
        }
        if self.packets.len() >= MAX_PACKETS {
            self.packets.pop_first();
            self.stats.overflow += 1;
        }
        self.packets.insert(ts, Packet { marker, samples });
    }

    /// The frame to play at this 20 ms tick.
    pub fn pop(&mut self, now: Instant) -> Frame {
        let Some(epoch) = self.epoch else {
            return Frame::Silence;
        };
        let now_units = samples_in(now.saturating_duration_since(epoch)) as i64;
        let min_transit = self.transits.iter().copied().min().unwrap_or(0);
        let delay_of = |ts: i64| now_units - (ts + min_transit);

        let p = match self.playout {
            Some(p) => p,
            None => match self.packets.first_key_value() {
                Some((&first, _)) if delay_of(first) >= self.target => {
                    self.playout = Some(first);
                    self.floor = None;
                    self.since_shrink = 0;
                    first
                }
                _ => return Frame::Silence,
            },
        };
        let delay = delay_of(p);
        self.stats.delay = duration_of(delay.max(0) as u64);

        self.since_shrink += 1;
        if delay > self.target + FRAME && self.since_shrink >= SHRINK_EVERY {
            self.since_shrink = 0;
            self.stats.skipped += 1;
            self.advance(p + FRAME);
            return self.pop_at(p + FRAME, delay - FRAME);
        }
        self.pop_at(p, delay)
    }

    /// Drops everything and starts over (the caller saw an SSRC change).
    pub fn reset(&mut self) {
        self.restart();
        self.stats.resyncs += 1;
        self.transits.clear();
        self.epoch = None;
        self.highest_seq = None;
    }

    /// The target delay now.
    pub fn target_delay(&self) -> Duration {
        duration_of(self.target as u64)
    }

    /// Counters and delays.
    pub fn stats(&self) -> JitterStats {
        JitterStats {
            target_delay: self.target_delay(),
            ..self.stats
        }
    }

    fn pop_at(&mut self, p: i64, delay: i64) -> Frame {
        let mut samples = vec![0i16; FRAME_SAMPLES];
        let mut covered = false;
        for (&ts, packet) in self.packets.range(..p + FRAME) {
            let end = ts + packet.samples.len() as i64;
            let (from, to) = (ts.max(p), end.min(p + FRAME));
            if from < to {
                let src = &packet.samples[(from - ts) as usize..(to - ts) as usize];
                samples[(from - p) as usize..(to - p) as usize].copy_from_slice(src);
                covered = true;
            }
        }
        if covered {
            self.advance(p + FRAME);
            self.remember_played(p);
            self.concealed_run = 0;
            self.stats.played += 1;
            self.last_frame.clone_from(&samples);
            return Frame::Audio(samples);
        }
        // Missing. Before a talkspurt start the gap is silence, not loss; after the
        // concealment has faded with nothing buffered it is silence suppression or an
        // outage. Either way: stop, and restart at the next packet after the target delay.
        let talkspurt_next = self
            .packets
            .range(p..)
            .next()
            .is_some_and(|(_, n)| n.marker);
        if talkspurt_next || (self.packets.is_empty() && self.concealed_run >= CONCEAL_FRAMES) {
            self.playout = None;
            self.floor = Some(p);
            self.concealed_run = CONCEAL_FRAMES;
            self.stats.delay = Duration::ZERO;
            return Frame::Silence;
        }
        let hold = delay < self.target && delay + FRAME <= MAX_UNITS;
        if !hold {
            self.advance(p + FRAME);
        }
        self.conceal()
    }

    fn conceal(&mut self) -> Frame {
        if self.concealed_run >= CONCEAL_FRAMES || self.last_frame.is_empty() {
            self.concealed_run = self.concealed_run.saturating_add(1);
            return Frame::Silence;
        }
        self.concealed_run += 1;
        self.stats.concealed += 1;
        let gain = FADE.powi(self.concealed_run as i32);
        let samples = self
            .last_frame
            .iter()
            .map(|&s| (f32::from(s) * gain) as i16)
            .collect();
        Frame::Concealed(samples)
    }

    /// Moves the playout point to `p` and drops packets wholly before it.
    fn advance(&mut self, p: i64) {
        self.playout = Some(p);
        while let Some(entry) = self.packets.first_entry() {
            if *entry.key() + entry.get().samples.len() as i64 > p {
                break;
            }
            entry.remove();
        }
    }

    fn remember_played(&mut self, ts: i64) {
        if self.played.len() == PLAYED_MEMORY {
            self.played.pop_front();
        }
        self.played.push_back(ts);
    }

    /// The sender's timestamps jumped by about `jump`: move later packets onto the current
    /// timeline, on the frame grid of the playout point, as if they arrived on the fastest
    /// path. Buffered packets stay where they are.
    fn rebase(&mut self, jump: i64) {
        self.offset += jump;
        if let Some(p) = self.playout.or(self.floor) {
            let ts = self.last_ts.unwrap_or(0) + self.offset;
            self.offset += (p - ts).rem_euclid(FRAME);
        }
        self.stats.resyncs += 1;
    }

    fn restart(&mut self) {
        self.packets.clear();
        self.transits.clear();
        self.played.clear();
        self.playout = None;
        self.floor = None;
        self.last_ts = None;
        self.offset = 0;
        self.last_frame.clear();
        self.concealed_run = 0;
        self.target = MIN_UNITS;
    }

    /// Unwraps a 32-bit timestamp around the last one seen.
    fn unwrap(&self, timestamp: u32) -> i64 {
        match self.last_ts {
            Some(last) => last + i64::from(timestamp.wrapping_sub(last as u32) as i32),
            None => i64::from(timestamp),
        }
    }

    fn update_target(&mut self) {
        let Some(&min) = self.transits.iter().min() else {
            return;
        };
        let mut spread: Vec<i64> = self.transits.iter().map(|t| t - min).collect();
        let k = (spread.len() * 95 / 100).min(spread.len() - 1);
        let (_, p95, _) = spread.select_nth_unstable(k);
        self.target = (*p95 + MARGIN_UNITS).clamp(MIN_UNITS, MAX_UNITS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // the one real instant the simulated clock starts from
    fn base() -> Instant {
        Instant::now()
    }

    /// A packet on the wire: arrival (µs after start), sequence, timestamp, marker. Its 160
    /// samples all hold `seq` so played frames can be identified.
    #[derive(Clone, Copy, Debug)]
    struct Arrival {
        at_us: u64,
        seq: u16,
        ts: u32,
        marker: bool,
    }

    /// A stream of `n` 20 ms packets starting at `seq0`/`ts0`, sent every 20 ms from
    /// `start_ms`, each delayed by `delay(i)` ms.
    fn stream(
        n: u16,
        seq0: u16,
        ts0: u32,
        start_ms: u64,
        delay: impl Fn(u16) -> u64,
    ) -> Vec<Arrival> {
        (0..n)
            .map(|i| Arrival {
                at_us: (start_ms + 20 * u64::from(i) + delay(i)) * 1000,
                seq: seq0.wrapping_add(i),
                ts: ts0.wrapping_add(160 * u32::from(i)),
                marker: i == 0,
            })
            .collect()
    }

    #[derive(Debug, Default)]
    struct Played {
        /// Sequence numbers of audio frames, in playout order.
        audio: Vec<i16>,
        /// Concealed frames before the last audio frame (not the tail after the stream).
        concealed: usize,
        /// Frame kinds in order: `A`udio, `C`oncealed, `S`ilence.
        kinds: String,
        /// Pop times (ms) of audio frames.
        audio_at: Vec<u64>,
    }

    /// Pushes every arrival at its time and pops every 20 ms (ticks 7 ms out of phase with
    /// the sender) until `end_ms`.
    fn simulate(jb: &mut JitterBuffer, arrivals: &[Arrival], end_ms: u64) -> Played {
        let t0 = base();
        let mut arrivals = arrivals.to_vec();
        arrivals.sort_by_key(|a| a.at_us);
        let mut next = arrivals.iter().peekable();
        let mut played = Played::default();
        let mut tick_ms = 7;
        while tick_ms <= end_ms {
            while let Some(a) = next.next_if(|a| a.at_us <= tick_ms * 1000) {
                let at = t0 + Duration::from_micros(a.at_us);
                jb.push(at, a.seq, a.ts, a.marker, vec![a.seq as i16; FRAME_SAMPLES]);
            }
            match jb.pop(t0 + Duration::from_millis(tick_ms)) {
                Frame::Audio(s) => {
                    assert!(s.iter().all(|&x| x == s[0]), "one packet per frame");
                    played.audio.push(s[0]);
                    played.audio_at.push(tick_ms);
                    played.kinds.push('A');
                }
                Frame::Concealed(_) => played.kinds.push('C'),
                Frame::Silence => played.kinds.push('S'),
            }
            tick_ms += 20;
        }
        let body = played.kinds.trim_end_matches(['C', 'S']);
        played.concealed = body.matches('C').count();
        played
    }

    fn seqs(range: std::ops::Range<u16>) -> Vec<i16> {
        range.map(|s| s as i16).collect()
    }

    /// A deterministic pseudo-random sequence (xorshift) for jitter patterns.
    fn noise(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn a_steady_stream_plays_in_order_at_the_minimum_delay() {
        let mut jb = JitterBuffer::new();
        let played = simulate(&mut jb, &stream(100, 1, 0, 0, |_| 30), 2100);
        assert_eq!(played.audio, seqs(1..101));
        assert_eq!(played.concealed, 0);
        let stats = jb.stats();
        assert_eq!(stats.target_delay, MIN_DELAY);
        assert!(
            stats.delay <= Duration::from_millis(40),
            "{:?}",
            stats.delay
        );
        assert_eq!((stats.late, stats.duplicates, stats.skipped), (0, 0, 0));
        // First packet arrives at 30 ms and plays once 20 ms old: at the 67 ms tick.
        assert_eq!(played.audio_at[0], 67);
    }

    #[test]
    fn reordered_packets_play_in_timestamp_order() {
        let mut jb = JitterBuffer::new();
        // Every odd packet overtakes the even one before it.
        let arrivals = stream(100, 1, 0, 0, |i| if i % 2 == 0 { 25 } else { 0 });
        let played = simulate(&mut jb, &arrivals, 2200);
        assert_eq!(played.audio, seqs(1..101));
        assert_eq!(played.concealed, 0);
        assert_eq!(jb.stats().reordered, 50);
    }

    #[test]
    fn lost_packets_are_concealed_with_a_fading_repeat() {
        let mut jb = JitterBuffer::new();
        let arrivals: Vec<_> = stream(100, 1, 0, 0, |_| 0)
            .into_iter()
            .filter(|a| a.seq % 10 != 5)
            .collect();
        let played = simulate(&mut jb, &arrivals, 2100);
        let expected: Vec<i16> = seqs(1..101).into_iter().filter(|s| s % 10 != 5).collect();
        assert_eq!(played.audio, expected);
        assert_eq!(played.concealed, 10);

        // The concealed frame is the previous one, attenuated.
        let t0 = base();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut jb = JitterBuffer::new();
        jb.push(ms(0), 1, 0, true, vec![1000; 160]);
        jb.push(ms(20), 2, 160, false, vec![1000; 160]);
        jb.push(ms(60), 4, 480, false, vec![1000; 160]);
        assert_eq!(jb.pop(ms(25)), Frame::Audio(vec![1000; 160]));
        assert_eq!(jb.pop(ms(45)), Frame::Audio(vec![1000; 160]));
        assert_eq!(jb.pop(ms(65)), Frame::Concealed(vec![700; 160]));
        assert_eq!(jb.pop(ms(85)), Frame::Audio(vec![1000; 160]));
    }

    #[test]
    fn concealment_fades_to_silence_then_playout_stops() {
        let t0 = base();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut jb = JitterBuffer::new();
        jb.push(ms(0), 1, 0, true, vec![1000; 160]);
        jb.pop(ms(20));
        let frames: Vec<_> = (2..10).map(|i| jb.pop(ms(20 * i))).collect();
        let concealed = frames
            .iter()
            .filter(|f| matches!(f, Frame::Concealed(_)))
            .count();
        assert_eq!(concealed, CONCEAL_FRAMES as usize);
        assert_eq!(
            frames[CONCEAL_FRAMES as usize..],
            [Frame::Silence, Frame::Silence, Frame::Silence]
        );
        let Frame::Concealed(last) = &frames[CONCEAL_FRAMES as usize - 1] else {
            panic!("expected concealment");
        };
        assert!(last[0] < 200, "faded: {}", last[0]);
    }

    #[test]
    fn jitter_raises_the_target_delay_and_calm_brings_it_back_down() {
        let mut jb = JitterBuffer::new();
        let mut rnd = noise(0x5eed);
        let delays: Vec<u64> = (0..1000).map(|_| rnd() % 81).collect();
        // 20 s with 0–80 ms of random delay, then 10 s of a calm network.
        let mut arrivals = stream(1000, 0, 0, 0, |i| delays[usize::from(i)]);
        arrivals.extend(
            stream(500, 1000, 160_000, 20_000, |_| 0)
                .into_iter()
                .map(|mut a| {
                    a.marker = false;
                    a
                }),
        );
        let t_jittery = 20_000;
        let played = simulate(&mut jb, &arrivals[..1000], t_jittery);
        let stats = jb.stats();
        assert!(
            (Duration::from_millis(60)..=MAX_DELAY).contains(&stats.target_delay),
            "{:?}",
            stats.target_delay
        );
        // After the first seconds of adaptation, few packets are late.
        assert!(stats.late < 40, "{stats:?}");
        assert!(played.audio.windows(2).all(|w| w[0] < w[1]), "in order");

        let calm = simulate(&mut jb, &arrivals[1000..], 30_100);
        let stats = jb.stats();
        assert_eq!(stats.target_delay, MIN_DELAY);
        assert!(stats.skipped > 0);
        assert!(
            stats.delay <= stats.target_delay + Duration::from_millis(40),
            "{stats:?}"
        );
        assert_eq!(*calm.audio.last().unwrap(), 1499);
    }

    #[test]
    fn a_delay_spike_costs_at_most_its_length_and_playout_recovers() {
        let mut jb = JitterBuffer::new();
        // Packets 50..60 are held up behind a 150 ms stall and then arrive together.
        let arrivals = stream(200, 0, 0, 0, |i| match i {
            50..60 => 150 - 15 * u64::from(i - 50),
            _ => 0,
        });
        let played = simulate(&mut jb, &arrivals, 4200);
        let stats = jb.stats();
        assert!(stats.late <= 8, "{stats:?}");
        // Every packet is played, or late, or skipped while the delay comes back down.
        assert_eq!(played.audio.len() as u64 + stats.late + stats.skipped, 200);
        assert!(played.audio.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(*played.audio.last().unwrap(), 199);
        assert!(stats.delay <= Duration::from_millis(60), "{stats:?}");
    }

    #[test]
    fn silence_suppression_gaps_are_silence_not_loss() {
        let mut jb = JitterBuffer::new();
        // 1 s of speech, 2 s of nothing (timestamps move on), 1 s of speech with the marker.
        let mut arrivals = stream(50, 0, 0, 0, |_| 5);
        arrivals.extend(stream(50, 50, 3 * 8000, 3000, |_| 5));
        let played = simulate(&mut jb, &arrivals, 4200);
        assert_eq!(played.audio, seqs(0..100));
        assert_eq!(jb.stats().resyncs, 0);
        // At most the concealment tail after the first talkspurt; none before the second.
        assert!(played.concealed <= CONCEAL_FRAMES as usize);
        let second = played.audio_at[50];
        assert!(
            (3025..=3065).contains(&second),
            "second talkspurt at {second} ms"
        );
    }

    #[test]
    fn small_clock_drift_keeps_the_delay_bounded() {
        for (name, rate) in [("fast", 1.005), ("slow", 0.995)] {
            let mut jb = JitterBuffer::new();
            // The sender's 20 ms is 20/rate ms of ours; 60 s of audio.
            let arrivals: Vec<_> = (0..3000u32)
                .map(|i| Arrival {
                    at_us: (f64::from(i) * 20_000.0 / rate) as u64,
                    seq: i as u16,
                    ts: i * 160,
                    marker: i == 0,
                })
                .collect();
            let played = simulate(&mut jb, &arrivals, 61_000);
            let stats = jb.stats();
            assert!(
                stats.delay <= Duration::from_millis(60),
                "{name}: {stats:?}"
            );
            assert_eq!(stats.late, 0, "{name}");
            assert!(played.audio.windows(2).all(|w| w[0] < w[1]), "{name}");
            if rate > 1.0 {
                // 0.5 % of 3000 frames too many: skipped to hold the delay.
                assert!((10..=20).contains(&stats.skipped), "{name}: {stats:?}");
                assert_eq!(played.concealed, 0, "{name}");
            } else {
                // 0.5 % too few: filled in by holding playout.
                assert!((10..=25).contains(&played.concealed), "{name}: {played:?}");
                assert_eq!(stats.skipped, 0, "{name}");
            }
        }
    }

    #[test]
    fn a_timestamp_jump_resynchronizes() {
        let mut jb = JitterBuffer::new();
        let mut arrivals = stream(50, 0, 0, 0, |_| 0);
        // Same sender, timestamps suddenly 10 minutes ahead, no marker.
        arrivals.extend(
            stream(50, 50, 4_800_000, 1000, |_| 0)
                .into_iter()
                .map(|mut a| {
                    a.marker = false;
                    a
                }),
        );
        let played = simulate(&mut jb, &arrivals, 2100);
        assert_eq!(jb.stats().resyncs, 1);
        assert_eq!(played.audio, seqs(0..100));
    }

    #[test]
    fn reset_starts_a_new_source_afresh() {
        let t0 = base();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut jb = JitterBuffer::new();
        jb.push(ms(0), 1, 0, true, vec![1; 160]);
        jb.pop(ms(25));
        jb.reset();
        // The new source's timestamps are unrelated to the old one's.
        jb.push(ms(40), 900, 123_456, true, vec![2; 160]);
        assert_eq!(jb.pop(ms(45)), Frame::Silence);
        assert_eq!(jb.pop(ms(65)), Frame::Audio(vec![2; 160]));
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped_and_counted() {
        let t0 = base();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut jb = JitterBuffer::new();
        jb.push(ms(0), 1, 0, true, vec![1; 160]);
        jb.push(ms(1), 1, 0, true, vec![1; 160]);
        assert_eq!(jb.stats().duplicates, 1);
        jb.push(ms(20), 2, 160, false, vec![2; 160]);
        assert_eq!(jb.pop(ms(25)), Frame::Audio(vec![1; 160]));
        jb.push(ms(30), 1, 0, false, vec![1; 160]);
        assert_eq!(jb.stats().duplicates, 2, "a copy of a played packet");
        assert_eq!(jb.pop(ms(45)), Frame::Audio(vec![2; 160]));
        jb.push(ms(60), 4, 480, false, vec![4; 160]);
        assert!(matches!(jb.pop(ms(65)), Frame::Concealed(_)));
        assert_eq!(jb.pop(ms(85)), Frame::Audio(vec![4; 160]));
        jb.push(ms(90), 3, 320, false, vec![3; 160]);
        let stats = jb.stats();
        assert_eq!(
            (stats.late, stats.played, stats.concealed, stats.pushed),
            (1, 3, 1, 6)
        );
    }

    #[test]
    fn longer_packets_are_cut_into_frames() {
        let t0 = base();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut jb = JitterBuffer::new();
        let ramp: Vec<i16> = (0..240).collect(); // 30 ms
        jb.push(ms(0), 1, 0, true, ramp.clone());
        jb.push(
            ms(30),
            2,
            240,
            false,
            ramp.iter().map(|s| s + 1000).collect(),
        );
        let first = jb.pop(ms(30)).into_samples();
        let second = jb.pop(ms(50)).into_samples();
        assert_eq!(first, ramp[..160]);
        assert_eq!(&second[..80], &ramp[160..]);
        assert_eq!(second[80], 1000);
    }

    #[test]
    fn memory_stays_bounded_when_nobody_pops() {
        let t0 = base();
        let mut jb = JitterBuffer::new();
        for i in 0..1000u32 {
            jb.push(
                t0 + Duration::from_millis(u64::from(i) * 20),
                i as u16,
                i * 160,
                false,
                vec![0; 160],
            );
        }
        assert!(jb.packets.len() <= MAX_PACKETS);
        assert_eq!(jb.stats().overflow, 1000 - MAX_PACKETS as u64);
    }
}
