//! RTP media (RFC 3550) for the phone gateway, as sans-IO cores.
//!
//! | module | owns |
//! |---|---|
//! | [`packet`] | the RTP fixed header (RFC 3550 §5.1): parse and write |
//! | [`rtcp`] | RTCP SR, RR, SDES CNAME and BYE (RFC 3550 §6.4–6.6); rtcp-mux demultiplexing (RFC 5761 §4) |
//! | [`session`] | [`session::RtpSender`] (SSRC, sequence, timestamps, marker) and [`session::RtpReceiver`] (RFC 3550 A.1/A.3/A.8 statistics), [`session::RtcpReporter`] (reports every ~5 s) |
//! | [`jitter`] | the adaptive jitter buffer with loss concealment |
//! | [`dtmf`] | RFC 4733 telephone-events: payload, receiver, sender |
//! | [`tone`] | in-band DTMF: Goertzel detector and tone generator |
//! | [`playout`] | the 20 ms [`playout::Pacer`] and the [`playout::PlayoutQueue`] of marked audio |
//!
//! Nothing here opens a socket, reads a clock, sleeps or spawns: time is an input
//! (`now: Instant`), what to send is an output, and randomness (SSRC, initial sequence number
//! and timestamp) comes from an RNG the caller passes in. The per-call media task in
//! [`crate::gateway`] drives these cores.
//!
//! Units everywhere: the RTP clock of G.711 and telephone-event is 8000 Hz, audio is mono
//! `i16` PCM at 8 kHz, one frame is 20 ms = 160 samples ([`FRAME`], [`FRAME_SAMPLES`]).
//! Payload encoding (G.711 µ-law/A-law) is `speech::audio::g711`'s job, not this module's.

use std::fmt;
use std::time::Duration;

pub mod dtmf;
pub mod jitter;
pub mod packet;
pub mod playout;
pub mod rtcp;
pub mod session;
pub mod tone;

/// The RTP clock rate of every payload we carry (G.711, telephone-event), in Hz.
pub const CLOCK_RATE: u32 = 8000;

/// One playout frame: 20 ms.
pub const FRAME: Duration = Duration::from_millis(20);

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// A synchronization source identifier (RFC 3550 §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Why bytes from the network are not a valid RTP, RTCP or telephone-event packet.
///
/// Every variant is the peer's fault (or the network's): the gateway drops the packet, counts
/// it, and carries on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The packet ends before a field it announces (`what`): `needed` octets, `len` there.
    Truncated {
        /// The part that does not fit.
        what: &'static str,
        /// Octets the packet would need.
        needed: usize,
        /// Octets it has.
        len: usize,
    },
    /// The version field is not 2.
    Version(u8),
    /// A field holds a value the format forbids.
    Malformed(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what, needed, len } => {
                write!(
                    f,
                    "truncated {what}: needs {needed} octets, packet has {len}"
                )
            }
            Error::Version(v) => write!(f, "RTP version {v}, expected 2"),
            Error::Malformed(what) => write!(f, "malformed packet: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// Samples of the 8 kHz RTP clock in a duration (rounded down).
pub(crate) fn samples_in(d: Duration) -> u64 {
    (d.as_micros() * u128::from(CLOCK_RATE) / 1_000_000) as u64
}

/// The duration of `samples` samples of the 8 kHz clock.
pub(crate) fn duration_of(samples: u64) -> Duration {
    Duration::from_micros(samples.saturating_mul(1_000_000) / u64::from(CLOCK_RATE))
}
