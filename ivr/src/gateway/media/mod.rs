//! The media core of one phone call leg, sans-IO: RTP in and out, DTMF, playout with marks.
//!
//! In (caller → assistant):
//! - RTP from the negotiated address, or from wherever the caller's first packet comes from:
//!   the leg *latches* to that source (symmetric RTP, RFC 4961), so a caller behind NAT
//!   whose SDP names a private address is still heard and answered. After latching, packets
//!   from other sources are dropped (no injection into a call); a new offer unlatches.
//! - G.711 packets are decoded into the [`JitterBuffer`]; every 20 ms tick pops one frame
//!   (audio, concealed or silence) and sends it up as `Audio` with a running `seq`.
//! - RFC 4733 events (the negotiated telephone-event PT) become `Dtmf`; digits by SIP INFO
//!   come in through [`MediaLeg::on_signalled_digit`]. Old trunks that send tones as audio are
//!   heard by the in-band detector, which listens only while no RFC 4733 event has been seen
//!   in the call (so one key is never counted twice).
//! - RTCP (rtcp-mux, on the same port) feeds the receiver statistics.
//!
//! Out (assistant → caller):
//! - `Audio` is queued per mark; every tick takes one 20 ms frame, encodes it and sends it.
//!   When nothing is queued the leg sends comfort silence: zero-level frames, so NATs stay
//!   open and the far end's jitter buffer keeps its clock (no CN payload: many trunks drop
//!   it). A mark is reported (`PlayoutMark`) with the tick that sent its last sample;
//!   `ClearPlayout` drops the queue and reports every dropped mark as interrupted.
//! - `Transfer` and `Hangup` are held until the audio queued before them has played.
//! - RFC 4733 digits can be sent ([`MediaLeg::send_digit`]: the robot caller, and bridged
//!   calls); audio is not sent while an event is on.
//! - RTCP sender/receiver reports every ~5 s.
//!
//! The pacer is a fixed 20 ms schedule from the start instant (no drift); after a stall the
//! missed frames are sent at once up to a small burst, the rest skipped (their audio is
//! dropped with them, so playout stays in step with the clock).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use ivr_proto::v1::{self as pb, down, up};
use rand::rngs::StdRng;
use rand::SeedableRng;
use speech::audio::g711::Law;

use crate::rtp::dtmf::{DtmfKey, DtmfReceiver, DtmfSender};
use crate::rtp::jitter::JitterBuffer;
use crate::rtp::packet::RtpPacket;
use crate::rtp::playout::{Pacer, PlayoutQueue};
use crate::rtp::rtcp::{self, NtpTime};
use crate::rtp::session::{Received, RtpSession};
use crate::rtp::tone::ToneDetector;
use crate::rtp::{FRAME, FRAME_SAMPLES};
use crate::sip::sdp::{Codec, Negotiated};

/// How long a key is held when the leg sends one without a duration.
pub const DEFAULT_DIGIT: Duration = Duration::from_millis(160);

/// The duration reported for an in-band digit (the detector reports the key, not how long
/// it was held).
const IN_BAND_DURATION_MS: u32 = 100;

/// What the leg wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaOut {
    /// Send a datagram (RTP or RTCP).
    Send {
        /// The datagram.
        bytes: Vec<u8>,
        /// Where to.
        dest: SocketAddr,
    },
    /// A message for the assistant.
    Up(up::Msg),
    /// The assistant asked to transfer the caller, and its audio before that has played.
    Transfer(String),
    /// The call should end (the assistant hung up, or its stream ended), audio played.
    Hangup(String),
}

/// A control held until the audio queued before it has played.
#[derive(Debug, Clone)]
enum Control {
    Transfer(String),
    Hangup(String),
}

/// A control and the last mark queued before it (`None`: nothing left to wait for).
#[derive(Debug, Clone)]
struct Held {
    control: Control,
    after: Option<u64>,
}

