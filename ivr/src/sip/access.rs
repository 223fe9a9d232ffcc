//! Who may talk to the gateway, how fast, and how many calls at once.
//!
//! Owns: the source allow-list (CIDR networks, IPv4 and IPv6), per-source token buckets for
//! each method class, and the count of calls in progress. No IO and no clock: every check
//! takes `now`. The server turns the outcome into a response: a source not allowed is
//! ignored or gets 403, a rate-limited request 503 with `Retry-After` (RFC 3261 §21.5.4,
//! §20.33), an INVITE beyond the call limit 503 with `Retry-After`.
//!
//! - Allow-list: loopback is always allowed; an empty list means loopback only. `0.0.0.0/0`
//!   allows every IPv4 source and `::/0` every IPv6 one. IPv4-mapped IPv6 sources
//!   (`::ffff:a.b.c.d`, from dual-stack sockets) are checked as the IPv4 address.
//! - Rate limits: one token bucket per source and method class (INVITE, REGISTER, OPTIONS,
//!   everything else), refilled at `per_second` up to `burst`. At most `max_sources` sources
//!   are tracked. A source whose buckets have all refilled is dropped when room is needed
//!   (it is indistinguishable from a new one, so nothing is lost); when every tracked source
//!   is still busy, a new source is refused until one refills (fail closed under a flood of
//!   spoofed addresses), and the sweep that looks for room runs at most every 100 ms.
//!
//! ```
//! # use std::time::Instant;
//! # use ivr::sip::access::{AccessConfig, AccessPolicy, Admission};
//! # let now = Instant::now();
//! let mut policy = AccessPolicy::new(AccessConfig::default());
//! let ip = "127.0.0.1".parse().unwrap();
//! assert_eq!(policy.admit(now, ip, "INVITE"), Admission::Allowed);
//! assert_eq!(policy.admit(now, "192.0.2.1".parse().unwrap(), "INVITE"), Admission::Denied);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How often, at most, a full source table is swept for sources that can be dropped.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`; a bare address is a host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

/// A malformed CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP network: {0:?}")]
pub struct CidrError(String);

impl IpNet {
    /// The network of `addr` with a prefix of `prefix` bits (host bits are cleared).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let network = match addr {
            IpAddr::V4(a) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
            _ => return Err(CidrError(format!("{addr}/{prefix}"))),
        };
        Ok(IpNet { network, prefix })
    }

    /// Whether `ip` is in this network (same family only; IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        IpNet::new(ip.to_canonical(), self.prefix).is_ok_and(|n| n.network == self.network)
    }
}

impl FromStr for IpNet {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let err = || CidrError(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => {
                let digits = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit());
                let prefix: u8 = if digits {
                    prefix.parse().map_err(|_| err())?
                } else {
                    return Err(err());
                };
                (addr, Some(prefix))
            }
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let host = if addr.is_ipv4() { 32 } else { 128 };
        IpNet::new(addr, prefix.unwrap_or(host)).map_err(|_| err())
    }
}

impl TryFrom<String> for IpNet {
    type Error = CidrError;

    fn try_from(s: String) -> Result<Self, CidrError> {
        s.parse()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The classes of request that are rate-limited separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodClass {
    /// INVITE: new calls (and re-INVITEs).
    Invite,
    /// REGISTER.
    Register,
    /// OPTIONS: keep-alives and scanners.
    Options,
    /// Everything else (ACK, BYE, CANCEL, INFO, ...).
    Other,
}

impl MethodClass {
    /// The class of a request method (methods are case-sensitive, RFC 3261 §7.1).
    pub fn of(method: &str) -> MethodClass {
        match method {
            "INVITE" => MethodClass::Invite,
            "REGISTER" => MethodClass::Register,
            "OPTIONS" => MethodClass::Options,
            _ => MethodClass::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A token bucket's settings: sustained requests per second and the burst allowed on top.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Sustained rate; 0 turns the limit off for this class.
    pub per_second: f64,
    /// Bucket size: requests allowed at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl Rate {
    /// `per_second` sustained with `burst` at once.
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Rate { per_second, burst }
    }

    fn limited(&self) -> bool {
        self.per_second > 0.0 && self.per_second.is_finite()
    }

    fn capacity(&self) -> f64 {
        f64::from(self.burst.max(1))
    }
}

/// Everything [`AccessPolicy`] is configured with (embedded in the server's config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// Allowed source networks besides loopback (default: none, so loopback only).
    pub allow: Vec<IpNet>,
    /// INVITE per source (default 25/s, burst 50: a trunk placing 20 calls a second passes).
    pub invite: Rate,
    /// REGISTER per source (default 2/s, burst 5).
    pub register: Rate,
    /// OPTIONS per source (default 5/s, burst 10).
    pub options: Rate,
    /// Every other method per source (default 100/s, burst 200: ACK, BYE, INFO of busy trunks).
    pub other: Rate,
    /// Most sources tracked for rate limits (default 10 000).
    pub max_sources: usize,
    /// Most calls in progress at once (default 100).
    pub max_calls: usize,
    /// `Retry-After` seconds sent with 503 when the call limit is reached (default 30).
    pub busy_retry_after_s: u32,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            allow: Vec::new(),
            invite: Rate::new(25.0, 50),
            register: Rate::new(2.0, 5),
            options: Rate::new(5.0, 10),
            other: Rate::new(100.0, 200),
            max_sources: 10_000,
            max_calls: 100,
            busy_retry_after_s: 30,
        }
    }
}

