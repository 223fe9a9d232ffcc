//! The registry's error type. Each variant says whose fault the failure is: the caller's (an
//! unknown number), the code driving the registry (a transition the case's state forbids), the
//! operator's (a file that is not a registry database) or the storage underneath.

use std::path::PathBuf;

use super::{CaseNumber, CaseStatus};

/// Result alias for registry operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a registry operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- The caller's fault: tell them, ask again. ---
    /// No case carries this number (the number is well-formed; it was never issued here).
    #[error("no case has number {0}")]
    UnknownCase(CaseNumber),

    // --- The driving code's fault: the case's state forbids the request. ---
    /// The case cannot move from its current status to the requested one (for example a closed
    /// case cannot be answered; `Extended` is reached only through `extend`).
    #[error("case {number} cannot go from {from:?} to {to:?}")]
    InvalidTransition {
        /// The case.
        number: CaseNumber,
        /// Its status now.
        from: CaseStatus,
        /// The status asked for.
        to: CaseStatus,
    },
    /// The deadline of this case was already extended; the law allows one extension.
    #[error("the deadline of case {0} was already extended once")]
    AlreadyExtended(CaseNumber),
    /// A recording path that is not UTF-8 cannot be stored portably.
    #[error("recording path {0:?} is not valid UTF-8")]
    RecordingPathNotUtf8(PathBuf),
    /// Adding the deadline to the receipt date leaves the supported calendar range.
    #[error("the due date falls outside the supported calendar")]
    DateOutOfRange,

    // --- The operator's fault: the configured file is not a usable registry. ---
    /// The file exists but is not an SQLite database (or is damaged beyond SQLite's checks).
    #[error("{path} is not a case registry database (not SQLite, or damaged)")]
    NotADatabase {
        /// The file that was opened.
        path: PathBuf,
    },
    /// The database was written by a newer version of this program.
    #[error("registry schema version {found} is newer than this program supports ({supported})")]
    SchemaTooNew {
        /// Version recorded in the file.
        found: i64,
        /// Newest version this program knows.
        supported: i64,
    },
    /// SQLite would not put the file in WAL mode (the file system does not support it, e.g.
    /// some network file systems); the registry refuses to run without it.
    #[error("the registry needs WAL journal mode, the file stays in {mode:?}")]
    WalUnavailable {
        /// The journal mode SQLite reported instead.
        mode: String,
    },
    /// A stored row holds a value this program cannot read back (edited by hand, or damaged).
    #[error("stored case data is corrupt: {0}")]
    CorruptRecord(String),

    // --- Storage or exhaustion: ours or the machine's. ---
    /// Every attempt to draw an unused number collided; the number space is nearly full or the
    /// RNG is broken.
    #[error("could not draw an unused case number after {attempts} attempts")]
    NumbersExhausted {
        /// How many numbers were tried.
        attempts: u32,
    },
    /// SQLite failed (disk full, IO error, locked by another process…).
    #[error("case storage failed: {0}")]
    Storage(#[from] rusqlite::Error),
}
