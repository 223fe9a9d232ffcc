//! Listening: from the caller's audio to "they said this" or "they said nothing", and
//! "they are talking over the prompt".
//!
//! | module | owns |
//! |---|---|
//! | [`vad`] | voice activity detection per 16 ms frame (the `earshot` network plus an energy gate), and the [`contains_speech`] gate in front of speech-to-text |
//! | [`endpoint`] | the [`Endpointer`]: frames with speech verdicts in, utterances, pauses and no-input out |
//! | [`barge_in`] | the [`BargeIn`] detector used while a prompt plays |
//! | [`listener`] | the [`Listener`] that wires the three for one call |
//!
//! Everything here is sans-IO: no sockets, no files, no threads, and no clock. Time is an
//! input (`now: Instant` on every call); timers come out of `poll_timeout()` and go back in
//! through `handle_timeout(now)`; results come out of `poll_event()`. A call's task owns its
//! [`Listener`] by `&mut` and drives it like this:
//!
//! ```text
//! on audio (16 kHz, first sample at t):  listener.handle_audio(t, &pcm)?
//! on prompt start / end:                 listener.prompt_playing(now, true / false)
//! when the dialog asks for input:        listener.listen(now, EndpointConfig::menu())?
//! on '#':                                listener.finish(now)
//! after each of these:                   while let Some(e) = listener.poll_event() { .. }
//!                                        sleep until listener.poll_timeout() or more audio,
//!                                        then listener.handle_timeout(now)
//! ```
//!
//! Audio is 16 kHz mono [`crate::Pcm`]; narrowband telephone audio is resampled before it
//! gets here. Durations are audio time; pads are exact in samples.

pub mod barge_in;
pub mod endpoint;
pub mod listener;
pub mod vad;

#[cfg(test)]
mod test_audio;

pub use barge_in::{BargeIn, BargeInConfig, BargeInEvent};
pub use endpoint::{EndReason, EndpointConfig, EndpointEvent, Endpointer, Utterance};
pub use listener::{ListenEvent, Listener};
pub use vad::{contains_speech, speech_ratio, Vad, VadConfig, VadDecision};
