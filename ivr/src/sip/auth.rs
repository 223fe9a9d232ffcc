//! Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760): the server side that
//! challenges callers, and the client side that answers a trunk's or PBX's challenge.
//!
//! Owns: nonce issue and checking, the user table, the digest computation. It does not send
//! responses or read the clock: the caller puts [`DigestServer::challenge`]'s values in
//! `WWW-Authenticate` (401) or `Proxy-Authenticate` (407) headers, one header per value, and
//! hands the matching `Authorization` value to [`DigestServer::verify`] with `now`.
//!
//! Nonces are `hex(issued ms ‖ serial ‖ HMAC-SHA-256(secret, issued ‖ serial)[..16])`: a nonce
//! that is not ours is refused without any table lookup, one that is ours but older than the
//! lifetime (or forgotten) gets `stale=true` when the digest is otherwise right (RFC 7616
//! §3.3). Live nonces sit in a bounded table with the highest nonce-count seen, so a replayed
//! or reordered `nc` is refused (§3.4). Digests are compared in constant time.
//!
//! Deviations: only `qop=auth` is served (no `auth-int`, no RFC 2069 responses without `qop`,
//! no `-sess` algorithms, no `userhash`); the `uri` directive is hashed but not compared with
//! the Request-URI, which is the caller's business. The client side also answers challenges
//! without `qop` (RFC 2617 §3.2.2.1 legacy servers).
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use ivr::sip::auth::{respond, Credentials, DigestConfig, DigestServer, Verdict};
//! # let now = Instant::now();
//! let mut config = DigestConfig::new("hotline.example");
//! config.users.insert("pbx".into(), Credentials::password("s3cret"));
//! let mut server = DigestServer::new(config, [7; 32], now);
//! let challenge = &server.challenge(now, false)[0];
//! let authorization =
//!     respond(challenge, "INVITE", "sip:1111@hotline.example", "pbx", "s3cret", "c1", 1).unwrap();
//! let later = now + Duration::from_millis(40);
//! assert_eq!(server.verify(later, "INVITE", &authorization), Verdict::Ok { user: "pbx".into() });
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use md5::Md5;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest `Authorization` or `WWW-Authenticate` value we parse.
pub const MAX_HEADER_LEN: usize = 4096;

/// A digest algorithm (RFC 7616 §3.2, RFC 8760 for SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Algorithm {
    /// `MD5`: what nearly every SIP phone speaks.
    #[serde(rename = "MD5")]
    Md5,
    /// `SHA-256`.
    #[serde(rename = "SHA-256")]
    Sha256,
}

impl Algorithm {
    /// The name used in the `algorithm` directive.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn parse(name: &str) -> Option<Algorithm> {
        if name.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if name.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex of the hash of `data`.
    fn hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

/// One user's secret: the password, or precomputed `HA1 = H(user:realm:password)` per
/// algorithm (lower-case hex) so that passwords need not sit in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Clear-text password (takes precedence over the HA1 values).
    #[serde(default)]
    pub password: Option<String>,
    /// `MD5(user:realm:password)` in hex.
    #[serde(default)]
    pub ha1_md5: Option<String>,
    /// `SHA-256(user:realm:password)` in hex.
    #[serde(default)]
    pub ha1_sha256: Option<String>,
}

impl Credentials {
    /// Credentials holding a clear-text password.
    pub fn password(password: &str) -> Self {
        Credentials {
            password: Some(password.to_string()),
            ..Credentials::default()
        }
    }

    fn ha1(&self, algorithm: Algorithm, user: &str, realm: &str) -> Option<String> {
        if let Some(password) = &self.password {
            return Some(algorithm.hex(&format!("{user}:{realm}:{password}")));
        }
        let stored = match algorithm {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        };
        stored.as_ref().map(|h| h.to_ascii_lowercase())
    }
}

