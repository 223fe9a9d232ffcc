//! Grammars of the hotline's menus.
pub mod ast;
pub mod dtmf;
mod error;
mod grammar;
pub mod lang;
mod parse;
pub use error::{Error, Position, Result};
pub use grammar::{
    recognize_all, Decision, Grammar, MatchOptions, MatchResult, Phrase, PhraseWord, Semantic,
    Thresholds, PHRASE_LIMIT, UNBOUNDED_REPEAT_EXTRA,
};
pub use parse::parse;
