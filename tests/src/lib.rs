//! End-to-end tests of the hotline.
//!
//! The tests live in `tests/tests/*.rs` and exercise the real parts a caller meets: Whisper
//! models fetched by `ivr models fetch`, Flite and espeak-ng voices, and (as they arrive) SIP,
//! WebRTC and gRPC peers not written here. They find the models in the cache directory
//! (`IVR_MODELS_DIR`, default `$XDG_CACHE_HOME/ivr/models`); `make test` provisions them first.
//! Nothing depends on this crate.
