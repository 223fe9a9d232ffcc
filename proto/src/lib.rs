//! The gRPC contract of the hotline, `ivr.v1`.
//!
//! This crate will own the `.proto` files under `proto/ivr/v1/` and the tonic/prost code
//! generated from them: `MediaGateway.Converse` (one bidirectional stream per call between a
//! media gateway and the assistant), `CaseService` and `DirectoryService`. It holds no logic.
//! Nothing is defined yet: the contract arrives with the assistant.
