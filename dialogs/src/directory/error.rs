//! The directory's error type. A catalog that cannot be read is the operator's fault (a missing
//! file, a malformed line); every line error names the file, the line and what is wrong.

use std::path::PathBuf;

/// Result alias for directory operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything loading a service catalog can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- The operator's fault: the configured catalog is not usable. ---
    /// A line of the catalog is malformed.
    #[error("{origin}:{line}: {problem}")]
    Line {
        /// The file (or other origin) the text came from.
        origin: String,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// The catalog has a header but no services, or no header at all.
    #[error("{origin}: the catalog lists no services")]
    Empty {
        /// The file (or other origin) the text came from.
        origin: String,
    },
    /// The catalog file could not be read.
    #[error("cannot read service catalog {path}: {source}")]
    Io {
        /// The file that was opened.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}

/// What is wrong with one catalog line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// The header line is not the one this program reads.
    #[error("unexpected header, expected the columns: {expected}")]
    BadHeader {
        /// The expected columns, tab-separated.
        expected: String,
    },
    /// The line has the wrong number of tab-separated columns.
    #[error("expected {expected} tab-separated columns, found {found}")]
    ColumnCount {
        /// Columns per line.
        expected: usize,
        /// Columns on this line.
        found: usize,
    },
    /// A required column is empty.
    #[error("column {column} is empty")]
    EmptyColumn {
        /// The column's name.
        column: &'static str,
    },
    /// The id is not a positive integer.
    #[error("bad service id {0:?}, expected a positive integer")]
    BadId(String),
    /// The id was already used on an earlier line.
    #[error("duplicate service id {id}, first used on line {first_line}")]
    DuplicateId {
        /// The repeated id.
        id: u32,
        /// The line that used it first.
        first_line: usize,
    },
    /// The topic is not one of the menu's topics (1–5).
    #[error("unknown topic {0:?}, expected 1 to 5")]
    UnknownTopic(String),
    /// A channel is not one of the letters O, K, F.
    #[error("unknown channel {0:?}, expected O (online), K (kiosk) or F (front office)")]
    UnknownChannel(String),
    /// The same channel is listed twice.
    #[error("channel {0:?} is listed twice")]
    DuplicateChannel(String),
    /// The fee is neither `free`, an amount in digits, nor `unknown`.
    #[error("bad fee {0:?}, expected \"free\", an amount in digits or \"unknown\"")]
    BadFee(String),
    /// A verification mark is not one of V, V-old, U, 3P, `-`.
    #[error("bad verification mark {value:?} in column {column}, expected V, V-old, U, 3P or -")]
    BadMark {
        /// The column's name.
        column: &'static str,
        /// What it held.
        value: String,
    },
    /// One language of a bilingual text is `unknown` and the other is not.
    #[error("columns {column}_en and {column}_mn must both be known or both be \"unknown\"")]
    HalfUnknown {
        /// The columns' common prefix.
        column: &'static str,
    },
}
