//! Telephone audio plumbing: PCM frames with explicit rates, G.711 µ-law/A-law, resampling
//! between 8, 16, 22.05 and 48 kHz, and WAV files.
//!
//! Pure computation except [`wav`]'s file functions. No clock, no threads.

pub mod g711;
pub mod pcm;
pub mod resample;
pub mod wav;

pub use pcm::{Pcm, SampleRate};
