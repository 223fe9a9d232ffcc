//! [`MediaLeg`] in simulated time: a base instant, then `base + Duration`, and hand-built RTP
//! from the caller's side. The harness plays the media task: it calls `on_tick` at
//! `next_tick()` and hands datagrams in at their arrival times.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use ivr_proto::v1::{self as pb, down, up};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use speech::audio::g711::Law;

use super::{MediaLeg, MediaOut, DEFAULT_DIGIT};
use crate::rtp::dtmf::TelephoneEvent;
use crate::rtp::packet::RtpPacket;
use crate::rtp::playout::MAX_BURST;
use crate::rtp::rtcp::{self, NtpTime, RtcpPacket, SenderInfo};
use crate::rtp::{tone, Ssrc, FRAME_SAMPLES};
use crate::sip::sdp::{Codec, Direction, Negotiated, PTIME_MS};

/// The telephone-event payload type both sides agreed on (dynamic).
const EVENT_PT: u8 = 101;

#[allow(clippy::disallowed_methods)] // the one real instant the simulated clock starts from
fn base() -> Instant {
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn addr(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(a, b, c, d), port))
}

/// The address the caller's SDP names.
fn sdp_addr() -> SocketAddr {
    addr(192, 0, 2, 10, 40000)
}

fn media(
    codec: Codec,
    dtmf_pt: Option<u8>,
    direction: Direction,
    remote: SocketAddr,
) -> Negotiated {
    Negotiated {
        remote,
        codec,
        codec_pt: codec.static_pt(),
        dtmf_pt,
        ptime_ms: PTIME_MS,
        direction,
    }
}

fn pcmu() -> Negotiated {
    media(Codec::Pcmu, Some(EVENT_PT), Direction::SendRecv, sdp_addr())
}

fn law_of(codec: Codec) -> Law {
    match codec {
        Codec::Pcmu => Law::Mu,
        Codec::Pcma => Law::A,
    }
}

fn audio_down(mark: u64, samples: &[i16]) -> pb::Down {
    pb::Down {
        msg: Some(down::Msg::Audio(pb::Audio {
            pcm16: samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            seq: 0,
            mark,
        })),
    }
}

fn msg_down(msg: down::Msg) -> pb::Down {
    pb::Down { msg: Some(msg) }
}

/// `n` samples of a sawtooth starting at `from`: audio that no frame of silence or of
/// another part of it can pass for.
fn ramp(from: i16, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| from.saturating_add(((i * 7) % 6007) as i16))
        .collect()
}

/// One RTP packet we sent, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    at: Instant,
    dest: SocketAddr,
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: Ssrc,
    payload: Vec<u8>,
}

/// The leg under test and everything it has output, with the time of each output.
struct Harness {
    leg: MediaLeg,
    t0: Instant,
    /// The time of the last input.
    now: Instant,
    out: Vec<(Instant, MediaOut)>,
}

impl Harness {
    fn new(media: Negotiated) -> Self {
        let t0 = base();
        Harness {
            leg: MediaLeg::new(
                media,
                t0,
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                7,
            ),
            t0,
            now: t0,
            out: Vec::new(),
        }
    }

    fn at(&self, millis: u64) -> Instant {
        self.t0 + ms(millis)
    }

    fn drain(&mut self) {
        while let Some(o) = self.leg.poll() {
            self.out.push((self.now, o));
        }
    }

    /// Ticks at every `next_tick()` up to and including `end`, handing each datagram of
    /// `inbound` in at its arrival time (before a tick due at the same instant).
    fn run(&mut self, end: Instant, inbound: &mut VecDeque<(Instant, Vec<u8>, SocketAddr)>) {
        loop {
            let tick = self.leg.next_tick();
            match inbound.front() {
                Some((at, _, _)) if *at <= tick && *at <= end => {
                    let Some((at, bytes, source)) = inbound.pop_front() else {
                        unreachable!("front was just seen");
                    };
                    self.now = at;
                    self.leg.on_packet(at, &bytes, source);
                }
                _ if tick <= end => {
                    self.now = tick;
                    self.leg.on_tick(tick);
                    assert!(
                        self.leg.next_tick() > tick,
                        "on_tick at {tick:?} left work due"
                    );
                }
                _ => break,
            }
            self.drain();
        }
        self.now = self.now.max(end);
    }

    fn run_until(&mut self, end: Instant) {
        self.run(end, &mut VecDeque::new());
    }

    /// One tick at `at`, whatever is due; returns its outputs.
    fn tick(&mut self, at: Instant) -> Vec<MediaOut> {
        self.now = at;
        let first = self.out.len();
        self.leg.on_tick(at);
        self.drain();
        self.out[first..].iter().map(|(_, o)| o.clone()).collect()
    }

    fn down(&mut self, at: Instant, msg: pb::Down) {
        self.now = at;
        self.leg.on_down(at, msg);
        self.drain();
    }

    fn packet(&mut self, at: Instant, bytes: &[u8], source: SocketAddr) {
        self.now = at;
        self.leg.on_packet(at, bytes, source);
        self.drain();
    }

    /// Every RTP packet sent so far (RTCP left out).
    fn rtp(&self) -> Vec<Sent> {
        rtp_of(&self.out)
    }

    /// Every RTCP datagram sent so far, parsed, with its time and destination.
    fn rtcp(&self) -> Vec<(Instant, SocketAddr, Vec<RtcpPacket>)> {
        self.out
            .iter()
            .filter_map(|(at, o)| match o {
                MediaOut::Send { bytes, dest } if rtcp::is_rtcp(bytes) => Some((
                    *at,
                    *dest,
                    rtcp::parse_compound(bytes).expect("we send well-formed RTCP"),
                )),
                _ => None,
            })
            .collect()
    }

