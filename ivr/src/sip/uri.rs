//! SIP, SIPS and tel URIs (RFC 3261 §19.1 and §25.1, RFC 3966 for `tel:`, RFC 5118 for IPv6).
//!
//! [`Uri::parse`] checks the characters of every component against the §25.1 grammar and keeps
//! them as received: `%` escapes in the user part are validated but not decoded (use
//! [`unescape`] for the decoded octets), so printing gives back the same text and two URIs
//! compare equal only when they were written alike (RFC 3261 §19.1.4 equivalence is not
//! implemented; the gateway compares hosts and users it wrote itself).
//!
//! Deviations: an IPv6 reference is accepted when it is hex digits, `:` and `.` between
//! brackets (RFC 5118 §4.10's three-colon form included); URIs of other schemes are kept
//! opaque in [`Uri::host`].

use std::fmt;

use crate::sip::message::ParseError;

/// URI scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966); the number is in [`Uri::user`].
    Tel,
    /// Any other scheme, lower-cased; the rest of the URI is in [`Uri::host`].
    Other(String),
}

impl Scheme {
    /// The scheme name as printed (without the colon).
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

/// `;name=value;flag` parameters, in order. Names compare case-insensitively; values are
/// kept as written (a quoted header-parameter value keeps its quotes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// `Some(None)` for a flag, `Some(Some(v))` for `name=v`, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of `name=value`; `None` when absent or a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    /// Whether the parameter is present (flag or valued).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (replacing in place) or appends a parameter.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    /// Removes every parameter of that name.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn push(&mut self, name: String, value: Option<String>) {
        self.0.push((name, value));
    }
}

impl fmt::Display for Params {
    /// `;a=b;c` (nothing when empty).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// A parsed URI (RFC 3261 §19.1.1 for sip/sips).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uri {
    /// The scheme.
    pub scheme: Scheme,
    /// User part, `%` escapes kept as written; the number for `tel:`.
    pub user: Option<String>,
    /// Password (deprecated by RFC 3261 but part of the grammar).
    pub password: Option<String>,
    /// Host name, IPv4 address, or IPv6 reference with its brackets; the opaque rest for
    /// [`Scheme::Other`]; empty for `tel:`.
    pub host: String,
    /// Explicit port.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// URI headers (`?Subject=x&Route=...`), values as written.
    pub headers: Vec<(String, String)>,
}

impl Uri {
    /// A `sip:` URI with the given user and host.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host: host.to_owned(),
            port,
            params: Params::new(),
            headers: Vec::new(),
        }
    }

    /// Parses a URI (no surrounding whitespace or brackets).
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let bad = |what: &str| ParseError::BadRequest(format!("{what} in URI {:?}", clip(s)));
        let (scheme, rest) = s.split_once(':').ok_or_else(|| bad("no scheme"))?;
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(bad("bad scheme"));
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            other => Scheme::Other(other.to_owned()),
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => parse_sip(scheme, rest).ok_or_else(|| bad("bad syntax")),
            Scheme::Tel => {
                let (number, params) = rest.split_at(rest.find(';').unwrap_or(rest.len()));
                if number.is_empty() || !number.bytes().all(|b| is_user_char(b) && b != b';') {
                    return Err(bad("bad telephone number"));
                }
                Ok(Uri {
                    scheme,
                    user: Some(number.to_owned()),
                    password: None,
                    host: String::new(),
                    port: None,
                    params: parse_uri_params(params).ok_or_else(|| bad("bad parameter"))?,
                    headers: Vec::new(),
                })
            }
            Scheme::Other(_) => {
                if rest.is_empty() || !rest.bytes().all(is_uric) || !escapes_ok(rest) {
                    return Err(bad("bad character"));
                }
                Ok(Uri {
                    scheme,
                    user: None,
                    password: None,
                    host: rest.to_owned(),
                    port: None,
                    params: Params::new(),
                    headers: Vec::new(),
                })
            }
        }
    }

    /// Host and port to send to: the explicit port, else 5061 for sips and 5060 otherwise.
    pub fn host_port(&self) -> (String, u16) {
        let default = if self.scheme == Scheme::Sips {
            5061
        } else {
            5060
        };
        (self.host.clone(), self.port.unwrap_or(default))
    }

    /// Whether this is a sip: or sips: URI.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if let Scheme::Other(_) = self.scheme {
            return f.write_str(&self.host);
        }
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(pw) = &self.password {
                write!(f, ":{pw}")?;
            }
            if self.scheme != Scheme::Tel {
                f.write_str("@")?;
            }
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        for (i, (n, v)) in self.headers.iter().enumerate() {
            write!(f, "{}{n}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Uri {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Uri, ParseError> {
        Uri::parse(s)
    }
}

/// Decodes `%` escapes (RFC 3261 §25.1); invalid escapes are kept literally and octets that
/// are not UTF-8 become U+FFFD.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = b.get(i + 1..i + 3).and_then(hex_pair) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_sip(scheme: Scheme, rest: &str) -> Option<Uri> {
    let (userinfo, hostpart) = match rest.find('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(ui) => {
            let (u, p) = match ui.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (ui, None),
            };
            if u.is_empty() || !u.bytes().all(is_user_char) || !escapes_ok(u) {
                return None;
            }
            if let Some(p) = p {
                if !p.bytes().all(is_password_char) || !escapes_ok(p) {
                    return None;
                }
            }
            (Some(u.to_owned()), p.map(str::to_owned))
        }
    };
    let (hostport, tail) = match hostpart.find([';', '?']) {
        Some(i) => hostpart.split_at(i),
        None => (hostpart, ""),
    };
    let (host, port) = split_host_port(hostport)?;
    let (params, headers) = match tail.find('?') {
        Some(i) => (&tail[..i], Some(&tail[i + 1..])),
        None => (tail, None),
    };
    let params = parse_uri_params(params)?;
    let mut hdrs = Vec::new();
    if let Some(h) = headers {
        for pair in h.split('&') {
            let (n, v) = pair.split_once('=')?;
            let ok = |s: &str| s.bytes().all(is_hchar) && escapes_ok(s);
            if n.is_empty() || !ok(n) || !ok(v) {
                return None;
            }
            hdrs.push((n.to_owned(), v.to_owned()));
        }
    }
    Some(Uri {
        scheme,
        user,
        password,
        host: host.to_owned(),
        port,
        params,
        headers: hdrs,
    })
}

