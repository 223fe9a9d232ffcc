//! The phone gateway's tokio drivers (in progress).
