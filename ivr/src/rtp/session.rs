//! An RTP session of one call (RFC 3550): the sending side, the receiving side's statistics,
//! and the RTCP reports between them.
//!
//! - [`RtpSender`] numbers our packets: a random SSRC, initial sequence number and initial
//!   timestamp (§5.1, from the RNG the caller passes in), the marker on the first packet of
//!   each talkspurt (RFC 3551 §4.1), and timestamps that advance with the samples of every
//!   20 ms tick, sent or not ([`RtpSender::silence`]), so that they track real time across
//!   silence and DTMF events.
//! - [`RtpReceiver`] keeps the per-source statistics of Appendix A: sequence validation with
//!   probation (`MIN_SEQUENTIAL` = 2, A.1), extended sequence numbers and cycles, expected and
//!   lost packets and the fraction lost per interval (A.3), interarrival jitter (A.8). A new
//!   SSRC (a re-INVITE, a PBX switching media) replaces the current source once it has passed
//!   probation; packets of the old one are then ignored by the statistics.
//! - [`RtpSession`] joins both and builds a compound RTCP packet (SR when we have sent since
//!   the last report, else RR, plus SDES CNAME) when the caller asks [`RtpSession::poll_rtcp`]
//!   and a report is due. It reads incoming RTCP for the LSR/DLSR fields.
//!
//! Deviation: the report interval is a fixed 5 s (the first after 2.5 s), not the randomized
//! and bandwidth-scaled interval of §6.2: a call has two participants, so report implosion and
//! synchronization cannot happen.
//!
//! No IO, no clock: arrival times and the wall clock ([`NtpTime`]) are inputs.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rand::{rngs::StdRng, SeedableRng};
//! use ivr::rtp::{packet::RtpPacket, rtcp::NtpTime, session::{Received, RtpSession}};
//! # let start = Instant::now();
//! let mut rng = StdRng::seed_from_u64(1);
//! let mut session = RtpSession::new(&mut rng, 0, "gw@hotline".into(), start);
//! let wire = session.sender.audio(&[0xFF; 160], 160);
//! let mut peer = RtpSession::new(&mut rng, 0, "peer".into(), start);
//! let pkt = RtpPacket::parse(&wire).unwrap();
//! assert_eq!(peer.receiver.handle_packet(start, &pkt), Received::Probation);
//! let later = start + Duration::from_secs(3);
//! assert!(peer.poll_rtcp(later, NtpTime(0)).is_some());
//! ```

use std::time::{Duration, Instant};

use rand::Rng;

use super::packet::RtpPacket;
use super::rtcp::{self, NtpTime, ReportBlock, RtcpPacket, SenderInfo};
use super::{samples_in, Error, Ssrc};

/// Consecutive packets a new source must send before it is valid (A.1).
const MIN_SEQUENTIAL: u32 = 2;
/// Largest forward jump of the sequence number still taken as loss (A.1).
const MAX_DROPOUT: u16 = 3000;
/// Largest backward jump still taken as reordering (A.1).
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// Time between RTCP reports.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// The sending side of a session: SSRC, sequence numbers, timestamps, marker, counters.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: Ssrc,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    talkspurt_start: bool,
    packets: u32,
    octets: u32,
}

