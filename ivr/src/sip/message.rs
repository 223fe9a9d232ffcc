//! SIP messages (RFC 3261 §7, grammar of §25): the model, the parser and the printer.
//!
//! - [`parse`] takes one datagram (or one framed TCP message) and returns a [`Message`].
//!   It validates the start line, the version (`SIP/2.0`, else [`ParseError::Version`] so the
//!   server can answer 505), header syntax, the presence, uniqueness and syntax of Via, From,
//!   To, Call-ID and CSeq, that CSeq's method matches the request's, and Content-Length. Other
//!   headers stay raw strings and are parsed on demand by the typed getters of
//!   [`TypedHeaders`].
//! - [`frame`] finds message boundaries in a TCP byte stream (Content-Length required,
//!   RFC 3261 §18.3).
//! - [`error_response`] builds the 400/505/513 for a request that did not parse, from
//!   whatever headers could be salvaged (RFC 3261 §8.2.6).
//! - [`Message::to_bytes`] prints with CRLF line ends and a Content-Length matching the body.
//!
//! Accepted forms: header names in any case and compact forms (§7.3.3), folded lines (LWS
//! continuation lines, joined with one space), several lines of one header and comma lists,
//! empty lines before the start line (§7.5), bare LF line ends (leniency), UTF-8 in reason
//! phrases and quoted strings, unknown methods and URI schemes. Octets after Content-Length
//! are ignored; without Content-Length the body is the rest of the datagram (§18.3). The
//! parsed message's Content-Length is normalised to the body length, as printing sets it.
//!
//! Limits (all inputs are peer data): [`MAX_MESSAGE`] octets per message, [`MAX_HEADERS`]
//! header fields, [`MAX_HEADER_LEN`] octets per (unfolded) field. Parsing is linear in the
//! input size.
//!
//! Deviations: single-instance headers other than the five above (Max-Forwards, Expires, ...)
//! are not checked for duplicates; the first instance wins.

use std::fmt;
use std::str::FromStr;

use crate::sip::header::{is_token, parse_u32, split_list, CSeq, NameAddr, ValueParams, Via};
use crate::sip::uri::{clip, Uri};

/// Largest message accepted on either transport, in octets.
pub const MAX_MESSAGE: usize = 65_535;
/// Most header fields (after unfolding) in one message.
pub const MAX_HEADERS: usize = 256;
/// Longest header field (canonical name plus unfolded, trimmed value), in octets.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// Why a message could not be parsed, and so what the server answers (see [`ParseError::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The peer speaks a SIP version other than 2.0 (answer 505).
    Version(String),
    /// The message exceeds [`MAX_MESSAGE`] or a header limit (answer 513).
    TooLarge,
    /// The message is malformed; says what (answer 400).
    BadRequest(String),
}

impl ParseError {
    /// The status code to answer a request that failed this way.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::Version(_) => 505,
            ParseError::TooLarge => 513,
            ParseError::BadRequest(_) => 400,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Version(v) => write!(f, "unsupported SIP version {v:?}"),
            ParseError::TooLarge => f.write_str("message too large"),
            ParseError::BadRequest(what) => write!(f, "malformed message: {what}"),
        }
    }
}

impl std::error::Error for ParseError {}

fn bad(what: impl Into<String>) -> ParseError {
    ParseError::BadRequest(what.into())
}

/// SIP request method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// INFO (RFC 6086)
    Info,
    /// REFER (RFC 3515)
    Refer,
    /// NOTIFY (RFC 6665)
    Notify,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// MESSAGE (RFC 3428)
    Message,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other token.
    Extension(String),
}

impl Method {
    /// The method name as on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(m) => m,
        }
    }
}

