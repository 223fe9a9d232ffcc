//! DTMF over RTP as telephone-events (RFC 4733 §2): the payload, a receiver that turns
//! packets into key presses, and a sender that turns a key press into paced packets.
//!
//! - [`TelephoneEvent`]: the 4-octet payload (§2.3): event, end bit, volume, duration.
//!   Octets beyond the first four are ignored (we do not negotiate RFC 2198 redundancy).
//! - [`DtmfReceiver`]: an event is identified by its RTP timestamp (§2.5.2): the first
//!   packet (marker or not: it may be lost) starts it, updates extend it, the first end packet
//!   completes it and reports the key with its duration; the retransmitted end packets and any
//!   late packet with the timestamp of a completed event are ignored. An event whose end
//!   packets are all lost completes when a new event starts or [`EVENT_TIMEOUT`] after its
//!   last packet (§2.5.2.2). Events other than 0–15 (flash, tones) are ignored.
//! - [`DtmfSender`]: `start(now, key, duration, timestamp)`, then [`DtmfSender::poll`]:
//!   the first packet with the marker, an update every [`UPDATE_INTERVAL`] with the same
//!   timestamp and the duration so far, then the end packet three times, 20 ms apart
//!   (§2.5.1.4). While [`DtmfSender::is_active`], the caller sends no audio (it advances its
//!   audio clock with `RtpSender::silence`). Durations are capped at 65535 units (8.19 s),
//!   so long events are never split into segments (§2.5.1.3).
//!
//! Units: durations on the wire are RTP timestamp units (8000 Hz).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ivr::rtp::dtmf::{DtmfKey, DtmfReceiver, DtmfSender};
//! # let t0 = Instant::now();
//! let mut tx = DtmfSender::new();
//! let mut rx = DtmfReceiver::new();
//! tx.start(t0, DtmfKey::Digit(5), Duration::from_millis(100), 8000);
//! let mut now = t0;
//! while tx.is_active() {
//!     while let Some(p) = tx.poll(now) {
//!         rx.handle_packet(now, p.timestamp, &p.payload).unwrap();
//!     }
//!     now += Duration::from_millis(10);
//! }
//! let press = rx.poll_event().unwrap();
//! assert_eq!((press.key.as_char(), press.duration), ('5', Duration::from_millis(100)));
//! assert!(rx.poll_event().is_none());
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{duration_of, samples_in, Error};

/// How long an event may go without packets before the receiver ends it.
pub const EVENT_TIMEOUT: Duration = Duration::from_millis(400);

/// Time between the sender's update packets (§2.5.1.2 suggests 50 ms).
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(50);

/// Time between the sender's three end packets.
const END_SPACING: Duration = Duration::from_millis(20);

/// Volume we send: −10 dBm0.
const VOLUME: u8 = 10;

/// Completed events remembered for deduplication.
const REMEMBERED: usize = 8;

/// Reported key presses kept until polled.
const MAX_PENDING: usize = 64;

/// A DTMF key (RFC 4733 §3.2 events 0–15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtmfKey {
    /// `0`–`9` (events 0–9).
    Digit(u8),
    /// `*` (event 10).
    Star,
    /// `#` (event 11).
    Pound,
    /// `A`–`D` (events 12–15), as the letter's index 0–3.
    Letter(u8),
}

impl DtmfKey {
    /// The key of event code `event`, if it is a DTMF key (0–15).
    pub fn from_event(event: u8) -> Option<Self> {
        match event {
            0..=9 => Some(DtmfKey::Digit(event)),
            10 => Some(DtmfKey::Star),
            11 => Some(DtmfKey::Pound),
            12..=15 => Some(DtmfKey::Letter(event - 12)),
            _ => None,
        }
    }

    /// The event code (0–15).
    pub fn event(self) -> u8 {
        match self {
            DtmfKey::Digit(d) => d.min(9),
            DtmfKey::Star => 10,
            DtmfKey::Pound => 11,
            DtmfKey::Letter(l) => 12 + l.min(3),
        }
    }

    /// The key for a character `0-9 * # A-D` (letters in either case).
    pub fn from_char(c: char) -> Option<Self> {
        match c.to_ascii_uppercase() {
            d @ '0'..='9' => Some(DtmfKey::Digit(d as u8 - b'0')),
            '*' => Some(DtmfKey::Star),
            '#' => Some(DtmfKey::Pound),
            l @ 'A'..='D' => Some(DtmfKey::Letter(l as u8 - b'A')),
            _ => None,
        }
    }

