//! Any text handed to the SDP parser yields a description or an error, never a panic; a
//! description prints back to text that parses to the same description; offer/answer on any
//! text (as a caller's offer or as the answer to our offer) returns without panicking, and an
//! answer we make is itself a description we can read.
#![no_main]

use std::net::SocketAddr;

use ivr::sip::sdp::{accept_answer, answer, SessionDescription, SessionVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(description) = SessionDescription::parse(text) {
        let printed = description.to_string();
        let again = SessionDescription::parse(&printed);
        assert_eq!(again.as_ref(), Ok(&description), "{printed:?} does not reparse the same");
    }
    for local in ["192.0.2.1:30000", "[2001:db8::1]:30000"] {
        let local: SocketAddr = local.parse().expect("literal address");
        if let Ok((_, ours)) = answer(text, local, &mut SessionVersion::new(1)) {
            assert!(SessionDescription::parse(&ours).is_ok(), "our answer {ours:?} does not parse");
            assert!(accept_answer(&ours).is_ok(), "our answer {ours:?} is not acceptable");
        }
    }
    let _ = accept_answer(text);
});
