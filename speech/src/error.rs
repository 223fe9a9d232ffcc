//! The one error type of the `speech` crate.
//!
//! Variants say whose fault a failure is: the input's (a file that is not a usable WAV, a
//! model file that is not a model), the environment's (a program or model that is missing, an
//! IO failure), or the caller of the API (`InvalidArgument`). Nothing in this crate panics on
//! bad input; it returns one of these.

use std::path::PathBuf;

/// Everything that can go wrong in the speech engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- API misuse (the caller of this crate is at fault) ----
    /// An argument is out of range or inconsistent (a zero sample rate, mismatched rates).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    // ---- IO (the environment is at fault) ----
    /// Reading or writing a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },

    // ---- audio ----
    /// A file is not a WAV this engine can use.
    #[error("{}: not a usable WAV file: {reason}", path.display())]
    Wav {
        /// The offending file (or `<memory>` for in-memory data).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The resampler refused its input or configuration.
    #[error("resampling failed: {0}")]
    Resample(String),

    // ---- models ----
    /// A model is not known by that name and is not a path to a model file.
    #[error("unknown model {name:?}: {hint}")]
    UnknownModel {
        /// The name that was asked for.
        name: String,
        /// What the caller can do about it.
        hint: String,
    },
    /// A model file or model directory is malformed.
    #[error("{}: not a usable model: {reason}", path.display())]
    BadModel {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A model could not be obtained (no source reachable, download or checksum failed).
    #[error("could not fetch model {name:?}: {reason}")]
    Fetch {
        /// The model's name.
        name: String,
        /// Why.
        reason: String,
    },

    // ---- speech-to-text ----
    /// whisper.cpp failed while transcribing.
    #[error("transcription failed: {0}")]
    Transcribe(String),

    // ---- text-to-speech ----
    /// An external program this engine needs is not installed.
    #[error("{program} is not installed or not runnable ({reason}); `make run` installs it")]
    MissingProgram {
        /// The program's name, e.g. `flite`.
        program: String,
        /// What happened when it was started.
        reason: String,
    },
    /// A synthesis engine failed or produced unusable audio.
    #[error("{engine} could not speak {text:?}: {reason}")]
    Synthesis {
        /// `flite` or `espeak-ng`.
        engine: &'static str,
        /// The text (shortened) it was asked to speak.
        text: String,
        /// Why it failed.
        reason: String,
    },
    /// No voice is configured or installed for a locale or name.
    #[error("no voice {voice:?} for locale {locale:?}")]
    UnknownVoice {
        /// The locale asked for.
        locale: String,
        /// The voice asked for.
        voice: String,
    },
    /// A prompt pack directory is malformed.
    #[error("{}: bad prompt pack: {reason}", path.display())]
    PromptPack {
        /// The pack directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The rendered-prompt cache failed (it is loss-tolerant: callers may fall back to TTS).
    #[error("prompt cache: {0}")]
    Cache(String),
}

impl Error {
    /// Wraps an IO error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
