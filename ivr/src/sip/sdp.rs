//! Session descriptions (RFC 4566) and the offer/answer rules (RFC 3264) for a G.711 gateway.
//!
//! Owns: the SDP model ([`SessionDescription`]), its parser and printer, and the negotiation of
//! one audio stream: PCMU or PCMA at 8000 Hz, RFC 4733 `telephone-event/8000`, 20 ms packets.
//! No IO, no clock; session versions come from a [`SessionVersion`] the caller keeps per call.
//!
//! Parsing accepts CRLF or bare LF line ends and skips empty lines; every other line must be
//! `<letter>=<value>` with a type letter RFC 4566 §5 defines at that level (session: `v o s i u
//! e p c b t r z k a`, media: `i c b k a`), else the whole description is refused, as §5
//! requires. Session-level lines are accepted in any order (peers get it wrong) and printed in
//! the §5 order; attributes keep their order and unknown ones are kept verbatim. Input is
//! bounded ([`MAX_SDP_LEN`], [`MAX_MEDIA`]); errors carry the 1-based line number.
//!
//! Offer/answer (RFC 3264):
//! - [`answer`] answers a caller's offer: the first audio `RTP/AVP` (or `RTP/AVPF`) stream with
//!   a codec we speak is accepted, with the caller's most preferred of PCMU (static 0 or a
//!   dynamic `PCMU/8000`) and PCMA (8), plus `telephone-event/8000` at the caller's payload
//!   type; every other `m=` line is answered with port 0, in order (§6). Direction is mirrored
//!   (§6.1); legacy hold by `c=0.0.0.0` (§8.4) is answered `recvonly` (or `inactive`), and the
//!   gateway must not send to that address. We always send 20 ms packets and say `a=ptime:20`,
//!   whatever `ptime` the caller asked for (deviation: a caller asking for 30 ms gets 20 ms).
//! - [`offer`] and [`accept_answer`] do the same for our own calls out.
//!
//! ```
//! # use ivr::sip::sdp::{answer, Codec, SessionVersion};
//! let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
//!              m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
//! let mut version = SessionVersion::new(42);
//! let (negotiated, sdp) = answer(offer, "192.0.2.1:30000".parse().unwrap(), &mut version).unwrap();
//! assert_eq!(negotiated.codec, Codec::Pcma);
//! assert_eq!(negotiated.dtmf_pt, Some(101));
//! assert!(sdp.contains("m=audio 30000 RTP/AVP 8 101\r\n"));
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Largest description accepted, in bytes (a SIP body is at most 64 KiB; a phone's SDP is <2 KiB).
pub const MAX_SDP_LEN: usize = 16 * 1024;
/// Most `m=` lines accepted in one description.
pub const MAX_MEDIA: usize = 32;
/// Payload type we offer for `telephone-event/8000`.
pub const OFFER_DTMF_PT: u8 = 101;
/// The packet duration we send, in milliseconds.
pub const PTIME_MS: u32 = 20;

/// What is wrong with a description, and on which line (1-based; 0 = the whole text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {kind}")]
pub struct SdpError {
    /// 1-based line number; 0 when the error is about the description as a whole.
    pub line: usize,
    /// What went wrong.
    pub kind: SdpErrorKind,
}

/// The kinds of [`SdpError`]; all of them are the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpErrorKind {
    /// Longer than [`MAX_SDP_LEN`] or more than [`MAX_MEDIA`] media descriptions.
    #[error("description too large")]
    TooLarge,
    /// Not of the form `<letter>=<value>`.
    #[error("not a `<type>=<value>` line")]
    Syntax,
    /// A type letter RFC 4566 does not define at this level (or `r=` before any `t=`).
    #[error("unexpected `{0}=` line")]
    Unexpected(char),
    /// The first line is not `v=0`.
    #[error("expected `v=0` first")]
    Version,
    /// A required line (`o=` or `s=`) is missing.
    #[error("missing `{0}=` line")]
    Missing(char),
    /// A line that may appear once appears again.
    #[error("repeated `{0}=` line")]
    Repeated(char),
    /// A structured line (`o=`, `c=`, `b=`, `t=`, `m=`, `a=`) has the wrong fields.
    #[error("malformed `{0}=` line")]
    Field(char),
}