/// Counters of one leg, for the call's closing log line and the benches.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LegStats {
    /// RTP media packets received and accepted.
    pub received: u64,
    /// Packets lost on the way (RFC 3550 A.3: expected − received).
    pub lost: u64,
    /// Frames the jitter buffer had to make up.
    pub concealed: u64,
    /// Packets that came too late to play.
    pub late: u64,
    /// Interarrival jitter (RFC 3550 A.8), milliseconds.
    pub jitter_ms: f64,
    /// RTP packets sent.
    pub sent: u64,
    /// Datagrams that were not RTP/RTCP or came from a source not latched.
    pub dropped: u64,
    /// Frames skipped by the pacer after stalls.
    pub skipped: u64,
    /// Digits received (RFC 4733, INFO, in-band).
    pub digits: u64,
}

/// One call leg's media state.
#[derive(Debug)]
pub struct MediaLeg {
    media: Negotiated,
    law: Law,
    remote: SocketAddr,
    latched: bool,
    session: RtpSession,
    jitter: JitterBuffer,
    dtmf_in: DtmfReceiver,
    dtmf_out: DtmfSender,
    tones: ToneDetector,
    heard_4733: bool,
    playout: PlayoutQueue<u64>,
    pacer: Pacer,
    held: VecDeque<Held>,
    up_seq: u64,
    clock: (Instant, SystemTime),
    out: VecDeque<MediaOut>,
    stats: LegStats,
}

fn law(codec: Codec) -> Law {
    match codec {
        Codec::Pcma => Law::A,
        _ => Law::Mu,
    }
}

impl MediaLeg {
    /// A leg for negotiated media, its schedule starting at `now`. `wall` is the wall clock at
    /// `now` (for RTCP's NTP timestamps).
    pub fn new(media: Negotiated, now: Instant, wall: SystemTime, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let session = RtpSession::new(&mut rng, media.codec_pt, format!("ivr-{seed:016x}"), now);
        MediaLeg {
            law: law(media.codec),
            remote: media.remote,
            latched: false,
            session,
            jitter: JitterBuffer::new(),
            dtmf_in: DtmfReceiver::new(),
            dtmf_out: DtmfSender::new(),
            tones: ToneDetector::new(),
            heard_4733: false,
            playout: PlayoutQueue::new(),
            pacer: Pacer::new(now),
            held: VecDeque::new(),
            up_seq: 0,
            clock: (now, wall),
            out: VecDeque::new(),
            stats: LegStats::default(),
            media,
        }
    }

    /// New media from a re-INVITE: address, codec, direction. The leg unlatches.
    pub fn set_media(&mut self, _now: Instant, media: Negotiated) {
        if media.codec_pt != self.media.codec_pt {
            self.session.sender.set_payload_type(media.codec_pt);
        }
        self.law = law(media.codec);
        self.remote = media.remote;
        self.latched = false;
        self.media = media;
    }

    /// The current far-end address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// When [`MediaLeg::on_tick`] is next due.
    pub fn next_tick(&self) -> Instant {
        let mut t = self.pacer.next_deadline();
        if let Some(d) = self.dtmf_out.poll_timeout() {
            t = t.min(d);
        }
        if let Some(d) = self.dtmf_in.poll_timeout() {
            t = t.min(d);
        }
        t
    }

    /// The next thing to do.
    pub fn poll(&mut self) -> Option<MediaOut> {
        self.out.pop_front()
    }

    /// Counters so far.
    pub fn stats(&self) -> LegStats {
        let mut s = self.stats;
        let j = self.jitter.stats();
        s.concealed = j.concealed;
        s.late = j.late;
        if let Some(r) = self.session.receiver.stats() {
            s.lost = r.lost.max(0) as u64;
            s.jitter_ms = r.jitter.as_secs_f64() * 1000.0;
        }
        s
    }

