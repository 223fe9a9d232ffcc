//! Any text handed to the ABNF grammar parser yields a grammar or an error, never a panic;
//! a grammar that parses can be matched against an utterance and exported to GBNF.
#![no_main]

use grammars::{Grammar, MatchOptions};
use libfuzzer_sys::fuzz_target;

/// A fixed utterance exercising words, digits and filler.
const HEARD: &str = "um I would like to check case number one two three four five please";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(grammar) = Grammar::parse(&text, "fuzz") {
        let _ = grammar.recognize(HEARD, 0.9, &MatchOptions::default());
        let _ = grammar.recognize("1 2 3 #", 0.5, &MatchOptions::default());
        let _ = grammars::gbnf(&grammar);
    }
});