/// Configuration of the digest server (part of the server's config file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// The protection realm, e.g. the hotline's domain.
    pub realm: String,
    /// Algorithms offered, most preferred first; default `["MD5", "SHA-256"]` (MD5 first
    /// because many phones and SIPp take the first challenge and know only MD5).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce is good for, in seconds (default 300).
    #[serde(default = "default_nonce_lifetime_s")]
    pub nonce_lifetime_s: u64,
    /// Most nonces remembered at once (default 4096); the oldest is forgotten first.
    #[serde(default = "default_max_nonces")]
    pub max_nonces: usize,
    /// User name → secret.
    #[serde(default)]
    pub users: HashMap<String, Credentials>,
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::Md5, Algorithm::Sha256]
}
fn default_nonce_lifetime_s() -> u64 {
    300
}
fn default_max_nonces() -> usize {
    4096
}

impl DigestConfig {
    /// A config for `realm` with the defaults and no users.
    pub fn new(realm: &str) -> Self {
        DigestConfig {
            realm: realm.to_string(),
            algorithms: default_algorithms(),
            nonce_lifetime_s: default_nonce_lifetime_s(),
            max_nonces: default_max_nonces(),
            users: HashMap::new(),
        }
    }
}

/// The outcome of [`DigestServer::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The request is from `user`.
    Ok {
        /// The authenticated user name.
        user: String,
    },
    /// Right credentials, expired nonce: challenge again with `stale = true`.
    Stale,
    /// Refused: challenge again (or 403 after repeated failures); the reason is for logs.
    Invalid(Reject),
}

/// Why [`DigestServer::verify`] refused a request (all the peer's doing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reject {
    /// Not a parseable `Digest` credential, or a required directive is missing.
    #[error("malformed credentials")]
    Malformed,
    /// `qop` other than `auth`, an unoffered algorithm, `-sess` or `userhash`.
    #[error("unsupported digest parameters")]
    Unsupported,
    /// The realm is not ours.
    #[error("wrong realm")]
    Realm,
    /// The nonce was not issued by this server.
    #[error("unknown nonce")]
    Nonce,
    /// No such user, or no secret for this algorithm.
    #[error("unknown user")]
    User,
    /// The digest does not match.
    #[error("wrong response digest")]
    Response,
    /// The nonce-count did not increase (a replay).
    #[error("nonce-count replayed")]
    Replay,
}

/// Why [`respond`] could not answer a challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The challenge is not a parseable `Digest` challenge with realm and nonce.
    #[error("malformed digest challenge")]
    Malformed,
    /// The challenge asks for something we do not do (algorithm, `auth-int` only, ...).
    #[error("unsupported digest challenge: {0}")]
    Unsupported(String),
}

/// The digest server: issues challenges and verifies credentials (see the module docs).
#[derive(Debug)]
pub struct DigestServer {
    config: DigestConfig,
    key: [u8; 32],
    epoch: Instant,
    serial: u64,
    nonces: HashMap<String, NonceState>,
    order: VecDeque<String>,
}

#[derive(Debug)]
struct NonceState {
    issued: Instant,
    last_nc: u32,
}

type HmacSha256 = Hmac<Sha256>;

/// Issued time (8 bytes) + serial (8 bytes) + MAC (16 bytes).
const NONCE_BYTES: usize = 32;

