//! Any bytes handed to the WAV reader yield PCM or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = speech::audio::wav::read_bytes(data);
});
