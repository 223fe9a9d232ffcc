//! The one error type of the `grammars` crate.
//!
//! Variants say whose fault a failure is: the grammar text's (syntax errors and grammars that
//! parse but cannot be used, each naming file, line and column) or the environment's (a
//! grammar file that cannot be read). Nothing in this crate panics on bad input.

use std::fmt;
use std::path::PathBuf;

/// Where in a grammar source something is: origin (usually the file path), 1-based line and
/// 1-based column counted in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file path or another name the caller gave the source.
    pub origin: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters (not bytes).
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- the grammar text is at fault ----
    /// The source does not follow the supported ABNF syntax.
    #[error("{at}: expected {expected}, found {found}")]
    Syntax {
        /// Where the unexpected input starts.
        at: Position,
        /// What the parser expected there.
        expected: String,
        /// What it found instead (`end of input` at the end).
        found: String,
    },
    /// A construct of SRGS ABNF that this subset does not support.
    #[error("{at}: unsupported: {what}")]
    Unsupported {
        /// Where the construct starts.
        at: Position,
        /// The construct.
        what: String,
    },
    /// A rule reference names no rule defined in the grammar.
    #[error("{at}: undefined rule ${name}")]
    UndefinedRule {
        /// Where the reference is.
        at: Position,
        /// The rule name, without `$`.
        name: String,
    },
    /// A rule is defined twice.
    #[error("{at}: rule ${name} is already defined")]
    DuplicateRule {
        /// Where the second definition is.
        at: Position,
        /// The rule name, without `$`.
        name: String,
    },
    /// A rule refers to itself, directly or through other rules; this subset has no recursion
    /// (use repeats instead).
    #[error("{at}: rule ${name} is recursive")]
    RecursiveRule {
        /// Where the rule is defined.
        at: Position,
        /// The rule name, without `$`.
        name: String,
    },
    /// A `mode dtmf` grammar has a token that is not a key (`0`-`9`, `*`, `#`, `A`-`D`).
    #[error("{at}: {token:?} is not a DTMF key")]
    NotDtmfKey {
        /// Where the token is.
        at: Position,
        /// The token.
        token: String,
    },
    /// A grammar without rules.
    #[error("{at}: the grammar defines no rule")]
    NoRules {
        /// The end of the source.
        at: Position,
    },

    // ---- the environment is at fault ----
    /// Reading a grammar file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
