//! Any datagram on an RTP port yields an RTP packet, RTCP packets or an error, never a panic;
//! what parses is written back and parses to the same fields, and feeds the receiver
//! statistics, the jitter buffer and the RTCP reader.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ivr::rtp::jitter::JitterBuffer;
use ivr::rtp::packet::RtpPacket;
use ivr::rtp::rtcp;
use ivr::rtp::session::RtpSession;
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

#[allow(clippy::disallowed_methods)] // the fuzz harness's one real instant
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let now = base();
    let mut session = RtpSession::new(&mut StdRng::seed_from_u64(1), 0, "fuzz".into(), now);
    if rtcp::is_rtcp(data) {
        if let Ok(packets) = session.handle_rtcp(now, data) {
            let mut wire = Vec::new();
            rtcp::write_compound(&packets, &mut wire);
            if !wire.is_empty() {
                rtcp::parse_compound(&wire).expect("our own RTCP parses");
            }
        }
        return;
    }
    let Ok(packet) = RtpPacket::parse(data) else {
        return;
    };
    let written = packet.to_bytes();
    let back = RtpPacket::parse(&written).expect("our own RTP parses");
    assert_eq!(back, packet);
    // The same datagram four times over, as a stream, through statistics and the buffer.
    let mut jb = JitterBuffer::new();
    for i in 0..4u16 {
        let at = now + Duration::from_millis(20 * u64::from(i));
        let mut p = packet;
        p.sequence = p.sequence.wrapping_add(i);
        p.timestamp = p.timestamp.wrapping_add(160 * u32::from(i));
        session.receiver.handle_packet(at, &p);
        let pcm: Vec<i16> = p.payload.iter().map(|&b| i16::from(b)).collect();
        jb.push(at, p.sequence, p.timestamp, p.marker, pcm);
        jb.pop(at);
    }
    let _ = session.poll_rtcp(now + Duration::from_secs(5), rtcp::NtpTime(0));
});