    /// A datagram arrived on the leg's socket.
    pub fn on_packet(&mut self, now: Instant, bytes: &[u8], source: SocketAddr) {
        if self.latched && source != self.remote {
            self.stats.dropped += 1;
            return;
        }
        if rtcp::is_rtcp(bytes) {
            if self.session.handle_rtcp(now, bytes).is_err() {
                self.stats.dropped += 1;
            }
            return;
        }
        let Ok(packet) = RtpPacket::parse(bytes) else {
            self.stats.dropped += 1;
            return;
        };
        let pt = packet.payload_type;
        let is_dtmf = self.media.dtmf_pt == Some(pt);
        if pt != self.media.codec_pt && !is_dtmf {
            // Comfort noise (13), another codec the peer switched to without an offer, or
            // garbage: not ours to play.
            self.stats.dropped += 1;
            return;
        }
        if !self.latched {
            if source != self.remote {
                tracing::debug!(sdp = %self.remote, %source, "latching RTP to the caller's source");
            }
            self.remote = source;
            self.latched = true;
        }
        let verdict = self.session.receiver.handle_packet(now, &packet);
        if !verdict.is_media() {
            self.stats.dropped += 1;
            return;
        }
        // A new source replacing another (a re-INVITE, a PBX switching streams) starts
        // afresh; the first source of the call keeps what it sent while on probation.
        if matches!(
            verdict,
            Received::NewSource { previous: Some(_) } | Received::Restarted
        ) {
            self.jitter.reset();
        }
        self.stats.received += 1;
        if is_dtmf {
            self.heard_4733 = true;
            if self
                .dtmf_in
                .handle_packet(now, packet.timestamp, packet.payload)
                .is_err()
            {
                self.stats.dropped += 1;
            }
            self.drain_digits();
            return;
        }
        let samples: Vec<i16> = packet
            .payload
            .iter()
            .map(|&b| self.law.decode_sample(b))
            .collect();
        self.jitter.push(
            now,
            packet.sequence,
            packet.timestamp,
            packet.marker,
            samples,
        );
    }

    /// A digit signalled by SIP INFO.
    pub fn on_signalled_digit(&mut self, key: char, duration_ms: u32) {
        self.digit_up(key, duration_ms);
    }

    fn digit_up(&mut self, key: char, duration_ms: u32) {
        self.stats.digits += 1;
        self.out.push_back(MediaOut::Up(up::Msg::Dtmf(pb::Dtmf {
            key: key.to_string(),
            duration_ms,
        })));
    }

    fn drain_digits(&mut self) {
        while let Some(ev) = self.dtmf_in.poll_event() {
            let ms = ev.duration.as_millis().min(u128::from(u32::MAX)) as u32;
            self.digit_up(ev.key.as_char(), ms);
        }
    }

    /// Sends a key as RFC 4733 events (when the far end took telephone-event), held for
    /// `duration`. Returns false when the far end cannot receive events or one is on.
    pub fn send_digit(&mut self, now: Instant, key: char, duration: Duration) -> bool {
        let (Some(_), Some(key)) = (self.media.dtmf_pt, DtmfKey::from_char(key)) else {
            return false;
        };
        if !self.media.direction.sends() || !self.can_send() {
            return false;
        }
        let ts = self.session.sender.timestamp();
        self.dtmf_out.start(now, key, duration, ts)
    }

    /// A message from the assistant.
    pub fn on_down(&mut self, now: Instant, down: pb::Down) {
        let _ = now;
        match down.msg {
            Some(down::Msg::Audio(a)) => {
                let samples: Vec<i16> = a
                    .pcm16
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                self.playout.extend(a.mark, samples);
            }
            Some(down::Msg::Clear(_)) => {
                for mark in self.playout.clear() {
                    self.mark_done(mark);
                    self.out
                        .push_back(MediaOut::Up(up::Msg::Playout(pb::PlayoutMark {
                            mark,
                            interrupted: true,
                        })));
                }
            }
            Some(down::Msg::Transfer(t)) => self.hold(Control::Transfer(t.target)),
            Some(down::Msg::Hangup(h)) => self.hold(Control::Hangup(h.reason)),
            Some(down::Msg::Event(_)) | None => {}
        }
        self.release_held();
    }

    /// Ends the call once queued audio has played (the assistant's stream is gone) — unless
    /// a transfer is still to go out, whose outcome ends the call instead.
    pub fn hang_up_after_playout(&mut self, reason: &str) {
        if self
            .held
            .iter()
            .any(|h| matches!(h.control, Control::Transfer(_)))
        {
            return;
        }
        self.hold(Control::Hangup(reason.to_owned()));
        self.release_held();
    }

    /// Holds `control` until the audio queued so far has played.
    fn hold(&mut self, control: Control) {
        let after = self.playout.last_mark().copied();
        self.held.push_back(Held { control, after });
    }

