//! Bad input against the running `ivr serve`: the RFC 4475/5118 torture messages over UDP and
//! TCP, garbage datagrams and streams, and garbage RTP into a call in progress.
//!
//! The corpus is normalised as `sip_torture.rs` does (CRLF line ends, the lost final CRLF and
//! empty line restored, Content-Length repaired in the copies that lost body octets). Two
//! further edits are the harness's, not the corpus's:
//! - Each message sent is made its own transaction: the corpus reuses transaction identifiers
//!   across files (3.3.2/3.3.3 share Via and branch, 4.1/4.3 share everything), and tests in
//!   this binary send the same files at once over UDP and TCP. By RFC 3261 §17.2.3 a repeat
//!   is a retransmission, answered to the first sender. So the top Via branch gets a suffix,
//!   or, for the two messages matched the RFC 2543 way (no `z9hG4bK` branch, or the bare
//!   cookie of 3.2.1, which is the point of that case), the Call-ID does.
//! - Every exchange comes from a source address of its own in 127.0.0.0/8: the gateway limits
//!   OPTIONS and REGISTER per source (bursts of 10 and 5), and a corpus run is a flood.
//!
//! What the server must answer is in [`CORPUS`], with the RFC section's reason. After each
//! message the server must still answer an OPTIONS with 200. A call that a torture INVITE sets
//! up is ended with ACK and BYE. Failures list every case that went wrong and the server log.
//!
//! Over TCP the framing matters too: well-formed requests back to back on one connection, a
//! stream cut into arbitrary chunks, and Content-Length values that cannot frame a stream
//! (negative, two different ones, over the size limit), after which the connection must be
//! answered 400 (or 513) and closed. Garbage: random datagrams, the largest datagram IPv4
//! carries (65 507 octets; 70 000 cannot be sent over UDP, so that size goes over TCP),
//! truncated requests, binary junk on TCP; `ivr_sip_bad_messages_total` must count them.
//! Garbage RTP goes into a real call, which must keep sending media to its caller (and
//! nothing to a stranger) and end with BYE → 200.
//!
//! One server serves the whole file: the tests share it while any of them runs ([`server`]).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ivr::sip::access::AccessConfig;
use ivr::sip::message::{frame, parse, Message, TypedHeaders};

const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/rfc4475");

/// How long a final answer may take (a call rings 500 ms before the 200).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// How long the test listens to show that nothing comes back. The server answers on
/// loopback in well under a millisecond; this leaves room for a loaded machine.
const SILENCE: Duration = Duration::from_millis(300);

// ---- the shared server -------------------------------------------------------------------

/// The server of this file, shared by the tests that run at the same time and stopped when
/// the last of them lets go (a `static` server would never be dropped, so never stopped).
fn server() -> Arc<common::Server> {
    static SHARED: Mutex<Weak<common::Server>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(common::start_server());
    *slot = Arc::downgrade(&server);
    server
}

#[allow(clippy::disallowed_methods)] // Deadlines against a real server need the real clock.
fn now() -> Instant {
    Instant::now()
}

/// A source address of 127.0.0.0/8 no other exchange of this process has used.
fn fresh_ip() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    IpAddr::V4(Ipv4Addr::new(127, 77, (n >> 8) as u8, n as u8))
}