    /// The key as a character: `0-9 * # A-D`.
    pub fn as_char(self) -> char {
        match self {
            DtmfKey::Digit(d) => char::from(b'0' + d.min(9)),
            DtmfKey::Star => '*',
            DtmfKey::Pound => '#',
            DtmfKey::Letter(l) => char::from(b'A' + l.min(3)),
        }
    }
}

/// The telephone-event payload (§2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0–15 DTMF; others exist).
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level, 0 to −63 dBm0, as its magnitude (6 bits).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses a payload (at least four octets; more are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, Error> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(Error::Truncated {
                what: "telephone-event",
                needed: 4,
                len: payload.len(),
            });
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The payload octets (reserved bit clear).
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            u8::from(self.end) << 7 | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// How a received event ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// An end packet arrived.
    EndPacket,
    /// No end packet; a new event started.
    Superseded,
    /// No packet for [`EVENT_TIMEOUT`].
    TimedOut,
}

/// A key press received over RTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfEvent {
    /// The key.
    pub key: DtmfKey,
    /// How long it was held (the largest duration seen).
    pub duration: Duration,
    /// How the event was known to be over.
    pub ending: Ending,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    timestamp: u32,
    key: DtmfKey,
    duration: u16,
    last_packet: Instant,
}

/// Turns received telephone-event packets into key presses (sans-IO).
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    current: Option<Active>,
    finished: VecDeque<u32>,
    events: VecDeque<DtmfEvent>,
}

impl DtmfReceiver {
    /// A receiver with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles the payload of one telephone-event packet with RTP timestamp `timestamp`
    /// that arrived at `now`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<(), Error> {
        let ev = TelephoneEvent::parse(payload)?;
        let Some(key) = DtmfKey::from_event(ev.event) else {
            return Ok(());
        };
        if self.finished.contains(&timestamp) {
            return Ok(()); // a retransmitted end, or a straggler of a completed event
        }
        if let Some(old) = self.current.filter(|a| a.timestamp != timestamp) {
            self.current = None;
            self.complete(old, Ending::Superseded);
        }
        let active = self.current.get_or_insert(Active {
            timestamp,
            key,
            duration: 0,
            last_packet: now,
        });
        if active.key != key {
            return Ok(()); // another key under the same timestamp: a confused sender
        }
        active.duration = active.duration.max(ev.duration);
        active.last_packet = now;
        if ev.end {
            if let Some(done) = self.current.take() {
                self.complete(done, Ending::EndPacket);
            }
        }
        Ok(())
    }

    /// When an event without end packets will time out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.map(|a| a.last_packet + EVENT_TIMEOUT)
    }

    /// Ends an event that has had no packet for [`EVENT_TIMEOUT`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(a) = self
            .current
            .filter(|a| now >= a.last_packet + EVENT_TIMEOUT)
        {
            self.current = None;
            self.complete(a, Ending::TimedOut);
        }
    }

    /// The next completed key press.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    fn complete(&mut self, a: Active, ending: Ending) {
        if self.finished.len() == REMEMBERED {
            self.finished.pop_front();
        }
        self.finished.push_back(a.timestamp);
        if self.events.len() < MAX_PENDING {
            self.events.push_back(DtmfEvent {
                key: a.key,
                duration: duration_of(u64::from(a.duration)),
                ending,
            });
        }
    }
}

/// One telephone-event packet to send: the caller wraps it with `RtpSender::event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfPacket {
    /// Set on the first packet of the event.
    pub marker: bool,
    /// The event's timestamp (the same in every packet of it).
    pub timestamp: u32,
    /// The telephone-event payload.
    pub payload: [u8; 4],
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Updating { first: bool },
    Ending { sent: u8 },
}

#[derive(Debug, Clone, Copy)]
struct Sending {
    key: DtmfKey,
    timestamp: u32,
    start: Instant,
    total: u16,
    next_at: Instant,
    phase: Phase,
}

/// Sends one key press as telephone-event packets, paced by `now` (sans-IO).
#[derive(Debug, Clone, Default)]
pub struct DtmfSender {
    sending: Option<Sending>,
}

impl DtmfSender {
    /// A sender with nothing to send.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts sending `key` for `duration` (capped at 8.19 s) as an event with RTP timestamp
    /// `timestamp` (the audio sender's current timestamp). Returns `false`, and sends
    /// nothing new, while a previous event is still going out.
    pub fn start(
        &mut self,
        now: Instant,
        key: DtmfKey,
        duration: Duration,
        timestamp: u32,
    ) -> bool {
        if self.sending.is_some() {
            return false;
        }
        let total = samples_in(duration).min(u64::from(u16::MAX)) as u16;
        self.sending = Some(Sending {
            key,
            timestamp,
            start: now,
            total,
            next_at: now,
            phase: Phase::Updating { first: true },
        });
        true
    }

