//! SIP (RFC 3261): the signalling half of the phone gateway, as sans-IO cores.
//!
//! - [`message`], [`uri`], [`header`]: the message model, its parser (datagrams and TCP
//!   framing) and its printer.
//! - [`transaction`]: the transaction layer (RFC 3261 §17 with RFC 6026's Accepted state):
//!   retransmissions, timers A–K and L, response matching.
//! - [`ua`]: the user agent core: dialogs, calls in and out, CANCEL, re-INVITE, INFO, REFER.
//! - [`sdp`]: session descriptions and the offer/answer rules for G.711 and telephone-event.
//! - [`auth`]: digest authentication; [`access`]: allow-list, rate limits, the call limit.
//!
//! Nothing here opens a socket or reads a clock: time is an input (`now: Instant`) and what
//! to send is an output. The tokio drivers live in [`crate::gateway`].

pub mod access;
pub mod auth;
pub mod header;
pub mod message;
pub mod sdp;
pub mod transaction;
pub mod ua;
pub mod uri;