/// A token no other message of this process has used (branches, tags, Call-IDs).
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The tail of the server log, for failure messages.
fn log_tail(server: &common::Server) -> String {
    let log = server.log();
    let start = log.len().saturating_sub(6000);
    let start = (start..log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(log.len());
    log[start..].to_owned()
}

/// Panics with every problem found and the server log, when there are any.
fn report(server: &common::Server, what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  {}\n--- server log (tail) ---\n{}",
        problems.len(),
        problems.join("\n  "),
        log_tail(server)
    );
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// A small deterministic generator for junk (xorshift64*).
struct Junk(u64);

impl Junk {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---- the corpus --------------------------------------------------------------------------

/// What the server must do with one corpus message.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// A final response with one of these statuses (after any provisional ones).
    Final(&'static [u16]),
    /// An INVITE with a usable offer: the hotline rings and answers 200; the test hangs up.
    Call,
    /// Nothing: a response, or a request without a Via to route an answer by.
    Silence,
}

struct Case {
    dir: &'static str,
    file: &'static str,
    /// Repair the Content-Length of a copy that lost body octets (as `sip_torture.rs` does).
    repair: bool,
    answer: Answer,
    /// A header the final answer must carry, and a piece of its value.
    header: Option<(&'static str, &'static str)>,
    /// Why (the RFC section and the element's part in it).
    why: &'static str,
}

const fn case(dir: &'static str, file: &'static str, answer: Answer, why: &'static str) -> Case {
    Case {
        dir,
        file,
        repair: false,
        answer,
        header: None,
        why,
    }
}

const W: &str = "wellformed";
const M: &str = "malformed";
const OK: Answer = Answer::Final(&[200]);
const NOT_ALLOWED: Answer = Answer::Final(&[405]);
const BAD: Answer = Answer::Final(&[400]);

/// Every file of the corpus and what the hotline (a user agent server, not a proxy or
/// registrar) must answer.
const CORPUS: &[Case] = &[
    case(W, "3.1.1.1_wsinv.sip", Answer::Final(&[481]),
        "valid; its To carries a tag of no dialog of ours: 481 (RFC 3261 12.2.2)"),
    case(W, "3.1.1.3_esc01.sip", Answer::Call, "valid INVITE offering PCMU: the hotline answers"),
    Case { header: Some(("Allow", "INVITE")),
        ..case(W, "3.1.1.4_escnull.sip", NOT_ALLOWED, "valid REGISTER; no registrar here: 405 with Allow") },
    Case { header: Some(("Allow", "INVITE")),
        ..case(W, "3.1.1.5_esc02.sip", Answer::Final(&[501]),
            "valid; RE%47IST%45R is an unknown method, not REGISTER: 501 (RFC 3261 8.2.1)") },
    case(W, "3.1.1.8_dblreq.sip", NOT_ALLOWED,
        "valid REGISTER; the octets after Content-Length are ignored: one answer, for the REGISTER"),
    case(W, "3.1.1.9_semiuri.sip", OK, "valid OPTIONS"),
    case(W, "3.1.1.10_transports.sip", OK, "valid OPTIONS with unknown transports in lower Vias"),
    Case { repair: true, header: Some(("Allow", "INVITE")),
        ..case(W, "3.1.1.11_mpart01.sip", NOT_ALLOWED, "valid MESSAGE: the hotline takes none: 405") },
    Case { repair: true,
        ..case(W, "3.1.1.12_unreason.sip", Answer::Silence, "a response: never answered") },
    case(W, "3.1.1.13_noreason.sip", Answer::Silence, "a response: never answered"),
    case(W, "3.3.2_unkscm.sip", Answer::Final(&[416]), "unknown Request-URI scheme: 416 (RFC 3261 8.2.2.1)"),
    case(W, "3.3.3_novelsc.sip", Answer::Final(&[416]), "soap.beep Request-URI: 416 (RFC 3261 8.2.2.1)"),
    case(W, "3.3.7_regaut01.sip", NOT_ALLOWED,
        "REGISTER with an unknown Authorization scheme; no registrar here: 405"),
    case(W, "3.3.10_bcast.sip", Answer::Silence, "a response (broadcast Via): never answered"),
    case(W, "3.3.11_zeromf.sip", OK, "Max-Forwards 0 at the target UAS: OPTIONS is answered (483 is a proxy's)"),
    case(W, "3.3.12_cparam01.sip", NOT_ALLOWED, "valid REGISTER: 405"),
    case(W, "3.3.13_cparam02.sip", NOT_ALLOWED, "valid REGISTER: 405"),
    case(W, "3.3.14_regescrt.sip", NOT_ALLOWED, "valid REGISTER: 405"),
    case(W, "4.1_ipv6-good.sip", NOT_ALLOWED, "valid REGISTER to an IPv6 reference: 405"),
    case(W, "4.3_port-ambiguous.sip", NOT_ALLOWED, "valid REGISTER: 405"),
    Case { repair: true, header: Some(("Warning", "305")),
        ..case(W, "4.6_ipv6-in-sdp.sip", Answer::Final(&[488]),
            "valid INVITE whose only audio codec is G726-32: 488 (RFC 3264 6)") },
    case(W, "4.8_mult-ip-in-sdp.sip", Answer::Call,
        "valid INVITE; audio PCMU on IPv4, video on IPv6: the hotline answers the audio"),
    Case { header: Some(("Warning", "305")),
        ..case(W, "4.9_ipv4-mapped-ipv6.sip", Answer::Final(&[488]),
            "valid INVITE whose only audio codec is G726-32: 488") },
    case(W, "4.10_ipv6-bug-abnf-3-colons.sip", OK, "OPTIONS: RFC 5118 4.10 asks elements to accept the 3-colon form"),
    case(M, "3.1.1.7_longreq.sip", Answer::Silence,
        "the copy is truncated before its Via: nothing to route an answer by"),
    case(M, "3.1.2.1_badinv01.sip", BAD, "empty Via and Contact parameters: 400"),
    case(M, "3.1.2.2_clerr.sip", BAD, "Content-Length larger than the datagram: 400 (RFC 3261 18.3)"),
    case(M, "3.1.2.3_ncl.sip", BAD, "negative Content-Length: 400"),
    case(M, "3.1.2.5_scalarlg.sip", Answer::Silence, "a response: never answered"),
    case(M, "3.1.2.6_quotbal.sip", BAD, "unterminated quoted string in To: 400"),
    case(M, "3.1.2.8_lwsruri.sip", BAD, "LWS inside the Request-URI: 400"),
    case(M, "3.1.2.9_lwsstart.sip", BAD, "several SP between Request-Line elements: 400"),
    case(M, "3.1.2.11_escruri.sip", BAD, "escaped headers in the Request-URI of an INVITE: 400"),
    case(M, "3.1.2.12_baddate.sip", Answer::Call,
        "bad Date time zone: §3.1.2.12 lets an element that does not use Date accept it"),
    case(M, "3.1.2.13_regbadct.sip", Answer::Final(&[400, 405]),
        "Contact URI with `?` outside <>: 400 from a registrar; the method check (405) comes first here"),
    case(M, "3.1.2.15_baddn.sip", BAD, "non-token characters in an unquoted display name: 400"),
    Case { header: Some(("Via", "SIP/7.0")),
        ..case(M, "3.1.2.16_badvers.sip", Answer::Final(&[505]), "SIP/7.0: 505 Version Not Supported") },
    case(M, "3.1.2.18_mismatch02.sip", Answer::Final(&[501, 400]),
        "unknown method with a CSeq method of INVITE: 501, or 400 (§3.1.2.18)"),
    case(M, "3.1.2.19_bigcode.sip", Answer::Silence, "a response (status 4294967301): never answered"),
    case(M, "3.2.1_badbranch.sip", OK,
        "branch is the bare magic cookie: matched the RFC 2543 way, answered as usual"),
    case(M, "3.3.1_insuf.sip", BAD, "no To, From, Call-ID or Max-Forwards: 400"),
    case(M, "3.3.4_unksm2.sip", Answer::Final(&[400, 405, 416]),
        "unknown URI schemes in To, From and Contact of a REGISTER: refused (no registrar: 405)"),
    Case { header: Some(("Unsupported", "nothingSupportsThisEither")),
        ..case(M, "3.3.5_bext01.sip", Answer::Final(&[420]),
            "Require of unknown extensions: 420 listing them in Unsupported (Proxy-Require is a proxy's)") },
    Case { header: Some(("Accept", "application/sdp")),
        ..case(M, "3.3.6_invut.sip", Answer::Final(&[415]),
            "INVITE body of an unknown Content-Type: 415 with Accept") },
    Case { repair: true,
        ..case(M, "3.3.8_multi01.sip", BAD,
            "several values in single-value header fields (the copy declares 154 octets for 152): 400") },
    case(M, "3.3.9_mcl01.sip", BAD, "several Content-Length values: 400"),
    case(M, "3.3.15_sdp01.sip", Answer::Final(&[406, 400]),
        "Accept: text/nobodyKnowsThis leaves no type for the SDP answer: 406 (or 400, §3.3.15)"),
];

fn raw(case: &Case) -> Vec<u8> {
    let path = Path::new(CORPUS_DIR).join(case.dir).join(case.file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "torture corpus missing: {} ({e}; the repository must sit beside shared/)",
            path.display()
        )
    })
}