    /// Whether an event is going out (audio must be suppressed meanwhile).
    pub fn is_active(&self) -> bool {
        self.sending.is_some()
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sending.map(|s| s.next_at)
    }

    /// The packet due at `now`, if any; call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<DtmfPacket> {
        let s = self.sending.as_mut().filter(|s| now >= s.next_at)?;
        let elapsed = samples_in(now.saturating_duration_since(s.start));
        let (marker, end, duration) = match s.phase {
            Phase::Updating { first } if elapsed < u64::from(s.total) => {
                s.phase = Phase::Updating { first: false };
                let end_at = s.start + duration_of(u64::from(s.total));
                s.next_at = (now + UPDATE_INTERVAL).min(end_at);
                (first, false, elapsed as u16)
            }
            Phase::Updating { first } => {
                s.phase = Phase::Ending { sent: 1 };
                s.next_at = now + END_SPACING;
                (first, true, s.total)
            }
            Phase::Ending { sent } => {
                s.phase = Phase::Ending { sent: sent + 1 };
                s.next_at = now + END_SPACING;
                (false, true, s.total)
            }
        };
        let packet = DtmfPacket {
            marker,
            timestamp: s.timestamp,
            payload: TelephoneEvent {
                event: s.key.event(),
                end,
                volume: VOLUME,
                duration,
            }
            .to_bytes(),
        };
        if matches!(s.phase, Phase::Ending { sent: 3 }) {
            self.sending = None;
        }
        Some(packet)
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

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    /// Runs a sender to completion, ticking every `step`, and returns (time, packet).
    fn drain(tx: &mut DtmfSender, t0: Instant, step: Duration) -> Vec<(Duration, DtmfPacket)> {
        let mut out = Vec::new();
        let mut now = t0;
        while tx.is_active() && now < t0 + Duration::from_secs(10) {
            while let Some(p) = tx.poll(now) {
                out.push((now - t0, p));
            }
            now += step;
        }
        out
    }

    #[test]
    fn keys_map_to_event_codes_and_characters() {
        for (code, c) in "0123456789*#ABCD".chars().enumerate() {
            let key = DtmfKey::from_event(code as u8).unwrap();
            assert_eq!(key.as_char(), c);
            assert_eq!(DtmfKey::from_char(c), Some(key));
            assert_eq!(key.event(), code as u8);
        }
        assert_eq!(DtmfKey::from_event(16), None);
        assert_eq!(DtmfKey::from_char('d'), Some(DtmfKey::Letter(3)));
        assert_eq!(DtmfKey::from_char('E'), None);
    }