impl FromStr for Method {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Method, ParseError> {
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            _ if is_token(s) => Method::Extension(s.to_owned()),
            _ => return Err(bad(format!("bad method {:?}", clip(s)))),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Canonical spellings; compact forms per RFC 3261 §7.3.3 and the IANA registry.
const KNOWN: &[(&str, Option<char>)] = &[
    ("Accept", None),
    ("Accept-Contact", Some('a')),
    ("Accept-Encoding", None),
    ("Accept-Language", None),
    ("Alert-Info", None),
    ("Allow", None),
    ("Allow-Events", Some('u')),
    ("Authentication-Info", None),
    ("Authorization", None),
    ("CSeq", None),
    ("Call-ID", Some('i')),
    ("Call-Info", None),
    ("Contact", Some('m')),
    ("Content-Disposition", None),
    ("Content-Encoding", Some('e')),
    ("Content-Language", None),
    ("Content-Length", Some('l')),
    ("Content-Type", Some('c')),
    ("Date", None),
    ("Error-Info", None),
    ("Event", Some('o')),
    ("Expires", None),
    ("From", Some('f')),
    ("Identity", Some('y')),
    ("In-Reply-To", None),
    ("Max-Forwards", None),
    ("Min-Expires", None),
    ("Organization", None),
    ("Priority", None),
    ("Proxy-Authenticate", None),
    ("Proxy-Authorization", None),
    ("Proxy-Require", None),
    ("Reason", None),
    ("Record-Route", None),
    ("Refer-To", Some('r')),
    ("Referred-By", Some('b')),
    ("Reject-Contact", Some('j')),
    ("Reply-To", None),
    ("Require", None),
    ("Retry-After", None),
    ("Route", None),
    ("Server", None),
    ("Session-Expires", Some('x')),
    ("Subject", Some('s')),
    ("Subscription-State", None),
    ("Supported", Some('k')),
    ("Timestamp", None),
    ("To", Some('t')),
    ("Unsupported", None),
    ("User-Agent", None),
    ("Via", Some('v')),
    ("WWW-Authenticate", None),
    ("Warning", None),
];

/// Headers whose value is a comma list (RFC 3261 §7.3.1); others are never split.
const LISTS: &[&str] = &[
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Call-Info",
    "Contact",
    "Content-Encoding",
    "Content-Language",
    "Error-Info",
    "In-Reply-To",
    "Proxy-Require",
    "Record-Route",
    "Require",
    "Route",
    "Supported",
    "Unsupported",
    "Via",
    "Warning",
];

/// The canonical spelling of a header name: known names and compact forms map to the long
/// form, anything else is kept as given.
fn canonical(name: &str) -> &str {
    if name.len() == 1 {
        let c = name.as_bytes()[0].to_ascii_lowercase() as char;
        if let Some((long, _)) = KNOWN.iter().find(|(_, short)| *short == Some(c)) {
            return long;
        }
    }
    KNOWN
        .iter()
        .find(|(long, _)| long.eq_ignore_ascii_case(name))
        .map_or(name, |(long, _)| long)
}

/// The header fields of a message, in order, as (canonical name, raw value) pairs.
/// Values are unfolded and trimmed; names compare case-insensitively and compact forms are
/// accepted wherever a name is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The first field's whole value.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = canonical(name);
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every field line's whole value, in order.
    pub fn get_lines<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical(name).to_owned();
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    /// Every element across all lines; list headers (Via, Contact, Route, Allow, Supported,
    /// ...) are split at top-level commas, other headers yield whole lines.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let is_list = LISTS
            .iter()
            .any(|l| l.eq_ignore_ascii_case(canonical(name)));
        self.get_lines(name)
            .flat_map(move |v| if is_list { split_list(v) } else { vec![v] })
    }

    /// Appends a field.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((canonical(name).to_owned(), value.into()));
    }

    /// Replaces all fields of that name with one, at the first one's position (or appended).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let name = canonical(name);
        match self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.0[i].1 = value.into();
                let mut seen = 0;
                self.0.retain(|(n, _)| {
                    let same = n.eq_ignore_ascii_case(name);
                    seen += usize::from(same);
                    !same || seen == 1
                });
            }
            None => self.push(name, value),
        }
    }

    /// Inserts a field before all others (a new top Via, Record-Route).
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(0, (canonical(name).to_owned(), value.into()));
    }

    /// Replaces the top Via element, keeping any further elements on its line (adds a Via
    /// line first when there is none).
    pub fn set_top_via(&mut self, via: &Via) {
        match self.0.iter_mut().find(|(n, _)| n == "Via") {
            Some((_, value)) => {
                let rest = split_list(value)
                    .into_iter()
                    .skip(1)
                    .collect::<Vec<_>>()
                    .join(", ");
                *value = if rest.is_empty() {
                    via.to_string()
                } else {
                    format!("{via}, {rest}")
                };
            }
            None => self.push_front("Via", via.to_string()),
        }
    }

    /// Removes every field of that name.
    pub fn remove(&mut self, name: &str) {
        let name = canonical(name);
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn count(&self, name: &str) -> usize {
        self.get_lines(name).count()
    }
}

