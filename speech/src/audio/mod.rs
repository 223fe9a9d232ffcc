//! Telephone audio plumbing: PCM frames with explicit rates, G.711 µ-law/A-law, resampling
//! between 8, 16, 22.05 and 48 kHz (and any other rate), and WAV files.
//!
//! | module | owns | IO / clock / threads |
//! |---|---|---|
//! | [`pcm`] | [`Pcm`] (mono `f32` samples) and [`SampleRate`] | none |
//! | [`g711`] | µ-law and A-law encoding and decoding (ITU-T G.711) | none |
//! | [`resample`] | one-shot and streaming rate conversion, time-aligned | none |
//! | [`wav`] | reading any common WAV to mono [`Pcm`], writing 16-bit mono WAVs | files in `read`/`write` only |
//!
//! Pure computation except [`wav`]'s file functions. No clock, no threads. Typical paths: a
//! caller's RTP payload → [`g711::Law::decode`] (8 kHz) → [`resample::Resampler`] (16 kHz)
//! → listener and Whisper; TTS output → [`wav::read_bytes`] → [`resample::resample`] (8 kHz)
//! → [`g711::Law::encode`] → RTP.

pub mod g711;
pub mod pcm;
pub mod resample;
pub mod wav;

pub use pcm::{Pcm, SampleRate};
