//! The hotline server and its command line.
//!
//! - [`gateway`]: the phone gateway: SIP signalling and RTP media, bridged call by call to
//!   the assistant; over the sans-IO cores in [`sip`] and [`rtp`].
//! - [`assistant`]: the conversation side of every call over `MediaGateway.Converse`.
//! - [`services`]: `CaseService`, `DirectoryService`, gRPC health and reflection.
//! - [`serve`]: `ivr serve`: the gRPC and HTTP servers with embedded defaults.
//! - [`chat`]: `ivr chat`: the dialog engine in a terminal.
//! - [`robot`]: `ivr call`: a robot caller that runs a script against the assistant.
//! - [`cli`]: the command line; `bench*`: the measuring commands.
//!
//! `main.rs` only parses arguments and calls into here. WebRTC arrives in a later part.

pub mod assistant;
pub mod bench;
pub mod bench_calls;
pub mod bench_dialogs;
pub mod bench_grammars;
pub mod bench_sip;
pub mod chat;
pub mod cli;
pub mod gateway;
pub mod robot;
pub mod rtp;
pub mod serve;
pub mod services;
pub mod sip;