/// LF → CRLF, the final space → CRLF, and the missing empty line after a body-less head.
fn normalise(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    for &b in raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    let lost_crlf = out.last() == Some(&b' ');
    if lost_crlf {
        out.pop();
    }
    if !out.windows(4).any(|w| w == b"\r\n\r\n") {
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    } else if lost_crlf {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Replaces the declared Content-Length with the real body length.
fn repair_content_length(msg: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(msg.to_vec()).expect("torture message is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let head: Vec<String> = head
        .split("\r\n")
        .map(|line| {
            let name = line.split(':').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                format!("Content-Length: {}", body.len())
            } else {
                line.to_owned()
            }
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}

/// The message as the test sends it: normalised, repaired where listed (and, on a stream,
/// every well-formed message with a body: there the declared length frames the message, and
/// 4.8 and 4.9 declare fewer octets than they carry), 3.1.1.8's lost trailing INVITE put
/// back (over UDP only: the case is about datagrams), and made its own transaction.
fn prepare(case: &Case, udp: bool) -> Vec<u8> {
    let mut bytes = normalise(&raw(case));
    let has_body = find(&bytes, b"\r\n\r\n").is_some_and(|i| i + 4 < bytes.len());
    if case.repair || (!udp && case.dir == W && has_body) {
        bytes = repair_content_length(&bytes);
    }
    if udp && case.file.starts_with("3.1.1.8") {
        bytes.extend_from_slice(
            b"INVITE sip:joe@example.com SIP/2.0\r\nTo: sip:joe@example.com\r\n",
        );
    }
    own_transaction(bytes)
}

/// Gives a request that parses a transaction identity no other send has (module docs).
fn own_transaction(bytes: Vec<u8>) -> Vec<u8> {
    let Ok(Message::Request(request)) = parse(&bytes) else {
        return bytes; // refused by the parser, or a response: no transaction to collide with
    };
    let branch = request
        .top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_owned));
    let (old, new) = match branch {
        Some(b) if b.starts_with("z9hG4bK") && b.len() > "z9hG4bK".len() => {
            let new = format!("{b}-{}", unique("t"));
            (format!("branch={b}"), format!("branch={new}"))
        }
        _ => {
            let id = request
                .call_id()
                .expect("a parsed request has a Call-ID")
                .to_owned();
            let new = format!("{id}-{}", unique("t"));
            (id, new)
        }
    };
    let at = find(&bytes, old.as_bytes())
        .unwrap_or_else(|| panic!("{old:?} not found verbatim in the message"));
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&bytes[at + old.len()..]);
    assert!(
        parse(&out).is_ok(),
        "the transaction edit broke the message"
    );
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---- SIP over UDP ------------------------------------------------------------------------

/// The status code of a response's start line, read leniently (the answer to a malformed
/// request carries its salvaged, possibly malformed, header fields).
fn status_of(bytes: &[u8]) -> Option<u16> {
    let line = bytes.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("SIP/2.0 ")?;
    rest.split(' ').next()?.parse().ok()
}

fn start_line(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\r').next().unwrap_or_default();
    String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned()
}

/// A header field's value in a message read leniently (no parse): first line, any case.
fn header_value(bytes: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// A SIP client socket on an address of its own.
struct Peer {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Peer {
    fn new(server: SocketAddr) -> Peer {
        let socket = UdpSocket::bind((fresh_ip(), 0)).expect("bind a UDP socket on loopback");
        Peer { socket, server }
    }

    fn local(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    fn send(&self, bytes: &[u8]) {
        self.socket
            .send_to(bytes, self.server)
            .unwrap_or_else(|e| panic!("send {} octets: {e}", bytes.len()));
    }

    /// The next datagram within `within`.
    fn recv(&self, within: Duration) -> Option<Vec<u8>> {
        let deadline = now() + within;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.checked_duration_since(now())?;
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("set a read timeout");
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => return Some(buf[..n].to_vec()),
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                // ICMP unreachable from an earlier send: keep listening.
                Err(_) => continue,
            }
        }
    }

    /// The first final response within `within`, skipping provisional ones (and anything
    /// that is not a response).
    fn final_response(&self, within: Duration) -> Option<Vec<u8>> {
        let deadline = now() + within;
        loop {
            let left = deadline.checked_duration_since(now())?;
            let got = self.recv(left)?;
            if status_of(&got).is_some_and(|s| s >= 200) {
                return Some(got);
            }
        }
    }

    /// The first response whose CSeq method is `method`, within `within`.
    fn response_to(&self, method: &str, within: Duration) -> Option<Vec<u8>> {
        let deadline = now() + within;
        loop {
            let left = deadline.checked_duration_since(now())?;
            let got = self.recv(left)?;
            let cseq = header_value(&got, "CSeq").unwrap_or_default();
            if status_of(&got).is_some_and(|s| s >= 200) && cseq.ends_with(method) {
                return Some(got);
            }
        }
    }
}

fn options(local: SocketAddr, transport: &str, target: SocketAddr) -> Vec<u8> {
    format!(
        "OPTIONS sip:1111@{target} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch={};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag={}\r\n\
         To: <sip:1111@{target}>\r\n\
         Call-ID: {}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        unique("z9hG4bKprobe"),
        unique("p"),
        unique("probe-"),
    )
    .into_bytes()
}

/// Whether the server answers an OPTIONS from a fresh source with 200; the status or
/// `None` (silence) otherwise.
fn probe(sip: SocketAddr) -> Result<(), Option<u16>> {
    let peer = Peer::new(sip);
    peer.send(&options(peer.local(), "UDP", sip));
    match peer
        .final_response(ANSWER_WITHIN)
        .and_then(|r| status_of(&r))
    {
        Some(200) => Ok(()),
        other => Err(other),
    }
}

/// An in-dialog request (ACK or BYE) for the dialog a 2xx set up.
fn in_dialog(
    method: &str,
    ok: &[u8],
    local: SocketAddr,
    transport: &str,
) -> Result<Vec<u8>, String> {
    let message = parse(ok).map_err(|e| format!("the 2xx does not parse: {e}"))?;
    let target = message
        .contacts()
        .ok()
        .and_then(|c| c.into_iter().next())
        .ok_or("the 2xx has no Contact")?
        .uri
        .to_string();
    let seq = message.cseq().map_err(|e| format!("CSeq: {e}"))?.seq;
    let seq = if method == "ACK" { seq } else { seq + 1 };
    let get = |name: &str| header_value(ok, name).ok_or(format!("the 2xx has no {name}"));
    Ok(format!(
        "{method} {target} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch={};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {}\r\n\
         To: {}\r\n\
         Call-ID: {}\r\n\
         CSeq: {seq} {method}\r\n\
         Content-Length: 0\r\n\r\n",
        unique("z9hG4bKdlg"),
        get("From")?,
        get("To")?,
        get("Call-ID")?,
    )
    .into_bytes())
}

/// The ACK for a non-2xx final answer to `invite` (same branch, RFC 3261 17.1.1.3).
fn ack_failure(invite: &[u8], answer: &[u8]) -> Option<Vec<u8>> {
    let Ok(Message::Request(request)) = parse(invite) else {
        return None; // refused by the parser: answered statelessly, nothing to acknowledge
    };
    let via = header_value(answer, "Via")?;
    let via = via.split(',').next()?.trim().to_owned();
    let seq = request.cseq().ok()?.seq;
    Some(
        format!(
            "ACK {} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: {seq} ACK\r\nContent-Length: 0\r\n\r\n",
            request.uri,
            header_value(answer, "From")?,
            header_value(answer, "To")?,
            header_value(answer, "Call-ID")?,
        )
        .into_bytes(),
    )
}

/// A SIP connection of the test's: a UDP peer or a TCP stream.
trait Conn {
    fn send_bytes(&mut self, bytes: &[u8]);
    /// The first final response whose CSeq method is `method`, within `within`.
    fn response_to(&mut self, method: &str, within: Duration) -> Option<Vec<u8>>;
    fn local_addr(&self) -> SocketAddr;
    fn transport(&self) -> &'static str;
}

impl Conn for Peer {
    fn send_bytes(&mut self, bytes: &[u8]) {
        self.send(bytes);
    }
    fn response_to(&mut self, method: &str, within: Duration) -> Option<Vec<u8>> {
        Peer::response_to(self, method, within)
    }
    fn local_addr(&self) -> SocketAddr {
        self.local()
    }
    fn transport(&self) -> &'static str {
        "UDP"
    }
}

/// What follows the final answer to a request the test sent: a call that a 2xx set up is
/// ended with ACK and BYE (which must get 200); a refused INVITE that the server took as a
/// transaction is acknowledged, so that it stops retransmitting the answer.
fn settle(conn: &mut impl Conn, request: &[u8], answer: &[u8]) -> Result<(), String> {
    if !request.starts_with(b"INVITE ") {
        return Ok(());
    }
    if !status_of(answer).is_some_and(|s| (200..300).contains(&s)) {
        if let Some(ack) = ack_failure(request, answer) {
            conn.send_bytes(&ack);
        }
        return Ok(());
    }
    let (local, transport) = (conn.local_addr(), conn.transport());
    conn.send_bytes(&in_dialog("ACK", answer, local, transport)?);
    conn.send_bytes(&in_dialog("BYE", answer, local, transport)?);
    match conn.response_to("BYE", ANSWER_WITHIN) {
        Some(r) if status_of(&r) == Some(200) => Ok(()),
        Some(r) => Err(format!(
            "ending its call: BYE answered {:?}",
            start_line(&r)
        )),
        None => Err("ending its call: BYE not answered".to_owned()),
    }
}

/// Checks one final answer against the case; problems are pushed to `problems`.
fn check_answer(case: &Case, answer: &[u8], problems: &mut Vec<String>, how: &str) {
    let status = status_of(answer);
    let allowed: &[u16] = match case.answer {
        Answer::Final(s) => s,
        Answer::Call => &[200],
        Answer::Silence => &[],
    };
    if !status.is_some_and(|s| allowed.contains(&s)) {
        problems.push(format!(
            "{} ({how}): answered {:?}, expected {allowed:?}: {}",
            case.file,
            start_line(answer),
            case.why
        ));
        return;
    }
    if let Some((name, piece)) = case.header {
        if !header_value(answer, name).is_some_and(|v| v.contains(piece)) {
            problems.push(format!(
                "{} ({how}): the {:?} answer lacks {name}: …{piece}… ({})",
                case.file,
                start_line(answer),
                case.why
            ));
        }
    }
}

#[test]
fn every_torture_message_over_udp_gets_the_answer_its_section_asks_and_the_server_keeps_serving() {
    let server = server();
    let sip = server.sip_addr();
    let mut problems = Vec::new();
    for case in CORPUS {
        let mut peer = Peer::new(sip);
        let bytes = prepare(case, true);
        peer.send(&bytes);
        match case.answer {
            Answer::Silence => {
                if let Some(got) = peer.recv(SILENCE) {
                    problems.push(format!(
                        "{}: answered {:?}, expected silence: {}",
                        case.file,
                        start_line(&got),
                        case.why
                    ));
                }
            }
            Answer::Final(_) | Answer::Call => match peer.final_response(ANSWER_WITHIN) {
                None => problems.push(format!(
                    "{}: no final answer within {ANSWER_WITHIN:?}, expected {:?}: {}",
                    case.file, case.answer, case.why
                )),
                Some(answer) => {
                    check_answer(case, &answer, &mut problems, "udp");
                    if let Err(e) = settle(&mut peer, &bytes, &answer) {
                        problems.push(format!("{} (udp): {e}", case.file));
                    }
                    if case.file.starts_with("3.1.1.8") {
                        // The trailing INVITE is no message of its own: no second answer.
                        if let Some(more) = peer.recv(SILENCE) {
                            problems.push(format!(
                                "{}: a second answer {:?}: the trailing octets were taken for a request",
                                case.file,
                                start_line(&more)
                            ));
                        }
                    }
                }
            },
        }
        if let Err(got) = probe(sip) {
            problems.push(format!(
                "after {}: OPTIONS answered {got:?} instead of 200",
                case.file
            ));
        }
    }
    report(&server, "the torture corpus over UDP", &problems);
}

// ---- SIP over TCP ------------------------------------------------------------------------

/// A SIP connection from an address of its own, read by Content-Length framing.
struct Stream {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl Stream {
    fn connect(server: SocketAddr) -> Stream {
        let stream = block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
            socket
                .bind(SocketAddr::new(fresh_ip(), 0))
                .expect("bind a TCP socket on loopback");
            let stream = tokio::time::timeout(ANSWER_WITHIN, socket.connect(server))
                .await
                .expect("connect within the bound")
                .unwrap_or_else(|e| panic!("connect to {server}: {e}"));
            stream.into_std().expect("a std TCP stream")
        });
        stream.set_nonblocking(false).expect("blocking mode");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Stream {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }

    fn local(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    fn server(&self) -> SocketAddr {
        self.stream.peer_addr().expect("peer address")
    }

    /// Writes; `false` when the server has closed the connection.
    fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// The next framed message within `within`; `None` on silence or once the server closed.
    fn recv(&mut self, within: Duration) -> Option<Vec<u8>> {
        let deadline = now() + within;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Ok(Some(f)) = frame(&self.buf) {
                let message = self.buf[f.skip..f.skip + f.len].to_vec();
                self.buf.drain(..f.skip + f.len);
                return Some(message);
            }
            if self.closed {
                return None;
            }
            let left = deadline.checked_duration_since(now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("set a read timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(_) => self.closed = true,
            }
        }
    }

    fn final_response(&mut self, within: Duration) -> Option<Vec<u8>> {
        let deadline = now() + within;
        loop {
            let left = deadline.checked_duration_since(now())?;
            let got = self.recv(left)?;
            if status_of(&got).is_some_and(|s| s >= 200) {
                return Some(got);
            }
        }
    }

    /// Whether the server closes the connection within `within` (what it still sends is
    /// read and dropped).
    fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = now() + within;
        while !self.closed {
            let Some(left) = deadline.checked_duration_since(now()) else {
                return false;
            };
            if self.recv(left).is_none() && !self.closed {
                return false;
            }
        }
        true
    }

    /// OPTIONS on this connection answered 200.
    fn options_ok(&mut self) -> bool {
        let bytes = options(self.local(), "TCP", self.server());
        self.send(&bytes)
            && self
                .final_response(ANSWER_WITHIN)
                .is_some_and(|r| status_of(&r) == Some(200))
    }
}

impl Conn for Stream {
    fn send_bytes(&mut self, bytes: &[u8]) {
        self.send(bytes);
    }
    fn response_to(&mut self, method: &str, within: Duration) -> Option<Vec<u8>> {
        let deadline = now() + within;
        loop {
            let left = deadline.checked_duration_since(now())?;
            let got = self.recv(left)?;
            let cseq = header_value(&got, "CSeq").unwrap_or_default();
            if status_of(&got).is_some_and(|s| s >= 200) && cseq.ends_with(method) {
                return Some(got);
            }
        }
    }
    fn local_addr(&self) -> SocketAddr {
        self.local()
    }
    fn transport(&self) -> &'static str {
        "TCP"
    }
}

/// An OPTIONS over a new TCP connection is answered 200.
fn probe_tcp(sip: SocketAddr) -> bool {
    Stream::connect(sip).options_ok()
}

/// The well-formed requests of the corpus that set up no call, in batches that each stay
/// within the gateway's per-source bursts (the seven REGISTERs exceed the REGISTER burst).
fn tcp_batches() -> Vec<Vec<&'static Case>> {
    let limits = AccessConfig::default();
    let burst = |method: &str| match method {
        "INVITE" => limits.invite.burst,
        "REGISTER" => limits.register.burst,
        "OPTIONS" => limits.options.burst,
        _ => limits.other.burst,
    };
    let mut batches: Vec<Vec<&Case>> = vec![Vec::new()];
    let mut counts: Vec<(String, u32)> = Vec::new();
    for case in CORPUS.iter().filter(|c| c.dir == W) {
        let bytes = prepare(case, false);
        if !matches!(case.answer, Answer::Final(_)) || bytes.starts_with(b"SIP/") {
            continue;
        }
        let method = bytes.split(|&b| b == b' ').next().unwrap_or_default();
        let method = String::from_utf8_lossy(method).into_owned();
        let sent = counts
            .iter()
            .find(|(m, _)| *m == method)
            .map_or(0, |(_, n)| *n);
        if sent >= burst(&method) {
            batches.push(Vec::new());
            counts.clear();
        }
        match counts.iter_mut().find(|(m, _)| *m == method) {
            Some((_, n)) => *n += 1,
            None => counts.push((method, 1)),
        }
        batches.last_mut().expect("one batch at least").push(case);
    }
    batches
}

