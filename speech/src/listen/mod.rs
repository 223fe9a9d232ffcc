//! Listening (in progress).

pub mod vad;