/// `o=`: who made the session and which version of its description this is (RFC 4566 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `-` when there is no user name.
    pub username: String,
    /// Numeric session id (kept as text: peers send values beyond 64 bits).
    pub session_id: String,
    /// Version of this description; bumps on every change.
    pub session_version: String,
    /// `IN`.
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// Address or host name of the originator.
    pub address: String,
}

/// `c=`: where media goes (RFC 4566 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IN`.
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// Address as written, with any `/ttl/count` suffix of a multicast address.
    pub address: String,
}

impl Connection {
    /// A unicast `IN IP4` / `IN IP6` connection line for `ip`.
    pub fn new(ip: IpAddr) -> Self {
        let addr_type = if ip.is_ipv4() { "IP4" } else { "IP6" };
        Connection {
            net_type: "IN".into(),
            addr_type: addr_type.into(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, when it is an `IN` address literal of its stated family
    /// (`None` for host names and other networks).
    pub fn ip(&self) -> Option<IpAddr> {
        if !self.net_type.eq_ignore_ascii_case("IN") {
            return None;
        }
        let literal = self.address.split('/').next().unwrap_or_default();
        if self.addr_type.eq_ignore_ascii_case("IP4") {
            literal.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        } else if self.addr_type.eq_ignore_ascii_case("IP6") {
            literal.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        } else {
            None
        }
    }
}

/// `b=<type>:<value>` (RFC 4566 §5.8), value in kilobits per second for `AS`/`CT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `CT`, `AS`, `TIAS`, ...
    pub kind: String,
    /// The bandwidth value.
    pub value: u64,
}

/// `t=` with its `r=` lines (RFC 4566 §5.9, §5.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// NTP start time; 0 = unbounded.
    pub start: u64,
    /// NTP stop time; 0 = unbounded.
    pub stop: u64,
    /// `r=` values, verbatim.
    pub repeats: Vec<String>,
}

/// `a=<name>` or `a=<name>:<value>` (RFC 4566 §5.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name (case-sensitive, as RFC 4566 says).
    pub name: String,
    /// The text after the first `:`, if there was one.
    pub value: Option<String>,
}

impl Attribute {
    fn new(name: &str, value: Option<String>) -> Self {
        Attribute {
            name: name.to_string(),
            value,
        }
    }
}

/// One `m=` section (RFC 4566 §5.14) and its `i c b k a` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, ...
    pub media: String,
    /// Transport port; 0 = stream disabled or rejected.
    pub port: u16,
    /// The `/<number of ports>` suffix, if any.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `udp`, ...
    pub proto: String,
    /// Formats: RTP payload type numbers for RTP protocols.
    pub formats: Vec<String>,
    /// `i=`.
    pub information: Option<String>,
    /// `c=` lines at media level.
    pub connections: Vec<Connection>,
    /// `b=` lines at media level.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=`.
    pub key: Option<String>,
    /// `a=` lines at media level, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// Values of every attribute named `name`, in order.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        attribute_values(&self.attributes, name)
    }

    /// The `a=rtpmap` encoding (`name/rate[/channels]`) for payload type `pt`.
    pub fn rtpmap(&self, pt: u8) -> Option<&str> {
        self.attribute_values("rtpmap").find_map(|v| {
            let (num, encoding) = v.split_once(' ')?;
            (num.trim().parse::<u8>().ok()? == pt).then_some(encoding.trim())
        })
    }

    /// The `a=fmtp` parameters for payload type `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attribute_values("fmtp").find_map(|v| {
            let (num, params) = v.split_once(' ')?;
            (num.trim().parse::<u8>().ok()? == pt).then_some(params.trim())
        })
    }
}

/// A whole session description (RFC 4566 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=` (`-` when there is nothing to say).
    pub session_name: String,
    /// `i=`.
    pub information: Option<String>,
    /// `u=`.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines.
    pub timings: Vec<Timing>,
    /// `z=`, verbatim.
    pub time_zones: Option<String>,
    /// `k=`, verbatim.
    pub key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// `m=` sections, in order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses a description; see the module docs for what is accepted.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        if text.len() > MAX_SDP_LEN {
            return Err(SdpError {
                line: 0,
                kind: SdpErrorKind::TooLarge,
            });
        }
        Parser::default().parse(text)
    }

    /// Values of every session-level attribute named `name`, in order.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        attribute_values(&self.attributes, name)
    }

    /// The connection that applies to `media`: its own first `c=`, else the session's.
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connections.first().or(self.connection.as_ref())
    }

    /// The direction that applies to `media` (media level, else session level, else sendrecv).
    pub fn direction_for(&self, media: &MediaDescription) -> Direction {
        direction_in(&media.attributes)
            .or_else(|| direction_in(&self.attributes))
            .unwrap_or(Direction::SendRecv)
    }
}

