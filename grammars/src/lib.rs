//! Grammars of the hotline's menus: what a caller's words or keys mean.
//!
//! This crate owns the grammar files per locale (`grammars/en/`, `grammars/mn/`, one voice
//! grammar and one `*_dtmf` grammar per menu, plus `global`, `emergency`), a parser for a
//! practical subset of W3C SRGS 1.0 ABNF ([`parse`], documented in its module), DTMF
//! built-ins and case numbers with a Damm check digit ([`dtmf`]), tolerant matching of what the
//! recogniser heard with a confidence ([`Grammar::recognize`]), and the exports the recogniser
//! uses: hint phrases ([`hints`]) and whisper.cpp GBNF grammars ([`gbnf`], [`compile_gbnf`]).
//!
//! It does no IO beyond reading grammar files ([`Grammar::load`], [`Grammar::load_dir`]),
//! never reads the clock and starts no threads. Everything is deterministic.
//!
//! # Driving it
//!
//! ```
//! use grammars::{Decision, Grammar, MatchOptions, Thresholds};
//!
//! let menu = Grammar::parse(
//!     "#ABNF 1.0 UTF-8;\nlanguage en;\n\
//!      public $menu = (information | one) {out = \"info\"} | (operator | zero) {out = \"operator\"};",
//!     "menu.abnf",
//! )?;
//! // The recogniser heard "Operater." with confidence 0.9.
//! let results = menu.recognize("Operater.", 0.9, &MatchOptions::default());
//! let best = &results[0];
//! assert_eq!(best.value.as_text(), Some("operator"));
//! assert!(best.match_score < 1.0); // a near miss, not an exact parse
//! assert_ne!(best.decide(&Thresholds::default()), Decision::Reject);
//! # Ok::<(), grammars::Error>(())
//! ```
//!
//! Scores and confidences are in [0, 1]. DTMF input is a string of keys (`"12#"`).
//!
//! # Errors
//!
//! One [`Error`]; every error about a grammar names its origin, line and column (1-based,
//! columns in characters) and what was expected. Nothing here panics on input.

pub mod ast;
mod builtin;
pub mod dtmf;
mod error;
mod export;
mod grammar;
pub mod lang;
mod parse;