    /// A mark finished playing (or was dropped): controls waiting for it may go.
    fn mark_done(&mut self, mark: u64) {
        for h in &mut self.held {
            if h.after == Some(mark) {
                h.after = None;
            }
        }
    }

    fn release_held(&mut self) {
        if self.playout.is_empty() {
            for h in &mut self.held {
                h.after = None;
            }
        }
        while self.held.front().is_some_and(|h| h.after.is_none()) {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.out.push_back(match h.control {
                Control::Transfer(t) => MediaOut::Transfer(t),
                Control::Hangup(r) => MediaOut::Hangup(r),
            });
        }
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.clock.1 + now.saturating_duration_since(self.clock.0)
    }

    /// Does what is due at `now`: frames in and out, DTMF, RTCP.
    pub fn on_tick(&mut self, now: Instant) {
        self.dtmf_in.handle_timeout(now);
        self.drain_digits();
        while let Some(p) = self.dtmf_out.poll(now) {
            if let Some(pt) = self.media.dtmf_pt {
                let bytes = self
                    .session
                    .sender
                    .event(pt, p.marker, p.timestamp, &p.payload);
                self.send(bytes);
            }
        }
        let due = self.pacer.tick(now);
        self.stats.skipped += u64::from(due.skipped);
        for _ in 0..due.skipped {
            // Skipped frames: their audio is dropped so playout stays with the clock.
            let frame = self.playout.next_frame();
            self.finish_marks(frame.finished);
            self.session.sender.silence(FRAME_SAMPLES as u32);
        }
        for _ in 0..due.frames {
            self.frame_in(now);
            self.frame_out();
        }
        if due.frames > 0 || due.skipped > 0 {
            self.release_held();
            let ntp = NtpTime::from_system_time(self.wall(now));
            if let Some(bytes) = self.session.poll_rtcp(now, ntp) {
                if self.can_send() {
                    let dest = self.remote;
                    self.out.push_back(MediaOut::Send { bytes, dest });
                }
            }
        }
    }

    fn frame_in(&mut self, now: Instant) {
        let samples = self.jitter.pop(now).into_samples();
        if !self.heard_4733 {
            self.tones.handle_samples(&samples);
            while let Some(key) = self.tones.poll_key() {
                self.digit_up(key.as_char(), IN_BAND_DURATION_MS);
            }
        }
        let mut pcm16 = Vec::with_capacity(samples.len() * 2);
        for s in &samples {
            pcm16.extend_from_slice(&s.to_le_bytes());
        }
        self.up_seq += 1;
        self.out.push_back(MediaOut::Up(up::Msg::Audio(pb::Audio {
            pcm16,
            seq: self.up_seq,
            mark: 0,
        })));
    }

    fn frame_out(&mut self) {
        let frame = self.playout.next_frame();
        self.finish_marks(frame.finished);
        if self.dtmf_out.is_active() || !self.media.direction.sends() {
            self.session.sender.silence(FRAME_SAMPLES as u32);
            return;
        }
        let payload: Vec<u8> = frame
            .samples
            .iter()
            .map(|&s| self.law.encode_sample(s))
            .collect();
        let bytes = self.session.sender.audio(&payload, FRAME_SAMPLES as u32);
        self.send(bytes);
    }

    fn finish_marks(&mut self, marks: Vec<u64>) {
        for mark in marks {
            self.mark_done(mark);
            self.out
                .push_back(MediaOut::Up(up::Msg::Playout(pb::PlayoutMark {
                    mark,
                    interrupted: false,
                })));
        }
    }

    /// Whether anything may be sent: not to an unspecified address (old-style hold,
    /// `c=0.0.0.0`) or port 0.
    fn can_send(&self) -> bool {
        !self.remote.ip().is_unspecified() && self.remote.port() != 0
    }

    fn send(&mut self, bytes: Vec<u8>) {
        if !self.can_send() {
            return;
        }
        self.stats.sent += 1;
        let dest = self.remote;
        self.out.push_back(MediaOut::Send { bytes, dest });
    }

    /// The 20 ms frame length (for drivers that need it).
    pub const FRAME: Duration = FRAME;
}

#[cfg(test)]
mod tests;