fn attribute_values<'a>(
    attributes: &'a [Attribute],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    attributes
        .iter()
        .filter(move |a| a.name == name)
        .map(|a| a.value.as_deref().unwrap_or(""))
}

fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes
        .iter()
        .rev()
        .find_map(|a| match (a.name.as_str(), &a.value) {
            ("sendrecv", None) => Some(Direction::SendRecv),
            ("sendonly", None) => Some(Direction::SendOnly),
            ("recvonly", None) => Some(Direction::RecvOnly),
            ("inactive", None) => Some(Direction::Inactive),
            _ => None,
        })
}

#[derive(Default)]
struct Parser {
    version: bool,
    origin: Option<Origin>,
    session_name: Option<String>,
}

impl Parser {
    fn parse(mut self, text: &str) -> Result<SessionDescription, SdpError> {
        let mut sd = SessionDescription {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                session_version: String::new(),
                net_type: String::new(),
                addr_type: String::new(),
                address: String::new(),
            },
            session_name: String::new(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: Vec::new(),
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let mut last_line = 0;
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            last_line = line;
            let err = |kind| SdpError { line, kind };
            let mut chars = raw.chars();
            let (Some(letter), Some('=')) = (chars.next(), chars.next()) else {
                return Err(err(SdpErrorKind::Syntax));
            };
            let value = chars.as_str();
            if !self.version {
                if letter != 'v' || value.trim() != "0" {
                    return Err(err(SdpErrorKind::Version));
                }
                self.version = true;
                continue;
            }
            if letter == 'm' {
                if sd.media.len() >= MAX_MEDIA {
                    return Err(err(SdpErrorKind::TooLarge));
                }
                sd.media
                    .push(parse_media(value).ok_or(err(SdpErrorKind::Field('m')))?);
                continue;
            }
            if let Some(media) = sd.media.last_mut() {
                media_line(media, letter, value).map_err(err)?;
            } else {
                self.session_line(&mut sd, letter, value).map_err(err)?;
            }
        }
        let missing = |c| SdpError {
            line: last_line.max(1),
            kind: SdpErrorKind::Missing(c),
        };
        if !self.version {
            return Err(SdpError {
                line: 1,
                kind: SdpErrorKind::Version,
            });
        }
        sd.origin = self.origin.take().ok_or_else(|| missing('o'))?;
        sd.session_name = self.session_name.take().ok_or_else(|| missing('s'))?;
        Ok(sd)
    }

    fn session_line(
        &mut self,
        sd: &mut SessionDescription,
        letter: char,
        value: &str,
    ) -> Result<(), SdpErrorKind> {
        fn once(slot: &mut Option<String>, letter: char, value: &str) -> Result<(), SdpErrorKind> {
            if slot.is_some() {
                return Err(SdpErrorKind::Repeated(letter));
            }
            *slot = Some(value.to_string());
            Ok(())
        }
        match letter {
            'v' => return Err(SdpErrorKind::Repeated('v')),
            'o' => {
                if self.origin.is_some() {
                    return Err(SdpErrorKind::Repeated('o'));
                }
                self.origin = Some(parse_origin(value).ok_or(SdpErrorKind::Field('o'))?);
            }
            's' => once(&mut self.session_name, 's', value)?,
            'i' => once(&mut sd.information, 'i', value)?,
            'u' => once(&mut sd.uri, 'u', value)?,
            'e' => sd.emails.push(value.to_string()),
            'p' => sd.phones.push(value.to_string()),
            'c' => {
                if sd.connection.is_some() {
                    return Err(SdpErrorKind::Repeated('c'));
                }
                sd.connection = Some(parse_connection(value).ok_or(SdpErrorKind::Field('c'))?);
            }
            'b' => sd
                .bandwidths
                .push(parse_bandwidth(value).ok_or(SdpErrorKind::Field('b'))?),
            't' => sd
                .timings
                .push(parse_timing(value).ok_or(SdpErrorKind::Field('t'))?),
            'r' => {
                let timing = sd.timings.last_mut().ok_or(SdpErrorKind::Unexpected('r'))?;
                timing.repeats.push(value.to_string());
            }
            'z' => once(&mut sd.time_zones, 'z', value)?,
            'k' => once(&mut sd.key, 'k', value)?,
            'a' => sd.attributes.push(parse_attribute(value)?),
            other => return Err(SdpErrorKind::Unexpected(other)),
        }
        Ok(())
    }
}