    /// Every message for the assistant so far.
    fn ups(&self) -> Vec<up::Msg> {
        ups_of(&self.out)
    }

    fn digits(&self) -> Vec<(String, u32)> {
        self.ups()
            .into_iter()
            .filter_map(|m| match m {
                up::Msg::Dtmf(d) => Some((d.key, d.duration_ms)),
                _ => None,
            })
            .collect()
    }

    /// The samples of every `Up::Audio` frame so far, concatenated.
    fn heard(&self) -> Vec<i16> {
        self.ups()
            .into_iter()
            .filter_map(|m| match m {
                up::Msg::Audio(a) => Some(a.pcm16),
                _ => None,
            })
            .flat_map(|b| {
                b.chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn marks(&self) -> Vec<(Instant, u64, bool)> {
        self.out
            .iter()
            .filter_map(|(at, o)| match o {
                MediaOut::Up(up::Msg::Playout(p)) => Some((*at, p.mark, p.interrupted)),
                _ => None,
            })
            .collect()
    }
}

fn rtp_of(out: &[(Instant, MediaOut)]) -> Vec<Sent> {
    out.iter().filter_map(|(at, o)| parse_rtp(*at, o)).collect()
}

/// The RTP packet in an output, if it is one.
fn parse_rtp(at: Instant, out: &MediaOut) -> Option<Sent> {
    let MediaOut::Send { bytes, dest } = out else {
        return None;
    };
    if rtcp::is_rtcp(bytes) {
        return None;
    }
    let p = RtpPacket::parse(bytes).expect("we send well-formed RTP");
    Some(Sent {
        at,
        dest: *dest,
        marker: p.marker,
        pt: p.payload_type,
        seq: p.sequence,
        ts: p.timestamp,
        ssrc: p.ssrc,
        payload: p.payload.to_vec(),
    })
}

fn ups_of(out: &[(Instant, MediaOut)]) -> Vec<up::Msg> {
    out.iter()
        .filter_map(|(_, o)| match o {
            MediaOut::Up(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// The caller's RTP stream: its SSRC, sequence numbers and timestamps.
struct Caller {
    ssrc: u32,
    seq: u16,
    ts: u32,
}

impl Caller {
    fn new() -> Self {
        Caller {
            ssrc: 0x5EED_0001,
            seq: 65_500, // wraps during longer tests
            ts: 4_294_960_000,
        }
    }

    /// One 20 ms audio packet of `samples`, encoded in `law`.
    fn audio(&mut self, pt: u8, law: Law, samples: &[i16]) -> Vec<u8> {
        let payload: Vec<u8> = samples.iter().map(|&s| law.encode_sample(s)).collect();
        let bytes = RtpPacket::new(pt, self.seq, self.ts, Ssrc(self.ssrc), &payload).to_bytes();
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(samples.len() as u32);
        bytes
    }

    /// One telephone-event packet of the event that started at `start_ts`.
    fn event(&mut self, start_ts: u32, marker: bool, ev: TelephoneEvent) -> Vec<u8> {
        let payload = ev.to_bytes();
        let bytes = RtpPacket::new(EVENT_PT, self.seq, start_ts, Ssrc(self.ssrc), &payload)
            .with_marker(marker)
            .to_bytes();
        self.seq = self.seq.wrapping_add(1);
        bytes
    }

    /// The packets of one key press as a typical phone sends it: the start (marker), updates
    /// every 50 ms, three end packets 20 ms apart; arrivals from `from`. The audio clock moves
    /// on by the event's duration.
    fn key_press(
        &mut self,
        from: Instant,
        event: u8,
        held: Duration,
        source: SocketAddr,
    ) -> Vec<(Instant, Vec<u8>, SocketAddr)> {
        let start_ts = self.ts;
        let total = (held.as_millis() * 8) as u16;
        let mut out = Vec::new();
        let mut t = 0u16;
        while t < total {
            let ev = TelephoneEvent {
                event,
                end: false,
                volume: 10,
                duration: t,
            };
            out.push((
                from + ms(u64::from(t) / 8),
                self.event(start_ts, t == 0, ev),
                source,
            ));
            t += 400;
        }
        for i in 0..3u64 {
            let ev = TelephoneEvent {
                event,
                end: true,
                volume: 10,
                duration: total,
            };
            out.push((
                from + held + ms(20 * i),
                self.event(start_ts, false, ev),
                source,
            ));
        }
        self.ts = self.ts.wrapping_add(u32::from(total));
        out
    }
}

/// `samples` cut into 20 ms packets arriving at `first + 20 ms × n`.
fn stream(
    caller: &mut Caller,
    pt: u8,
    law: Law,
    samples: &[i16],
    first: Instant,
    source: SocketAddr,
) -> VecDeque<(Instant, Vec<u8>, SocketAddr)> {
    samples
        .chunks(FRAME_SAMPLES)
        .enumerate()
        .map(|(n, chunk)| {
            (
                first + ms(20 * n as u64),
                caller.audio(pt, law, chunk),
                source,
            )
        })
        .collect()
}

fn decoded(law: Law, samples: &[i16]) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| law.decode_sample(law.encode_sample(s)))
        .collect()
}

/// Whether `needle` occurs in `hay` as a contiguous run.
fn contains_run(hay: &[i16], needle: &[i16]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Outbound pacing and payloads

#[test]
fn one_packet_of_comfort_silence_goes_out_every_20_ms() {
    let mut h = Harness::new(pcmu());
    h.run_until(h.at(990));
    let sent = h.rtp();
    assert_eq!(sent.len(), 50);
    let first = &sent[0];
    assert!(first.marker, "the first packet starts a talkspurt");
    for (n, p) in sent.iter().enumerate() {
        assert_eq!(p.at, h.at(20 * n as u64), "packet {n} off the 20 ms grid");
        assert_eq!(p.dest, sdp_addr());
        assert_eq!(p.pt, 0);
        assert_eq!(p.ssrc, first.ssrc);
        assert_eq!(p.seq, first.seq.wrapping_add(n as u16));
        assert_eq!(p.ts, first.ts.wrapping_add(160 * n as u32));
        assert_eq!(p.marker, n == 0, "marker on packet {n}");
        assert_eq!(p.payload, vec![Law::Mu.encode_sample(0); 160]);
    }
    assert_eq!(h.leg.stats().sent, 50);
}

#[test]
fn queued_audio_is_sent_in_the_negotiated_law_then_silence() {
    for codec in [Codec::Pcmu, Codec::Pcma] {
        let law = law_of(codec);
        let mut h = Harness::new(media(codec, None, Direction::SendRecv, sdp_addr()));
        h.run_until(h.at(40)); // three frames of silence first
        let prompt = ramp(-3000, 3 * FRAME_SAMPLES);
        h.down(h.at(41), audio_down(1, &prompt));
        h.run_until(h.at(140));
        let sent = h.rtp();
        assert_eq!(sent.len(), 8);
        assert!(sent.iter().all(|p| p.pt == codec.static_pt()), "{codec:?}");
        let played: Vec<u8> = sent[3..6].iter().flat_map(|p| p.payload.clone()).collect();
        let expected: Vec<u8> = prompt.iter().map(|&s| law.encode_sample(s)).collect();
        assert_eq!(played, expected, "{codec:?} payload");
        for p in &sent[6..] {
            assert_eq!(
                p.payload,
                vec![law.encode_sample(0); 160],
                "{codec:?} silence"
            );
        }
        // Comfort silence is sent, not skipped: one talkspurt, one marker.
        assert_eq!(sent.iter().filter(|p| p.marker).count(), 1);
    }
}

#[test]
fn nothing_is_sent_on_hold_and_the_clock_runs_on() {
    for direction in [Direction::RecvOnly, Direction::Inactive] {
        let mut h = Harness::new(pcmu());
        h.run_until(h.at(100));
        let before = h.rtp();
        assert_eq!(before.len(), 6);
        let mut held = pcmu();
        held.direction = direction;
        h.leg.set_media(h.at(110), held);
        h.run_until(h.at(1100));
        assert_eq!(h.rtp().len(), 6, "{direction:?}: RTP sent on hold");
        h.leg.set_media(h.at(1110), pcmu());
        h.run_until(h.at(1160));
        let after = &h.rtp()[6..];
        assert_eq!(after.len(), 3);
        let last = &before[5];
        assert!(after[0].marker, "{direction:?}: a new talkspurt after hold");
        assert_eq!(after[0].seq, last.seq.wrapping_add(1));
        // 1120 ms is frame 56; the last before hold was frame 5.
        assert_eq!(after[0].ts, last.ts.wrapping_add(160 * 51));
        assert_eq!(after[0].at, h.at(1120));
    }
}

// ---------------------------------------------------------------------------------------------
// Playout marks, barge-in, held controls

#[test]
fn a_mark_is_reported_with_the_packet_that_carries_its_last_sample() {
    let mut h = Harness::new(pcmu());
    let first = ramp(100, 400);
    let second = ramp(-100, 240);
    h.down(h.at(0), audio_down(1, &first));
    h.down(h.at(0), audio_down(2, &second));
    let mut per_tick = Vec::new();
    for n in 0..5 {
        per_tick.push(h.tick(h.at(20 * n)));
    }
    let marks = |out: &[MediaOut]| -> Vec<(u64, bool)> {
        out.iter()
            .filter_map(|o| match o {
                MediaOut::Up(up::Msg::Playout(p)) => Some((p.mark, p.interrupted)),
                _ => None,
            })
            .collect()
    };
    let reported: Vec<Vec<(u64, bool)>> = per_tick.iter().map(|o| marks(o)).collect();
    assert_eq!(
        reported,
        vec![vec![], vec![], vec![(1, false)], vec![(2, false)], vec![]]
    );
    // The third packet holds the last 80 samples of mark 1 and the first 80 of mark 2.
    let third = per_tick[2]
        .iter()
        .find_map(|o| parse_rtp(h.at(40), o))
        .expect("a packet");
    let mut expected: Vec<i16> = first[320..].to_vec();
    expected.extend_from_slice(&second[..80]);
    let law = Law::Mu;
    assert_eq!(
        third.payload,
        expected
            .iter()
            .map(|&s| law.encode_sample(s))
            .collect::<Vec<_>>()
    );
}

#[test]
fn clear_playout_reports_every_queued_mark_interrupted() {
    let mut h = Harness::new(pcmu());
    for mark in [4, 5, 6] {
        h.down(h.at(0), audio_down(mark, &ramp(500, 8000)));
    }
    h.run_until(h.at(40));
    h.down(
        h.at(45),
        msg_down(down::Msg::Clear(pb::ClearPlayout { mark: 4 })),
    );
    assert_eq!(
        h.marks(),
        vec![
            (h.at(45), 4, true),
            (h.at(45), 5, true),
            (h.at(45), 6, true)
        ]
    );
    h.run_until(h.at(200));
    assert_eq!(h.marks().len(), 3, "no mark after the queue was cleared");
    for p in h.rtp().iter().filter(|p| p.at > h.at(45)) {
        assert_eq!(p.payload, vec![Law::Mu.encode_sample(0); 160]);
    }
}

#[test]
fn transfer_waits_until_the_audio_before_it_has_played() {
    let mut h = Harness::new(pcmu());
    h.down(h.at(0), audio_down(9, &ramp(0, 3 * FRAME_SAMPLES)));
    h.down(
        h.at(0),
        msg_down(down::Msg::Transfer(pb::Transfer {
            target: "sip:operator@hotline".into(),
        })),
    );
    assert!(h.out.is_empty(), "nothing before playout");
    h.tick(h.at(0));
    h.tick(h.at(20));
    assert!(!h
        .out
        .iter()
        .any(|(_, o)| matches!(o, MediaOut::Transfer(_))));
    let third = h.tick(h.at(40));
    let pos = |f: &dyn Fn(&MediaOut) -> bool| third.iter().position(f);
    let mark = pos(&|o| matches!(o, MediaOut::Up(up::Msg::Playout(p)) if p.mark == 9));
    let transfer = pos(&|o| *o == MediaOut::Transfer("sip:operator@hotline".into()));
    let packet = pos(&|o| matches!(o, MediaOut::Send { .. }));
    assert!(
        packet.is_some() && mark.is_some() && transfer.is_some(),
        "{third:?}"
    );
    assert!(
        mark < transfer,
        "the mark is reported before the transfer: {third:?}"
    );
    h.run_until(h.at(200));
    let transfers = h
        .out
        .iter()
        .filter(|(_, o)| matches!(o, MediaOut::Transfer(_)))
        .count();
    assert_eq!(transfers, 1);
}

#[test]
fn controls_with_nothing_queued_are_emitted_at_once() {
    let mut h = Harness::new(pcmu());
    h.down(
        h.at(5),
        msg_down(down::Msg::Transfer(pb::Transfer {
            target: "sip:op@x".into(),
        })),
    );
    assert_eq!(
        h.out,
        vec![(h.at(5), MediaOut::Transfer("sip:op@x".into()))]
    );
    h.out.clear();
    h.leg.hang_up_after_playout("assistant closed the stream");
    h.drain();
    assert_eq!(
        h.out,
        vec![(
            h.at(5),
            MediaOut::Hangup("assistant closed the stream".into())
        )]
    );
}

#[test]
fn hangups_wait_for_playout() {
    // From the assistant.
    let mut h = Harness::new(pcmu());
    h.down(h.at(0), audio_down(1, &ramp(0, 2 * FRAME_SAMPLES)));
    h.down(
        h.at(0),
        msg_down(down::Msg::Hangup(pb::Hangup {
            reason: "goodbye".into(),
        })),
    );
    h.run_until(h.at(100));
    let hangups: Vec<_> = h
        .out
        .iter()
        .filter(|(_, o)| matches!(o, MediaOut::Hangup(_)))
        .cloned()
        .collect();
    assert_eq!(
        hangups,
        vec![(h.at(20), MediaOut::Hangup("goodbye".into()))]
    );

    // The stream went away with audio still queued.
    let mut h = Harness::new(pcmu());
    h.down(h.at(0), audio_down(1, &ramp(0, 5 * FRAME_SAMPLES)));
    h.run_until(h.at(20));
    h.leg.hang_up_after_playout("assistant stream ended");
    h.drain();
    assert!(!h.out.iter().any(|(_, o)| matches!(o, MediaOut::Hangup(_))));
    h.run_until(h.at(200));
    let hangups: Vec<_> = h
        .out
        .iter()
        .filter(|(_, o)| matches!(o, MediaOut::Hangup(_)))
        .cloned()
        .collect();
    assert_eq!(
        hangups,
        vec![(h.at(80), MediaOut::Hangup("assistant stream ended".into()))]
    );
}

// ---------------------------------------------------------------------------------------------
// Inbound audio

/// Audio frames sent up: (seq, samples).
fn up_frames(ups: &[up::Msg]) -> Vec<(u64, Vec<i16>)> {
    ups.iter()
        .filter_map(|m| match m {
            up::Msg::Audio(a) => Some((
                a.seq,
                a.pcm16
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn caller_audio_goes_up_frame_by_frame_in_order_and_intact() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let speech = ramp(-1500, 50 * FRAME_SAMPLES);
    let mut inbound = stream(&mut caller, 0, Law::Mu, &speech, h.at(5), sdp_addr());
    h.run(h.at(1200), &mut inbound);

    let frames = up_frames(&h.ups());
    assert_eq!(frames.len(), 61, "one frame up per tick");
    for (n, (seq, samples)) in frames.iter().enumerate() {
        assert_eq!(*seq, n as u64 + 1);
        assert_eq!(samples.len(), FRAME_SAMPLES);
    }
    let heard = h.heard();
    // Everything from the second packet on (see `the_first_packet_of_the_call_is_heard`).
    let expected = decoded(Law::Mu, &speech[FRAME_SAMPLES..]);
    assert!(
        contains_run(&heard, &expected),
        "the caller's audio, in order"
    );
    // Played after the jitter delay, not before the packet could have arrived.
    let start = heard.iter().position(|&s| s != 0).unwrap_or(heard.len());
    assert!(
        start >= 2 * FRAME_SAMPLES,
        "audio started at sample {start}"
    );
    assert_eq!(h.leg.stats().received, 50);
    assert_eq!(h.leg.stats().dropped, 0);
}

#[test]
fn the_first_packet_of_the_call_is_heard() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let speech = ramp(-1500, 10 * FRAME_SAMPLES);
    let mut inbound = stream(&mut caller, 0, Law::Mu, &speech, h.at(5), sdp_addr());
    h.run(h.at(400), &mut inbound);
    assert!(contains_run(&h.heard(), &decoded(Law::Mu, &speech)));
}

#[test]
fn reordered_packets_still_play_in_order() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let speech = ramp(700, 30 * FRAME_SAMPLES);
    let mut packets: Vec<_> = stream(&mut caller, 0, Law::Mu, &speech, h.at(5), sdp_addr()).into();
    // Packets 10 and 11 swap places, and so do 20 and 21: each pair arrives 5 ms apart.
    for n in [10, 20] {
        packets.swap(n, n + 1);
        packets[n].0 = h.at(5 + 20 * n as u64);
        packets[n + 1].0 = h.at(10 + 20 * n as u64);
    }
    let mut inbound: VecDeque<_> = packets.into();
    h.run(h.at(800), &mut inbound);
    let expected = decoded(Law::Mu, &speech[FRAME_SAMPLES..]);
    assert!(contains_run(&h.heard(), &expected));
    assert_eq!(h.leg.jitter.stats().reordered, 2);
}

#[test]
fn rtcp_from_the_caller_is_read_not_played() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let mut inbound = stream(
        &mut caller,
        0,
        Law::Mu,
        &[0; 20 * FRAME_SAMPLES],
        h.at(5),
        sdp_addr(),
    );
    h.run(h.at(1000), &mut inbound);
    let ntp = NtpTime(0x1234_5678_9ABC_DEF0);
    let mut sr = Vec::new();
    rtcp::write_compound(
        &[
            RtcpPacket::SenderReport {
                ssrc: Ssrc(caller.ssrc),
                info: SenderInfo {
                    ntp,
                    rtp_timestamp: caller.ts,
                    packet_count: 20,
                    octet_count: 3200,
                },
                reports: vec![],
            },
            RtcpPacket::SourceDescription {
                chunks: vec![(Ssrc(caller.ssrc), "caller@pbx".into())],
            },
        ],
        &mut sr,
    );
    let ups_before = h.ups().len();
    h.packet(h.at(1001), &sr, sdp_addr());
    assert_eq!(h.ups().len(), ups_before, "RTCP is not audio");
    assert_eq!(h.leg.stats().received, 20);
    assert_eq!(h.leg.stats().dropped, 0);
    h.run_until(h.at(3000));
    assert!(h.heard().iter().all(|&s| s == 0));
    // Our report (due at 2.5 s) acknowledges the caller's SR.
    let reports = h.rtcp();
    assert_eq!(reports.len(), 1);
    let block = match &reports[0].2[0] {
        RtcpPacket::SenderReport { reports, .. } => reports.first().cloned(),
        other => panic!("expected an SR first, got {other:?}"),
    };
    let block = block.expect("a report block on the caller's stream");
    assert_eq!(block.ssrc, Ssrc(caller.ssrc));
    assert_eq!(block.last_sr, ntp.compact());
}

#[test]
fn garbage_datagrams_are_counted_and_dropped() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let valid = caller.audio(0, Law::Mu, &[1000; FRAME_SAMPLES]);
    let mut bad_padding = valid.clone();
    bad_padding[0] |= 0x20;
    *bad_padding.last_mut().expect("not empty") = 200;
    let mut version_1 = valid.clone();
    version_1[0] = 0x40 | (version_1[0] & 0x3F);
    let mut short_rtcp = vec![0x80, 200, 0x00, 0x06];
    short_rtcp.extend_from_slice(&[0; 8]);
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80],
        valid[..11].to_vec(),
        version_1,
        bad_padding,
        short_rtcp,
        vec![0xFF; 172],
        // Comfort noise (PT 13): not ours to play.
        RtpPacket::new(13, 1, 0, Ssrc(caller.ssrc), &[40]).to_bytes(),
    ];
    for (n, g) in garbage.iter().enumerate() {
        h.packet(h.at(n as u64), g, sdp_addr());
    }
    assert_eq!(h.leg.stats().dropped, garbage.len() as u64);
    assert_eq!(h.leg.stats().received, 0);
    assert!(h.ups().is_empty());

    // Random datagrams, and every prefix of a valid packet: never a panic, and the leg keeps
    // its schedule.
    let mut rng = StdRng::seed_from_u64(4733);
    let mut inbound: VecDeque<_> = (0..2000u64)
        .map(|n| {
            let len = rng.random_range(0..300);
            let mut d: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if n % 2 == 0 && !d.is_empty() {
                d[0] = 0x80 | (d[0] & 0x3F); // version 2, to get past the first check
            }
            (h.at(20 + n / 4), d, sdp_addr())
        })
        .chain((0..valid.len()).map(|n| (h.at(600), valid[..n].to_vec(), sdp_addr())))
        .collect();
    h.run(h.at(1000), &mut inbound);
    let sent = h.rtp();
    assert_eq!(sent.len(), 51);
    assert!(sent
        .windows(2)
        .all(|w| w[1].seq == w[0].seq.wrapping_add(1)));
}

// ---------------------------------------------------------------------------------------------
// Latching (symmetric RTP)

#[test]
fn the_leg_latches_to_the_source_of_the_first_packet() {
    let private = addr(10, 0, 0, 5, 4000);
    let nat = addr(203, 0, 113, 7, 5004);
    let intruder = addr(198, 51, 100, 9, 5004);
    let mut h = Harness::new(media(Codec::Pcmu, None, Direction::SendRecv, private));
    h.run_until(h.at(20));
    assert!(
        h.rtp().iter().all(|p| p.dest == private),
        "before any packet: the SDP address"
    );

    let mut caller = Caller::new();
    let voice = ramp(-800, 20 * FRAME_SAMPLES);
    let mut inbound = stream(&mut caller, 0, Law::Mu, &voice, h.at(25), nat);
    // An intruder sends loud audio and RTCP from a third address, interleaved.
    let mut other = Caller {
        ssrc: 0xBAD,
        ..Caller::new()
    };
    for n in 0..10u64 {
        let at = h.at(30 + 20 * n);
        let pos = inbound
            .iter()
            .position(|(t, _, _)| *t > at)
            .unwrap_or(inbound.len());
        inbound.insert(
            pos,
            (
                at,
                other.audio(0, Law::Mu, &[20000; FRAME_SAMPLES]),
                intruder,
            ),
        );
    }
    let mut rr = Vec::new();
    rtcp::write_compound(
        &[RtcpPacket::ReceiverReport {
            ssrc: Ssrc(0xBAD),
            reports: vec![],
        }],
        &mut rr,
    );
    inbound.push_back((h.at(500), rr, intruder));
    h.run(h.at(600), &mut inbound);

    assert_eq!(h.leg.remote(), nat);
    for p in h.rtp().iter().filter(|p| p.at >= h.at(40)) {
        assert_eq!(p.dest, nat, "packet at {:?}", p.at - h.t0);
    }
    assert_eq!(h.leg.stats().dropped, 11);
    assert!(
        !h.heard().iter().any(|&s| s > 10000),
        "the intruder's audio was played"
    );
    assert!(contains_run(
        &h.heard(),
        &decoded(Law::Mu, &voice[FRAME_SAMPLES..])
    ));
}

#[test]
fn new_media_unlatches_and_switches_codec() {
    let nat = addr(203, 0, 113, 7, 5004);
    let moved_sdp = addr(192, 0, 2, 99, 30000);
    let moved_nat = addr(203, 0, 113, 8, 6000);
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let mut inbound = stream(
        &mut caller,
        0,
        Law::Mu,
        &[500; 10 * FRAME_SAMPLES],
        h.at(5),
        nat,
    );
    h.run(h.at(200), &mut inbound);
    assert_eq!(h.leg.remote(), nat);

    // A re-INVITE moves the call to PCMA at another address.
    h.leg.set_media(
        h.at(205),
        media(Codec::Pcma, None, Direction::SendRecv, moved_sdp),
    );
    assert_eq!(h.leg.remote(), moved_sdp);
    let prompt = ramp(-2500, 2 * FRAME_SAMPLES);
    h.down(h.at(205), audio_down(3, &prompt));
    h.run_until(h.at(240));
    let after: Vec<Sent> = h.rtp().into_iter().filter(|p| p.at > h.at(205)).collect();
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|p| p.pt == 8 && p.dest == moved_sdp));
    assert!(after[0].marker, "a codec change starts a talkspurt");
    let expected: Vec<u8> = prompt.iter().map(|&s| Law::A.encode_sample(s)).collect();
    assert_eq!(
        after
            .iter()
            .flat_map(|p| p.payload.clone())
            .collect::<Vec<_>>(),
        expected
    );

    // The caller's PCMU is no longer ours; its PCMA, from wherever it now comes, is.
    let dropped = h.leg.stats().dropped;
    h.packet(
        h.at(241),
        &caller.audio(0, Law::Mu, &[500; FRAME_SAMPLES]),
        nat,
    );
    assert_eq!(h.leg.stats().dropped, dropped + 1);
    assert_eq!(h.leg.remote(), moved_sdp, "a dropped packet does not latch");
    let voice = ramp(-1200, 10 * FRAME_SAMPLES);
    let mut inbound = stream(&mut caller, 8, Law::A, &voice, h.at(245), moved_nat);
    h.run(h.at(600), &mut inbound);
    assert_eq!(h.leg.remote(), moved_nat);
    assert!(h
        .rtp()
        .iter()
        .filter(|p| p.at >= h.at(260))
        .all(|p| p.dest == moved_nat));
    assert!(contains_run(&h.heard(), &decoded(Law::A, &voice)));
}

// ---------------------------------------------------------------------------------------------
// DTMF in

#[test]
fn an_rfc4733_key_press_is_one_digit_despite_three_end_packets() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let mut inbound: VecDeque<_> = caller.key_press(h.at(105), 5, ms(100), sdp_addr()).into();
    assert_eq!(inbound.len(), 5);
    inbound.extend(caller.key_press(h.at(405), 11, ms(160), sdp_addr()));
    h.run(h.at(1000), &mut inbound);
    assert_eq!(h.digits(), vec![("5".into(), 100), ("#".into(), 160)]);
    assert_eq!(h.leg.stats().digits, 2);
}

#[test]
fn an_rfc4733_event_whose_end_packets_are_lost_ends_by_timeout() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let mut inbound: VecDeque<_> = caller
        .key_press(h.at(105), 7, ms(150), sdp_addr())
        .into_iter()
        .filter(|(at, _, _)| *at < h.at(255))
        .collect();
    h.run(h.at(500), &mut inbound);
    assert!(h.digits().is_empty(), "still held at 500 ms");
    h.run_until(h.at(800));
    assert_eq!(h.digits(), vec![("7".into(), 100)]);
}

