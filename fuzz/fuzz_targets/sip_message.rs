//! Any datagram handed to the SIP parser yields a message or an error, never a panic. A
//! message that parses prints to bytes that parse back to the same message, and its typed
//! headers parse or fail cleanly; a failure yields an error response (or none) cleanly. The
//! same bytes as a TCP stream buffer frame or fail cleanly.
#![no_main]

use ivr::sip::message::{error_response, frame, parse, TypedHeaders, MAX_MESSAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(f)) = frame(data) {
        assert!(f.skip + f.len <= data.len(), "frame past the buffer");
    }
    match parse(data) {
        Ok(message) => {
            let _ = message.vias();
            let _ = message.contacts();
            let _ = message.routes();
            let _ = message.record_routes();
            let _ = message.refer_to();
            let _ = message.max_forwards();
            let _ = message.expires();
            let _ = message.retry_after();
            let _ = message.value_params("Event");
            let _ = message.tokens("Supported");
            let printed = message.to_bytes();
            // Printing expands compact names, so a message near the limit may outgrow it.
            if printed.len() <= MAX_MESSAGE {
                let again = parse(&printed)
                    .unwrap_or_else(|e| panic!("printed message does not reparse: {e}"));
                assert_eq!(again, message, "print/parse round trip differs");
            }
        }
        Err(err) => {
            if let Some(resp) = error_response(data, &err) {
                let _ = resp.to_bytes();
            }
        }
    }
});