fn media_line(media: &mut MediaDescription, letter: char, value: &str) -> Result<(), SdpErrorKind> {
    match letter {
        'i' if media.information.is_none() => media.information = Some(value.to_string()),
        'k' if media.key.is_none() => media.key = Some(value.to_string()),
        'i' | 'k' => return Err(SdpErrorKind::Repeated(letter)),
        'c' => media
            .connections
            .push(parse_connection(value).ok_or(SdpErrorKind::Field('c'))?),
        'b' => media
            .bandwidths
            .push(parse_bandwidth(value).ok_or(SdpErrorKind::Field('b'))?),
        'a' => media.attributes.push(parse_attribute(value)?),
        other => return Err(SdpErrorKind::Unexpected(other)),
    }
    Ok(())
}

/// A field of a structured line: non-empty, no whitespace (guaranteed by the split).
fn fields(value: &str) -> impl Iterator<Item = &str> {
    value.split_ascii_whitespace()
}

fn parse_origin(value: &str) -> Option<Origin> {
    let mut f = fields(value);
    let origin = Origin {
        username: f.next()?.to_string(),
        session_id: digits(f.next()?)?.to_string(),
        session_version: digits(f.next()?)?.to_string(),
        net_type: f.next()?.to_string(),
        addr_type: f.next()?.to_string(),
        address: f.next()?.to_string(),
    };
    f.next().is_none().then_some(origin)
}