/// In-band keys: `keys` as tones of 100 ms with 100 ms pauses, sent as µ-law RTP.
fn in_band(
    caller: &mut Caller,
    keys: &str,
    first: Instant,
) -> VecDeque<(Instant, Vec<u8>, SocketAddr)> {
    let mut audio = vec![0; 4 * FRAME_SAMPLES]; // a little silence first
    audio.extend(tone::digits(keys, ms(100), ms(100), 6000));
    stream(caller, 0, Law::Mu, &audio, first, sdp_addr())
}

#[test]
fn in_band_tones_are_heard_while_no_rfc4733_event_was_seen() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let mut inbound = in_band(&mut caller, "19*", h.at(5));
    h.run(h.at(1500), &mut inbound);
    assert_eq!(
        h.digits(),
        vec![("1".into(), 100), ("9".into(), 100), ("*".into(), 100)]
    );
}

#[test]
fn in_band_tones_are_ignored_once_an_rfc4733_event_was_seen() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let mut inbound: VecDeque<_> = caller.key_press(h.at(5), 3, ms(100), sdp_addr()).into();
    inbound.extend(in_band(&mut caller, "19", h.at(300)));
    h.run(h.at(1500), &mut inbound);
    assert_eq!(h.digits(), vec![("3".into(), 100)]);
}

