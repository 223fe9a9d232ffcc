//! The gRPC contract of the hotline, `ivr.v1`.
//!
//! This crate owns the `.proto` files under `proto/ivr/v1/` and the tonic/prost code generated
//! from them at build time (by protox: no system `protoc`):
//!
//! - `MediaGateway.Converse` (`media.proto`): one bidirectional stream per call between a
//!   media gateway (SIP, WebRTC, another platform) and the assistant. Read the file's header
//!   for the flow-control rules (audio ahead of real time, playout marks, barge-in).
//! - `CaseService` (`cases.proto`): staff's view of the case registry.
//! - `DirectoryService` (`directory.proto`): the public service directory.
//!
//! [`FILE_DESCRIPTOR_SET`] is the encoded descriptor set, for gRPC server reflection. The
//! crate holds no logic.

#![allow(missing_docs, clippy::all)]

/// `ivr.v1`: messages, clients (`*_client`) and servers (`*_server`).
pub mod v1 {
    tonic::include_proto!("ivr.v1");
}

/// The encoded `FileDescriptorSet` of `ivr.v1`, for reflection services.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ivr_v1_descriptor.bin"));
