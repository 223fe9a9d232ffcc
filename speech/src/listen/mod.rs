//! Listening (in progress).

pub mod endpoint;
pub mod vad;