#[test]
fn a_digit_signalled_by_sip_info_goes_up() {
    let mut h = Harness::new(pcmu());
    h.leg.on_signalled_digit('#', 250);
    h.drain();
    assert_eq!(h.digits(), vec![("#".into(), 250)]);
    assert_eq!(h.leg.stats().digits, 1);
}

// ---------------------------------------------------------------------------------------------
// DTMF out

#[test]
fn send_digit_sends_rfc4733_events_and_holds_the_audio_back() {
    let mut h = Harness::new(pcmu());
    h.down(h.at(0), audio_down(1, &ramp(1000, 8000)));
    h.run_until(h.at(100));
    assert!(h.leg.send_digit(h.at(105), '7', DEFAULT_DIGIT));
    assert!(
        !h.leg.send_digit(h.at(105), '8', DEFAULT_DIGIT),
        "one event at a time"
    );
    h.run_until(h.at(400));

    let sent = h.rtp();
    let first = &sent[0];
    assert!(
        sent.windows(2)
            .all(|w| w[1].seq == w[0].seq.wrapping_add(1)),
        "events and audio share one sequence"
    );
    let events: Vec<&Sent> = sent.iter().filter(|p| p.pt == EVENT_PT).collect();
    let parsed: Vec<TelephoneEvent> = events
        .iter()
        .map(|p| TelephoneEvent::parse(&p.payload).expect("a telephone-event payload"))
        .collect();
    assert_eq!(events.len(), 7, "start, 3 updates, 3 ends: {parsed:?}");
    assert_eq!(events[0].at, h.at(105), "the first packet goes at once");
    assert_eq!(
        events.iter().map(|p| p.marker).collect::<Vec<_>>(),
        vec![true, false, false, false, false, false, false]
    );
    // The event starts at the timestamp the next audio frame (120 ms, frame 6) would have had.
    assert!(events
        .iter()
        .all(|p| p.ts == first.ts.wrapping_add(6 * 160)));
    assert!(parsed.iter().all(|e| e.event == 7));
    assert_eq!(parsed.iter().filter(|e| e.end).count(), 3);
    assert!(parsed[4..].iter().all(|e| e.end && e.duration == 1280));
    let durations: Vec<u16> = parsed.iter().map(|e| e.duration).collect();
    assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{durations:?}");

    // No audio from the first event packet to the last end packet; then audio resumes on the
    // clock, as a new talkspurt.
    let (from, to) = (events[0].at, events[6].at);
    let audio: Vec<&Sent> = sent.iter().filter(|p| p.pt == 0).collect();
    assert!(!audio.iter().any(|p| p.at >= from && p.at <= to));
    let resumed = audio
        .iter()
        .find(|p| p.at > to)
        .expect("audio after the digit");
    assert_eq!(resumed.at, h.at(320));
    assert!(resumed.marker);
    assert_eq!(resumed.ts, first.ts.wrapping_add(16 * 160));
    assert!(
        h.leg.send_digit(h.at(400), '#', DEFAULT_DIGIT),
        "free again"
    );
}