#[test]
fn torture_requests_back_to_back_on_tcp_are_framed_and_answered_in_order() {
    let server = server();
    let sip = server.sip_addr();
    let mut problems = Vec::new();
    let batches = tcp_batches();
    assert!(
        batches.iter().map(Vec::len).sum::<usize>() >= 15,
        "the corpus has requests"
    );
    for batch in &batches {
        let mut stream = Stream::connect(sip);
        let mut all = Vec::new();
        let mut sent = Vec::new();
        for case in batch {
            let bytes = prepare(case, false);
            all.extend_from_slice(&bytes);
            sent.push(bytes);
        }
        assert!(stream.send(&all), "the server closed the connection");
        // One final answer per request, in order (the server handles a connection's
        // messages one after the other, and every answer here is immediate).
        for (case, bytes) in batch.iter().zip(&sent) {
            match stream.final_response(ANSWER_WITHIN) {
                None => problems.push(format!(
                    "{} (tcp batch): no final answer, expected {:?}",
                    case.file, case.answer
                )),
                Some(answer) => {
                    let call_id =
                        header_value(bytes, "Call-ID").or_else(|| header_value(bytes, "i"));
                    if header_value(&answer, "Call-ID") != call_id {
                        problems.push(format!(
                            "{} (tcp batch): answer {:?} is for Call-ID {:?}",
                            case.file,
                            start_line(&answer),
                            header_value(&answer, "Call-ID")
                        ));
                    }
                    check_answer(case, &answer, &mut problems, "tcp batch");
                    if let Err(e) = settle(&mut stream, bytes, &answer) {
                        problems.push(format!("{} (tcp batch): {e}", case.file));
                    }
                }
            }
        }
        if !stream.options_ok() {
            problems.push("OPTIONS after a batch on the same connection not answered 200".into());
        }
    }
    report(&server, "the torture requests over TCP", &problems);
}