impl RtpSender {
    /// A sender with a random SSRC, initial sequence number and timestamp (RFC 3550 §5.1),
    /// sending `payload_type` (0 PCMU, 8 PCMA, or what the SDP answer said).
    pub fn new<R: Rng + ?Sized>(rng: &mut R, payload_type: u8) -> Self {
        RtpSender {
            ssrc: Ssrc(rng.next_u32()),
            payload_type: payload_type & 0x7F,
            sequence: rng.next_u32() as u16,
            timestamp: rng.next_u32(),
            talkspurt_start: true,
            packets: 0,
            octets: 0,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The timestamp the next audio packet will carry (RFC 4733 events start here).
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Switches the audio payload type (a re-INVITE changed the codec). The next packet
    /// carries the marker.
    pub fn set_payload_type(&mut self, payload_type: u8) {
        self.payload_type = payload_type & 0x7F;
        self.talkspurt_start = true;
    }

    /// One audio packet carrying `payload`, which holds `samples` samples; the timestamp then
    /// advances by `samples`. The first packet after [`RtpSender::silence`] (or the first of
    /// all) has the marker set.
    pub fn audio(&mut self, payload: &[u8], samples: u32) -> Vec<u8> {
        let marker = std::mem::take(&mut self.talkspurt_start);
        let bytes = self.packet(self.payload_type, marker, self.timestamp, payload);
        self.timestamp = self.timestamp.wrapping_add(samples);
        bytes
    }

    /// Advances the timestamp over `samples` samples that are not sent (silence, or audio
    /// suppressed during a DTMF event); the next audio packet starts a talkspurt.
    pub fn silence(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.talkspurt_start = true;
    }

    /// A packet of another payload type with an explicit marker and timestamp (RFC 4733
    /// telephone-events, whose packets share the event's start timestamp). It takes the next
    /// sequence number; the audio timestamp is not touched.
    pub fn event(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        self.packet(payload_type & 0x7F, marker, timestamp, payload)
    }

    /// Whether anything has been sent yet.
    pub fn has_sent(&self) -> bool {
        self.packets > 0
    }

    /// The sender information of an SR at wall-clock time `ntp`. The RTP timestamp is that of
    /// the next frame: the media task advances the sender every 20 ms tick, so it is within
    /// one frame of `ntp`.
    pub fn sender_info(&self, ntp: NtpTime) -> SenderInfo {
        SenderInfo {
            ntp,
            rtp_timestamp: self.timestamp,
            packet_count: self.packets,
            octet_count: self.octets,
        }
    }

    fn packet(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let bytes = RtpPacket::new(payload_type, self.sequence, timestamp, self.ssrc, payload)
            .with_marker(marker)
            .to_bytes();
        self.sequence = self.sequence.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        bytes
    }
}

/// What [`RtpReceiver::handle_packet`] made of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// In sequence (possibly after a gap: loss).
    Accepted,
    /// Not newer than the highest sequence number seen: reordered or duplicated. Still counted
    /// as received (A.1), so duplicates can make the loss negative.
    Misordered,
    /// A source still on probation (its first packet, or a stray one).
    Probation,
    /// A new source became valid with this packet and replaced `previous`; the jitter buffer
    /// should resynchronize.
    NewSource {
        /// The source it replaced.
        previous: Option<Ssrc>,
    },
    /// The current source jumped its sequence numbers and this is the second packet in a
    /// row to confirm it: statistics restarted (A.1, "the other side restarted").
    Restarted,
    /// A large sequence jump, not (yet) confirmed: the packet is dropped.
    BadSequence,
}

impl Received {
    /// Whether the packet's payload should go on to the jitter buffer.
    pub fn is_media(self) -> bool {
        !matches!(self, Received::BadSequence)
    }

    /// Whether the jitter buffer should start afresh (new source or restarted stream).
    pub fn is_resync(self) -> bool {
        matches!(self, Received::NewSource { .. } | Received::Restarted)
    }
}

/// Reception statistics of the current source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReceiverStats {
    /// The source.
    pub ssrc: Ssrc,
    /// Packets received (duplicates included).
    pub received: u32,
    /// Packets expected from the sequence numbers.
    pub expected: u32,
    /// Expected minus received.
    pub lost: i64,
    /// Extended highest sequence number.
    pub highest_sequence: u32,
    /// Interarrival jitter (A.8).
    pub jitter: Duration,
}

