//! Listening (in progress).