/// Typed access to the headers of a request or response; each getter parses on demand.
pub trait TypedHeaders {
    /// The raw headers.
    fn headers(&self) -> &Headers;

    /// All Via elements, top first.
    fn vias(&self) -> Result<Vec<Via>, ParseError> {
        self.headers().get_all("Via").map(Via::parse).collect()
    }

    /// The top Via.
    fn top_via(&self) -> Result<Via, ParseError> {
        let top = self.headers().get_all("Via").next();
        Via::parse(top.ok_or_else(|| bad("missing Via"))?)
    }

    /// From.
    fn from(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(
            self.headers()
                .get("From")
                .ok_or_else(|| bad("missing From"))?,
        )
    }

    /// To.
    fn to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.headers().get("To").ok_or_else(|| bad("missing To"))?)
    }

    /// Call-ID.
    fn call_id(&self) -> Result<&str, ParseError> {
        let id = self
            .headers()
            .get("Call-ID")
            .ok_or_else(|| bad("missing Call-ID"))?;
        // callid = word [ "@" word ]: no whitespace, not empty.
        if id.is_empty() || id.contains(char::is_whitespace) {
            return Err(bad(format!("bad Call-ID {:?}", clip(id))));
        }
        Ok(id)
    }

    /// CSeq.
    fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(
            self.headers()
                .get("CSeq")
                .ok_or_else(|| bad("missing CSeq"))?,
        )
    }

    /// Contact elements; the REGISTER wildcard `*` is an error here (the gateway is no registrar).
    fn contacts(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.headers()
            .get_all("Contact")
            .map(NameAddr::parse)
            .collect()
    }

    /// Route elements, in order.
    fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.headers()
            .get_all("Route")
            .map(NameAddr::parse)
            .collect()
    }

    /// Record-Route elements, in order.
    fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.headers()
            .get_all("Record-Route")
            .map(NameAddr::parse)
            .collect()
    }

    /// Refer-To (RFC 3515).
    fn refer_to(&self) -> Result<Option<NameAddr>, ParseError> {
        self.headers()
            .get("Refer-To")
            .map(NameAddr::parse)
            .transpose()
    }

    /// Max-Forwards.
    fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        self.integer("Max-Forwards")
    }

    /// Expires (seconds).
    fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.integer("Expires")
    }

    /// Content-Length as declared.
    fn content_length(&self) -> Result<Option<u32>, ParseError> {
        self.integer("Content-Length")
    }

    /// An integer header.
    fn integer(&self, name: &str) -> Result<Option<u32>, ParseError> {
        match self.headers().get(name) {
            None => Ok(None),
            Some(v) => parse_u32(v)
                .map(Some)
                .ok_or_else(|| bad(format!("bad {name} {:?}", clip(v)))),
        }
    }

    /// The media type of Content-Type without parameters (`application/sdp`).
    fn content_type(&self) -> Option<&str> {
        let v = self.headers().get("Content-Type")?;
        Some(v.split(';').next().unwrap_or(v).trim())
    }

    /// Retry-After seconds.
    fn retry_after(&self) -> Result<Option<u32>, ParseError> {
        self.value_params("Retry-After")?
            .map(|v| parse_u32(&v.value).ok_or_else(|| bad("bad Retry-After")))
            .transpose()
    }

    /// A `value;params` header: Content-Type, Event, Subscription-State, Retry-After.
    fn value_params(&self, name: &str) -> Result<Option<ValueParams>, ParseError> {
        self.headers().get(name).map(ValueParams::parse).transpose()
    }

    /// The tokens of an option-tag or method list (Allow, Supported, Require, Unsupported,
    /// Proxy-Require), across all lines.
    fn tokens(&self, name: &str) -> Vec<&str> {
        self.headers().get_all(name).collect()
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Request-URI.
    pub uri: Uri,
    /// Header fields.
    pub headers: Headers,
    /// Body octets.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=699.
    pub status: u16,
    /// Reason phrase (may be empty, may be any UTF-8).
    pub reason: String,
    /// Header fields.
    pub headers: Headers,
    /// Body octets.
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl TypedHeaders for Headers {
    fn headers(&self) -> &Headers {
        self
    }
}

impl TypedHeaders for Request {
    fn headers(&self) -> &Headers {
        &self.headers
    }
}

impl TypedHeaders for Response {
    fn headers(&self) -> &Headers {
        &self.headers
    }
}

impl TypedHeaders for Message {
    fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The top Via's branch, if the Via parses and has one.
    pub fn branch(&self) -> Option<String> {
        self.top_via().ok()?.branch().map(str::to_owned)
    }

    /// The request as wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("{} {} SIP/2.0", self.method, self.uri);
        print(&start, &self.headers, &self.body)
    }
}

