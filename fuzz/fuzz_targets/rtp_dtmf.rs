//! Any RFC 4733 payloads yield an event or an error, never a panic; a parsed event writes
//! back to the same event; and any sequence of packets and timeouts through the receiver
//! reports no more keys than it was given valid packets.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ivr::rtp::dtmf::{DtmfReceiver, TelephoneEvent};
use libfuzzer_sys::fuzz_target;

#[allow(clippy::disallowed_methods)] // the fuzz harness's one real instant
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = TelephoneEvent::parse(data) {
        assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
    }
    // Records of 8 octets: timestamp (1 octet, to make collisions likely), time step in
    // ms (1 octet), then a 6-octet payload window of which 4 are used.
    let mut rx = DtmfReceiver::new();
    let mut now = base();
    let mut accepted = 0;
    let mut reported = 0;
    for rec in data.chunks(8) {
        let [ts, step, payload @ ..] = rec else {
            break;
        };
        now += Duration::from_millis(u64::from(*step) * 4);
        rx.handle_timeout(now);
        if rx.handle_packet(now, u32::from(*ts), payload).is_ok() {
            accepted += 1;
        }
        while rx.poll_event().is_some() {
            reported += 1;
        }
    }
    rx.handle_timeout(now + Duration::from_secs(10));
    while rx.poll_event().is_some() {
        reported += 1;
    }
    assert!(reported <= accepted);
});
