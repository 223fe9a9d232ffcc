//! Any text handed to either case-number parser (the registry's and the DTMF grammar's)
//! yields a number or an error, never a panic; a number both accept prints back the same.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let registry = dialogs::registry::CaseNumber::from_str(&text);
    let _ = grammars::dtmf::CaseNumber::parse(&text);
    if let Ok(number) = registry {
        // A valid number reparses from its own display form.
        let shown = number.to_string();
        let again = dialogs::registry::CaseNumber::from_str(&shown);
        assert_eq!(again.ok(), Some(number), "{shown:?} does not reparse");
    }
});