impl Response {
    /// A response to `req` (RFC 3261 §8.2.6.2): Via, From, To, Call-ID and CSeq copied, the
    /// default reason phrase, no body. The caller adds a To tag where one is needed.
    pub fn for_request(req: &Request, status: u16) -> Response {
        let mut headers = Headers::new();
        for (name, value) in req.headers.iter() {
            if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name) {
                headers.push(name, value);
            }
        }
        Response {
            status,
            reason: reason_phrase(status).to_owned(),
            headers,
            body: Vec::new(),
        }
    }

    /// The response as wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("SIP/2.0 {} {}", self.status, self.reason);
        print(&start, &self.headers, &self.body)
    }
}

impl Message {
    /// The message as wire bytes: CRLF line ends, Content-Length set from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn print(start: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut headers = headers.clone();
    headers.set("Content-Length", body.len().to_string());
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (n, v) in headers.iter() {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The default reason phrase for a status code (RFC 3261 §21 and later RFCs).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Trying",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// The pieces of a message head: start line, header fields, where the body starts.
struct Head<'a> {
    start: &'a str,
    fields: Vec<(String, String)>,
    body_at: usize,
}

/// Splits the head of `bytes` (after any leading empty lines) into start line and unfolded
/// fields. With `lenient`, malformed field lines are skipped instead of failing.
fn split_head(bytes: &[u8], lenient: bool) -> Result<Head<'_>, ParseError> {
    let mut pos = 0;
    while bytes[pos..].starts_with(b"\r\n") || bytes[pos..].starts_with(b"\n") {
        pos += if bytes[pos] == b'\r' { 2 } else { 1 };
    }
    let mut lines = Lines { bytes, pos };
    let start = lines.next().ok_or_else(|| bad("no start line"))?;
    let start = std::str::from_utf8(start)
        .ok()
        .filter(|l| !l.chars().any(|c| c.is_control() && c != '\t'))
        .ok_or_else(|| bad("start line with control or non-UTF-8 octets"))?;
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut folded_ok = false;
    loop {
        let Some(line) = lines.next() else {
            if lenient {
                break;
            }
            return Err(bad("no empty line after the headers"));
        };
        if line.is_empty() {
            break;
        }
        let line = match std::str::from_utf8(line) {
            Ok(l) if !l.chars().any(|c| c.is_control() && c != '\t') => l,
            _ if lenient => continue,
            _ => return Err(bad("header line with control or non-UTF-8 octets")),
        };
        if line.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some((name, value)) if folded_ok => {
                    if name.len() + value.len() + 1 + line.trim().len() > MAX_HEADER_LEN {
                        if lenient {
                            continue;
                        }
                        return Err(ParseError::TooLarge);
                    }
                    if !value.is_empty() {
                        value.push(' ');
                    }
                    value.push_str(line.trim());
                }
                _ if lenient => {}
                _ => return Err(bad("continuation line without a header")),
            }
            continue;
        }
        folded_ok = false;
        let Some((name, value)) = line.split_once(':') else {
            if lenient {
                continue;
            }
            return Err(bad(format!("header line without ':': {:?}", clip(line))));
        };
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            if lenient {
                continue;
            }
            return Err(bad(format!("bad header name {:?}", clip(name))));
        }
        let (name, value) = (canonical(name), value.trim());
        // Measured as printed (canonical name and value), so a printed message reparses.
        // Leniently (to answer a message too large to parse) oversized fields are skipped.
        if fields.len() == MAX_HEADERS {
            if lenient {
                break;
            }
            return Err(ParseError::TooLarge);
        }
        if name.len() + value.len() > MAX_HEADER_LEN {
            if lenient {
                folded_ok = false;
                continue;
            }
            return Err(ParseError::TooLarge);
        }
        fields.push((name.to_owned(), value.to_owned()));
        folded_ok = true;
    }
    Ok(Head {
        start,
        fields,
        body_at: lines.pos,
    })
}