#[test]
fn a_tcp_stream_cut_into_arbitrary_chunks_is_reassembled() {
    let server = server();
    let sip = server.sip_addr();
    let wanted = [
        "3.1.1.9_semiuri.sip",
        "3.3.7_regaut01.sip",
        "3.3.5_bext01.sip",
        "3.1.1.1_wsinv.sip",
    ];
    let cases: Vec<&Case> = wanted
        .iter()
        .map(|f| CORPUS.iter().find(|c| c.file == *f).expect("listed"))
        .collect();
    let messages: Vec<Vec<u8>> = cases.iter().map(|c| prepare(c, false)).collect();
    let stream_bytes: Vec<u8> = messages.concat();
    let mut junk = Junk(0x5eed_0001);
    let mut stream = Stream::connect(sip);
    let mut answers = Vec::new();
    let mut problems = Vec::new();
    let mut at = 0;
    let ends: Vec<usize> = messages
        .iter()
        .scan(0, |end, m| {
            *end += m.len();
            Some(*end)
        })
        .collect();
    while at < stream_bytes.len() {
        let len = 1 + junk.below(60);
        let end = (at + len).min(stream_bytes.len());
        assert!(
            stream.send(&stream_bytes[at..end]),
            "the server closed the connection"
        );
        at = end;
        // Whatever is complete may be answered now; nothing may be answered early.
        while let Some(answer) = stream.recv(Duration::from_millis(3)) {
            if status_of(&answer).is_some_and(|s| s >= 200) {
                let complete = ends.iter().filter(|&&e| e <= at).count();
                if answers.len() >= complete {
                    problems.push(format!(
                        "answer {:?} arrived before its request was complete ({at} octets sent)",
                        start_line(&answer)
                    ));
                }
                answers.push(answer);
            }
        }
    }
    while answers.len() < cases.len() {
        match stream.final_response(ANSWER_WITHIN) {
            Some(a) => answers.push(a),
            None => break,
        }
    }
    if answers.len() != cases.len() {
        problems.push(format!(
            "{} answers for {} requests",
            answers.len(),
            cases.len()
        ));
    }
    for ((case, bytes), answer) in cases.iter().zip(&messages).zip(&answers) {
        check_answer(case, answer, &mut problems, "tcp chunks");
        if let Err(e) = settle(&mut stream, bytes, answer) {
            problems.push(format!("{} (tcp chunks): {e}", case.file));
        }
    }
    if !stream.options_ok() {
        problems.push("OPTIONS after the chunked stream not answered 200".into());
    }
    report(&server, "a chunked TCP stream", &problems);
}