impl DigestServer {
    /// A server for `config`; `secret` keys the nonces (fresh random bytes per process),
    /// `now` is the time origin for nonce timestamps.
    pub fn new(config: DigestConfig, secret: [u8; 32], now: Instant) -> Self {
        DigestServer {
            config,
            key: secret,
            epoch: now,
            serial: 0,
            nonces: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The realm challenged for.
    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// A fresh challenge: one `WWW-Authenticate`/`Proxy-Authenticate` value per configured
    /// algorithm, most preferred first, all with the same new nonce. `stale` after
    /// [`Verdict::Stale`].
    pub fn challenge(&mut self, now: Instant, stale: bool) -> Vec<String> {
        let nonce = self.issue(now);
        let realm = quote(&self.config.realm);
        let stale = if stale { ", stale=true" } else { "" };
        self.config
            .algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm={realm}, nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    a.as_str()
                )
            })
            .collect()
    }

    /// Checks an `Authorization` (or `Proxy-Authorization`) value for a request of `method`.
    pub fn verify(&mut self, now: Instant, method: &str, authorization: &str) -> Verdict {
        match self.check(now, method, authorization) {
            Ok(verdict) => verdict,
            Err(reject) => Verdict::Invalid(reject),
        }
    }

    fn check(&mut self, now: Instant, method: &str, value: &str) -> Result<Verdict, Reject> {
        let params = parse_digest(value).ok_or(Reject::Malformed)?;
        let field = |name| params.get(name).ok_or(Reject::Malformed);
        let (user, realm, nonce, uri, response) = (
            field("username")?,
            field("realm")?,
            field("nonce")?,
            field("uri")?,
            field("response")?,
        );
        let algorithm = match params.get("algorithm") {
            Some(name) => Algorithm::parse(name).ok_or(Reject::Unsupported)?,
            None => Algorithm::Md5,
        };
        let qop_auth = params
            .get("qop")
            .is_some_and(|q| q.eq_ignore_ascii_case("auth"));
        let userhash = params
            .get("userhash")
            .is_some_and(|u| u.eq_ignore_ascii_case("true"));
        if !qop_auth || userhash || !self.config.algorithms.contains(&algorithm) {
            return Err(Reject::Unsupported);
        }
        let (nc_text, cnonce) = (field("nc")?, field("cnonce")?);
        let nc = parse_nc(nc_text).ok_or(Reject::Malformed)?;
        if realm != self.config.realm {
            return Err(Reject::Realm);
        }
        let issued = self.issued_at(nonce).ok_or(Reject::Nonce)?;
        let credentials = self.config.users.get(user).ok_or(Reject::User)?;
        let ha1 = credentials
            .ha1(algorithm, user, realm)
            .ok_or(Reject::User)?;
        let qop = Some(("auth", nc_text, cnonce));
        let expected = response_digest(algorithm, &ha1, nonce, qop, method, uri);
        let given = response.to_ascii_lowercase();
        if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return Err(Reject::Response);
        }
        let lifetime = Duration::from_secs(self.config.nonce_lifetime_s);
        let expired = now.saturating_duration_since(issued) > lifetime;
        let Some(state) = self.nonces.get_mut(nonce).filter(|_| !expired) else {
            return Ok(Verdict::Stale);
        };
        if nc <= state.last_nc {
            return Err(Reject::Replay);
        }
        state.last_nc = nc;
        Ok(Verdict::Ok {
            user: user.to_string(),
        })
    }

    fn issue(&mut self, now: Instant) -> String {
        let lifetime = Duration::from_secs(self.config.nonce_lifetime_s);
        while let Some(oldest) = self.order.front() {
            let expired = self
                .nonces
                .get(oldest)
                .is_none_or(|s| now.saturating_duration_since(s.issued) > lifetime);
            if !expired && self.order.len() < self.config.max_nonces.max(1) {
                break;
            }
            if let Some(gone) = self.order.pop_front() {
                self.nonces.remove(&gone);
            }
        }
        let millis = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        self.serial = self.serial.wrapping_add(1);
        let mut bytes = Vec::with_capacity(NONCE_BYTES);
        bytes.extend_from_slice(&millis.to_be_bytes());
        bytes.extend_from_slice(&self.serial.to_be_bytes());
        let tag = self.mac(&bytes);
        bytes.extend_from_slice(&tag[..16]);
        let nonce = hex(&bytes);
        self.nonces.insert(
            nonce.clone(),
            NonceState {
                issued: now,
                last_nc: 0,
            },
        );
        self.order.push_back(nonce.clone());
        nonce
    }

    /// When `nonce` was issued, if it is one of ours (whether or not still remembered).
    fn issued_at(&self, nonce: &str) -> Option<Instant> {
        let bytes = unhex(nonce)?;
        if bytes.len() != NONCE_BYTES {
            return None;
        }
        let (data, tag) = bytes.split_at(16);
        let expected = self.mac(data);
        if !bool::from(expected[..16].ct_eq(tag)) {
            return None;
        }
        let millis = u64::from_be_bytes(data[..8].try_into().ok()?);
        self.epoch.checked_add(Duration::from_millis(millis))
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// Answers a `WWW-Authenticate`/`Proxy-Authenticate` digest challenge: the value for the
/// `Authorization`/`Proxy-Authorization` header of the retried request. `nc` counts requests
/// made with this nonce, from 1; `cnonce` should be fresh random text per nonce.
pub fn respond(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, AuthError> {
    let params = parse_digest(challenge).ok_or(AuthError::Malformed)?;
    let realm = params.get("realm").ok_or(AuthError::Malformed)?;
    let nonce = params.get("nonce").ok_or(AuthError::Malformed)?;
    let algorithm = match params.get("algorithm") {
        Some(name) => {
            Algorithm::parse(name).ok_or_else(|| AuthError::Unsupported(name.to_string()))?
        }
        None => Algorithm::Md5,
    };
    let qop = match params.get("qop") {
        None => None,
        Some(list)
            if list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth")) =>
        {
            Some("auth")
        }
        Some(list) => return Err(AuthError::Unsupported(format!("qop={list}"))),
    };
    let nc_text = format!("{nc:08x}");
    let ha1 = algorithm.hex(&format!("{user}:{realm}:{password}"));
    let qop_fields = qop.map(|q| (q, nc_text.as_str(), cnonce));
    let response = response_digest(algorithm, &ha1, nonce, qop_fields, method, uri);
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(user),
        quote(realm),
        quote(nonce),
        quote(uri),
        algorithm.as_str()
    );
    if let Some(opaque) = params.get("opaque") {
        let _ = write!(out, ", opaque={}", quote(opaque));
    }
    if let Some(q) = qop {
        let _ = write!(out, ", qop={q}, nc={nc_text}, cnonce={}", quote(cnonce));
    }
    Ok(out)
}

/// `response` per RFC 7616 §3.4.1 (with `qop`: `(qop, nc, cnonce)`) or RFC 2617 §3.2.2.1
/// without it. `ha1` is lower-case hex.
fn response_digest(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = algorithm.hex(&format!("{method}:{uri}"));
    match qop {
        Some((qop, nc, cnonce)) => {
            algorithm.hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
        }
        None => algorithm.hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Directives of a `Digest` credential or challenge, names lower-cased, values unquoted.
#[derive(Debug)]
struct DigestParams(Vec<(String, String)>);

impl DigestParams {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `Digest name=value, name="quoted \" value", ...` (RFC 7235 §2.1 auth-params).
/// `None` for another scheme, bad syntax, an over-long value or a repeated directive.
fn parse_digest(value: &str) -> Option<DigestParams> {
    if value.len() > MAX_HEADER_LEN {
        return None;
    }
    let value = value.trim_start();
    let (scheme, mut rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=')?;
        let name = name.trim().to_ascii_lowercase();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid || params.iter().any(|(n, _)| *n == name) {
            return None;
        }
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => {
                let end = after.find(',').unwrap_or(after.len());
                let (token, remainder) = after.split_at(end);
                (token.trim().to_string(), remainder)
            }
        };
        params.push((name, value));
        rest = remainder.trim_start();
        if !rest.is_empty() && !rest.starts_with(',') {
            return None;
        }
    }
    Some(DigestParams(params))
}

/// Reads a quoted-string body up to its closing quote: (unescaped value, text after it).
fn unquote(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `nc`: exactly 8 hex digits (RFC 7616 §3.4).
fn parse_nc(text: &str) -> Option<u32> {
    let hex = text.len() == 8 && text.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| u32::from_str_radix(text, 16).ok())?
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