/// Lines ending in CRLF or LF; the last line may lack an end.
struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let (line, used) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += used;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

fn parse_start(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = strip_version(line) {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| bad("status line without status code"))?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let status = (code.len() == 3)
            .then(|| code.parse::<u16>().ok())
            .flatten()
            .filter(|s| (100..=699).contains(s))
            .ok_or_else(|| bad(format!("bad status code {:?}", clip(code))))?;
        return Ok(StartLine::Response(status, reason.to_owned()));
    }
    let version_of = |v: &str| {
        if v.len() >= 4 && v[..4].eq_ignore_ascii_case("SIP/") {
            Err(ParseError::Version(clip(v).to_owned()))
        } else {
            Err(bad(format!("bad request line {:?}", clip(line))))
        }
    };
    if line.starts_with("SIP/") {
        return version_of(line.split(' ').next().unwrap_or(line));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version, single spaces (RFC 4475 3.1.2.9).
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("bad request line {:?}", clip(line))));
    };
    if strip_version(version) != Some("") {
        return version_of(version);
    }
    let method: Method = method.parse()?;
    let uri = Uri::parse(uri)?;
    if uri.is_sip() && !uri.headers.is_empty() {
        // RFC 4475 3.1.2.11: headers are not allowed in a Request-URI.
        return Err(bad("Request-URI with escaped headers"));
    }
    Ok(StartLine::Request(method, uri))
}

fn strip_version(s: &str) -> Option<&str> {
    (s.len() >= 7 && s[..7].eq_ignore_ascii_case("SIP/2.0")).then(|| &s[7..])
}

/// Parses one message from a datagram (or a TCP frame from [`frame`]).
pub fn parse(datagram: &[u8]) -> Result<Message, ParseError> {
    if datagram.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    let head = split_head(datagram, false)?;
    let start = parse_start(head.start)?;
    let headers = Headers(head.fields);

    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        match headers.count(name) {
            0 => return Err(bad(format!("missing {name}"))),
            1 => {}
            _ if name == "Via" => {}
            _ => return Err(bad(format!("more than one {name}"))),
        }
    }
    headers.vias()?;
    headers.from()?;
    headers.to()?;
    headers.call_id()?;
    let cseq = headers.cseq()?;

    let mut headers = headers;
    let rest = &datagram[head.body_at..];
    let body = match headers.count("Content-Length") {
        0 => rest.to_vec(),
        1 => {
            let len = headers.content_length()?.unwrap_or(0) as usize;
            rest.get(..len)
                .ok_or_else(|| bad("Content-Length larger than the message"))?
                .to_vec()
        }
        _ => return Err(bad("more than one Content-Length")),
    };
    // The parsed message states its body length as printing will (`0004` → `4`, absent → added).
    headers.set("Content-Length", body.len().to_string());

    Ok(match start {
        StartLine::Request(method, uri) => {
            if cseq.method != method {
                return Err(bad("CSeq method differs from the request method"));
            }
            Message::Request(Request {
                method,
                uri,
                headers,
                body,
            })
        }
        StartLine::Response(status, reason) => Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    })
}

/// One message's place in a TCP stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Leading CRLFs to discard first (keep-alives, RFC 5626 §4.4.1).
    pub skip: usize,
    /// Length of the message after them, body included.
    pub len: usize,
}

/// Finds the first complete message in a TCP stream buffer: `Ok(None)` until the head and
/// the Content-Length octets of body are buffered. Errors when the head is over
/// [`MAX_MESSAGE`], Content-Length is missing or bad, or the message would exceed the
/// limit; the connection should then be closed.
pub fn frame(stream: &[u8]) -> Result<Option<Frame>, ParseError> {
    let skip = stream.chunks(2).take_while(|c| *c == b"\r\n").count() * 2;
    let buf = &stream[skip..];
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    let head_len = end + 4;
    let head = split_head(&buf[..head_len], true)?;
    let headers = Headers(head.fields);
    // Two different lengths leave no way to find where the next message starts.
    let mut lengths = headers.get_lines("Content-Length").map(str::trim);
    if let Some(first) = lengths.next() {
        if lengths.any(|other| other != first) {
            return Err(bad(
                "conflicting Content-Length values on a stream transport",
            ));
        }
    }
    let len = headers
        .content_length()?
        .ok_or_else(|| bad("missing Content-Length on a stream transport"))? as usize;
    let total = head_len + len;
    if total > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    Ok((buf.len() >= total).then_some(Frame { skip, len: total }))
}