#[test]
fn malformed_torture_requests_on_tcp_are_refused_and_bad_framing_closes_the_connection() {
    let server = server();
    let sip = server.sip_addr();
    let mut problems = Vec::new();
    for case in CORPUS.iter().filter(|c| c.dir == M) {
        let Answer::Final(_) = case.answer else {
            continue; // responses and what cannot be answered: covered over UDP
        };
        if ["3.1.2.2", "3.1.2.3", "3.3.9"]
            .iter()
            .any(|f| case.file.starts_with(f))
        {
            continue; // framing cases, below
        }
        let bytes = prepare(case, false);
        let mut stream = Stream::connect(sip);
        stream.send(&bytes);
        match stream.final_response(ANSWER_WITHIN) {
            None => problems.push(format!("{} (tcp): no final answer", case.file)),
            Some(answer) => {
                check_answer(case, &answer, &mut problems, "tcp");
                if let Err(e) = settle(&mut stream, &bytes, &answer) {
                    problems.push(format!("{} (tcp): {e}", case.file));
                }
            }
        }
        // A message that is framed but does not parse leaves the stream in step.
        if !stream.options_ok() {
            problems.push(format!(
                "{} (tcp): OPTIONS on the same connection afterwards not answered 200",
                case.file
            ));
        }
    }

    // A negative Content-Length (3.1.2.3) or two of them (3.3.9): the stream cannot be
    // framed, nor resynchronised (RFC 3261 18.3): 400, then the connection is closed.
    for file in ["3.1.2.3_ncl.sip", "3.3.9_mcl01.sip"] {
        let case = CORPUS.iter().find(|c| c.file == file).expect("listed");
        let mut stream = Stream::connect(sip);
        stream.send(&prepare(case, false));
        match stream.final_response(ANSWER_WITHIN) {
            Some(a) if status_of(&a) == Some(400) => {}
            other => problems.push(format!(
                "{file} (tcp): answered {:?}, expected 400",
                other.as_deref().map(start_line)
            )),
        }
        if !stream.closed_within(ANSWER_WITHIN) {
            problems.push(format!("{file} (tcp): the connection stays open"));
        }
    }

    // Oversize Content-Length: the message would exceed the 65 535-octet limit: 400 (or 513
    // Message Too Large, RFC 3261 21.5.11), then closed.
    let mut stream = Stream::connect(sip);
    let head = String::from_utf8(options(stream.local(), "TCP", sip)).expect("ASCII");
    let oversize = head.replace("Content-Length: 0", "Content-Length: 70000");
    stream.send(oversize.as_bytes());
    match stream.final_response(ANSWER_WITHIN) {
        Some(a) if matches!(status_of(&a), Some(400 | 513)) => {}
        other => problems.push(format!(
            "Content-Length 70000 on tcp: answered {:?}, expected 400 or 513",
            other.as_deref().map(start_line)
        )),
    }
    if !stream.closed_within(ANSWER_WITHIN) {
        problems.push("Content-Length 70000 on tcp: the connection stays open".into());
    }

    // Content-Length larger than what is sent (3.1.2.2): on a stream the rest may still
    // come, so nothing is answered; when the peer gives up, the connection just closes.
    let clerr = CORPUS
        .iter()
        .find(|c| c.file.starts_with("3.1.2.2"))
        .expect("listed");
    let mut stream = Stream::connect(sip);
    stream.send(&normalise(&raw(clerr)));
    if let Some(a) = stream.recv(SILENCE) {
        problems.push(format!(
            "3.1.2.2 on tcp: answered {:?} while the body may still come",
            start_line(&a)
        ));
    }
    let _ = stream.stream.shutdown(Shutdown::Write);
    if !stream.closed_within(ANSWER_WITHIN) {
        problems.push("3.1.2.2 on tcp: the server kept the connection after our end closed".into());
    }

    if !probe_tcp(sip) {
        problems.push("a new TCP connection afterwards: OPTIONS not answered 200".into());
    }
    if let Err(got) = probe(sip) {
        problems.push(format!("afterwards OPTIONS over UDP answered {got:?}"));
    }
    report(&server, "malformed requests over TCP", &problems);
}

// ---- garbage -----------------------------------------------------------------------------