    #[test]
    fn payload_round_trips_and_short_payloads_are_errors() {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 63,
            duration: 0xABCD,
        };
        assert_eq!(ev.to_bytes(), [11, 0xBF, 0xAB, 0xCD]);
        assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
        // The reserved bit is ignored on input.
        assert_eq!(TelephoneEvent::parse(&[11, 0xFF, 0xAB, 0xCD, 9]), Ok(ev));
        assert!(TelephoneEvent::parse(&[1, 2, 3]).is_err());
    }

    #[test]
    fn one_press_with_three_end_packets_is_reported_once() {
        let t0 = base();
        let mut rx = DtmfReceiver::new();
        for (i, d) in [0u16, 400, 800].iter().enumerate() {
            rx.handle_packet(t0 + ms(50 * i as u64), 1000, &payload(7, false, *d))
                .unwrap();
        }
        assert_eq!(rx.poll_event(), None, "not reported before it ends");
        for i in 0..3 {
            rx.handle_packet(t0 + ms(150 + 20 * i), 1000, &payload(7, true, 960))
                .unwrap();
        }
        assert_eq!(
            rx.poll_event(),
            Some(DtmfEvent {
                key: DtmfKey::Digit(7),
                duration: ms(120),
                ending: Ending::EndPacket
            })
        );
        assert_eq!(rx.poll_event(), None);
        assert_eq!(rx.poll_timeout(), None);
    }

    #[test]
    fn the_same_key_twice_is_two_events_by_timestamp() {
        let t0 = base();
        let mut rx = DtmfReceiver::new();
        for ts in [1000u32, 3000] {
            rx.handle_packet(t0, ts, &payload(1, false, 0)).unwrap();
            rx.handle_packet(t0, ts, &payload(1, true, 800)).unwrap();
            rx.handle_packet(t0, ts, &payload(1, true, 800)).unwrap();
        }
        let keys: Vec<_> = std::iter::from_fn(|| rx.poll_event())
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, vec![DtmfKey::Digit(1); 2]);
    }

    #[test]
    fn an_event_whose_ends_are_lost_times_out() {
        let t0 = base();
        let mut rx = DtmfReceiver::new();
        rx.handle_packet(t0, 5, &payload(10, false, 400)).unwrap();
        rx.handle_packet(t0 + ms(50), 5, &payload(10, false, 800))
            .unwrap();
        assert_eq!(rx.poll_timeout(), Some(t0 + ms(50) + EVENT_TIMEOUT));
        rx.handle_timeout(t0 + ms(300));
        assert_eq!(rx.poll_event(), None);
        rx.handle_timeout(t0 + ms(50) + EVENT_TIMEOUT);
        let ev = rx.poll_event().unwrap();
        assert_eq!(
            (ev.key, ev.ending, ev.duration),
            (DtmfKey::Star, Ending::TimedOut, ms(100))
        );
        // A straggler of the timed-out event does not resurrect it.
        rx.handle_packet(t0 + ms(600), 5, &payload(10, true, 900))
            .unwrap();
        assert_eq!(rx.poll_event(), None);
    }

    #[test]
    fn a_new_event_ends_one_that_never_ended() {
        let t0 = base();
        let mut rx = DtmfReceiver::new();
        rx.handle_packet(t0, 100, &payload(2, false, 320)).unwrap();
        rx.handle_packet(t0 + ms(100), 900, &payload(3, false, 0))
            .unwrap();
        let ev = rx.poll_event().unwrap();
        assert_eq!((ev.key, ev.ending), (DtmfKey::Digit(2), Ending::Superseded));
    }

    #[test]
    fn a_lost_first_packet_still_yields_the_key_and_non_dtmf_events_are_ignored() {
        let t0 = base();
        let mut rx = DtmfReceiver::new();
        rx.handle_packet(t0, 7, &payload(16, false, 0)).unwrap(); // flash
        rx.handle_packet(t0, 8, &payload(9, true, 1600)).unwrap();
        let ev = rx.poll_event().unwrap();
        assert_eq!((ev.key, ev.duration), (DtmfKey::Digit(9), ms(200)));
        assert_eq!(rx.poll_event(), None);
        assert!(rx.handle_packet(t0, 8, &[1]).is_err());
    }

    #[test]
    fn sender_paces_start_updates_and_three_ends() {
        let t0 = base();
        let mut tx = DtmfSender::new();
        assert!(tx.start(t0, DtmfKey::Pound, ms(120), 4242));
        assert!(
            !tx.start(t0, DtmfKey::Star, ms(120), 1),
            "one event at a time"
        );
        let sent = drain(&mut tx, t0, ms(10));
        let times: Vec<_> = sent.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(times, vec![0, 50, 100, 120, 140, 160]);
        let evs: Vec<_> = sent
            .iter()
            .map(|(_, p)| TelephoneEvent::parse(&p.payload).unwrap())
            .collect();
        assert!(sent[0].1.marker && sent[1..].iter().all(|(_, p)| !p.marker));
        assert!(sent.iter().all(|(_, p)| p.timestamp == 4242));
        assert!(evs.iter().all(|e| e.event == 11));
        let durations: Vec<_> = evs.iter().map(|e| (e.duration, e.end)).collect();
        assert_eq!(
            durations,
            vec![
                (0, false),
                (400, false),
                (800, false),
                (960, true),
                (960, true),
                (960, true)
            ]
        );
        assert!(!tx.is_active());
        assert!(tx.start(t0 + ms(200), DtmfKey::Star, ms(60), 1));
    }

    #[test]
    fn a_late_caller_gets_no_burst_of_updates() {
        let t0 = base();
        let mut tx = DtmfSender::new();
        tx.start(t0, DtmfKey::Digit(0), ms(1000), 0);
        assert!(tx.poll(t0).is_some());
        // Polled again only 300 ms later: one update, not six.
        assert!(tx.poll(t0 + ms(300)).is_some());
        assert!(tx.poll(t0 + ms(300)).is_none());
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(350)));
    }

    #[test]
    fn sender_and_receiver_agree_on_key_and_duration() {
        let t0 = base();
        for key in "19*#D".chars().filter_map(DtmfKey::from_char) {
            let mut tx = DtmfSender::new();
            let mut rx = DtmfReceiver::new();
            tx.start(t0, key, ms(230), 77);
            for (at, p) in drain(&mut tx, t0, ms(20)) {
                rx.handle_packet(t0 + at, p.timestamp, &p.payload).unwrap();
            }
            let ev = rx.poll_event().unwrap();
            assert_eq!(
                (ev.key, ev.duration, ev.ending),
                (key, ms(230), Ending::EndPacket)
            );
            assert_eq!(rx.poll_event(), None);
        }
    }
}