pub use builtin::{builtin, BUILTIN_FILES};
pub use error::{Error, Position, Result};
pub use export::{compile_gbnf, gbnf, hints, Gbnf, GrammarElement, HINT_LIMIT};
pub use grammar::{
    recognize_all, Decision, Grammar, MatchOptions, MatchResult, Phrase, PhraseWord, Semantic,
    Thresholds, MAX_PHRASE_WORDS, MAX_REFERENCE_DEPTH, MAX_RULES, PHRASE_LIMIT,
    UNBOUNDED_REPEAT_EXTRA,
};
pub use lang::Lang;
pub use parse::{parse, MAX_NESTING, MAX_REPEAT};

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::ast::Mode;

    fn crate_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn locale(tag: &str) -> Vec<Grammar> {
        Grammar::load_dir(&crate_dir().join(tag)).expect("every grammar file loads")
    }

    fn by_name<'a>(grammars: &'a [Grammar], name: &str) -> &'a Grammar {
        grammars
            .iter()
            .find(|g| Path::new(g.origin()).file_stem().is_some_and(|s| s == name))
            .unwrap_or_else(|| panic!("grammar {name} exists"))
    }

    fn values(g: &Grammar) -> BTreeSet<String> {
        g.phrases().iter().map(|p| p.value.to_string()).collect()
    }

    fn meaning(g: &Grammar, heard: &str) -> Option<String> {
        g.recognize(heard, 1.0, &MatchOptions::default())
            .first()
            .map(|r| r.value.to_string())
    }

    const FILES: [&str; 17] = [
        "after_service",
        "after_service_dtmf",
        "case_type",
        "case_type_dtmf",
        "emergency",
        "global",
        "global_dtmf",
        "info_topics",
        "info_topics_dtmf",
        "language",
        "language_dtmf",
        "main_menu",
        "main_menu_dtmf",
        "skip",
        "skip_dtmf",
        "yes_no",
        "yes_no_dtmf",
    ];

    #[test]
    fn every_grammar_file_loads_in_both_locales() {
        for tag in ["en", "mn"] {
            let grammars = locale(tag);
            let names: Vec<String> = grammars
                .iter()
                .filter_map(|g| {
                    Path::new(g.origin())
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                })
                .collect();
            assert_eq!(names, FILES, "files of {tag}");
            for g in &grammars {
                let dtmf = g.origin().ends_with("_dtmf.abnf");
                assert_eq!(g.mode() == Mode::Dtmf, dtmf, "{}", g.origin());
                if !dtmf {
                    assert_eq!(g.lang().tag(), tag, "{}", g.origin());
                }
                assert!(g.phrases_complete(), "{}", g.origin());
                assert!(!g.phrases().is_empty(), "{}", g.origin());
                assert!(!gbnf(g).is_empty());
            }
        }
    }

    #[test]
    fn locales_and_modes_agree_on_meanings() {
        let (en, mn) = (locale("en"), locale("mn"));
        for name in FILES {
            assert_eq!(
                values(by_name(&en, name)),
                values(by_name(&mn, name)),
                "{name}"
            );
            if let Some(voice) = name.strip_suffix("_dtmf") {
                // Every key has a spoken equivalent ("help" and "more time" have no key).
                assert!(
                    values(by_name(&en, voice)).is_superset(&values(by_name(&en, name))),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn english_menu_vectors() {
        let en = locale("en");
        let cases = [
            ("main_menu", "Two.", "file_case"),
            ("main_menu", " to", "file_case"),
            (
                "main_menu",
                "I want to file a complaint please",
                "file_case",
            ),
            ("main_menu", "Information.", "info"),
            ("case_type", "It's a complaint.", "complaint"),
            ("case_type", "complain", "complaint"),
            ("case_type", "thank you", "thanks"),
            ("info_topics", "Um, the ID card", "civil_registration"),
            ("info_topics", "5", "other"),
            ("global", "Operater", "operator"),
            ("global", "Can you repeat that please?", "repeat"),
            ("global", "more time", "more_time"),
            ("global", "slow down", "slower"),
            ("yes_no", "Yeah, that's right.", "yes"),
            ("yes_no", "Nope.", "no"),
            ("language", "English please", "en"),
            ("language", "монгол", "mn"),
            ("emergency", "my husband is not breathing", "emergency"),
        ];
        for (grammar, heard, want) in cases {
            assert_eq!(
                meaning(by_name(&en, grammar), heard).as_deref(),
                Some(want),
                "{grammar}: {heard:?}"
            );
        }
        assert_eq!(
            meaning(by_name(&en, "emergency"), "I have a complaint about taxes"),
            None
        );
        assert_eq!(meaning(by_name(&en, "main_menu"), "weather forecast"), None);
    }

    #[test]
    fn mongolian_menu_vectors() {
        let mn = locale("mn");
        let cases = [
            ("main_menu", "Хоёр.", "file_case"),
            ("main_menu", "хоёрыг", "file_case"),
            ("main_menu", "Ээ, гомдол", "file_case"),
            ("case_type", "санал хүсэлт", "suggestion"),
            ("case_type", "талархал", "thanks"),
            ("info_topics", "Татвар.", "tax"),
            ("info_topics", "тэтгэвэр", "social_insurance"),
            ("global", "Ажилтантай ярих", "operator"),
            ("global", "Дахин хэлнэ үү", "repeat"),
            ("global", "тэг", "operator"),
            ("yes_no", "Тийм ээ", "yes"),
            ("yes_no", "үгүй", "no"),
            ("language", "English", "en"),
            ("emergency", "түргэн тусламж дуудаач", "emergency"),
        ];
        for (grammar, heard, want) in cases {
            assert_eq!(
                meaning(by_name(&mn, grammar), heard).as_deref(),
                Some(want),
                "{grammar}: {heard:?}"
            );
        }
    }

    #[test]
    fn keypad_vectors() {
        for tag in ["en", "mn"] {
            let g = locale(tag);
            assert_eq!(
                meaning(by_name(&g, "main_menu_dtmf"), "2").as_deref(),
                Some("file_case")
            );
            assert_eq!(
                meaning(by_name(&g, "global_dtmf"), "*").as_deref(),
                Some("back")
            );
            assert_eq!(
                meaning(by_name(&g, "global_dtmf"), "9").as_deref(),
                Some("repeat")
            );
            assert_eq!(meaning(by_name(&g, "info_topics_dtmf"), "6"), None);
            assert_eq!(
                meaning(by_name(&g, "yes_no_dtmf"), "1").as_deref(),
                Some("yes")
            );
        }
    }

    #[test]
    fn global_and_menu_grammars_together() {
        let en = locale("en");
        let active = [
            by_name(&en, "emergency"),
            by_name(&en, "case_type"),
            by_name(&en, "global"),
        ];
        let r = recognize_all(&active, "operator", 0.9, &MatchOptions::default());
        assert_eq!(r[0].value.as_text(), Some("operator"));
        assert!(r[0].grammar.ends_with("global.abnf"));
        let r = recognize_all(
            &active,
            "I need an ambulance",
            0.9,
            &MatchOptions::default(),
        );
        assert_eq!(r[0].value.as_text(), Some("emergency"));
        let h = hints(&active);
        assert!(h.contains(&"complaint".to_string()) && h.contains(&"operator".to_string()));
    }

    #[test]
    fn broken_testdata_files_report_their_positions() {
        let dir = crate_dir().join("testdata");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("testdata exists") {
            let path = entry.expect("readable entry").path();
            let src = std::fs::read_to_string(&path).expect("readable file");
            let Some(want) = src.lines().find_map(|l| l.strip_prefix("// expect: ")) else {
                continue;
            };
            let origin = format!(
                "testdata/{}",
                path.file_name().expect("a file").to_string_lossy()
            );
            let err = Grammar::parse(&src, &origin).expect_err("broken grammar");
            assert_eq!(err.to_string(), want);
            checked += 1;
        }
        assert_eq!(checked, 5);
    }

    #[test]
    fn truncated_and_damaged_files_never_panic() {
        for file in [
            "en/case_type.abnf",
            "mn/global.abnf",
            "testdata/case_request.abnf",
        ] {
            let src = std::fs::read_to_string(crate_dir().join(file)).expect("readable");
            // Every third character keeps the test quick; the files mix ASCII and Cyrillic.
            let cuts: Vec<usize> = src.char_indices().map(|(i, _)| i).step_by(3).collect();
            for &cut in &cuts {
                // A prefix, and the source with one character removed.
                let prefix = &src[..cut];
                let mut damaged = src.clone();
                damaged.remove(cut);
                for text in [prefix, damaged.as_str()] {
                    if let Ok(g) = Grammar::parse(text, file) {
                        let _ = g.recognize("a complaint, please", 0.7, &MatchOptions::default());
                        let _ = compile_gbnf(&g);
                    }
                }
            }
        }
    }

    #[test]
    fn testdata_request_fills_slots() {
        let g = Grammar::load(&crate_dir().join("testdata/case_request.abnf")).expect("loads");
        let r = &g.recognize(
            "I want to file a complaint about my pension",
            0.8,
            &MatchOptions::default(),
        )[0];
        assert_eq!(
            r.value.slot("kind").and_then(Semantic::as_text),
            Some("complaint")
        );
        assert_eq!(
            r.value.slot("topic").and_then(Semantic::as_text),
            Some("social_insurance")
        );
        let r = &g.recognize(
            "petition regarding the birth certificate",
            0.8,
            &MatchOptions::default(),
        )[0];
        assert_eq!(
            r.value.to_string(),
            "{kind: petition, topic: civil_registration}"
        );
    }
}