#[test]
fn garbage_datagrams_and_streams_are_dropped_and_counted_and_the_server_keeps_serving() {
    let server = server();
    let sip = server.sip_addr();
    let bad_before = block_on(server.metric("ivr_sip_bad_messages_total")).unwrap_or(0.0);
    let mut problems = Vec::new();
    let mut junk = Junk(0x5eed_0002);

    // Random datagrams, some dressed as the start of a request or a response.
    let peer = Peer::new(sip);
    for i in 0..60 {
        let len = 1 + junk.below(1400);
        let mut bytes = match i % 3 {
            0 => b"INVITE sip:1111@127.0.0.1 SIP/2.0\r\n".to_vec(),
            1 => b"SIP/2.0 200 OK\r\n".to_vec(),
            _ => Vec::new(),
        };
        bytes.extend(junk.bytes(len));
        peer.send(&bytes);
    }
    // Junk has no Via to answer by; a dressed-up head may (a 400), nothing else may come.
    while let Some(got) = peer.recv(SILENCE) {
        if !matches!(status_of(&got), Some(400 | 505 | 513)) {
            problems.push(format!("random datagrams: answered {:?}", start_line(&got)));
        }
    }
    if let Err(got) = probe(sip) {
        problems.push(format!("after random datagrams OPTIONS answered {got:?}"));
    }

    // A truncated request: cut after its Via there is something to answer (400); cut in
    // the request line there is not.
    let peer = Peer::new(sip);
    let whole = options(peer.local(), "UDP", sip);
    let via_end = find(&whole, b"rport\r\n").expect("our Via") + b"rport\r\n".len();
    peer.send(&whole[..via_end + 10]);
    match peer.final_response(ANSWER_WITHIN) {
        Some(a) if status_of(&a) == Some(400) => {}
        other => problems.push(format!(
            "a request cut after its Via: answered {:?}, expected 400",
            other.as_deref().map(start_line)
        )),
    }
    peer.send(&whole[..20]);
    if let Some(got) = peer.recv(SILENCE) {
        problems.push(format!(
            "a request cut in its request line: answered {:?}",
            start_line(&got)
        ));
    }

    // The largest datagram IPv4 carries (65 507 octets; 70 000 cannot be sent over UDP).
    // An OPTIONS whose one header field is far over the 8 KiB field limit: its request line
    // and Via are intact, so it is answered 513 Message Too Large (RFC 3261 21.5.11, the
    // status the parser gives the error) or 400.
    let peer = Peer::new(sip);
    let head = String::from_utf8(options(peer.local(), "UDP", sip)).expect("ASCII");
    let filler = "a".repeat(65_507 - head.len() - "X-Filler: \r\n".len());
    let big = head.replacen(
        "Content-Length: 0\r\n",
        &format!("X-Filler: {filler}\r\nContent-Length: 0\r\n"),
        1,
    );
    assert_eq!(big.len(), 65_507);
    peer.send(big.as_bytes());
    match peer.final_response(ANSWER_WITHIN) {
        Some(a) if matches!(status_of(&a), Some(400 | 513)) => {}
        other => problems.push(format!(
            "a 65 507-octet OPTIONS with a 65 k header field: answered {:?}, expected 513 or 400",
            other.as_deref().map(start_line)
        )),
    }
    // The same size made of a body is within every limit: answered as usual.
    let with_body = |n: usize| {
        head.replacen(
            "Content-Length: 0\r\n",
            &format!("Content-Type: text/plain\r\nContent-Length: {n}\r\n"),
            1,
        )
    };
    let n = 65_507 - with_body(10_000).len();
    let valid = with_body(n) + &"b".repeat(n);
    assert_eq!(valid.len(), 65_507);
    peer.send(valid.as_bytes());
    match peer.final_response(ANSWER_WITHIN) {
        Some(a) if status_of(&a) == Some(200) => {}
        other => problems.push(format!(
            "a {}-octet OPTIONS with a body: answered {:?}, expected 200",
            valid.len(),
            other.as_deref().map(start_line)
        )),
    }
    peer.send(&junk.bytes(65_507));
    if let Some(got) = peer.recv(SILENCE) {
        problems.push(format!(
            "65 507 octets of junk: answered {:?}",
            start_line(&got)
        ));
    }
    if let Err(got) = probe(sip) {
        problems.push(format!(
            "after the large datagrams OPTIONS answered {got:?}"
        ));
    }

    // Binary junk on TCP holding an empty line: the stream cannot be framed, nothing to
    // answer by: the connection is closed.
    let mut stream = Stream::connect(sip);
    let mut bytes = junk.bytes(3000);
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend(junk.bytes(100));
    stream.send(&bytes);
    if !stream.closed_within(ANSWER_WITHIN) {
        problems.push("binary junk on tcp: the connection stays open".into());
    }
    // 70 000 octets without an empty line: over the message limit: closed.
    let mut stream = Stream::connect(sip);
    let mut bytes = b"OPTIONS sip:1111@127.0.0.1 SIP/2.0\r\nX-Junk: ".to_vec();
    bytes.extend((0..70_000).map(|i| b'a' + (i % 26) as u8));
    stream.send(&bytes);
    if !stream.closed_within(ANSWER_WITHIN) {
        problems.push("70 000 octets of head on tcp: the connection stays open".into());
    }
    if !probe_tcp(sip) {
        problems.push("after junk on tcp a new connection's OPTIONS not answered 200".into());
    }
    if let Err(got) = probe(sip) {
        problems.push(format!(
            "after junk on tcp OPTIONS over UDP answered {got:?}"
        ));
    }

    let bad_after = block_on(server.metric("ivr_sip_bad_messages_total"));
    if !bad_after.is_some_and(|after| after > bad_before) {
        problems.push(format!(
            "ivr_sip_bad_messages_total went from {bad_before} to {bad_after:?}"
        ));
    }
    report(&server, "garbage", &problems);
}

// ---- garbage RTP -------------------------------------------------------------------------