/// The response for a request that failed to parse with `err`: 400, 505 or 513 with the
/// Via, From, To, Call-ID and CSeq lines that could be salvaged, so the peer can match it.
/// `None` when there is nothing to answer: a response, no request line, or no Via.
pub fn error_response(datagram: &[u8], err: &ParseError) -> Option<Response> {
    let bytes = &datagram[..datagram.len().min(MAX_MESSAGE)];
    let head = split_head(bytes, true).ok()?;
    let mut words = head.start.split(' ').filter(|w| !w.is_empty());
    let method = words.next()?;
    if strip_version(method).is_some() || !is_token(method) || method.starts_with("SIP/") {
        return None;
    }
    let mut headers = Headers::new();
    for (name, value) in &head.fields {
        let copy = match name.as_str() {
            "Via" => true,
            "From" | "To" | "Call-ID" | "CSeq" => headers.get(name).is_none(),
            _ => false,
        };
        if copy {
            headers.push(name, value.as_str());
        }
    }
    // Without a Via the peer could not match the answer (a SIP/7.0 Via still counts).
    headers.get("Via").filter(|v| !v.is_empty())?;
    let status = err.status();
    let mut reason = reason_phrase(status).to_owned();
    if let ParseError::BadRequest(what) = err {
        let what: String = what.chars().filter(|c| !c.is_control()).take(80).collect();
        reason = format!("{reason} ({what})");
    }
    Some(Response {
        status,
        reason,
        headers,
        body: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:1111@gw.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:1111@gw.example.com>\r\n\
        From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.example.com\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:alice@192.0.2.1>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\
        \r\n\
        v=0\n";

    fn request(text: &str) -> Request {
        match parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("expected a request"),
        }
    }

    #[test]
    fn parses_a_plain_invite() {
        let r = request(INVITE);
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.uri.user.as_deref(), Some("1111"));
        assert_eq!(r.branch().as_deref(), Some("z9hG4bK776asdhds"));
        assert_eq!(r.call_id().unwrap(), "a84b4c76e66710@pc33.example.com");
        assert_eq!(r.cseq().unwrap().seq, 314159);
        assert_eq!(r.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(r.max_forwards().unwrap(), Some(70));
        assert_eq!(r.content_type(), Some("application/sdp"));
        assert_eq!(r.body, b"v=0\n");
        assert_eq!(r.contacts().unwrap()[0].uri.host, "192.0.2.1");
    }

    #[test]
    fn print_then_parse_round_trips() {
        let m = parse(INVITE.as_bytes()).unwrap();
        let bytes = m.to_bytes();
        assert_eq!(parse(&bytes).unwrap(), m);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("INVITE sip:1111@gw.example.com SIP/2.0\r\nVia: "));
        assert!(text.ends_with("Content-Length: 4\r\n\r\nv=0\n"));
    }

    #[test]
    fn printing_sets_content_length_from_the_body() {
        let mut r = request(INVITE);
        r.body = b"hello world".to_vec();
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert_eq!(text.matches("Content-Length").count(), 1);
        assert!(text.contains("Content-Length: 11\r\n"));
    }

    #[test]
    fn compact_names_case_and_folding() {
        let text = "OPTIONS sip:x@h SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKa\r\n\
            f: <sip:a@h>;tag=1\r\nT :\r\n  <sip:x@h>\r\ni: id1\r\ncseq: 1\r\n OPTIONS\r\n\
            k: timer, 100rel\r\nSupported: replaces\r\nl: 0\r\n\r\n";
        let r = request(text);
        assert_eq!(r.headers.get("to"), Some("<sip:x@h>"));
        assert_eq!(r.headers.get("t"), Some("<sip:x@h>"));
        assert_eq!(r.headers.get("CALL-ID"), Some("id1"));
        assert_eq!(r.cseq().unwrap().method, Method::Options);
        assert_eq!(r.tokens("Supported"), vec!["timer", "100rel", "replaces"]);
        assert_eq!(r.headers.iter().next().unwrap().0, "Via");
    }

    #[test]
    fn non_list_headers_are_not_split() {
        let mut h = Headers::new();
        h.push("Date", "Sat, 13 Nov 2010 23:29:00 GMT");
        assert_eq!(h.get_all("date").count(), 1);
        h.push("Allow", "INVITE, ACK");
        h.push("allow", "BYE");
        assert_eq!(
            h.get_all("Allow").collect::<Vec<_>>(),
            ["INVITE", "ACK", "BYE"]
        );
        h.set("Allow", "OPTIONS");
        assert_eq!(h.get_all("Allow").collect::<Vec<_>>(), ["OPTIONS"]);
        h.remove("ALLOW");
        assert_eq!(h.get("Allow"), None);
    }

    #[test]
    fn trailing_octets_after_content_length_are_ignored() {
        let mut text = INVITE.to_owned();
        text.push_str("INVITE sip:garbage SIP/2.0\r\n");
        assert_eq!(request(&text).body, b"v=0\n");
    }

    #[test]
    fn body_without_content_length_is_the_rest() {
        let text = INVITE.replace("Content-Length: 4\r\n", "");
        assert_eq!(request(&text).body, b"v=0\n");
    }

    #[test]
    fn responses_with_empty_and_utf8_reasons() {
        let base = "Via: SIP/2.0/UDP h;branch=z9hG4bKa\r\nFrom: <sip:a@h>;tag=1\r\n\
            To: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
        for (line, reason) in [
            ("SIP/2.0 100 ", ""),
            ("SIP/2.0 200 Хорошо", "Хорошо"),
            ("SIP/2.0 180", ""),
        ] {
            let Message::Response(r) = parse(format!("{line}\r\n{base}").as_bytes()).unwrap()
            else {
                panic!("expected a response");
            };
            assert_eq!(r.reason, reason);
        }
        for line in [
            "SIP/2.0 4294967301 big",
            "SIP/2.0 99 low",
            "SIP/2.0 700 high",
            "SIP/2.0  200 OK",
        ] {
            assert!(
                parse(format!("{line}\r\n{base}").as_bytes()).is_err(),
                "{line}"
            );
        }
    }

    #[test]
    fn version_errors_ask_for_505() {
        let text = INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia");
        let err = parse(text.as_bytes()).unwrap_err();
        assert_eq!(err, ParseError::Version("SIP/7.0".into()));
        let resp = error_response(text.as_bytes(), &err).unwrap();
        assert_eq!(resp.status, 505);
        assert_eq!(resp.call_id().unwrap(), "a84b4c76e66710@pc33.example.com");
    }

    #[test]
    fn error_response_copies_what_parses() {
        let text = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE");
        let err = parse(text.as_bytes()).unwrap_err();
        let resp = error_response(text.as_bytes(), &err).unwrap();
        assert_eq!(resp.status, 400);
        assert!(resp.reason.starts_with("Bad Request ("));
        assert_eq!(resp.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(resp.cseq().unwrap().seq, 314159);
        assert_eq!(resp.headers.len(), 5);
        // A parse of the printed 400 succeeds: the peer can read it.
        assert!(parse(&resp.to_bytes()).is_ok());
    }

    #[test]
    fn no_error_response_without_via_or_for_responses() {
        let text = INVITE.replace(
            "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n",
            "",
        );
        let err = parse(text.as_bytes()).unwrap_err();
        assert!(error_response(text.as_bytes(), &err).is_none());
        let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        assert!(error_response(resp, &bad("x")).is_none());
    }

    #[test]
    fn limits_are_enforced() {
        let mut big = INVITE.as_bytes().to_vec();
        big.resize(MAX_MESSAGE + 1, b'x');
        assert_eq!(parse(&big), Err(ParseError::TooLarge));
        let many = INVITE.replace("Max-Forwards: 70\r\n", &"X-A: b\r\n".repeat(MAX_HEADERS));
        assert_eq!(parse(many.as_bytes()), Err(ParseError::TooLarge));
        let long = INVITE.replace(
            "Max-Forwards: 70",
            &format!("X-Long: {}", "a".repeat(MAX_HEADER_LEN)),
        );
        assert_eq!(parse(long.as_bytes()), Err(ParseError::TooLarge));
        let folded = INVITE.replace(
            "Max-Forwards: 70",
            &format!("X-Long: a{}", "\r\n a".repeat(MAX_HEADER_LEN / 2)),
        );
        assert_eq!(parse(folded.as_bytes()), Err(ParseError::TooLarge));
    }

    #[test]
    fn malformed_requests_are_rejected() {
        let cases = [
            INVITE.replace(
                "INVITE sip:1111@gw.example.com SIP/2.0",
                "INVITE  sip:1111@gw.example.com SIP/2.0",
            ),
            INVITE.replace("Call-ID: a84b4c76e66710@pc33.example.com\r\n", ""),
            INVITE.replace("Content-Length: 4", "Content-Length: 400"),
            INVITE.replace("Content-Length: 4", "Content-Length: -4"),
            INVITE.replace("Content-Length: 4", "Content-Length: 4\r\nl: 4"),
            INVITE.replace("Max-Forwards: 70", "To: <sip:other@h>"),
            INVITE.replace("Max-Forwards: 70", "Bad Name: x"),
            INVITE.replace("Max-Forwards: 70", "NoColon"),
            INVITE.replace("Max-Forwards: 70", "X: a\u{1}b"),
            INVITE.replace("gw.example.com SIP", "gw.example.com?Route=x SIP"),
            INVITE.replace("\r\n\r\n", "\r\n"),
            " INVITE sip:x SIP/2.0\r\n".to_owned(),
        ];
        for c in &cases {
            assert!(parse(c.as_bytes()).is_err(), "{c}");
        }
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        assert_eq!(request(&format!("\r\n\r\n{INVITE}")).method, Method::Invite);
    }

    #[test]
    fn unknown_methods_round_trip() {
        let text = INVITE.replace("INVITE", "NEWMETHOD");
        let r = request(&text);
        assert_eq!(r.method, Method::Extension("NEWMETHOD".into()));
        assert_eq!(r.method.to_string(), "NEWMETHOD");
    }

    #[test]
    fn tcp_framing_waits_for_head_and_body() {
        let msg = INVITE.as_bytes();
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(&msg[..msg.len() - 2]);
        assert_eq!(frame(&stream), Ok(None));
        stream.extend_from_slice(&msg[msg.len() - 2..]);
        stream.extend_from_slice(b"OPTIONS");
        let f = frame(&stream).unwrap().unwrap();
        assert_eq!(
            f,
            Frame {
                skip: 4,
                len: msg.len()
            }
        );
        assert!(parse(&stream[f.skip..f.skip + f.len]).is_ok());
    }

    #[test]
    fn tcp_framing_requires_content_length_and_bounds_size() {
        let no_cl = INVITE.replace("Content-Length: 4\r\n", "");
        assert!(frame(no_cl.as_bytes()).is_err());
        let huge = INVITE.replace("Content-Length: 4", "Content-Length: 70000");
        assert_eq!(frame(huge.as_bytes()), Err(ParseError::TooLarge));
        assert_eq!(
            frame(&vec![b'a'; MAX_MESSAGE + 1]),
            Err(ParseError::TooLarge)
        );
        assert_eq!(frame(b"INVITE sip:x SIP/2.0\r\n"), Ok(None));
    }

    #[test]
    fn single_byte_mutations_never_panic_and_printed_messages_reparse_equal() {
        let base = format!("{INVITE}\r\nextra");
        let mut accepted = 0;
        for i in 0..base.len() {
            for b in [
                b' ', b'\t', b'\r', b'\n', b',', b';', b'"', b'\\', b'<', b'>', b':', b'%', b'?',
                0, 0xff,
            ] {
                let mut bytes = base.as_bytes().to_vec();
                bytes[i] = b;
                match parse(&bytes) {
                    Ok(m) => {
                        accepted += 1;
                        assert_eq!(parse(&m.to_bytes()).as_ref(), Ok(&m), "mutation {i}={b}");
                    }
                    Err(e) => {
                        let _ = error_response(&bytes, &e).map(|r| r.to_bytes());
                    }
                }
                let _ = frame(&bytes);
            }
        }
        assert!(
            accepted > 100,
            "most mutations of values stay valid: {accepted}"
        );
    }

    #[test]
    fn for_request_copies_the_matching_headers() {
        let r = request(INVITE);
        let resp = Response::for_request(&r, 486);
        assert_eq!(resp.reason, "Busy Here");
        let names: Vec<&str> = resp.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Via", "To", "From", "Call-ID", "CSeq"]);
    }
}
