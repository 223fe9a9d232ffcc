//! End-to-end tests of the hotline.
//!
//! The tests live in `tests/tests/*.rs` and exercise the real parts a caller meets: Whisper
//! models fetched by `ivr models fetch`, Flite and espeak-ng voices, the `ivr` binary, and (as
//! they arrive) SIP, WebRTC and gRPC peers not written here. `make test` provisions the models
//! first; a test that finds no model fails and says how to fetch it, it never skips.
//! Nothing depends on this crate; this library only holds the tests' shared helpers.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use speech::models::ModelStore;
use speech::stt::{WhisperConfig, WhisperTranscriber, WindowPolicy};

/// The model cache the tests use (`IVR_MODELS_DIR`, else the `ivr` default).
pub fn model_store() -> ModelStore {
    ModelStore::new(ivr::cli::models_dir(None))
}

/// The path of a fetched model, or a panic that says how to fetch it.
pub fn model_path(name: &str) -> PathBuf {
    model_store().path_of(name).unwrap_or_else(|e| {
        panic!("model {name} is not available ({e}); run `make test` or `ivr models fetch {name}`")
    })
}

/// A transcriber for `name` with the production settings, loaded once per test binary.
pub fn whisper(name: &'static str) -> Arc<WhisperTranscriber> {
    type Loaded = Vec<(String, Arc<WhisperTranscriber>)>;
    static CACHE: OnceLock<std::sync::Mutex<Loaded>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().expect("model cache lock");
    if let Some((_, t)) = cache.iter().find(|(n, _)| n == name) {
        return t.clone();
    }
    let t = Arc::new(
        WhisperTranscriber::load(&model_path(name), WhisperConfig::default())
            .unwrap_or_else(|e| panic!("loading {name}: {e}")),
    );
    cache.push((name.to_string(), t.clone()));
    t
}

/// A transcriber that always encodes the full 30 s window (the accuracy reference).
pub fn whisper_full_window(name: &str) -> WhisperTranscriber {
    let config = WhisperConfig {
        window: WindowPolicy::Full,
        vad_gate: false,
        ..WhisperConfig::default()
    };
    WhisperTranscriber::load(&model_path(name), config)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}
