//! Hearing: the [`Transcriber`] trait and its Whisper implementation.
//!
//! A transcriber takes one utterance (16 kHz mono [`Pcm`], as cut by the
//! [`endpointer`](crate::listen)) and returns a [`Transcript`]: the words with a confidence, or
//! an explicit [`Outcome::NothingHeard`] — silence, line noise or a hallucination are never
//! turned into words ("Thank you." on an empty line is a classic Whisper failure).
//!
//! The transcriber does no IO beyond loading the model once, and keeps no state between calls
//! (no carried context: what one caller said never primes what the next one is heard to say).
//! [`WhisperTranscriber`] runs whisper.cpp on the calling thread, so callers in async code run
//! it on a blocking thread; it is `Send + Sync` and shared by every call.

mod grammar;
mod text;
mod whisper;

use std::time::Duration;

pub use grammar::{DecodingGrammar, GrammarElement};
pub use text::{normalize_words, word_error_rate, WordErrors};
pub use whisper::{WhisperConfig, WhisperTranscriber, WindowPolicy};

use crate::{Pcm, Result};

/// Turns an utterance into words.
pub trait Transcriber: Send + Sync {
    /// Transcribes `audio` (16 kHz mono; other rates are refused with
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument)).
    fn transcribe(&self, audio: &Pcm, request: &SttRequest) -> Result<Transcript>;
}

/// The language to hear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SttLanguage {
    /// English.
    #[default]
    En,
    /// Mongolian (needs a multilingual model).
    Mn,
    /// Let the model detect the language (multilingual models only).
    Auto,
}

impl SttLanguage {
    /// Whisper's language code.
    pub fn code(self) -> &'static str {
        match self {
            SttLanguage::En => "en",
            SttLanguage::Mn => "mn",
            SttLanguage::Auto => "auto",
        }
    }
}

impl From<crate::Locale> for SttLanguage {
    fn from(locale: crate::Locale) -> Self {
        match locale {
            crate::Locale::En => SttLanguage::En,
            crate::Locale::Mn => SttLanguage::Mn,
        }
    }
}

impl std::str::FromStr for SttLanguage {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(SttLanguage::Auto),
            other => other.parse::<crate::Locale>().map(SttLanguage::from),
        }
    }
}

/// Who is waiting for a transcript. Menu answers are interactive: a caller is waiting in
/// silence for the next prompt. A recorded complaint can wait behind them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// Transcripts nobody is waiting on live (recorded free speech).
    Background,
    /// A caller is waiting for the answer.
    #[default]
    Interactive,
}

/// What to listen for in one utterance.
#[derive(Clone, Debug, Default)]
pub struct SttRequest {
    /// The language to hear.
    pub language: SttLanguage,
    /// Phrases the caller is likely to say at this prompt ("operator", "complaint"); they go to
    /// Whisper as its initial prompt, which biases its vocabulary toward them.
    pub hints: Vec<String>,
    /// Constrain decoding to a grammar (menu answers).
    pub grammar: Option<DecodingGrammar>,
    /// Scheduling priority among concurrent calls.
    pub priority: Priority,
}

impl SttRequest {
    /// A request for a digit string (a reference or phone number said aloud): English digit
    /// hints and the digit grammar, so "two five eight" cannot come out as "to 5.8".
    pub fn digits(language: SttLanguage) -> Self {
        SttRequest {
            language,
            hints: vec!["4 7 1 0 3 9 5 8 2 6".to_string()],
            grammar: Some(DecodingGrammar::digits()),
            priority: Priority::Interactive,
        }
    }
}

/// Whether words were heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Words were heard; see [`Transcript::text`].
    Heard,
    /// Nothing usable was heard.
    NothingHeard(NothingHeard),
}

/// Why nothing was heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NothingHeard {
    /// The voice activity detector found no speech: Whisper was not run.
    NoSpeech,
    /// Whisper judged the audio to hold no speech (its no-speech probability was high and its
    /// words unlikely).
    NoSpeechProbability,
    /// Whisper produced only a known silence hallucination ("you", "Thank you.") or an empty
    /// or looping text even after a retry with the full window.
    Hallucination,
}

/// What was heard in one utterance.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// Whether words were heard.
    pub outcome: Outcome,
    /// The words, trimmed; empty when nothing was heard.
    pub text: String,
    /// How sure the recogniser is of `text`, in `[0, 1]`: the geometric mean of the text
    /// tokens' probabilities. Zero when nothing was heard.
    pub confidence: f32,
    /// Whisper's probability that the audio holds no speech (0 when Whisper did not run).
    pub no_speech_probability: f32,
    /// The language Whisper decoded in.
    pub language: String,
    /// Timings and what the decoder did.
    pub timings: SttTimings,
}

impl Transcript {
    /// True when words were heard.
    pub fn is_heard(&self) -> bool {
        self.outcome == Outcome::Heard
    }

    pub(crate) fn nothing(reason: NothingHeard, audio: Duration, language: &str) -> Self {
        Transcript {
            outcome: Outcome::NothingHeard(reason),
            text: String::new(),
            confidence: 0.0,
            no_speech_probability: 0.0,
            language: language.to_string(),
            timings: SttTimings {
                audio,
                ..SttTimings::default()
            },
        }
    }
}

/// Timings of one transcription.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SttTimings {
    /// Length of the audio.
    pub audio: Duration,
    /// Wall time spent transcribing (all attempts, excluding time queued for a decoder).
    pub processing: Duration,
    /// Time spent waiting for a free decoder state.
    pub queued: Duration,
    /// Encoder context of the last attempt, in 20 ms frames (1500 = the full 30 s window).
    pub audio_ctx: u32,
    /// Decoding attempts (2 when a trimmed window looked wrong and the full window was used).
    pub attempts: u8,
}

impl SttTimings {
    /// Processing time divided by audio length.
    pub fn real_time_factor(&self) -> f64 {
        if self.audio.is_zero() {
            return 0.0;
        }
        self.processing.as_secs_f64() / self.audio.as_secs_f64()
    }
}
