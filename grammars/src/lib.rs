//! Grammars of the hotline's menus.
pub mod ast;
pub mod dtmf;
mod error;
mod export;
mod grammar;
pub mod lang;
mod parse;
pub use error::{Error, Position, Result};
pub use export::{compile_gbnf, gbnf, hints, Gbnf, GrammarElement, HINT_LIMIT};
pub use grammar::{
    recognize_all, Decision, Grammar, MatchOptions, MatchResult, Phrase, PhraseWord, Semantic,
    Thresholds, PHRASE_LIMIT, UNBOUNDED_REPEAT_EXTRA,
};
pub use parse::parse;
