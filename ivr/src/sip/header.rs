//! Typed SIP header values (RFC 3261 §20 and the §25.1 grammar): [`Via`], [`NameAddr`]
//! (From, To, Contact, Route, Record-Route, Refer-To), [`CSeq`], and [`ValueParams`] for
//! `value;param=x` fields (Content-Type, Event, Subscription-State, Retry-After), plus the
//! helpers every header shares: comma-list splitting that respects quotes and `<>`, generic
//! parameters with LWS around `;` and `=`, and quoted strings with `\` escapes.
//!
//! Each type parses one field value (already unfolded by the message parser: no CR or LF)
//! and prints a canonical form that parses back to the same value. Display names are kept
//! unquoted and unescaped, and always printed quoted; a `NameAddr` is always printed in
//! `<uri>` form. Headers the gateway does not interpret stay raw strings in
//! [`crate::sip::message::Headers`].

use std::fmt;

use crate::sip::message::{Method, ParseError};
use crate::sip::uri::{clip, split_host_port, Params, Uri};

fn bad(what: &str, value: &str) -> ParseError {
    ParseError::BadRequest(format!("{what}: {:?}", clip(value)))
}

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Whether `s` is a non-empty token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// Byte length of the quoted string at the start of `s` (including both quotes), or `None`
/// when `s` does not start with a complete one.
fn quoted_len(s: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, e) = chars.next()?;
                if !e.is_ascii() || e == '\r' || e == '\n' {
                    return None;
                }
            }
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The content of a quoted string (quotes removed, `\x` → `x`).
fn unquote(q: &str) -> String {
    let inner = &q[1..q.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut esc = false;
    for c in inner.chars() {
        if esc || c != '\\' {
            out.push(c);
            esc = false;
        } else {
            esc = true;
        }
    }
    out
}

/// `s` as a quoted string, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits at `sep` outside quoted strings and `<...>`; `None` on an unterminated quote.
fn split_top(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut angle = false;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let c = rest.chars().next()?;
        if c == '"' && !angle {
            i += quoted_len(rest)?;
            continue;
        }
        match c {
            '<' => angle = true,
            '>' => angle = false,
            c if c == sep && !angle => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// The elements of a comma-separated header value (RFC 3261 §7.3.1), trimmed, empty
/// elements dropped. Commas inside quoted strings and `<...>` do not split. An unterminated
/// quoted string yields the whole value as one element (its parser then rejects it).
pub fn split_list(value: &str) -> Vec<&str> {
    match split_top(value, ',') {
        Some(parts) => parts
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect(),
        None => vec![value.trim()],
    }
}

/// Parses generic parameters `;name=value;flag` with optional LWS around `;` and `=`.
/// `s` must be empty or start (after whitespace) with `;`. Values are tokens, hosts or
/// quoted strings and are kept as written.
pub fn parse_params(s: &str) -> Result<Params, ParseError> {
    let mut params = Params::new();
    let t = s.trim();
    if t.is_empty() {
        return Ok(params);
    }
    let t = t
        .strip_prefix(';')
        .ok_or_else(|| bad("expected ';' before parameters", s))?;
    for p in split_top(t, ';').ok_or_else(|| bad("unterminated quoted string", s))? {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if !is_token(name) {
            return Err(bad("bad parameter name", p));
        }
        if let Some(v) = value {
            let ok = if v.starts_with('"') {
                quoted_len(v) == Some(v.len())
            } else {
                !v.is_empty() && v.chars().all(|c| is_token_char(c) || "[]:".contains(c))
            };
            if !ok {
                return Err(bad("bad parameter value", p));
            }
        }
        params.push(name.to_owned(), value.map(str::to_owned));
    }
    Ok(params)
}

/// `name-addr` or `addr-spec` with header parameters (RFC 3261 §20.10, §20.20, §20.39):
/// From, To, Contact, Route, Record-Route, Refer-To.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted and unescaped.
    pub display: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters (`;tag=...`, `;expires=...`).
    pub params: Params,
}

impl NameAddr {
    /// An address without display name or parameters.
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display: None,
            uri,
            params: Params::new(),
        }
    }

    /// Parses one element (not a comma list).
    pub fn parse(s: &str) -> Result<NameAddr, ParseError> {
        let t = s.trim();
        let (display, rest) = if t.starts_with('"') {
            let end = quoted_len(t).ok_or_else(|| bad("unterminated display name", s))?;
            (Some(unquote(&t[..end])), t[end..].trim_start())
        } else if let Some(lt) = t.find('<') {
            let words: Vec<&str> = t[..lt].split_whitespace().collect();
            if !words.iter().all(|w| is_token(w)) {
                return Err(bad("display name must be tokens or quoted", s));
            }
            ((!words.is_empty()).then(|| words.join(" ")), &t[lt..])
        } else {
            (None, t)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let gt = inner.find('>').ok_or_else(|| bad("missing '>'", s))?;
            let uri = Uri::parse(&inner[..gt])?;
            let params = parse_params(&inner[gt + 1..])?;
            return Ok(NameAddr {
                display,
                uri,
                params,
            });
        }
        if display.is_some() {
            return Err(bad("display name without <uri>", s));
        }
        // addr-spec: parameters after the first ';' belong to the header, and a URI with
        // `,`, `;` or `?` must be in <> (RFC 3261 §20).
        let (uri, params) = match rest.find(';') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if uri.contains(['?', ',']) {
            return Err(bad("URI with '?' or ',' must be enclosed in <>", s));
        }
        Ok(NameAddr {
            display: None,
            uri: Uri::parse(uri.trim_end())?,
            params: parse_params(params)?,
        })
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// One Via element (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport as written (`UDP`, `TCP`, `TLS`, `SCTP`, or another token).
    pub transport: String,
    /// sent-by host (IPv6 with brackets).
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Via parameters.
    pub params: Params,
}

impl Via {
    /// Parses one Via element (not a comma list).
    pub fn parse(s: &str) -> Result<Via, ParseError> {
        let (head, params) = match s.find(';') {
            Some(i) => s.split_at(i),
            None => (s, ""),
        };
        let mut parts = head.splitn(3, '/');
        let (Some(proto), Some(version), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("Via without SIP/2.0/transport", s));
        };
        if !proto.trim().eq_ignore_ascii_case("SIP") {
            return Err(bad("Via protocol is not SIP", s));
        }
        if version.trim() != "2.0" {
            return Err(bad("Via version is not 2.0", s));
        }
        let rest = rest.trim_start();
        let split = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (transport, sent_by) = rest.split_at(split);
        if !is_token(transport) {
            return Err(bad("bad Via transport", s));
        }
        // sent-by = host [ COLON port ], where COLON may carry LWS.
        let sent_by: String = sent_by.split_whitespace().collect();
        let (host, port) = split_host_port(&sent_by).ok_or_else(|| bad("bad Via sent-by", s))?;
        Ok(Via {
            transport: transport.to_owned(),
            host: host.to_owned(),
            port,
            params: parse_params(params)?,
        })
    }

    /// A Via for `transport` from `host:port` with the given branch.
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::new();
        params.set("branch", Some(branch.to_owned()));
        Via {
            transport: transport.to_owned(),
            host: host.to_owned(),
            port,
            params,
        }
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// The `received` parameter (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// The `rport` parameter (RFC 3581): `Some(None)` when requested without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// CSeq (RFC 3261 §20.16): sequence number below 2**31 and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number.
    pub seq: u32,
    /// Method of the request.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        let mut words = s.split_whitespace();
        let (Some(num), Some(method), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad("CSeq is not 'number method'", s));
        };
        let seq = parse_u32(num)
            .filter(|n| *n < 1 << 31)
            .ok_or_else(|| bad("CSeq number out of range", s))?;
        Ok(CSeq {
            seq,
            method: method.parse()?,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A value with parameters: Content-Type (`application/sdp;charset=x`), Event
/// (`refer;id=93`), Subscription-State (`terminated;reason=noresource`), Retry-After
/// (`120;duration=60`). The value has its internal LWS removed (`text / plain` →
/// `text/plain`); a Retry-After comment is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueParams {
    /// The value before the first `;`.
    pub value: String,
    /// The parameters.
    pub params: Params,
}

impl ValueParams {
    /// Parses `value *(;param)`.
    pub fn parse(s: &str) -> Result<ValueParams, ParseError> {
        let (value, params) = match s.find(';') {
            Some(i) => s.split_at(i),
            None => (s, ""),
        };
        // Retry-After's optional "(comment)" sits between the value and its parameters.
        let value = match value.find('(') {
            Some(i) if value.trim_end().ends_with(')') => &value[..i],
            _ => value,
        };
        let value: String = value.split_whitespace().collect();
        if value.is_empty() || !value.chars().all(|c| is_token_char(c) || c == '/') {
            return Err(bad("bad header value", s));
        }
        Ok(ValueParams {
            value,
            params: parse_params(params)?,
        })
    }
}

impl fmt::Display for ValueParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, self.params)
    }
}