/// An RTP packet (RFC 3550 5.1) with a 20 ms µ-law payload.
fn rtp(version: u8, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![version << 6, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// RTP packets (RTCP left out) from the gateway to `socket` within `within`: their count and
/// payload types, and how many datagrams `stranger` got meanwhile.
fn media_from(
    socket: &UdpSocket,
    gateway: SocketAddr,
    within: Duration,
    stranger: Option<&UdpSocket>,
) -> (usize, Vec<u8>, usize) {
    let deadline = now() + within;
    let mut buf = [0u8; 2048];
    let (mut count, mut pts) = (0, Vec::new());
    while let Some(left) = deadline.checked_duration_since(now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("set a read timeout");
        match socket.recv_from(&mut buf) {
            Ok((n, from)) if from == gateway && n >= 12 && buf[0] >> 6 == 2 => {
                let pt = buf[1] & 0x7f;
                if !(72..=76).contains(&pt) {
                    count += 1;
                    if !pts.contains(&pt) {
                        pts.push(pt);
                    }
                }
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(_) => {}
        }
    }
    let mut leaked = 0;
    if let Some(stranger) = stranger {
        stranger
            .set_nonblocking(true)
            .expect("non-blocking stranger");
        while stranger.recv_from(&mut buf).is_ok() {
            leaked += 1;
        }
    }
    (count, pts, leaked)
}

#[test]
fn garbage_rtp_into_a_call_leaves_its_media_flowing_and_the_call_ends_with_bye() {
    let server = server();
    let sip = server.sip_addr();
    let peer = Peer::new(sip);
    let media = UdpSocket::bind((peer.local().ip(), 0)).expect("bind an RTP socket");
    let media_addr = media.local_addr().expect("RTP address");
    let local = peer.local();
    let sdp = format!(
        "v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = media_addr.ip(),
        port = media_addr.port()
    );
    let invite = format!(
        "INVITE sip:1111@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Caller\" <sip:99112233@{local}>;tag={}\r\n\
         To: <sip:1111@{sip}>\r\n\
         Call-ID: {}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:99112233@{local}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        unique("z9hG4bKrtp"),
        unique("c"),
        unique("garbage-rtp-"),
        sdp.len()
    );
    peer.send(invite.as_bytes());
    let ok = match peer.final_response(ANSWER_WITHIN) {
        Some(ok) if status_of(&ok) == Some(200) => ok,
        other => panic!(
            "the call was not answered: {:?}\n--- server log ---\n{}",
            other.as_deref().map(start_line),
            log_tail(&server)
        ),
    };
    let answer = parse(&ok)
        .ok()
        .and_then(|m| match m {
            Message::Response(r) => String::from_utf8(r.body).ok(),
            Message::Request(_) => None,
        })
        .unwrap_or_default();
    let negotiated = ivr::sip::sdp::accept_answer(&answer)
        .unwrap_or_else(|e| panic!("the SDP answer {answer:?}: {e}"));
    let gateway = negotiated.remote;
    let pt = negotiated.codec_pt;
    peer.send(&in_dialog("ACK", &ok, local, "UDP").expect("an ACK"));

    let mut problems = Vec::new();
    let ssrc = 0x1234_5678;
    let silence = [0xffu8; 160];
    let mut seq: u16 = 1000;
    let mut ts: u32 = 8000;
    let send_media = |n: usize, seq: &mut u16, ts: &mut u32| {
        for _ in 0..n {
            media
                .send_to(&rtp(2, pt, *seq, *ts, ssrc, &silence), gateway)
                .expect("send RTP");
            *seq = seq.wrapping_add(1);
            *ts = ts.wrapping_add(160);
        }
    };
    // Our first packets latch the gateway onto this socket.
    send_media(5, &mut seq, &mut ts);
    let (before, pts, _) = media_from(&media, gateway, Duration::from_millis(600), None);
    if before < 10 || pts != [pt] {
        problems.push(format!(
            "before any garbage: {before} RTP packets in 600 ms, payload types {pts:?} (want {pt})"
        ));
    }

    let stranger = UdpSocket::bind((fresh_ip(), 0)).expect("bind a stranger's socket");
    let mut junk = Junk(0x5eed_0003);
    let mut phases: Vec<(&str, Vec<Vec<u8>>, bool)> = Vec::new();
    phases.push((
        "random datagrams",
        (0..40)
            .map(|_| {
                let len = junk.below(1500);
                junk.bytes(len)
            })
            .collect(),
        false,
    ));
    phases.push((
        "empty, 1, 11 and 12 octets and 65 000 octets",
        vec![
            Vec::new(),
            vec![0x80],
            vec![0x80; 11],
            rtp(2, pt, seq, ts, ssrc, &[]),
            junk.bytes(65_000),
        ],
        false,
    ));
    phases.push((
        "RTP versions 0, 1 and 3",
        (0..3u8)
            .flat_map(|v| {
                let v = if v == 2 { 3 } else { v };
                (0..5u16).map(move |i| rtp(v, pt, 5000 + i, 9000, ssrc, &[0xff; 160]))
            })
            .collect(),
        false,
    ));
    phases.push((
        "wrong payload types",
        [8u8, 13, 18, 96, 101, 127, 34, 72, 77]
            .iter()
            .enumerate()
            .map(|(i, &t)| rtp(2, t, seq.wrapping_add(i as u16), ts, ssrc, &[0xd5; 160]))
            .collect(),
        false,
    ));
    phases.push((
        "huge sequence and timestamp jumps and SSRC changes",
        (0..12u32)
            .map(|i| {
                rtp(
                    2,
                    pt,
                    seq.wrapping_add(20_000u16.wrapping_mul(i as u16 + 1)),
                    ts.wrapping_add(0x7000_0000u32.wrapping_mul(i)),
                    ssrc ^ (i % 3),
                    &silence,
                )
            })
            .collect(),
        false,
    ));
    phases.push((
        "RTCP garbage",
        [200u8, 201, 202, 203, 204, 205, 206, 207]
            .iter()
            .flat_map(|&kind| {
                let mut out = Vec::new();
                // Wrong lengths, truncated, a compound with junk after a valid-looking header.
                out.push(vec![0x81, kind, 0xff, 0xff, 0, 0, 0, 1]);
                out.push(vec![0x80, kind]);
                out.push(vec![
                    0x9f, kind, 0, 1, 1, 2, 3, 4, 0xde, 0xad, 0xbe, 0xef, 0xff,
                ]);
                let mut c = vec![0x80, kind, 0, 1, 1, 2, 3, 4];
                c.extend_from_slice(&[0x40, 0, 0, 0, 9, 9, 9]);
                out.push(c);
                out
            })
            .collect(),
        false,
    ));
    phases.push((
        "RTP and junk from a stranger's address",
        (0..20u16)
            .map(|i| {
                if i % 2 == 0 {
                    rtp(2, pt, 40_000 + i, 4_000_000, 0xbad, &[0x00; 160])
                } else {
                    vec![0x80, 0xc8, 0, 0]
                }
            })
            .collect(),
        true,
    ));
    for (name, packets, from_stranger) in phases {
        for packet in &packets {
            let socket = if from_stranger { &stranger } else { &media };
            // A datagram the kernel refuses (none should be) is no test of the server.
            let _ = socket.send_to(packet, gateway);
        }
        send_media(5, &mut seq, &mut ts);
        let (count, pts, leaked) =
            media_from(&media, gateway, Duration::from_millis(500), Some(&stranger));
        if count < 10 || pts != [pt] {
            problems.push(format!(
                "after {name}: {count} RTP packets from the gateway in 500 ms, payload types {pts:?} (want {pt})"
            ));
        }
        if leaked > 0 {
            problems.push(format!(
                "after {name}: the gateway sent {leaked} datagrams to the stranger"
            ));
        }
    }

    peer.send(&in_dialog("BYE", &ok, local, "UDP").expect("a BYE"));
    match peer.response_to("BYE", ANSWER_WITHIN) {
        Some(r) if status_of(&r) == Some(200) => {}
        other => problems.push(format!(
            "BYE answered {:?}, expected 200",
            other.as_deref().map(start_line)
        )),
    }
    // Media stops with the call (what was in flight is drained first).
    let _ = media_from(&media, gateway, Duration::from_millis(200), None);
    let (after, _, _) = media_from(&media, gateway, Duration::from_millis(400), None);
    if after > 0 {
        problems.push(format!("{after} RTP packets after the BYE was answered"));
    }
    if let Err(got) = probe(sip) {
        problems.push(format!("afterwards OPTIONS answered {got:?}"));
    }
    report(&server, "garbage RTP", &problems);
}