fn digits(s: &str) -> Option<&str> {
    (s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

fn parse_connection(value: &str) -> Option<Connection> {
    let mut f = fields(value);
    let connection = Connection {
        net_type: f.next()?.to_string(),
        addr_type: f.next()?.to_string(),
        address: f.next()?.to_string(),
    };
    f.next().is_none().then_some(connection)
}

fn parse_bandwidth(value: &str) -> Option<Bandwidth> {
    let (kind, number) = value.split_once(':')?;
    let kind = kind.trim();
    let valid = !kind.is_empty() && !kind.contains(|c: char| c.is_ascii_whitespace());
    valid.then(|| {
        Some(Bandwidth {
            kind: kind.to_string(),
            value: number.trim().parse().ok()?,
        })
    })?
}

fn parse_timing(value: &str) -> Option<Timing> {
    let mut f = fields(value);
    let timing = Timing {
        start: f.next()?.parse().ok()?,
        stop: f.next()?.parse().ok()?,
        repeats: vec![],
    };
    f.next().is_none().then_some(timing)
}

fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut f = fields(value);
    let media = f.next()?.to_string();
    let port_field = f.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (port.parse().ok()?, Some(count.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = f.next()?.to_string();
    let formats: Vec<String> = f.map(str::to_string).collect();
    if formats.is_empty() {
        return None;
    }
    Some(MediaDescription {
        media,
        port,
        port_count,
        proto,
        formats,
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    })
}

fn parse_attribute(value: &str) -> Result<Attribute, SdpErrorKind> {
    let (name, value) = match value.split_once(':') {
        Some((name, rest)) => (name, Some(rest.to_string())),
        None => (value, None),
    };
    if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
        return Err(SdpErrorKind::Field('a'));
    }
    Ok(Attribute::new(name, value))
}

impl fmt::Display for SessionDescription {
    /// Prints the description with CRLF line ends, in RFC 4566 §5 order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v=0\r\n")?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        line(f, 'i', &self.information)?;
        line(f, 'u', &self.uri)?;
        for email in &self.emails {
            write!(f, "e={email}\r\n")?;
        }
        for phone in &self.phones {
            write!(f, "p={phone}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "{c}")?;
        }
        for b in &self.bandwidths {
            write!(f, "{b}")?;
        }
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        line(f, 'z', &self.time_zones)?;
        line(f, 'k', &self.key)?;
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

fn line(f: &mut fmt::Formatter<'_>, letter: char, value: &Option<String>) -> fmt::Result {
    match value {
        Some(v) => write!(f, "{letter}={v}\r\n"),
        None => Ok(()),
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c={} {} {}\r\n",
            self.net_type, self.addr_type, self.address
        )
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b={}:{}\r\n", self.kind, self.value)
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "a={}:{}\r\n", self.name, v),
            None => write!(f, "a={}\r\n", self.name),
        }
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        write!(f, "\r\n")?;
        line(f, 'i', &self.information)?;
        for c in &self.connections {
            write!(f, "{c}")?;
        }
        for b in &self.bandwidths {
            write!(f, "{b}")?;
        }
        line(f, 'k', &self.key)?;
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Offer/answer

/// The G.711 codecs the gateway speaks, both at 8000 Hz.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 §6).
    pub fn static_pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// Media direction (RFC 3264 §5.1, §6.1), from the point of view of whoever wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Send and receive.
    SendRecv,
    /// Send only (the other side is on hold, hearing music or silence).
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The answerer's direction for an offered one (sendonly ↔ recvonly).
    pub fn mirror(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The attribute name (`sendrecv`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// What a peer offers (or answers) for one audio stream, in terms the gateway can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOffer {
    /// Where the peer receives RTP (`c=` address + `m=` port); an unspecified IP means hold.
    pub remote: SocketAddr,
    /// The codecs we speak, with the peer's payload type, in the peer's preference order.
    pub codecs: Vec<(u8, Codec)>,
    /// The peer's payload type for `telephone-event/8000`.
    pub dtmf_pt: Option<u8>,
    /// The peer's `a=ptime`, if any.
    pub ptime_ms: Option<u32>,
    /// The peer's direction for this stream.
    pub direction: Direction,
}

impl MediaOffer {
    /// Reads one `m=` section of `sd`. `None` when it is not an audio RTP stream we could use:
    /// not `audio`, not `RTP/AVP(F)`, port 0, no PCMU/PCMA, or no usable IP connection address.
    pub fn from_media(sd: &SessionDescription, media: &MediaDescription) -> Option<MediaOffer> {
        let rtp = media.proto.eq_ignore_ascii_case("RTP/AVP")
            || media.proto.eq_ignore_ascii_case("RTP/AVPF");
        if !media.media.eq_ignore_ascii_case("audio") || !rtp || media.port == 0 {
            return None;
        }
        let ip = sd.connection_for(media)?.ip()?;
        let mut codecs = Vec::new();
        let mut dtmf_pt = None;
        for pt in media.formats.iter().filter_map(|f| f.parse::<u8>().ok()) {
            if pt > 127 {
                continue;
            }
            match media.rtpmap(pt).map(Encoding::parse) {
                Some(Some(Encoding::Codec(codec))) => codecs.push((pt, codec)),
                Some(Some(Encoding::TelephoneEvent)) => {
                    dtmf_pt = dtmf_pt.or(Some(pt));
                }
                Some(None) => {}
                None if pt == 0 => codecs.push((0, Codec::Pcmu)),
                None if pt == 8 => codecs.push((8, Codec::Pcma)),
                None => {}
            }
        }
        if codecs.is_empty() {
            return None;
        }
        let ptime_ms = media
            .attribute_values("ptime")
            .find_map(|v| v.trim().parse().ok());
        Some(MediaOffer {
            remote: SocketAddr::new(ip, media.port),
            codecs,
            dtmf_pt,
            ptime_ms,
            direction: sd.direction_for(media),
        })
    }

    /// Whether the peer put the stream on hold (RFC 3264 §8.4): it does not want to receive,
    /// by direction or by the legacy `c=0.0.0.0`.
    pub fn is_hold(&self) -> bool {
        !self.direction.receives() || self.remote.ip().is_unspecified()
    }
}

/// An `a=rtpmap` encoding we recognise.
enum Encoding {
    Codec(Codec),
    TelephoneEvent,
}

impl Encoding {
    /// `Some(..)` for `PCMU/8000`, `PCMA/8000` (optionally `/1`) and `telephone-event/8000`.
    fn parse(rtpmap: &str) -> Option<Encoding> {
        let mut parts = rtpmap.split('/');
        let name = parts.next()?.trim();
        let rate = parts.next()?.trim();
        let channels = parts.next().map(str::trim);
        if rate != "8000" || !matches!(channels, None | Some("1")) || parts.next().is_some() {
            return None;
        }
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Encoding::Codec(Codec::Pcmu))
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Encoding::Codec(Codec::Pcma))
        } else if name.eq_ignore_ascii_case("telephone-event") && channels.is_none() {
            Some(Encoding::TelephoneEvent)
        } else {
            None
        }
    }
}

/// The outcome of offer/answer for the one audio stream of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP; an unspecified IP (legacy hold) means send nothing.
    pub remote: SocketAddr,
    /// The codec both sides use.
    pub codec: Codec,
    /// Its payload type (the peer's, for a dynamic one).
    pub codec_pt: u8,
    /// Payload type for RFC 4733 events, when both sides have them.
    pub dtmf_pt: Option<u8>,
    /// Packet duration we send, in milliseconds (always [`PTIME_MS`]).
    pub ptime_ms: u32,
    /// Our direction: whether we send and/or receive.
    pub direction: Direction,
}