/// The outcome of [`AccessPolicy::admit`] and [`AccessPolicy::call_started`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Allowed,
    /// The source is not on the allow-list.
    Denied,
    /// Too many requests from this source, or too many calls: answer 503 with `Retry-After`.
    Busy {
        /// When to try again (whole seconds, at least 1, for `Retry-After`).
        retry_after: Duration,
    },
}

/// The access policy: allow-list, rate limits, call limit (see the module docs).
#[derive(Debug)]
pub struct AccessPolicy {
    config: AccessConfig,
    sources: HashMap<IpAddr, Buckets>,
    last_sweep: Option<Instant>,
    calls: usize,
}

/// Token counts per method class, as of `at`.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    tokens: [f64; 4],
    at: Instant,
}

impl AccessPolicy {
    /// A policy with `config`, no sources tracked and no calls.
    pub fn new(config: AccessConfig) -> Self {
        AccessPolicy {
            config,
            sources: HashMap::new(),
            last_sweep: None,
            calls: 0,
        }
    }

    /// Whether `ip` may talk to us at all (loopback or on the allow-list).
    pub fn allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback() || self.config.allow.iter().any(|net| net.contains(ip))
    }

    /// Admits one request of `method` from `ip`: allow-list, then its token bucket.
    pub fn admit(&mut self, now: Instant, ip: IpAddr, method: &str) -> Admission {
        if !self.allowed(ip) {
            return Admission::Denied;
        }
        let ip = ip.to_canonical();
        let class = MethodClass::of(method);
        let rate = self.rate(class);
        if !rate.limited() {
            return Admission::Allowed;
        }
        if !self.sources.contains_key(&ip) && !self.make_room(now) {
            return Admission::Busy {
                retry_after: whole_seconds(1.0 / rate.per_second),
            };
        }
        let rates = self.rates();
        let buckets = self
            .sources
            .entry(ip)
            .or_insert_with(|| Buckets::full(&rates, now));
        buckets.refill(&rates, now);
        let tokens = &mut buckets.tokens[class.index()];
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Admission::Allowed
        } else {
            Admission::Busy {
                retry_after: whole_seconds((1.0 - *tokens) / rate.per_second),
            }
        }
    }

    /// Counts a new call in, if there is room for it; `Busy` (503) if not.
    pub fn call_started(&mut self) -> Admission {
        if !self.has_room() {
            let retry_after = Duration::from_secs(u64::from(self.config.busy_retry_after_s.max(1)));
            return Admission::Busy { retry_after };
        }
        self.calls += 1;
        Admission::Allowed
    }

    /// Counts a call out (one that [`call_started`](Self::call_started) let in).
    pub fn call_ended(&mut self) {
        self.calls = self.calls.saturating_sub(1);
    }

    /// Calls in progress.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Whether another call fits under the limit.
    pub fn has_room(&self) -> bool {
        self.calls < self.config.max_calls
    }

    /// Sources currently tracked for rate limits.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    fn rate(&self, class: MethodClass) -> Rate {
        self.rates()[class.index()]
    }

    fn rates(&self) -> [Rate; 4] {
        let c = &self.config;
        [c.invite, c.register, c.options, c.other]
    }

    /// Makes room for one more source; false when the table is full of busy sources.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.sources.len() < self.config.max_sources {
            return true;
        }
        if self
            .last_sweep
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_INTERVAL)
        {
            return false;
        }
        self.last_sweep = Some(now);
        let rates = self.rates();
        self.sources.retain(|_, b| !b.refilled(&rates, now));
        self.sources.len() < self.config.max_sources
    }
}

impl Buckets {
    fn full(rates: &[Rate; 4], now: Instant) -> Self {
        Buckets {
            tokens: rates.map(|r| r.capacity()),
            at: now,
        }
    }