/// Splits `host[:port]`, validating the host (name, IPv4, or bracketed IPv6 reference).
pub(crate) fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let (h, rest) = s.split_at(end + 1);
        match rest {
            "" => (h, None),
            _ => (h, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if !valid_host(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

fn valid_host(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !h.starts_with(['-', '.'])
}

fn parse_uri_params(s: &str) -> Option<Params> {
    let mut params = Params::new();
    if s.is_empty() {
        return Some(params);
    }
    let s = s.strip_prefix(';')?;
    for p in s.split(';') {
        let (n, v) = match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        let ok = |s: &str| !s.is_empty() && s.bytes().all(is_param_char) && escapes_ok(s);
        if !ok(n) || v.is_some_and(|v| !ok(v)) {
            return None;
        }
        params.push(n.to_owned(), v.map(str::to_owned));
    }
    Some(params)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"&=+$,;?/".contains(&b)
}

fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"&=+$,".contains(&b)
}

fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"[]/:&+$".contains(&b)
}

fn is_hchar(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"[]/?:+$".contains(&b)
}

fn is_uric(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b";/?:@&=+$,[]".contains(&b)
}

/// Every `%` starts a two-hex-digit escape.
fn escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter()
        .enumerate()
        .filter(|(_, c)| **c == b'%')
        .all(|(i, _)| b.get(i + 1..i + 3).and_then(hex_pair).is_some())
}

fn hex_pair(p: &[u8]) -> Option<u8> {
    let d = |c: u8| (c as char).to_digit(16);
    match p {
        [a, b] => Some((d(*a)? * 16 + d(*b)?) as u8),
        _ => None,
    }
}

/// At most 60 characters of peer text for error messages.
pub(crate) fn clip(s: &str) -> &str {
    match s.char_indices().nth(60) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> Uri {
        let u = Uri::parse(s).unwrap();
        assert_eq!(u.to_string(), s);
        assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
        u
    }

    #[test]
    fn sip_uri_components() {
        let u = round_trip("sip:alice:secret@example.com:5070;transport=tcp;lr?Subject=hi&X=y");
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params.value("TRANSPORT"), Some("tcp"));
        assert!(u.params.has("lr"));
        assert_eq!(u.params.get("lr"), Some(None));
        assert_eq!(
            u.headers,
            vec![("Subject".into(), "hi".into()), ("X".into(), "y".into())]
        );
        assert_eq!(u.host_port(), ("example.com".into(), 5070));
    }

    #[test]
    fn default_ports_follow_the_scheme() {
        assert_eq!(Uri::parse("sip:h").unwrap().host_port().1, 5060);
        assert_eq!(Uri::parse("SIPS:h").unwrap().host_port().1, 5061);
    }

    #[test]
    fn ipv6_references_keep_brackets() {
        let u = round_trip("sip:user@[2001:db8::10]:5070");
        assert_eq!(u.host, "[2001:db8::10]");
        assert_eq!(u.port, Some(5070));
        assert_eq!(round_trip("sip:[2001:db8::10:5070]").port, None);
        assert!(Uri::parse("sip:[2001:db8::1").is_err());
        assert!(Uri::parse("sip:[2001:db8::1]x").is_err());
    }

    #[test]
    fn escapes_in_user_are_validated_and_kept() {
        let u = round_trip("sip:sips%3Auser%40example.com@example.net");
        assert_eq!(
            unescape(u.user.as_deref().unwrap()),
            "sips:user@example.com"
        );
        assert!(Uri::parse("sip:a%4@example.com").is_err());
        assert!(Uri::parse("sip:a%zz@example.com").is_err());
    }

    #[test]
    fn user_part_may_hold_semicolons() {
        let u = round_trip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert!(u.params.is_empty());
    }

    #[test]
    fn whitespace_and_bad_ports_are_rejected() {
        for bad in [
            "sip:user@example.com; lr",
            "sip:user@exa mple.com",
            "sip:user@example.com:99999",
            "sip:user@example.com:",
            "sip:@example.com",
            "sip:user@example.com;;lr",
            "sip:",
            "nocolon",
            "1sip:x",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tel_and_unknown_schemes() {
        let t = round_trip("tel:+1-201-555-0123;phone-context=example.com");
        assert_eq!(t.scheme, Scheme::Tel);
        assert_eq!(t.user.as_deref(), Some("+1-201-555-0123"));
        let o = round_trip("soap.beep://192.0.2.103:3002");
        assert_eq!(o.scheme, Scheme::Other("soap.beep".into()));
        assert_eq!(o.host, "//192.0.2.103:3002");
        assert!(Uri::parse("http://exa mple").is_err());
    }

    #[test]
    fn params_set_replace_and_remove() {
        let mut p = Params::new();
        p.set("tag", Some("a".into()));
        p.set("lr", None);
        p.set("TAG", Some("b".into()));
        assert_eq!(p.to_string(), ";tag=b;lr");
        p.remove("Lr");
        assert_eq!(p.to_string(), ";tag=b");
    }
}