/// Why an offer or answer cannot be used; all are answered with 488 (RFC 3261 §13.3.1.1)
/// except `Malformed`, which is a 400 for an offer in an INVITE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// The body is not a valid session description.
    #[error("malformed session description: {0}")]
    Malformed(#[from] SdpError),
    /// There is no audio stream at all.
    #[error("no audio stream offered")]
    NoAudio,
    /// There are audio streams, but none with PCMU or PCMA over RTP/AVP to a usable address.
    #[error("no audio stream with a codec we support")]
    NoCommonCodec,
}

/// The `o=` identity of one session (one call) and its description version (RFC 4566 §5.2).
///
/// Every description we make for the session takes [`SessionVersion::bump`], so the version
/// goes up by one each time (RFC 3264 §8); the session id stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionVersion {
    id: u64,
    version: u64,
}

impl SessionVersion {
    /// A session with the given id (from the caller's RNG); its first description is version 1.
    pub fn new(id: u64) -> Self {
        SessionVersion { id, version: 0 }
    }

    /// The session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The version the last description carried (`None` before the first).
    pub fn current(&self) -> Option<u64> {
        (self.version > 0).then_some(self.version)
    }

    /// The version for a new description.
    pub fn bump(&mut self) -> u64 {
        self.version = self.version.saturating_add(1);
        self.version
    }

    fn origin(&mut self, ip: IpAddr) -> Origin {
        let c = Connection::new(ip);
        Origin {
            username: "-".into(),
            session_id: self.id.to_string(),
            session_version: self.bump().to_string(),
            net_type: c.net_type,
            addr_type: c.addr_type,
            address: c.address,
        }
    }
}

/// Answers an offer (RFC 3264 §6): see the module docs. Returns the negotiated stream and the
/// answer's text; on `Err` the call must be refused with 488 (400 for `Malformed`).
pub fn answer(
    offer: &str,
    local: SocketAddr,
    session: &mut SessionVersion,
) -> Result<(Negotiated, String), OfferError> {
    let offered = SessionDescription::parse(offer)?;
    let mut chosen: Option<Negotiated> = None;
    let mut lines = Vec::with_capacity(offered.media.len());
    for media in &offered.media {
        let usable = if chosen.is_none() {
            MediaOffer::from_media(&offered, media)
        } else {
            None
        };
        let Some(peer) = usable else {
            lines.push(rejected(media));
            continue;
        };
        // `from_media` never returns an offer without codecs.
        let Some(&(codec_pt, codec)) = peer.codecs.first() else {
            lines.push(rejected(media));
            continue;
        };
        // Legacy hold (c=0.0.0.0): the peer does not want to receive, whatever it says.
        let peer_receives = peer.direction.receives() && !peer.remote.ip().is_unspecified();
        let direction = Direction::from_flags(peer_receives, peer.direction.sends());
        let negotiated = Negotiated {
            remote: peer.remote,
            codec,
            codec_pt,
            dtmf_pt: peer.dtmf_pt,
            ptime_ms: PTIME_MS,
            direction,
        };
        lines.push(our_media(local.port(), &media.proto, &negotiated));
        chosen = Some(negotiated);
    }
    let Some(negotiated) = chosen else {
        let any_audio = offered
            .media
            .iter()
            .any(|m| m.media.eq_ignore_ascii_case("audio"));
        return Err(if any_audio {
            OfferError::NoCommonCodec
        } else {
            OfferError::NoAudio
        });
    };
    let sd = description(local.ip(), session, lines);
    Ok((negotiated, sd.to_string()))
}