#[derive(Debug, Clone)]
struct Source {
    ssrc: Ssrc,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the previous packet, in RTP units (A.8).
    transit: Option<u32>,
    /// Interarrival jitter in RTP units (A.8's estimator, kept unscaled as a float).
    jitter: f64,
    /// The compact NTP time of the last SR from this source and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl Source {
    fn new(ssrc: Ssrc, seq: u16) -> Self {
        Source {
            ssrc,
            // A.1: max_seq = seq - 1 so the next in-order packet counts toward probation.
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            base_seq: u32::from(seq),
            bad_seq: SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
            last_sr: None,
        }
    }

    /// A.1 `init_seq`.
    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.transit = None;
    }

    /// A.1 `update_seq`, with its outcomes told apart.
    fn update_seq(&mut self, seq: u16) -> Received {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return Received::Accepted;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return Received::Probation;
        }
        let outcome = if udelta == 0 {
            // A duplicate of the highest packet (A.1 lets it through as in order).
            Received::Misordered
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(SEQ_MOD);
            }
            self.max_seq = seq;
            Received::Accepted
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
                Received::Restarted
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return Received::BadSequence;
            }
        } else {
            Received::Misordered
        };
        self.received = self.received.wrapping_add(1);
        outcome
    }

    /// A.8: interarrival jitter from the arrival time (RTP units) and the timestamp.
    fn update_jitter(&mut self, arrival: u32, timestamp: u32) {
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.transit {
            let d = f64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> u32 {
        self.extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// A.3, plus LSR/DLSR; moves the interval counters on.
    fn report_block(&mut self, now: Instant) -> ReportBlock {
        let expected = self.expected();
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                (
                    lsr,
                    (d.as_micros() * 65536 / 1_000_000).min(u128::from(u32::MAX)) as u32,
                )
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_sequence: self.extended_max(),
            jitter: self.jitter as u32,
            last_sr,
            delay_since_last_sr,
        }
    }
}

/// The receiving side's statistics (RFC 3550 A.1, A.3, A.8) for the current remote source.
#[derive(Debug, Clone, Default)]
pub struct RtpReceiver {
    /// The valid source (past probation).
    source: Option<Source>,
    /// A different SSRC on probation, which replaces `source` once valid.
    candidate: Option<Source>,
    /// Origin of the arrival clock used for jitter.
    epoch: Option<Instant>,
}

impl RtpReceiver {
    /// A receiver with no source yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for one RTP packet that arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, packet: &RtpPacket<'_>) -> Received {
        let epoch = *self.epoch.get_or_insert(now);
        // The arrival clock in RTP units; it wraps like timestamps do.
        let arrival = samples_in(now.saturating_duration_since(epoch)) as u32;
        if let Some(source) = self.source.as_mut().filter(|s| s.ssrc == packet.ssrc) {
            let outcome = source.update_seq(packet.sequence);
            if outcome.is_media() {
                source.update_jitter(arrival, packet.timestamp);
            }
            return outcome;
        }
        let candidate = match &mut self.candidate {
            Some(c) if c.ssrc == packet.ssrc => c,
            slot => slot.insert(Source::new(packet.ssrc, packet.sequence)),
        };
        match candidate.update_seq(packet.sequence) {
            Received::Accepted => {
                let mut valid = self.candidate.take().unwrap_or_else(|| {
                    // Unreachable: `candidate` was borrowed from this slot just above.
                    Source::new(packet.ssrc, packet.sequence)
                });
                valid.update_jitter(arrival, packet.timestamp);
                let previous = self.source.replace(valid).map(|s| s.ssrc);
                Received::NewSource { previous }
            }
            other => other,
        }
    }

    /// Notes an SR from the remote source (for LSR/DLSR in our reports).
    pub fn handle_sender_report(&mut self, now: Instant, ssrc: Ssrc, ntp: NtpTime) {
        if let Some(source) = self.source.as_mut().filter(|s| s.ssrc == ssrc) {
            source.last_sr = Some((ntp.compact(), now));
        }
    }

    /// The current source, once one is valid.
    pub fn ssrc(&self) -> Option<Ssrc> {
        self.source.as_ref().map(|s| s.ssrc)
    }

    /// Statistics of the current source.
    pub fn stats(&self) -> Option<ReceiverStats> {
        self.source.as_ref().map(|s| ReceiverStats {
            ssrc: s.ssrc,
            received: s.received,
            expected: s.expected(),
            lost: i64::from(s.expected()) - i64::from(s.received),
            highest_sequence: s.extended_max(),
            jitter: super::duration_of(s.jitter as u64),
        })
    }

    /// A report block on the current source; starts a new loss interval (A.3).
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        self.source.as_mut().map(|s| s.report_block(now))
    }
}