/// A decimal `u32` of at most 10 digits (Max-Forwards, Expires, Content-Length, ...).
pub fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::uri::Scheme;

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""J Rosenberg \\\"" <sip:jdrosen@example.com> ; tag = 98asjd8"#)
            .unwrap();
        assert_eq!(n.display.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(NameAddr::parse(&n.to_string()).unwrap(), n);

        let a = NameAddr::parse("sip:user@example.com;tag=11141343").unwrap();
        assert_eq!(a.uri.to_string(), "sip:user@example.com");
        assert_eq!(a.tag(), Some("11141343"));
        assert_eq!(a.to_string(), "<sip:user@example.com>;tag=11141343");

        let t = NameAddr::parse("A. Bell <sip:a@example.com;lr>;expires=3").unwrap();
        assert_eq!(t.display.as_deref(), Some("A. Bell"));
        assert!(t.uri.params.has("lr"));
        assert_eq!(t.params.value("expires"), Some("3"));
    }

    #[test]
    fn name_addr_rejects_torture_cases() {
        for bad in [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            r#""Joe" <sip:joe@example.org>;;;;"#,
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:user@example.com",
            "Joe sip:joe@example.org",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
        assert!(NameAddr::parse("<sip:user@example.com?Route=%3Csip:x%3E>").is_ok());
    }

    #[test]
    fn unknown_schemes_parse_in_name_addr() {
        let n = NameAddr::parse("<http://www.example.com>;tag=3234233").unwrap();
        assert_eq!(n.uri.scheme, Scheme::Other("http".into()));
    }

    #[test]
    fn via_with_lws_everywhere() {
        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, "spindle.example.com");
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"
        );
        assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
    }

    #[test]
    fn via_ipv6_port_and_rport() {
        let v =
            Via::parse("SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19;rport").unwrap();
        assert_eq!(v.host, "[::ffff:192.0.2.10]");
        assert_eq!(v.port, Some(19823));
        assert_eq!(v.rport(), Some(None));
        let v = Via::parse("SIP/2.0/UDP h;rport=5062;received=192.0.2.1").unwrap();
        assert_eq!(v.rport(), Some(Some(5062)));
        assert_eq!(v.received(), Some("192.0.2.1"));
    }

    #[test]
    fn via_rejects_empty_params_and_bad_protocol() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/7.0/UDP c.example.com").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("HTTP/2.0/UDP h").is_err());
    }

    #[test]
    fn cseq_bounds() {
        let c = CSeq::parse("0009\r\n  INVITE".replace("\r\n", " ").as_str()).unwrap();
        assert_eq!((c.seq, c.method.clone()), (9, Method::Invite));
        assert_eq!(c.to_string(), "9 INVITE");
        assert!(CSeq::parse("9292394834772304023312 OPTIONS").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
        assert!(CSeq::parse("1 INVITE extra").is_err());
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list(r#""a, b" <sip:x;p=1,2>, <sip:y> ,, c"#),
            vec![r#""a, b" <sip:x;p=1,2>"#, "<sip:y>", "c"]
        );
        assert_eq!(split_list(r#""unterminated, x"#).len(), 1);
    }

    #[test]
    fn value_params_for_content_type_event_and_retry_after() {
        let c = ValueParams::parse("multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert_eq!(c.value, "multipart/mixed");
        assert_eq!(c.params.value("boundary"), Some("7a9cbec02ceef655"));
        let r = ValueParams::parse("120 (I'm in a meeting);duration=60").unwrap();
        assert_eq!(r.value, "120");
        assert_eq!(r.params.value("duration"), Some("60"));
        assert!(ValueParams::parse("").is_err());
    }

    #[test]
    fn quoted_parameter_values() {
        let p = parse_params(r#";a="x;y" ; b"#).unwrap();
        assert_eq!(p.value("a"), Some(r#""x;y""#));
        assert!(p.has("b"));
        assert!(parse_params(";a=\"open").is_err());
        assert!(parse_params("x;a").is_err());
    }
}
