//! Access control over the wire, against the running `ivr serve`: digest authentication of
//! callers (`--sip-user`), the call limit (`--max-calls`), the per-source rate limits, the
//! answers to requests the hotline does not serve, and a call over TCP.
//!
//! The test is the caller: it writes raw SIP requests (UDP, and TCP framed by Content-Length),
//! matches the answers by Call-ID and CSeq, acknowledges every final answer to an INVITE
//! (RFC 3261 §17.1.1.3 for a failure, §13.2.2.4 for a 2xx) and ends every call it set up with
//! BYE. Digest credentials are computed with the crate's own client side
//! ([`ivr::sip::auth::respond`]), which its unit tests check against RFC 7616's vectors.
//!
//! Servers: one per command line, shared by the tests of this file that use it while any of
//! them runs ([`shared`]). The gateway rate-limits per source address, so each exchange that
//! counts on a full bucket comes from a loopback address of its own. Every wait is bounded
//! ([`ANSWER_WITHIN`]); a failure lists what went wrong, the exchange, and the server log.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ivr::sip::access::AccessConfig;
use ivr::sip::auth::respond;
use ivr::sip::message::{frame, parse, Message, Response, TypedHeaders};

/// How long a final answer may take (a call rings 500 ms before its 200).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// How long the test listens to show that nothing more comes (a final answer that was not
/// acknowledged is retransmitted after 500 ms, RFC 3261 timer G).
const SILENCE: Duration = Duration::from_millis(1200);
/// The user the authenticating server knows.
const AUTH_ARGS: &[&str] = &["--sip-user", "alice:secret"];

// ---- servers and small helpers -----------------------------------------------------------

/// The server started with `args`, shared by the tests that run at the same time and stopped
/// when the last of them lets go.
fn shared(args: &'static [&'static str]) -> Arc<common::Server> {
    type Slots = Vec<(&'static [&'static str], Weak<common::Server>)>;
    static SHARED: Mutex<Slots> = Mutex::new(Vec::new());
    let mut slots = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = slots
        .iter()
        .find(|(a, _)| *a == args)
        .and_then(|(_, s)| s.upgrade())
    {
        return server;
    }
    let server = Arc::new(common::start_server_with(args));
    slots.retain(|(a, _)| *a != args);
    slots.push((args, Arc::downgrade(&server)));
    server
}

#[allow(clippy::disallowed_methods)] // Deadlines against a real server need the real clock.
fn now() -> Instant {
    Instant::now()
}

/// A source address of 127.66.0.0/16 no other exchange of this process has used.
fn fresh_ip() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    IpAddr::V4(Ipv4Addr::new(127, 66, (n >> 8) as u8, n as u8))
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