/// One call's RTP session: our sender, the receiver's statistics, and the RTCP schedule.
#[derive(Debug, Clone)]
pub struct RtpSession {
    /// Our sending side.
    pub sender: RtpSender,
    /// Statistics of what we receive.
    pub receiver: RtpReceiver,
    cname: String,
    next_report: Instant,
    packets_at_last_report: u32,
}

impl RtpSession {
    /// A session starting at `now`: the first report is due 2.5 s later.
    pub fn new<R: Rng + ?Sized>(
        rng: &mut R,
        payload_type: u8,
        cname: String,
        now: Instant,
    ) -> Self {
        RtpSession {
            sender: RtpSender::new(rng, payload_type),
            receiver: RtpReceiver::new(),
            cname,
            next_report: now + REPORT_INTERVAL / 2,
            packets_at_last_report: 0,
        }
    }

    /// When the next RTCP report is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    /// The compound RTCP packet to send now, if one is due: an SR if we sent RTP since the
    /// last report, else an RR; a report block on the remote source if there is one; our
    /// SDES CNAME. `ntp` is the wall clock now.
    pub fn poll_rtcp(&mut self, now: Instant, ntp: NtpTime) -> Option<Vec<u8>> {
        if now < self.next_report {
            return None;
        }
        self.next_report = now + REPORT_INTERVAL;
        let mut out = Vec::new();
        rtcp::write_compound(&self.reports(now, ntp), &mut out);
        Some(out)
    }

    /// A final compound packet: our report, SDES and a BYE (§6.6), to send on hangup.
    pub fn bye(&mut self, now: Instant, ntp: NtpTime, reason: Option<&str>) -> Vec<u8> {
        let mut packets = self.reports(now, ntp);
        packets.push(RtcpPacket::Bye {
            sources: vec![self.sender.ssrc()],
            reason: reason.map(str::to_owned),
        });
        let mut out = Vec::new();
        rtcp::write_compound(&packets, &mut out);
        out
    }

    /// Reads an incoming compound RTCP packet: SRs from the remote source feed LSR/DLSR.
    /// The packets are returned for the caller (a BYE ends the remote source's stream).
    pub fn handle_rtcp(&mut self, now: Instant, datagram: &[u8]) -> Result<Vec<RtcpPacket>, Error> {
        let packets = rtcp::parse_compound(datagram)?;
        for p in &packets {
            if let RtcpPacket::SenderReport { ssrc, info, .. } = p {
                self.receiver.handle_sender_report(now, *ssrc, info.ntp);
            }
        }
        Ok(packets)
    }

