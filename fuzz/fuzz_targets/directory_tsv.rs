//! Any text handed to the service-directory loader yields a directory or an error, never a
//! panic.
#![no_main]

use dialogs::directory::Directory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Directory::parse(&text, "fuzz");
});