#[test]
fn send_digit_refuses_without_telephone_event_or_a_key() {
    let mut h = Harness::new(media(Codec::Pcmu, None, Direction::SendRecv, sdp_addr()));
    assert!(!h.leg.send_digit(h.at(0), '5', DEFAULT_DIGIT));
    let mut h = Harness::new(pcmu());
    assert!(!h.leg.send_digit(h.at(0), 'x', DEFAULT_DIGIT));
    h.run_until(h.at(400));
    assert!(h.rtp().iter().all(|p| p.pt == 0));
}

#[test]
fn no_digit_goes_out_on_hold() {
    let mut held = pcmu();
    held.direction = Direction::RecvOnly;
    let mut h = Harness::new(held);
    let _ = h.leg.send_digit(h.at(0), '5', DEFAULT_DIGIT);
    h.run_until(h.at(400));
    assert_eq!(h.rtp(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// RTCP

#[test]
fn sender_and_receiver_reports_go_out_every_5_s() {
    let mut h = Harness::new(pcmu());
    let mut caller = Caller::new();
    let mut inbound = stream(
        &mut caller,
        0,
        Law::Mu,
        &ramp(0, 300 * FRAME_SAMPLES),
        h.at(5),
        sdp_addr(),
    );
    h.run(h.at(10_000), &mut inbound);
    let reports = h.rtcp();
    let times: Vec<Duration> = reports.iter().map(|(at, _, _)| *at - h.t0).collect();
    assert_eq!(times, vec![ms(2500), ms(7500)]);
    let sent = h.rtp();
    let (_, dest, packets) = &reports[0];
    assert_eq!(*dest, sdp_addr());
    let RtcpPacket::SenderReport {
        ssrc,
        info,
        reports: blocks,
    } = &packets[0]
    else {
        panic!("an SR first: {packets:?}");
    };
    assert_eq!(*ssrc, sent[0].ssrc);
    let before = sent.iter().filter(|p| p.at <= h.at(2500)).count() as u32;
    assert_eq!(info.packet_count, before);
    assert_eq!(info.octet_count, before * 160);
    assert_eq!(info.rtp_timestamp, sent[0].ts.wrapping_add(before * 160));
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].ssrc, Ssrc(caller.ssrc));
    assert_eq!(blocks[0].cumulative_lost, 0);
    assert!(matches!(
        &packets[1],
        RtcpPacket::SourceDescription { chunks } if chunks[0].0 == sent[0].ssrc
    ));

    // On hold we send no RTP, so we report as a receiver only.
    let mut held = pcmu();
    held.direction = Direction::Inactive;
    let mut h = Harness::new(held);
    h.run_until(h.at(5000));
    let reports = h.rtcp();
    assert_eq!(reports.len(), 1);
    assert!(matches!(reports[0].2[0], RtcpPacket::ReceiverReport { .. }));
}

#[test]
fn nothing_is_sent_to_an_unspecified_address() {
    let hold = addr(0, 0, 0, 0, 40000);
    let mut h = Harness::new(media(
        Codec::Pcmu,
        Some(EVENT_PT),
        Direction::Inactive,
        hold,
    ));
    h.run_until(h.at(6000));
    let to_nowhere: Vec<SocketAddr> = h
        .out
        .iter()
        .filter_map(|(_, o)| match o {
            MediaOut::Send { dest, .. } if dest.ip().is_unspecified() => Some(*dest),
            _ => None,
        })
        .collect();
    assert_eq!(to_nowhere, vec![]);
}

// ---------------------------------------------------------------------------------------------
// Stalls

#[test]
fn a_late_tick_sends_one_burst_and_stays_on_the_grid() {
    let mut h = Harness::new(pcmu());
    let prompt = ramp(-4000, 50 * FRAME_SAMPLES);
    h.down(h.at(0), audio_down(1, &prompt));
    for n in 0..3 {
        h.tick(h.at(20 * n));
    }
    // The task stalls: the tick due at 60 ms comes at 260 ms.
    let late = h.tick(h.at(260));
    let burst: Vec<Sent> = late
        .iter()
        .filter_map(|o| parse_rtp(h.at(260), o))
        .collect();
    assert_eq!(burst.len(), MAX_BURST as usize);
    assert_eq!(h.leg.stats().skipped, 8);
    assert_eq!(h.leg.next_tick(), h.at(280));
    let first = &h.rtp()[0];
    // Frames 11, 12 and 13 (220–260 ms) go out; 3–10 were skipped with their audio.
    for (p, frame) in burst.iter().zip(11u32..) {
        assert_eq!(p.ts, first.ts.wrapping_add(frame * 160));
        let start = frame as usize * FRAME_SAMPLES;
        let expected: Vec<u8> = prompt[start..start + FRAME_SAMPLES]
            .iter()
            .map(|&s| Law::Mu.encode_sample(s))
            .collect();
        assert_eq!(p.payload, expected, "frame {frame}");
    }
    assert!(burst[0].marker, "the RTP clock jumped: a new talkspurt");
    let seqs: Vec<u16> = h.rtp().iter().map(|p| p.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    let up_audio = late
        .iter()
        .filter(|o| matches!(o, MediaOut::Up(up::Msg::Audio(_))))
        .count();
    assert_eq!(up_audio, MAX_BURST as usize);

    h.run_until(h.at(1000));
    let after: Vec<Sent> = h.rtp().into_iter().filter(|p| p.at > h.at(260)).collect();
    for (p, frame) in after.iter().zip(14u32..) {
        assert_eq!(p.at, h.at(20 * u64::from(frame)));
        assert_eq!(p.ts, first.ts.wrapping_add(frame * 160));
    }
    // The prompt ends with the clock: its last frame is frame 49, at 980 ms.
    assert_eq!(h.marks(), vec![(h.at(980), 1, false)]);
}

// ---------------------------------------------------------------------------------------------
// Known bugs in how marks and held controls relate to queued audio

#[test]
fn a_prompt_streamed_in_chunks_is_reported_once_after_its_last_chunk() {
    let mut h = Harness::new(pcmu());
    h.down(h.at(0), audio_down(5, &ramp(0, 2 * FRAME_SAMPLES)));
    h.down(h.at(0), audio_down(5, &ramp(100, 2 * FRAME_SAMPLES)));
    h.run_until(h.at(200));
    assert_eq!(h.marks(), vec![(h.at(60), 5, false)]);

    let mut h = Harness::new(pcmu());
    h.down(h.at(0), audio_down(6, &ramp(0, 20 * FRAME_SAMPLES)));
    h.down(h.at(0), audio_down(6, &ramp(100, 20 * FRAME_SAMPLES)));
    h.run_until(h.at(100));
    h.down(
        h.at(105),
        msg_down(down::Msg::Clear(pb::ClearPlayout { mark: 6 })),
    );
    assert_eq!(h.marks(), vec![(h.at(105), 6, true)]);
}

#[test]
fn transfer_does_not_wait_for_audio_queued_after_it() {
    let mut h = Harness::new(pcmu());
    h.down(h.at(0), audio_down(1, &ramp(0, 2 * FRAME_SAMPLES)));
    h.down(
        h.at(0),
        msg_down(down::Msg::Transfer(pb::Transfer {
            target: "sip:op@x".into(),
        })),
    );
    h.down(h.at(0), audio_down(2, &ramp(0, 50 * FRAME_SAMPLES)));
    h.run_until(h.at(1000));
    let transfers: Vec<Instant> = h
        .out
        .iter()
        .filter(|(_, o)| matches!(o, MediaOut::Transfer(_)))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(transfers, vec![h.at(20)]);
}

#[test]
fn the_assistant_leaving_after_a_transfer_does_not_hang_up_the_caller() {
    let mut h = Harness::new(pcmu());
    h.down(h.at(0), audio_down(1, &ramp(0, 5 * FRAME_SAMPLES)));
    h.down(
        h.at(0),
        msg_down(down::Msg::Transfer(pb::Transfer {
            target: "sip:op@x".into(),
        })),
    );
    // The assistant closes its stream right after asking for the transfer.
    h.leg.hang_up_after_playout("assistant closed the stream");
    h.run_until(h.at(500));
    let transfers = h
        .out
        .iter()
        .filter(|(_, o)| matches!(o, MediaOut::Transfer(_)))
        .count();
    let hangups = h
        .out
        .iter()
        .filter(|(_, o)| matches!(o, MediaOut::Hangup(_)))
        .count();
    assert_eq!((transfers, hangups), (1, 0));
}