    fn reports(&mut self, now: Instant, ntp: NtpTime) -> Vec<RtcpPacket> {
        let reports: Vec<ReportBlock> = self.receiver.report_block(now).into_iter().collect();
        let ssrc = self.sender.ssrc();
        let sent = self.sender.packets != self.packets_at_last_report;
        self.packets_at_last_report = self.sender.packets;
        let report = if sent {
            RtcpPacket::SenderReport {
                ssrc,
                info: self.sender.sender_info(ntp),
                reports,
            }
        } else {
            RtcpPacket::ReceiverReport { ssrc, reports }
        };
        let sdes = RtcpPacket::SourceDescription {
            chunks: vec![(ssrc, self.cname.clone())],
        };
        vec![report, sdes]
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[allow(clippy::disallowed_methods)] // the one real instant the simulated clock starts from
    fn base() -> Instant {
        Instant::now()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds packets `(sequence, timestamp, arrival ms)` of one SSRC.
    fn feed(
        rx: &mut RtpReceiver,
        t0: Instant,
        ssrc: u32,
        pkts: &[(u16, u32, u64)],
    ) -> Vec<Received> {
        pkts.iter()
            .map(|&(seq, ts, at)| {
                let p = RtpPacket::new(0, seq, ts, Ssrc(ssrc), &[0xFF; 160]);
                rx.handle_packet(t0 + ms(at), &p)
            })
            .collect()
    }

    #[test]
    fn sender_numbers_packets_and_marks_talkspurts() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut tx = RtpSender::new(&mut rng, 0);
        let ts0 = tx.timestamp();
        let first = tx.audio(&[0xFF; 160], 160);
        let second = tx.audio(&[0xFF; 160], 160);
        tx.silence(160);
        tx.silence(160);
        let after = tx.audio(&[0xFF; 160], 160);
        let [a, b, c] = [&first, &second, &after].map(|w| RtpPacket::parse(w).unwrap());
        assert!(a.marker && !b.marker && c.marker);
        assert_eq!(b.sequence, a.sequence.wrapping_add(1));
        assert_eq!(
            c.sequence,
            a.sequence.wrapping_add(2),
            "silence sends nothing"
        );
        assert_eq!(a.timestamp, ts0);
        assert_eq!(
            c.timestamp,
            ts0.wrapping_add(4 * 160),
            "time runs on over silence"
        );
        assert_eq!(a.ssrc, tx.ssrc());
        let other = RtpSender::new(&mut rng, 0);
        assert_ne!(other.ssrc(), tx.ssrc());
    }

    #[test]
    fn events_share_a_timestamp_and_take_sequence_numbers() {
        let mut tx = RtpSender::new(&mut StdRng::seed_from_u64(4), 0);
        let ts = tx.timestamp();
        let e1 = tx.event(101, true, ts, &[1, 0, 0, 0]);
        let e2 = tx.event(101, false, ts, &[1, 0, 1, 0]);
        let [p1, p2] = [&e1, &e2].map(|w| RtpPacket::parse(w).unwrap());
        assert_eq!((p1.payload_type, p1.timestamp, p2.timestamp), (101, ts, ts));
        assert_eq!(p2.sequence, p1.sequence.wrapping_add(1));
        assert_eq!(tx.timestamp(), ts, "events leave the audio clock alone");
    }

    #[test]
    fn a_source_becomes_valid_after_two_sequential_packets() {
        let t0 = base();
        let mut rx = RtpReceiver::new();
        let out = feed(
            &mut rx,
            t0,
            9,
            &[(100, 0, 0), (101, 160, 20), (102, 320, 40)],
        );
        assert_eq!(
            out,
            vec![
                Received::Probation,
                Received::NewSource { previous: None },
                Received::Accepted
            ]
        );
        let s = rx.stats().unwrap();
        assert_eq!((s.received, s.expected, s.lost), (2, 2, 0));
    }

    #[test]
    fn loss_and_fraction_lost_follow_appendix_a3() {
        let t0 = base();
        let mut rx = RtpReceiver::new();
        let pkts: Vec<_> = (0u16..20)
            .filter(|i| i % 4 != 3) // a quarter lost
            .map(|i| (i, u32::from(i) * 160, u64::from(i) * 20))
            .collect();
        feed(&mut rx, t0, 1, &pkts);
        let s = rx.stats().unwrap();
        // Valid from seq 1 (seq 0 was probation): 1..=18 expected, 3,7,11,15 lost.
        assert_eq!((s.expected, s.lost), (18, 4));
        let block = rx.report_block(t0 + ms(400)).unwrap();
        assert_eq!(block.cumulative_lost, 4);
        assert_eq!(block.fraction_lost, (4 * 256 / 18) as u8);
        // Next interval without loss: fraction back to zero, cumulative kept.
        feed(
            &mut rx,
            t0,
            1,
            &[(19, 3040, 380), (20, 3200, 400), (21, 3360, 420)],
        );
        let block = rx.report_block(t0 + ms(500)).unwrap();
        assert_eq!((block.fraction_lost, block.cumulative_lost), (0, 4));
    }

    #[test]
    fn sequence_wrap_counts_a_cycle() {
        let t0 = base();
        let mut rx = RtpReceiver::new();
        let pkts: Vec<_> = (0u32..6)
            .map(|i| (65533u16.wrapping_add(i as u16), i * 160, u64::from(i) * 20))
            .collect();
        feed(&mut rx, t0, 1, &pkts);
        let s = rx.stats().unwrap();
        assert_eq!(s.highest_sequence, (1 << 16) + 2);
        assert_eq!((s.expected, s.lost), (5, 0));
    }

    #[test]
    fn reordered_and_duplicate_packets_are_misordered_not_lost() {
        let t0 = base();
        let mut rx = RtpReceiver::new();
        let out = feed(
            &mut rx,
            t0,
            1,
            &[
                (1, 0, 0),
                (2, 160, 20),
                (4, 480, 60),
                (3, 320, 61),
                (4, 480, 62),
            ],
        );
        assert_eq!(out[3], Received::Misordered);
        assert_eq!(out[4], Received::Misordered);
        let s = rx.stats().unwrap();
        // A.1 counts the duplicate as received: loss goes negative.
        assert_eq!((s.expected, s.received, s.lost), (3, 4, -1));
    }

    #[test]
    fn a_sequence_jump_needs_confirmation_then_restarts() {
        let t0 = base();
        let mut rx = RtpReceiver::new();
        let out = feed(
            &mut rx,
            t0,
            1,
            &[
                (1, 0, 0),
                (2, 160, 20),
                (30000, 320, 40),
                (30001, 480, 60),
                (30002, 640, 80),
            ],
        );
        assert_eq!(
            &out[2..],
            &[
                Received::BadSequence,
                Received::Restarted,
                Received::Accepted
            ]
        );
        let s = rx.stats().unwrap();
        assert_eq!((s.expected, s.lost), (2, 0));
    }

    #[test]
    fn a_new_ssrc_replaces_the_source_after_probation() {
        let t0 = base();
        let mut rx = RtpReceiver::new();
        feed(&mut rx, t0, 1, &[(1, 0, 0), (2, 160, 20), (3, 320, 40)]);
        let out = feed(&mut rx, t0, 2, &[(500, 9000, 60), (501, 9160, 80)]);
        assert_eq!(
            out,
            vec![
                Received::Probation,
                Received::NewSource {
                    previous: Some(Ssrc(1))
                }
            ]
        );
        assert!(out[1].is_resync());
        assert_eq!(rx.ssrc(), Some(Ssrc(2)));
        // A late packet of the old source does not disturb the new one.
        assert_eq!(
            feed(&mut rx, t0, 1, &[(4, 480, 85)]),
            vec![Received::Probation]
        );
        assert_eq!(rx.stats().unwrap().received, 1);
    }

    #[test]
    fn jitter_is_zero_for_a_steady_stream_and_grows_with_variation() {
        let t0 = base();
        let mut rx = RtpReceiver::new();
        let steady: Vec<_> = (0u16..50)
            .map(|i| (i, u32::from(i) * 160, u64::from(i) * 20))
            .collect();
        feed(&mut rx, t0, 1, &steady);
        assert_eq!(rx.stats().unwrap().jitter, Duration::ZERO);
        // Every other packet 10 ms late: |D| = 10 ms = 80 units each time; the estimator
        // converges toward 80 (10 ms).
        let wobbly: Vec<_> = (50u16..250)
            .map(|i| {
                let at = u64::from(i) * 20 + if i % 2 == 0 { 10 } else { 0 };
                (i, u32::from(i) * 160, at)
            })
            .collect();
        feed(&mut rx, t0, 1, &wobbly);
        let jitter = rx.stats().unwrap().jitter;
        assert!((ms(9)..=ms(10)).contains(&jitter), "{jitter:?}");
    }

    #[test]
    fn reports_are_due_every_five_seconds_sr_when_sending() {
        let t0 = base();
        let mut rng = StdRng::seed_from_u64(5);
        let mut s = RtpSession::new(&mut rng, 0, "gw".into(), t0);
        assert_eq!(s.poll_timeout(), t0 + ms(2500));
        assert!(s.poll_rtcp(t0 + ms(2499), NtpTime(0)).is_none());
        let rr = s.poll_rtcp(t0 + ms(2500), NtpTime(0)).unwrap();
        let parsed = rtcp::parse_compound(&rr).unwrap();
        assert!(matches!(parsed[0], RtcpPacket::ReceiverReport { .. }));
        assert_eq!(
            parsed[1],
            RtcpPacket::SourceDescription {
                chunks: vec![(s.sender.ssrc(), "gw".into())]
            }
        );
        assert!(s.poll_rtcp(t0 + ms(7499), NtpTime(0)).is_none());
        s.sender.audio(&[0xFF; 160], 160);
        let sr = s.poll_rtcp(t0 + ms(7500), NtpTime(1 << 32)).unwrap();
        let RtcpPacket::SenderReport { info, .. } = &rtcp::parse_compound(&sr).unwrap()[0] else {
            panic!("expected an SR");
        };
        assert_eq!((info.packet_count, info.octet_count), (1, 160));
        assert_eq!(info.ntp, NtpTime(1 << 32));
    }

    #[test]
    fn report_block_echoes_the_last_sender_report() {
        let t0 = base();
        let mut rng = StdRng::seed_from_u64(6);
        let mut us = RtpSession::new(&mut rng, 0, "gw".into(), t0);
        let mut peer = RtpSession::new(&mut rng, 0, "peer".into(), t0);
        for _ in 0..3 {
            let wire = peer.sender.audio(&[0xFF; 160], 160);
            us.receiver
                .handle_packet(t0, &RtpPacket::parse(&wire).unwrap());
        }
        let sr = peer
            .poll_rtcp(t0 + ms(2500), NtpTime(0x0001_2345_6789_0000))
            .unwrap();
        us.handle_rtcp(t0 + ms(2500), &sr).unwrap();
        let ours = us.poll_rtcp(t0 + ms(3000), NtpTime(0)).unwrap();
        let RtcpPacket::ReceiverReport { reports, .. } = &rtcp::parse_compound(&ours).unwrap()[0]
        else {
            panic!("expected an RR");
        };
        assert_eq!(reports[0].ssrc, peer.sender.ssrc());
        assert_eq!(reports[0].last_sr, 0x2345_6789);
        assert_eq!(reports[0].delay_since_last_sr, 32768, "half a second");
    }

    #[test]
    fn bye_follows_a_report() {
        let t0 = base();
        let mut s = RtpSession::new(&mut StdRng::seed_from_u64(8), 0, "gw".into(), t0);
        let bye = s.bye(t0, NtpTime(0), Some("hangup"));
        let parsed = rtcp::parse_compound(&bye).unwrap();
        assert!(matches!(parsed[0], RtcpPacket::ReceiverReport { .. }));
        assert_eq!(
            parsed[2],
            RtcpPacket::Bye {
                sources: vec![s.sender.ssrc()],
                reason: Some("hangup".into())
            }
        );
    }
}