/// Our offer for a call out: PCMU, PCMA and `telephone-event/8000` (events 0-16) on
/// `local`, 20 ms packets, sendrecv.
pub fn offer(local: SocketAddr, session: &mut SessionVersion) -> String {
    let mut media = audio_line(local.port(), "RTP/AVP", vec![0, 8, OFFER_DTMF_PT]);
    media.attributes = vec![
        rtpmap(0, Codec::Pcmu.name()),
        rtpmap(8, Codec::Pcma.name()),
        rtpmap(OFFER_DTMF_PT, "telephone-event"),
        Attribute::new("fmtp", Some(format!("{OFFER_DTMF_PT} 0-16"))),
        Attribute::new("ptime", Some(PTIME_MS.to_string())),
        Attribute::new(Direction::SendRecv.as_str(), None),
    ];
    description(local.ip(), session, vec![media]).to_string()
}

/// Reads the answer to our [`offer`] (RFC 3264 §7): the first accepted audio stream, its first
/// codec we speak (with the answerer's payload type), and our direction (theirs mirrored).
pub fn accept_answer(answer: &str) -> Result<Negotiated, OfferError> {
    let sd = SessionDescription::parse(answer)?;
    if !sd
        .media
        .iter()
        .any(|m| m.media.eq_ignore_ascii_case("audio"))
    {
        return Err(OfferError::NoAudio);
    }
    let peer = sd
        .media
        .iter()
        .find_map(|m| MediaOffer::from_media(&sd, m))
        .ok_or(OfferError::NoCommonCodec)?;
    let &(codec_pt, codec) = peer.codecs.first().ok_or(OfferError::NoCommonCodec)?;
    let peer_receives = peer.direction.receives() && !peer.remote.ip().is_unspecified();
    Ok(Negotiated {
        remote: peer.remote,
        codec,
        codec_pt,
        dtmf_pt: peer.dtmf_pt,
        ptime_ms: PTIME_MS,
        direction: Direction::from_flags(peer_receives, peer.direction.sends()),
    })
}

fn description(
    ip: IpAddr,
    session: &mut SessionVersion,
    media: Vec<MediaDescription>,
) -> SessionDescription {
    SessionDescription {
        origin: session.origin(ip),
        session_name: "-".into(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection::new(ip)),
        bandwidths: Vec::new(),
        timings: vec![Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }],
        time_zones: None,
        key: None,
        attributes: Vec::new(),
        media,
    }
}

fn audio_line(port: u16, proto: &str, pts: Vec<u8>) -> MediaDescription {
    MediaDescription {
        media: "audio".into(),
        port,
        port_count: None,
        proto: proto.to_string(),
        formats: pts.iter().map(u8::to_string).collect(),
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    }
}

fn rtpmap(pt: u8, name: &str) -> Attribute {
    Attribute::new("rtpmap", Some(format!("{pt} {name}/8000")))
}

/// Our accepted stream, with the offer's transport protocol (RFC 3264 §6.1).
fn our_media(port: u16, proto: &str, n: &Negotiated) -> MediaDescription {
    let mut pts = vec![n.codec_pt];
    let mut attributes = vec![rtpmap(n.codec_pt, n.codec.name())];
    if let Some(dtmf) = n.dtmf_pt {
        pts.push(dtmf);
        attributes.push(rtpmap(dtmf, "telephone-event"));
        attributes.push(Attribute::new("fmtp", Some(format!("{dtmf} 0-16"))));
    }
    attributes.push(Attribute::new("ptime", Some(n.ptime_ms.to_string())));
    attributes.push(Attribute::new(n.direction.as_str(), None));
    let mut media = audio_line(port, proto, pts);
    media.attributes = attributes;
    media
}

/// A rejected stream (RFC 3264 §6): same media, proto and formats, port 0, nothing else.
fn rejected(offered: &MediaDescription) -> MediaDescription {
    MediaDescription {
        media: offered.media.clone(),
        port: 0,
        port_count: None,
        proto: offered.proto.clone(),
        formats: offered.formats.clone(),
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
