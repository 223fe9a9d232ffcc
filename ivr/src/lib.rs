//! The hotline server and its command line.
//!
//! Today this crate holds the command line's subcommands over the speech engine
//! ([`cli`]); the SIP/RTP gateway, the assistant, WebRTC and HTTP arrive in later parts.
//! `main.rs` only parses arguments and calls into here.

pub mod bench;
pub mod bench_dialogs;
pub mod bench_grammars;
pub mod chat;
pub mod cli;
pub mod robot;
