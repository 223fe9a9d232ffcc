//! The profiles' error type. Each variant says whose fault the failure is: the peer's (a
//! caller number that is not a phone number) or the storage underneath. A stored record that
//! cannot be decoded is not an error: profiles and sessions are loss-tolerant, so such a record
//! is treated as absent (and logged).

/// Result alias for profile and session operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a profile or session operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- The peer's fault: the signalled caller number is unusable. ---
    /// The caller number is empty or not a phone number. The offending text is deliberately
    /// not kept, so that the error can be logged without leaking a number.
    #[error("invalid caller number: {reason}")]
    InvalidCallerId {
        /// What is wrong with it.
        reason: &'static str,
    },

    // --- Ours: a record could not be encoded. ---
    /// A record could not be serialised (a bug: every record type is plain data).
    #[error("could not encode a stored record: {0}")]
    Encode(#[from] serde_json::Error),

    // --- The machine's: the sled store failed. ---
    /// sled failed (IO error, disk full, the directory is locked by another process…).
    #[error("profile storage failed: {0}")]
    Storage(#[from] sled::Error),
}