/// Panics with every problem found, the exchange so far and the tail of the server log,
/// when there are any problems.
fn report(server: &common::Server, what: &str, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let log = server.log();
    let start = (log.len().saturating_sub(6000)..log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(log.len());
    panic!(
        "{what}: {} problem(s):\n  {}\n--- server log (tail) ---\n{}",
        problems.len(),
        problems.join("\n  "),
        &log[start..]
    );
}

/// A parsed response and its octets.
struct Reply {
    raw: Vec<u8>,
    msg: Response,
}

impl Reply {
    fn status(&self) -> u16 {
        self.msg.status
    }

    /// The start line and header fields, for failure messages.
    fn head(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        head.replace("\r\n", " | ")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.msg.headers.get(name)
    }

    /// Every element of a header field, across lines (list headers split at commas).
    fn elements(&self, name: &str) -> Vec<String> {
        self.msg
            .headers
            .get_all(name)
            .map(|v| v.trim().to_owned())
            .collect()
    }

    /// The `Retry-After` seconds, when present and a number.
    fn retry_after(&self) -> Option<u32> {
        self.msg.retry_after().ok().flatten()
    }
}

/// A SIP connection of the caller's: a UDP socket or a TCP stream.
trait Conn {
    fn send(&mut self, bytes: &[u8]);
    /// The next message from the server within `within`.
    fn recv(&mut self, within: Duration) -> Option<Vec<u8>>;
    fn local(&self) -> SocketAddr;
    fn transport(&self) -> &'static str;
}

/// A UDP socket on a loopback address of the test's choosing.
struct Udp {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Udp {
    fn on(ip: IpAddr, server: SocketAddr) -> Udp {
        let socket =
            UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind a UDP socket on {ip}: {e}"));
        Udp { socket, server }
    }
}

impl Conn for Udp {
    fn send(&mut self, bytes: &[u8]) {
        self.socket
            .send_to(bytes, self.server)
            .unwrap_or_else(|e| panic!("send {} octets: {e}", bytes.len()));
    }

    fn recv(&mut self, within: Duration) -> Option<Vec<u8>> {
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

    fn local(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    fn transport(&self) -> &'static str {
        "UDP"
    }
}

/// A TCP connection to the server, read by Content-Length framing.
struct Tcp {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl Tcp {
    fn connect(server: SocketAddr) -> Tcp {
        let stream = TcpStream::connect_timeout(&server, ANSWER_WITHIN)
            .unwrap_or_else(|e| panic!("connect to {server} over TCP: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Tcp {
            stream,
            buf: Vec::new(),
            closed: false,
        }
    }
}

impl Conn for Tcp {
    fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write {} octets over TCP: {e}", bytes.len()));
    }

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

    fn local(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    fn transport(&self) -> &'static str {
        "TCP"
    }
}

// ---- the caller's side of a Call-ID ------------------------------------------------------

/// Extra header fields of a request: (name, value).
type Fields<'a> = &'a [(&'a str, String)];
/// Payload types offered: (number, rtpmap).
type Formats<'a> = &'a [(u8, &'a str)];
/// A request body: (Content-Type, text).
type Body<'a> = Option<(&'a str, &'a str)>;

/// A request the test sent: what matching its answers and acknowledging them takes.
struct Sent {
    bytes: Vec<u8>,
    method: String,
    seq: u32,
    branch: String,
    call_id: String,
}

/// One Call-ID of the caller's: what goes in the Request-URI, From, To and CSeq of its
/// requests. Before a 2xx the requests go to the hotline's number; after it, inside the
/// dialog it set up (the answer's To tag and Contact).
#[derive(Clone)]
struct Leg {
    local: SocketAddr,
    transport: &'static str,
    server: SocketAddr,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    target: String,
    seq: u32,
    max_forwards: u32,
}

impl Leg {
    fn new(conn: &dyn Conn, server: SocketAddr) -> Leg {
        Leg {
            local: conn.local(),
            transport: conn.transport(),
            server,
            call_id: unique("access-"),
            from_tag: unique("f"),
            to_tag: None,
            target: format!("sip:1111@{server}"),
            seq: 0,
            max_forwards: 70,
        }
    }

    /// The next request of `method` (a new CSeq and branch), with `extra` header fields and
    /// an optional `(Content-Type, body)`.
    fn next(&mut self, method: &str, extra: Fields<'_>, body: Body<'_>) -> Sent {
        self.seq += 1;
        self.build(method, self.seq, &unique("z9hG4bKacc"), extra, body)
    }

    fn build(
        &self,
        method: &str,
        seq: u32,
        branch: &str,
        extra: Fields<'_>,
        body: Body<'_>,
    ) -> Sent {
        let (local, server) = (self.local, self.server);
        let to = match &self.to_tag {
            Some(tag) => format!("<sip:1111@{server}>;tag={tag}"),
            None => format!("<sip:1111@{server}>"),
        };
        let contact_params = if self.transport == "TCP" {
            ";transport=tcp"
        } else {
            ""
        };
        let mut text = format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch={branch};rport\r\n\
             Max-Forwards: {mf}\r\n\
             From: <sip:caller@{local}>;tag={from_tag}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {seq} {method}\r\n\
             Contact: <sip:caller@{local}{contact_params}>\r\n",
            target = self.target,
            transport = self.transport,
            mf = self.max_forwards,
            from_tag = self.from_tag,
            call_id = self.call_id,
        );
        for (name, value) in extra {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        match body {
            Some((kind, body)) => text.push_str(&format!(
                "Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )),
            None => text.push_str("Content-Length: 0\r\n\r\n"),
        }
        Sent {
            bytes: text.into_bytes(),
            method: method.to_owned(),
            seq,
            branch: branch.to_owned(),
            call_id: self.call_id.clone(),
        }
    }

    /// The ACK for a final failure answer to `invite`: its branch and CSeq, the answer's To
    /// (RFC 3261 §17.1.1.3).
    fn ack_failure(&self, invite: &Sent, answer: &Reply) -> Vec<u8> {
        let mut acked = self.clone();
        acked.to_tag = answer
            .msg
            .to()
            .ok()
            .and_then(|to| to.tag().map(str::to_owned));
        acked
            .build("ACK", invite.seq, &invite.branch, &[], None)
            .bytes
    }

    /// Enters the dialog a 2xx set up: its To tag, and its Contact as the remote target.
    fn enter(&mut self, ok: &Reply) -> Result<(), String> {
        let tag = ok.msg.to().ok().and_then(|to| to.tag().map(str::to_owned));
        let contact = ok.msg.contacts().ok().and_then(|c| c.into_iter().next());
        match (tag, contact) {
            (Some(tag), Some(contact)) => {
                self.to_tag = Some(tag);
                self.target = contact.uri.to_string();
                Ok(())
            }
            _ => Err(format!(
                "the 2xx lacks a To tag or a Contact: {}",
                ok.head()
            )),
        }
    }
}

/// Every answer to `sent` up to its final one (provisional ones first), within
/// [`ANSWER_WITHIN`]; other messages (retransmissions of earlier answers, requests) are
/// skipped.
fn answers(conn: &mut dyn Conn, sent: &Sent) -> Result<Vec<Reply>, String> {
    let deadline = now() + ANSWER_WITHIN;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(now()) {
        let Some(bytes) = conn.recv(left) else { break };
        let Ok(Message::Response(msg)) = parse(&bytes) else {
            continue;
        };
        let ours = msg.call_id().is_ok_and(|c| c == sent.call_id)
            && msg
                .cseq()
                .is_ok_and(|c| c.seq == sent.seq && c.method.as_str() == sent.method);
        if !ours {
            continue;
        }
        let done = msg.status >= 200;
        got.push(Reply { raw: bytes, msg });
        if done {
            return Ok(got);
        }
    }
    let seen: Vec<String> = got.iter().map(|r| r.status().to_string()).collect();
    Err(format!(
        "{} (CSeq {}): no final answer within {ANSWER_WITHIN:?} (provisional: [{}])",
        sent.method,
        sent.seq,
        seen.join(", ")
    ))
}

/// Sends `sent` and waits for its final answer.
fn ask(conn: &mut dyn Conn, sent: &Sent) -> Result<Reply, String> {
    conn.send(&sent.bytes);
    answers(conn, sent)?
        .pop()
        .ok_or_else(|| format!("{}: no answer", sent.method))
}

/// An SDP offer for audio at `media` with the payload types `formats` (number, rtpmap).
fn offer(media: SocketAddr, formats: Formats<'_>) -> String {
    let pts: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut sdp = format!(
        "v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pts}\r\n",
        ip = media.ip(),
        port = media.port(),
        pts = pts.join(" ")
    );
    for (pt, map) in formats {
        sdp.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
    }
    sdp.push_str("a=ptime:20\r\na=sendrecv\r\n");
    sdp
}

/// PCMU, PCMA and RFC 4733 events: what a phone offers.
const G711: Formats<'static> = &[
    (0, "PCMU/8000"),
    (8, "PCMA/8000"),
    (101, "telephone-event/8000"),
];

/// A socket for the caller's RTP next to its SIP address (the gateway sends media to it).
fn media_socket(conn: &dyn Conn) -> UdpSocket {
    UdpSocket::bind((conn.local().ip(), 0)).expect("bind an RTP socket")
}

/// Sends an INVITE offering `formats` at `media` with `extra` header fields, and returns
/// every answer to it. The final answer is acknowledged: a 2xx enters `leg` into the dialog
/// and is ACKed there, a failure gets the ACK of its transaction.
fn invite(
    conn: &mut dyn Conn,
    leg: &mut Leg,
    media: &UdpSocket,
    formats: Formats<'_>,
    extra: Fields<'_>,
) -> Result<Vec<Reply>, String> {
    let media = media.local_addr().expect("RTP address");
    let sdp = offer(media, formats);
    let sent = leg.next("INVITE", extra, Some(("application/sdp", &sdp)));
    conn.send(&sent.bytes);
    let replies = answers(conn, &sent)?;
    let Some(last) = replies.last() else {
        return Err("INVITE: no answer".to_owned());
    };
    if (200..300).contains(&last.status()) {
        leg.enter(last)?;
        let ack = leg.build("ACK", sent.seq, &unique("z9hG4bKack"), &[], None);
        conn.send(&ack.bytes);
    } else {
        conn.send(&leg.ack_failure(&sent, last));
    }
    Ok(replies)
}

/// Checks that `replies` end in a 200 carrying a usable SDP answer; `ringing` asks for a
/// 180 before it.
fn answered(replies: &[Reply], ringing: bool) -> Result<(), String> {
    let statuses: Vec<u16> = replies.iter().map(Reply::status).collect();
    let Some(last) = replies.last() else {
        return Err("no answer".to_owned());
    };
    if last.status() != 200 {
        return Err(format!(
            "answered {statuses:?}, expected a 200 at the end: {}",
            last.head()
        ));
    }
    if ringing && !statuses.contains(&180) {
        return Err(format!(
            "answered {statuses:?}, expected a 180 before the 200"
        ));
    }
    let kind = last.header("Content-Type").unwrap_or_default();
    if !kind.eq_ignore_ascii_case("application/sdp") {
        return Err(format!("the 200 carries {kind:?}, not an SDP answer"));
    }
    let body = String::from_utf8_lossy(&last.msg.body);
    ivr::sip::sdp::accept_answer(&body)
        .map(|_| ())
        .map_err(|e| format!("the SDP answer {body:?}: {e}"))
}

/// Ends the call `leg` is in with BYE, which must get 200.
fn hang_up(conn: &mut dyn Conn, leg: &mut Leg) -> Result<(), String> {
    let bye = leg.next("BYE", &[], None);
    match ask(conn, &bye)? {
        r if r.status() == 200 => Ok(()),
        r => Err(format!("BYE answered {}", r.head())),
    }
}

/// The final answers to `sent` (sent all at once), in order; `None` where none came within
/// [`ANSWER_WITHIN`].
fn finals(conn: &mut dyn Conn, sent: &[Sent]) -> Vec<Option<Reply>> {
    for request in sent {
        conn.send(&request.bytes);
    }
    let index: HashMap<(String, u32), usize> = sent
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.call_id.clone(), s.seq), i))
        .collect();
    let mut out: Vec<Option<Reply>> = sent.iter().map(|_| None).collect();
    let mut missing = sent.len();
    let deadline = now() + ANSWER_WITHIN;
    while missing > 0 {
        let Some(left) = deadline.checked_duration_since(now()) else {
            break;
        };
        let Some(bytes) = conn.recv(left) else { break };
        let Ok(Message::Response(msg)) = parse(&bytes) else {
            continue;
        };
        let key = (
            msg.call_id().unwrap_or_default().to_owned(),
            msg.cseq().map(|c| c.seq).unwrap_or_default(),
        );
        if msg.status < 200 {
            continue;
        }
        if let Some(&i) = index.get(&key) {
            if out[i].is_none() {
                missing -= 1;
                out[i] = Some(Reply { raw: bytes, msg });
            }
        }
    }
    out
}

/// The `WWW-Authenticate` challenge for `algorithm` in a 401.
fn challenge_for(reply: &Reply, algorithm: &str) -> Option<String> {
    reply
        .msg
        .headers
        .get_lines("WWW-Authenticate")
        .find(|c| {
            c.split(',').any(|p| {
                p.trim()
                    .eq_ignore_ascii_case(&format!("algorithm={algorithm}"))
            })
        })
        .map(str::to_owned)
}

/// The `nonce` of a challenge.
fn nonce_of(challenge: &str) -> Option<&str> {
    let at = challenge.find("nonce=\"")? + "nonce=\"".len();
    let rest = &challenge[at..];
    Some(&rest[..rest.find('"')?])
}

/// Checks a 401's challenges: one MD5 and one SHA-256 `Digest` challenge, realm, `qop=auth`,
/// one nonce; returns them (MD5, SHA-256).
fn challenges(reply: &Reply) -> Result<(String, String), String> {
    if reply.status() != 401 {
        return Err(format!("answered {}, expected 401", reply.head()));
    }
    let (Some(md5), Some(sha)) = (challenge_for(reply, "MD5"), challenge_for(reply, "SHA-256"))
    else {
        return Err(format!(
            "the 401 lacks an MD5 or a SHA-256 challenge: {}",
            reply.head()
        ));
    };
    for c in [&md5, &sha] {
        if !c.starts_with("Digest ")
            || !c.contains("realm=\"hotline\"")
            || !c.contains("qop=\"auth\"")
            || nonce_of(c).is_none_or(str::is_empty)
        {
            return Err(format!(
                "challenge {c:?}: expected Digest with realm=\"hotline\", qop=\"auth\", a nonce"
            ));
        }
    }
    if nonce_of(&md5) != nonce_of(&sha) {
        return Err(format!(
            "the challenges carry different nonces: {md5:?} / {sha:?}"
        ));
    }
    Ok((md5, sha))
}

// ---- digest authentication ---------------------------------------------------------------

#[test]
fn an_invite_without_credentials_is_challenged_and_its_digest_answer_gets_the_call() {
    let server = shared(AUTH_ARGS);
    let sip = server.sip_addr();
    let mut conn = Udp::on(fresh_ip(), sip);
    let media = media_socket(&conn);
    let mut problems = Vec::new();
    let mut run = || -> Result<(), String> {
        // 1. No Authorization: 401 with both challenges (and our ACK for it).
        let mut leg = Leg::new(&conn, sip);
        let first = invite(&mut conn, &mut leg, &media, G711, &[])?;
        let last = first.last().ok_or("no answer to the first INVITE")?;
        let (md5, sha) =
            challenges(last).map_err(|e| format!("INVITE without credentials: {e}"))?;

        // 2. The same Call-ID, a new CSeq, answering the MD5 challenge: the call rings and
        // is answered; BYE ends it.
        let authorization = respond(&md5, "INVITE", &leg.target, "alice", "secret", "cn-1", 1)
            .map_err(|e| format!("answering {md5:?}: {e}"))?;
        let second = invite(
            &mut conn,
            &mut leg,
            &media,
            G711,
            &[("Authorization", authorization)],
        )?;
        answered(&second, true).map_err(|e| format!("INVITE with MD5 credentials: {e}"))?;
        hang_up(&mut conn, &mut leg).map_err(|e| format!("the authenticated call: {e}"))?;

        // 3. A new call replaying nonce-count 1 of that nonce: refused with a fresh challenge.
        let mut replay = Leg::new(&conn, sip);
        let uri = replay.target.clone();
        let replayed = respond(&md5, "INVITE", &uri, "alice", "secret", "cn-2", 1)
            .map_err(|e| format!("answering {md5:?}: {e}"))?;
        let refused = invite(
            &mut conn,
            &mut replay,
            &media,
            G711,
            &[("Authorization", replayed)],
        )?;
        let last = refused.last().ok_or("no answer to the replay")?;
        challenges(last).map_err(|e| format!("INVITE replaying nc=00000001: {e}"))?;

        // 4. The same nonce with the next count, this time by SHA-256: the nonce is still
        // good, so the 401 above was for the replay alone.
        let mut next = Leg::new(&conn, sip);
        let uri = next.target.clone();
        let counted = respond(&sha, "INVITE", &uri, "alice", "secret", "cn-3", 2)
            .map_err(|e| format!("answering {sha:?}: {e}"))?;
        let third = invite(
            &mut conn,
            &mut next,
            &media,
            G711,
            &[("Authorization", counted)],
        )?;
        answered(&third, true)
            .map_err(|e| format!("INVITE with SHA-256 credentials, nc=2: {e}"))?;
        hang_up(&mut conn, &mut next).map_err(|e| format!("the SHA-256 call: {e}"))?;

        // Every final answer was acknowledged: nothing is retransmitted.
        if let Some(more) = conn.recv(SILENCE) {
            return Err(format!(
                "after every answer was acknowledged the server still sent {:?}",
                String::from_utf8_lossy(&more)
                    .lines()
                    .next()
                    .unwrap_or_default()
            ));
        }
        Ok(())
    };
    if let Err(e) = run() {
        problems.push(e);
    }
    report(&server, "digest authentication of a call", &problems);
}

#[test]
fn a_wrong_password_is_challenged_again_and_options_is_not_challenged() {
    let server = shared(AUTH_ARGS);
    let sip = server.sip_addr();
    let mut conn = Udp::on(fresh_ip(), sip);
    let media = media_socket(&conn);
    let mut problems = Vec::new();

    let mut probe = Leg::new(&conn, sip);
    let options = probe.next("OPTIONS", &[("Accept", "application/sdp".into())], None);
    match ask(&mut conn, &options) {
        Ok(r) if r.status() == 200 => {}
        Ok(r) => problems.push(format!("OPTIONS without credentials answered {}", r.head())),
        Err(e) => problems.push(e),
    }

    for (user, password) in [("alice", "not-the-secret"), ("mallory", "secret")] {
        let mut leg = Leg::new(&conn, sip);
        let mut run = || -> Result<(), String> {
            let first = invite(&mut conn, &mut leg, &media, G711, &[])?;
            let last = first.last().ok_or("no answer")?;
            let (md5, _) = challenges(last).map_err(|e| format!("first INVITE: {e}"))?;
            let authorization = respond(&md5, "INVITE", &leg.target, user, password, "cn", 1)
                .map_err(|e| format!("answering {md5:?}: {e}"))?;
            let second = invite(
                &mut conn,
                &mut leg,
                &media,
                G711,
                &[("Authorization", authorization)],
            )?;
            let last = second.last().ok_or("no answer")?;
            let (again, _) = challenges(last).map_err(|e| format!("retried INVITE: {e}"))?;
            if nonce_of(&again) == nonce_of(&md5) {
                return Err("the new challenge reuses the refused nonce".to_owned());
            }
            if leg.to_tag.is_some() {
                return Err("a dialog was set up".to_owned());
            }
            Ok(())
        };
        if let Err(e) = run() {
            problems.push(format!("{user}:{password}: {e}"));
        }
    }
    if let Some(more) = conn.recv(SILENCE) {
        problems.push(format!(
            "after every answer was acknowledged the server still sent {:?}",
            String::from_utf8_lossy(&more)
                .lines()
                .next()
                .unwrap_or_default()
        ));
    }
    report(&server, "wrong credentials", &problems);
}

// ---- the call limit ----------------------------------------------------------------------

#[test]
fn beyond_the_call_limit_an_invite_gets_503_with_retry_after_until_a_call_ends() {
    let server = shared(&["--max-calls", "1"]);
    let sip = server.sip_addr();
    let mut conn = Udp::on(fresh_ip(), sip);
    let (media_a, media_b) = (media_socket(&conn), media_socket(&conn));
    let mut problems = Vec::new();
    let mut run = || -> Result<(), String> {
        let mut first = Leg::new(&conn, sip);
        let replies = invite(&mut conn, &mut first, &media_a, G711, &[])?;
        answered(&replies, false).map_err(|e| format!("the first call: {e}"))?;

        let mut second = Leg::new(&conn, sip);
        let replies = invite(&mut conn, &mut second, &media_b, G711, &[])?;
        let busy = replies.last().ok_or("no answer to the second INVITE")?;
        if busy.status() != 503 || busy.retry_after().is_none_or(|s| s == 0) {
            return Err(format!(
                "a second call while one is held: answered {}, expected 503 with Retry-After",
                busy.head()
            ));
        }

        hang_up(&mut conn, &mut first).map_err(|e| format!("the first call: {e}"))?;
        let mut third = Leg::new(&conn, sip);
        let replies = invite(&mut conn, &mut third, &media_b, G711, &[])?;
        answered(&replies, false).map_err(|e| format!("a call after the first ended: {e}"))?;
        hang_up(&mut conn, &mut third).map_err(|e| format!("the third call: {e}"))?;
        Ok(())
    };
    if let Err(e) = run() {
        problems.push(e);
    }
    report(&server, "the call limit", &problems);
}

// ---- rate limits -------------------------------------------------------------------------

#[test]
fn an_options_flood_is_cut_to_its_burst_with_503_but_requests_in_a_dialog_are_never_limited() {
    let server = shared(&[]);
    let sip = server.sip_addr();
    // An address of its own: no other exchange shares its buckets.
    let mut conn = Udp::on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 57)), sip);
    let media = media_socket(&conn);
    let limits = AccessConfig::default();
    let burst = limits.options.burst as usize;
    let mut problems = Vec::new();

    // A call from the same source, set up before the flood (INVITE has a bucket of its own).
    let mut call = Leg::new(&conn, sip);
    match invite(&mut conn, &mut call, &media, G711, &[]) {
        Ok(replies) => {
            if let Err(e) = answered(&replies, false) {
                problems.push(format!("the call: {e}"));
            }
        }
        Err(e) => problems.push(format!("the call: {e}")),
    }
    report(&server, "setting up a call before the flood", &problems);

    // 1. The flood: three bursts' worth of OPTIONS as fast as the socket takes them.
    let started = now();
    let flood: Vec<Sent> = (0..3 * burst)
        .map(|_| Leg::new(&conn, sip).next("OPTIONS", &[], None))
        .collect();
    let answers = finals(&mut conn, &flood);
    let took = now().duration_since(started);
    let statuses: Vec<Option<u16>> = answers
        .iter()
        .map(|a| a.as_ref().map(Reply::status))
        .collect();
    let ok = statuses.iter().filter(|s| **s == Some(200)).count();
    // Tokens that can have come back while the flood ran, on top of the full bucket.
    let refilled = (took.as_secs_f64() * limits.options.per_second).floor() as usize + 1;
    if statuses[..burst].iter().any(|s| *s != Some(200)) {
        problems.push(format!(
            "the first {burst} OPTIONS (the burst) were not all answered 200: {statuses:?}"
        ));
    }
    if ok > burst + refilled || !statuses.contains(&Some(503)) {
        problems.push(format!(
            "{ok} of {} OPTIONS in {took:?} answered 200, expected {burst} (+ at most \
             {refilled} refilled) and 503 for the rest: {statuses:?}",
            flood.len()
        ));
    }
    for (i, answer) in answers.iter().enumerate() {
        match answer {
            None => problems.push(format!("OPTIONS #{i} was not answered")),
            Some(r) if r.status() == 503 && r.retry_after().is_none_or(|s| s == 0) => problems
                .push(format!(
                    "OPTIONS #{i}: 503 without a Retry-After of a second or more: {}",
                    r.head()
                )),
            Some(r) if !matches!(r.status(), 200 | 503) => {
                problems.push(format!("OPTIONS #{i} answered {}", r.head()))
            }
            Some(_) => {}
        }
    }

    // 2. Right after, with the OPTIONS bucket empty: twice a burst of OPTIONS inside the
    // dialog (refilling that many would take seconds), then more INFOs (keep-alives, no body)
    // than the bucket of other methods holds, in windows the socket buffers take.
    if call.to_tag.is_some() {
        let in_dialog: Vec<Sent> = (0..2 * burst)
            .map(|_| call.next("OPTIONS", &[], None))
            .collect();
        let statuses: Vec<Option<u16>> = finals(&mut conn, &in_dialog)
            .iter()
            .map(|a| a.as_ref().map(Reply::status))
            .collect();
        if statuses.iter().any(|s| *s != Some(200)) {
            problems.push(format!(
                "OPTIONS inside the dialog, after the flood: {statuses:?}, expected all 200"
            ));
        }
        let infos = limits.other.burst as usize + 50;
        let started = now();
        let mut refused = Vec::new();
        for window in 0..infos.div_ceil(50) {
            let sent: Vec<Sent> = (0..50.min(infos - window * 50))
                .map(|_| call.next("INFO", &[], None))
                .collect();
            for (request, answer) in sent.iter().zip(finals(&mut conn, &sent)) {
                match answer {
                    Some(r) if r.status() == 200 => {}
                    other => refused.push(format!(
                        "CSeq {}: {:?}",
                        request.seq,
                        other.map(|r| r.status())
                    )),
                }
            }
        }
        if !refused.is_empty() {
            problems.push(format!(
                "{} of {infos} INFOs inside the dialog (in {:?}) not answered 200: {}",
                refused.len(),
                now().duration_since(started),
                refused.join(", ")
            ));
        }
        if let Err(e) = hang_up(&mut conn, &mut call) {
            problems.push(format!("after the floods: {e}"));
        }
    }
    report(&server, "rate limits", &problems);
}

// ---- requests the hotline does not serve -------------------------------------------------

#[test]
fn unserved_methods_unknown_dialogs_and_unusable_invites_get_their_4xx_or_5xx() {
    let server = shared(&[]);
    let sip = server.sip_addr();
    let mut conn = Udp::on(fresh_ip(), sip);
    let media = media_socket(&conn);
    let mut problems = Vec::new();

    let allow_ok = |r: &Reply, method: &str| -> Result<(), String> {
        let allow = r.elements("Allow");
        let has = |m: &str| allow.iter().any(|a| a == m);
        if ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"]
            .iter()
            .all(|m| has(m))
            && !has(method)
        {
            Ok(())
        } else {
            Err(format!(
                "Allow {allow:?} does not list what the hotline serves (and not {method})"
            ))
        }
    };
    let plain: [(&str, Fields<'_>, Body<'_>, u16); 4] = [
        ("REGISTER", &[("Expires", "3600".into())], None, 405),
        (
            "SUBSCRIBE",
            &[("Event", "presence".into()), ("Expires", "600".into())],
            None,
            405,
        ),
        ("MESSAGE", &[], Some(("text/plain", "hello")), 405),
        ("FOO", &[], None, 501),
    ];
    for (method, extra, body, want) in plain {
        let mut leg = Leg::new(&conn, sip);
        if method == "REGISTER" {
            leg.target = format!("sip:{sip}");
        }
        let sent = leg.next(method, extra, body);
        match ask(&mut conn, &sent) {
            Ok(r) if r.status() == want => {
                if want == 405 {
                    if let Err(e) = allow_ok(&r, method) {
                        problems.push(format!("{method}: {e}"));
                    }
                }
            }
            Ok(r) => problems.push(format!("{method}: answered {}, expected {want}", r.head())),
            Err(e) => problems.push(e),
        }
    }

    // BYE for no dialog: with a To tag nobody gave out, and without any.
    for tag in [Some(unique("nodialog")), None] {
        let mut leg = Leg::new(&conn, sip);
        leg.to_tag = tag.clone();
        let sent = leg.next("BYE", &[], None);
        match ask(&mut conn, &sent) {
            Ok(r) if r.status() == 481 => {}
            Ok(r) => problems.push(format!(
                "BYE (To tag {tag:?}) for no dialog: answered {}, expected 481",
                r.head()
            )),
            Err(e) => problems.push(e),
        }
    }

    // INVITEs the hotline cannot take; each answer is acknowledged.
    let g729: Formats<'_> = &[(18, "G729/8000")];
    let cases: [(&str, Formats<'_>, Fields<'_>, u32, u16); 3] = [
        ("an offer of G.729 alone", g729, &[], 70, 488),
        ("Max-Forwards: 0", G711, &[], 0, 483),
        (
            "Require: 100rel",
            G711,
            &[("Require", "100rel".into())],
            70,
            420,
        ),
    ];
    for (what, formats, extra, max_forwards, want) in cases {
        let mut leg = Leg::new(&conn, sip);
        leg.max_forwards = max_forwards;
        match invite(&mut conn, &mut leg, &media, formats, extra) {
            Ok(replies) => {
                let Some(last) = replies.last() else { continue };
                if last.status() != want {
                    problems.push(format!(
                        "INVITE with {what}: answered {}, expected {want}",
                        last.head()
                    ));
                } else if want == 420 && !last.elements("Unsupported").iter().any(|u| u == "100rel")
                {
                    problems.push(format!(
                        "INVITE with {what}: the 420 lacks Unsupported: 100rel: {}",
                        last.head()
                    ));
                }
                if (200..300).contains(&last.status()) {
                    if let Err(e) = hang_up(&mut conn, &mut leg) {
                        problems.push(format!("INVITE with {what}: {e}"));
                    }
                }
            }
            Err(e) => problems.push(format!("INVITE with {what}: {e}")),
        }
    }
    if let Some(more) = conn.recv(SILENCE) {
        problems.push(format!(
            "after every answer was acknowledged the server still sent {:?}",
            String::from_utf8_lossy(&more)
                .lines()
                .next()
                .unwrap_or_default()
        ));
    }
    report(&server, "requests the hotline does not serve", &problems);
}

// ---- TCP ---------------------------------------------------------------------------------

#[test]
fn an_invite_over_tcp_is_answered_on_its_connection_and_ends_with_bye() {
    let server = shared(&[]);
    let sip = server.sip_addr();
    let mut conn = Tcp::connect(sip);
    let media = media_socket(&conn);
    let mut problems = Vec::new();
    let mut run = || -> Result<(), String> {
        let mut leg = Leg::new(&conn, sip);
        let replies = invite(&mut conn, &mut leg, &media, G711, &[])?;
        answered(&replies, true).map_err(|e| format!("INVITE over TCP: {e}"))?;
        let via = replies
            .last()
            .and_then(|r| r.header("Via"))
            .unwrap_or_default();
        if !via.starts_with("SIP/2.0/TCP") {
            return Err(format!("the 200 over TCP carries Via {via:?}"));
        }
        hang_up(&mut conn, &mut leg).map_err(|e| format!("over TCP: {e}"))
    };
    if let Err(e) = run() {
        problems.push(e);
    }
    report(&server, "a call over TCP", &problems);
}
