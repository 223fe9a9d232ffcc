//! The phone gateway: SIP signalling and RTP media for callers on telephone networks, bridged
//! call by call to the assistant over `MediaGateway.Converse`.
//!
//! ```text
//!  SIP over UDP/TCP ──▶ signalling task (owns the sans-IO `sip::ua::Ua`, access policy, digest)
//!                          │  Incoming → bind an RTP port, negotiate SDP, spawn the call task
//!                          │◀─ Answer / Reject / Hangup / Transfer commands ───────┐
//!                          └─ Dtmf (INFO) / Reoffer / Ended / Transfer* events ──▶ │
//!  RTP/RTCP over UDP ──▶ call task (one per call; owns `media::MediaLeg`) ──────────┘
//!                          └─ Converse stream to the assistant (up: audio, DTMF, marks)
//! ```
//!
//! - [`signalling`]: the SIP sockets (one UDP socket, a TCP listener and its connections) and
//!   the one task that drives the user agent core; nothing in it blocks.
//! - [`call`]: one task per call: its RTP socket, a 20 ms tick from a monotonic clock, the
//!   `Converse` stream, and the media core.
//! - [`media`]: the sans-IO media core of one call leg: latching, jitter buffer, G.711,
//!   RFC 4733 and in-band DTMF, playout with marks and comfort silence, RTCP.
//!
//! `ivr serve` runs the gateway beside the assistant in one process; they still talk over
//! loopback gRPC, so a gateway on another machine (`ivr gateway --assistant URL`) is the same
//! code.

pub mod call;
pub mod media;
pub mod signalling;

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use anyhow::Context;

pub use signalling::{Gateway, GatewayStats};

/// Options of the phone gateway (part of `ivr serve` and `ivr gateway`).
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// Where SIP listens, on UDP and TCP (port 0 picks a free one).
    #[arg(long = "sip", default_value = "127.0.0.1:5060")]
    pub sip: SocketAddr,
    /// No phone gateway: serve the assistant alone.
    #[arg(long = "no-sip")]
    pub no_sip: bool,
    /// The address put in Contact and SDP when SIP listens on a wildcard address or behind NAT.
    #[arg(long = "sip-public")]
    pub public: Option<IpAddr>,
    /// UDP ports for RTP, as FIRST-LAST (even ports are used, RTCP is multiplexed on them).
    #[arg(long = "rtp-ports", default_value = "20000-29999", value_parser = parse_ports)]
    pub rtp_ports: RangeInclusive<u16>,
    /// Sources allowed to send SIP (CIDR, repeatable); loopback is always allowed.
    #[arg(long = "sip-allow")]
    pub allow: Vec<String>,
    /// Most calls at once; more are answered 503 with Retry-After.
    #[arg(long = "max-calls", default_value_t = 64)]
    pub max_calls: usize,
    /// Require digest authentication from callers: USER:PASSWORD (repeatable).
    #[arg(long = "sip-user")]
    pub users: Vec<String>,
    /// How long a call rings (180) before it is answered, milliseconds: the caller hears a
    /// ring, and a caller who gives up in that time sends CANCEL.
    #[arg(long = "ring-ms", default_value_t = 500)]
    pub ring_ms: u64,
    /// Where transfers to the operator go (by REFER, or by a bridged call when the caller's
    /// side refuses REFER); the flow's target when not given.
    #[arg(long = "operator")]
    pub operator: Option<String>,
}

impl Default for GatewayArgs {
    fn default() -> Self {
        GatewayArgs {
            sip: SocketAddr::from(([127, 0, 0, 1], 5060)),
            no_sip: false,
            public: None,
            rtp_ports: 20000..=29999,
            allow: Vec::new(),
            max_calls: 64,
            ring_ms: 500,
            users: Vec::new(),
            operator: None,
        }
    }
}

fn parse_ports(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s}: expected FIRST-LAST"))?;
    let a: u16 = a.trim().parse().map_err(|e| format!("{s}: {e}"))?;
    let b: u16 = b.trim().parse().map_err(|e| format!("{s}: {e}"))?;
    if a == 0 || b < a.saturating_add(1) {
        return Err(format!("{s}: need at least two ports, FIRST > 0"));
    }
    Ok(a..=b)
}

/// A random generator seeded from the OS (or the clock, where the OS has none).
pub(crate) fn rng() -> rand::rngs::StdRng {
    use rand::SeedableRng;
    match rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng) {
        Ok(rng) => rng,
        #[allow(clippy::disallowed_methods)] // seed of last resort
        Err(_) => rand::rngs::StdRng::seed_from_u64(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        ),
    }
}

impl GatewayArgs {
    /// Checks the options that clap cannot: CIDRs and user entries.
    pub fn validate(&self) -> anyhow::Result<()> {
        for net in &self.allow {
            net.parse::<crate::sip::access::IpNet>()
                .map_err(|e| anyhow::anyhow!("--sip-allow {net}: {e}"))?;
        }
        for user in &self.users {
            user.split_once(':')
                .filter(|(u, p)| !u.is_empty() && !p.is_empty())
                .with_context(|| format!("--sip-user {user}: expected USER:PASSWORD"))?;
        }
        Ok(())
    }
}