    fn refill(&mut self, rates: &[Rate; 4], now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        for (tokens, rate) in self.tokens.iter_mut().zip(rates) {
            let per_second = if rate.limited() { rate.per_second } else { 0.0 };
            *tokens = (*tokens + elapsed * per_second).min(rate.capacity());
        }
        self.at = self.at.max(now);
    }

    /// Whether every limited bucket would be full at `now` (the source is as good as new).
    fn refilled(&self, rates: &[Rate; 4], now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens
            .iter()
            .zip(rates)
            .all(|(t, r)| !r.limited() || t + elapsed * r.per_second >= r.capacity())
    }
}

fn whole_seconds(seconds: f64) -> Duration {
    Duration::from_secs(seconds.ceil().clamp(1.0, 3600.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // the one real instant the simulated clock starts from
    fn base() -> Instant {
        Instant::now()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("literal network")
    }

    fn policy(allow: &[&str]) -> AccessPolicy {
        let allow = allow.iter().map(|s| net(s)).collect();
        AccessPolicy::new(AccessConfig {
            allow,
            ..AccessConfig::default()
        })
    }

    #[test]
    fn cidr_networks_parse_print_and_match_both_families() {
        assert_eq!(
            net("10.1.2.3/8").to_string(),
            "10.0.0.0/8",
            "host bits cleared"
        );
        assert_eq!(net("192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(net("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert!(net("10.0.0.0/8").contains(ip("10.255.0.1")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::5")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::5")));
        assert!(
            net("192.0.2.0/24").contains(ip("::ffff:192.0.2.9")),
            "mapped IPv4"
        );
        assert!(
            !net("0.0.0.0/0").contains(ip("2001:db8::1")),
            "families do not mix"
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "pbx.example",
            "1.2.3/8",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_only_by_default_and_the_allow_list_adds_networks() {
        let default = policy(&[]);
        assert!(default.allowed(ip("127.0.0.1")));
        assert!(default.allowed(ip("::1")));
        assert!(default.allowed(ip("::ffff:127.0.0.1")));
        assert!(!default.allowed(ip("192.0.2.1")));
        let trunk = policy(&["198.51.100.0/24", "2001:db8::/32"]);
        assert!(trunk.allowed(ip("198.51.100.77")));
        assert!(trunk.allowed(ip("2001:db8::7")));
        assert!(trunk.allowed(ip("127.0.0.1")));
        assert!(!trunk.allowed(ip("198.51.101.1")));
        let open = policy(&["0.0.0.0/0", "::/0"]);
        assert!(open.allowed(ip("203.0.113.1")) && open.allowed(ip("2001:db8::1")));
        let mut denied = policy(&[]);
        assert_eq!(
            denied.admit(base(), ip("192.0.2.1"), "INVITE"),
            Admission::Denied
        );
        assert_eq!(
            denied.tracked_sources(),
            0,
            "refused sources are not tracked"
        );
    }

    #[test]
    fn an_invite_flood_is_limited_after_the_burst_and_recovers_at_the_rate() {
        let t0 = base();
        let mut p = policy(&[]);
        let lo = ip("127.0.0.1");
        for n in 0..50 {
            assert_eq!(p.admit(t0, lo, "INVITE"), Admission::Allowed, "request {n}");
        }
        let limited = p.admit(t0, lo, "INVITE");
        assert_eq!(
            limited,
            Admission::Busy {
                retry_after: Duration::from_secs(1)
            }
        );
        // Other classes have their own buckets.
        assert_eq!(p.admit(t0, lo, "OPTIONS"), Admission::Allowed);
        assert_eq!(p.admit(t0, lo, "BYE"), Admission::Allowed);
        // 25/s: after 200 ms five more INVITEs pass, the sixth does not.
        let later = t0 + Duration::from_millis(200);
        for n in 0..5 {
            assert_eq!(
                p.admit(later, lo, "INVITE"),
                Admission::Allowed,
                "refilled {n}"
            );
        }
        assert!(matches!(
            p.admit(later, lo, "INVITE"),
            Admission::Busy { .. }
        ));
        // Another source is not affected.
        assert_eq!(p.admit(later, ip("::1"), "INVITE"), Admission::Allowed);
    }

    #[test]
    fn a_steady_trunk_at_twenty_calls_a_second_is_never_limited() {
        let t0 = base();
        let mut p = policy(&[]);
        for n in 0..600u32 {
            let now = t0 + Duration::from_millis(50) * n;
            assert_eq!(
                p.admit(now, ip("127.0.0.1"), "INVITE"),
                Admission::Allowed,
                "call {n}"
            );
            assert_eq!(p.admit(now, ip("127.0.0.1"), "ACK"), Admission::Allowed);
            assert_eq!(p.admit(now, ip("127.0.0.1"), "BYE"), Admission::Allowed);
        }
    }

    #[test]
    fn slow_register_limit_says_when_to_retry() {
        let t0 = base();
        let config = AccessConfig {
            register: Rate::new(0.25, 1),
            ..AccessConfig::default()
        };
        let mut p = AccessPolicy::new(config);
        assert_eq!(p.admit(t0, ip("127.0.0.1"), "REGISTER"), Admission::Allowed);
        let busy = p.admit(t0 + Duration::from_secs(1), ip("127.0.0.1"), "REGISTER");
        assert_eq!(
            busy,
            Admission::Busy {
                retry_after: Duration::from_secs(3)
            }
        );
        let lowercase = p.admit(t0 + Duration::from_secs(1), ip("127.0.0.1"), "register");
        assert_eq!(
            lowercase,
            Admission::Allowed,
            "an extension method, not REGISTER"
        );
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let t0 = base();
        let config = AccessConfig {
            options: Rate::new(0.0, 0),
            ..AccessConfig::default()
        };
        let mut p = AccessPolicy::new(config);
        for _ in 0..1000 {
            assert_eq!(p.admit(t0, ip("127.0.0.1"), "OPTIONS"), Admission::Allowed);
        }
        assert_eq!(p.tracked_sources(), 0);
    }

    #[test]
    fn the_source_table_is_bounded_and_drops_only_sources_that_have_refilled() {
        let t0 = base();
        let config = AccessConfig {
            allow: vec![net("10.0.0.0/8")],
            max_sources: 3,
            ..AccessConfig::default()
        };
        let mut p = AccessPolicy::new(config);
        // 10.0.0.1 spends its whole burst; .2 and .3 one INVITE each (refilled in 40 ms).
        for _ in 0..50 {
            assert_eq!(p.admit(t0, ip("10.0.0.1"), "INVITE"), Admission::Allowed);
        }
        for n in 2..=3 {
            assert_eq!(
                p.admit(t0, ip(&format!("10.0.0.{n}")), "INVITE"),
                Admission::Allowed
            );
        }
        // Full of sources that are still refilling: a new one is refused for now.
        let fourth = ip("10.0.0.4");
        assert!(matches!(
            p.admit(t0, fourth, "INVITE"),
            Admission::Busy { .. }
        ));
        assert_eq!(p.tracked_sources(), 3);
        // Later .2 and .3 are as good as new and make room; .1 keeps its spent bucket.
        let later = t0 + Duration::from_millis(150);
        assert_eq!(p.admit(later, fourth, "INVITE"), Admission::Allowed);
        assert_eq!(p.tracked_sources(), 2);
        for _ in 0..3 {
            assert_eq!(p.admit(later, ip("10.0.0.1"), "INVITE"), Admission::Allowed);
        }
        assert!(matches!(
            p.admit(later, ip("10.0.0.1"), "INVITE"),
            Admission::Busy { .. }
        ));
    }

    #[test]
    fn the_call_limit_answers_busy_with_retry_after() {
        let config = AccessConfig {
            max_calls: 2,
            busy_retry_after_s: 20,
            ..AccessConfig::default()
        };
        let mut p = AccessPolicy::new(config);
        assert_eq!(p.call_started(), Admission::Allowed);
        assert_eq!(p.call_started(), Admission::Allowed);
        assert!(!p.has_room());
        assert_eq!(
            p.call_started(),
            Admission::Busy {
                retry_after: Duration::from_secs(20)
            }
        );
        assert_eq!(p.calls(), 2);
        p.call_ended();
        assert!(p.has_room());
        assert_eq!(p.call_started(), Admission::Allowed);
        p.call_ended();
        p.call_ended();
        p.call_ended();
        assert_eq!(p.calls(), 0, "never below zero");
    }

    #[test]
    fn config_reads_from_toml_with_defaults_for_what_is_left_out() {
        let config: AccessConfig = toml::from_str(
            "allow = [\"198.51.100.0/24\", \"2001:db8::1\"]\n\
             max_calls = 8\n\
             invite = { per_second = 2.5, burst = 4 }\n",
        )
        .expect("parses");
        assert_eq!(
            config.allow,
            [net("198.51.100.0/24"), net("2001:db8::1/128")]
        );
        assert_eq!(config.max_calls, 8);
        assert_eq!(config.invite, Rate::new(2.5, 4));
        assert_eq!(config.options, AccessConfig::default().options);
        assert!(toml::from_str::<AccessConfig>("allow = [\"10.0.0.0/40\"]").is_err());
        assert!(
            toml::from_str::<AccessConfig>("max_cals = 3").is_err(),
            "typos are caught"
        );
    }
}
