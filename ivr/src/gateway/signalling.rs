//! The SIP side of the gateway: sockets, and the one task that drives the user agent core.
//!
//! - UDP: one socket; each datagram is one message (RFC 3261 18.3). A `\r\n\r\n` keep-alive
//!   (RFC 5626 3.5.1) is ignored.
//! - TCP: a listener; each connection gets a reader task that frames messages by
//!   Content-Length and hands them over, and a writer fed from a channel. Responses and
//!   in-dialog requests to a peer that reached us over TCP go back on its connection; a new
//!   connection is opened when none is open to the destination.
//! - Before a request reaches the user agent core: a message that does not parse gets the 400
//!   (or 505) the parser can build, or nothing when there is nothing to answer to; a source
//!   outside the allow-list gets 403; a source over its rate gets 503 with Retry-After
//!   (requests inside a dialog are never limited).
//! - An incoming call: beyond the call limit → 503 + Retry-After; digest authentication when
//!   users are configured (401, stale nonces re-challenged); then an RTP port is bound, the
//!   offer is answered ([`crate::sip::sdp::answer`], 488 when no codec fits) and the call
//!   task is started. The call task opens its `Converse` stream and asks for the 200 (or a 503
//!   when the assistant cannot be reached).
//!
//! All SIP state is in the sans-IO [`Ua`]; this task feeds it sockets, a timer and commands
//! from call tasks, then sends what it asks and routes its events.

// The driver turns wall-clock time into the cores' inputs.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use rand::RngExt;

use crate::sip::access::{AccessConfig, AccessPolicy, Admission};
use crate::sip::auth::{Credentials, DigestConfig, DigestServer, Verdict};
use crate::sip::message::{self, Message, TypedHeaders, MAX_MESSAGE};
use crate::sip::sdp::{self, OfferError, SessionVersion};
use crate::sip::transaction::{Timers, Transmit, Transport};
use crate::sip::ua::{CallRef, EndReason, Ua, UaConfig, UaError, UaEvent};
use crate::sip::uri::Uri;

use super::call::{self, CallCommand, CallEvent, CallSetup};
use super::GatewayArgs;

/// How long a shutdown waits for the BYEs of calls in progress to be answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long a TCP connection may stay silent before it is closed.
const TCP_IDLE: Duration = Duration::from_secs(300);

/// Counters the gateway keeps (read by /metrics and the benches).
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Calls answered.
    pub calls: AtomicU64,
    /// Calls in progress.
    pub active: AtomicUsize,
    /// Calls refused (busy, forbidden, unauthorised, no codec, assistant away).
    pub refused: AtomicU64,
    /// Messages that did not parse.
    pub bad_messages: AtomicU64,
    /// Requests refused by the allow-list or a rate limit.
    pub blocked: AtomicU64,
    /// DTMF digits received (RFC 4733, INFO and in-band together).
    pub digits: AtomicU64,
    /// Transfers done by REFER, and by a bridged call.
    pub transfers: AtomicU64,
    /// RTP media packets received from callers (counted when each call ends).
    pub rtp_received: AtomicU64,
    /// Caller packets lost on the way (RFC 3550 A.3), counted when each call ends.
    pub rtp_lost: AtomicU64,
    /// Caller packets that came too late to play, counted when each call ends.
    pub rtp_late: AtomicU64,
    /// RTP packets sent to callers, counted when each call ends.
    pub rtp_sent: AtomicU64,
    /// Spacing of the RTP packets calls sent, merged when each call ends.
    pub spacing: std::sync::Mutex<Spacing>,
}

/// A histogram of the time between consecutive RTP packets of a call, 0.1 ms buckets up to
/// 100 ms (the last bucket holds everything longer).
#[derive(Debug, Clone)]
pub struct Spacing {
    buckets: Vec<u64>,
}

impl Default for Spacing {
    fn default() -> Self {
        Spacing {
            buckets: vec![0; 1001],
        }
    }
}

impl Spacing {
    /// Counts one gap.
    pub fn record(&mut self, gap: Duration) {
        let i = (gap.as_micros() / 100).min(1000) as usize;
        self.buckets[i] += 1;
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Spacing) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }

    /// Gaps counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The gap below which fraction `q` of the gaps fall (bucket upper edge).
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Duration::from_micros(i as u64 * 100 + 100);
            }
        }
        Duration::from_millis(100)
    }

    /// The share of gaps within `tolerance` of `nominal`.
    pub fn within(&self, nominal: Duration, tolerance: Duration) -> f64 {
        let total = self.count();
        if total == 0 {
            return 1.0;
        }
        let lo = nominal.saturating_sub(tolerance).as_micros() / 100;
        let hi = (nominal + tolerance).as_micros() / 100;
        let inside: u64 = self
            .buckets
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i as u128) >= lo && (*i as u128) < hi)
            .map(|(_, n)| n)
            .sum();
        inside as f64 / total as f64
    }
}

impl GatewayStats {
    /// The counters in Prometheus text format (appended to the assistant's /metrics).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut put = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        put(
            "ivr_sip_calls_total",
            "counter",
            "Phone calls answered.",
            self.calls.load(Ordering::Relaxed),
        );
        put(
            "ivr_sip_active_calls",
            "gauge",
            "Phone calls in progress.",
            self.active.load(Ordering::Relaxed) as u64,
        );
        put(
            "ivr_sip_refused_total",
            "counter",
            "Phone calls refused (busy, forbidden, unauthorised, no codec, assistant away).",
            self.refused.load(Ordering::Relaxed),
        );
        put(
            "ivr_sip_bad_messages_total",
            "counter",
            "SIP messages that did not parse.",
            self.bad_messages.load(Ordering::Relaxed),
        );
        put(
            "ivr_sip_blocked_total",
            "counter",
            "SIP requests refused by the allow-list or a rate limit.",
            self.blocked.load(Ordering::Relaxed),
        );
        put(
            "ivr_sip_digits_total",
            "counter",
            "DTMF digits received from callers.",
            self.digits.load(Ordering::Relaxed),
        );
        put(
            "ivr_sip_transfers_total",
            "counter",
            "Callers transferred to the operator.",
            self.transfers.load(Ordering::Relaxed),
        );
        out
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// Where SIP listens (UDP and TCP on the same port).
    pub local: SocketAddr,
    /// Its counters.
    pub stats: Arc<GatewayStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Binds the SIP sockets and starts the signalling task. Calls go to the assistant at
    /// `assistant` (a `http://HOST:PORT` gRPC endpoint).
    pub async fn start(
        args: &GatewayArgs,
        assistant: String,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Gateway> {
        args.validate()?;
        let sip = args.sip;
        let operator = args.operator.clone();
        let udp = UdpSocket::bind(sip)
            .await
            .with_context(|| format!("cannot listen for SIP on udp {sip}"))?;
        let local = udp.local_addr()?;
        let tcp = TcpListener::bind(local)
            .await
            .with_context(|| format!("cannot listen for SIP on tcp {local}"))?;
        let public = match args.public {
            Some(ip) => ip,
            None if !local.ip().is_unspecified() => local.ip(),
            None => IpAddr::from([127, 0, 0, 1]),
        };
        let contact = Uri::parse(&format!(
            "sip:hotline@{}",
            SocketAddr::new(public, local.port())
        ))
        .map_err(|e| anyhow::anyhow!("contact URI: {e}"))?;
        let mut access = AccessConfig {
            max_calls: args.max_calls,
            ..AccessConfig::default()
        };
        for net in &args.allow {
            access.allow.push(
                net.parse()
                    .map_err(|e| anyhow::anyhow!("--sip-allow {net}: {e}"))?,
            );
        }
        let policy = AccessPolicy::new(access);
        let mut rng = super::rng();
        let digest = if args.users.is_empty() {
            None
        } else {
            let mut config = DigestConfig::new("hotline");
            for entry in &args.users {
                if let Some((user, password)) = entry.split_once(':') {
                    config
                        .users
                        .insert(user.to_owned(), Credentials::password(password));
                }
            }
            Some(DigestServer::new(config, rng.random(), Instant::now()))
        };
        let contact_for_bridge = contact.clone();
        let ua = Ua::new(
            UaConfig {
                contact,
                user_agent: format!("ivr/{}", env!("CARGO_PKG_VERSION")),
                timers: Timers::default(),
            },
            rng.random(),
        );
        let stats = Arc::new(GatewayStats::default());
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let (command_tx, command_rx) = mpsc::channel(1024);
        let endpoint = tonic::transport::Endpoint::from_shared(assistant.clone())
            .with_context(|| format!("assistant address {assistant}"))?
            .connect_timeout(Duration::from_secs(3));
        let channel = endpoint.connect_lazy();
        let state = Signalling {
            ua,
            udp: Arc::new(udp),
            tcp_conns: HashMap::new(),
            inbound_tx,
            calls: HashMap::new(),
            policy,
            digest,
            command_tx,
            stats: Arc::clone(&stats),
            public,
            rtp_ports: PortCursor::new(args.rtp_ports.clone()),
            channel,
            operator,
            ua_contact: contact_for_bridge,
            ring: Duration::from_millis(args.ring_ms),
            bridges: HashMap::new(),
        };
        let task = tokio::spawn(state.run(tcp, inbound_rx, command_rx, shutdown));
        Ok(Gateway { local, stats, task })
    }

    /// Waits for the signalling task to finish (after shutdown).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// A message from a TCP connection, or its end.
#[derive(Debug)]
enum Inbound {
    Message(Vec<u8>, SocketAddr),
    Closed(SocketAddr),
}

/// Per call: the channel into its task.
#[derive(Debug)]
struct CallSlot {
    events: mpsc::Sender<CallEvent>,
    /// Our RTP address as the SDP gives it.
    local: SocketAddr,
    /// Our side's SDP origin (o= id and version) for this call.
    version: SessionVersion,
}

struct Signalling {
    ua: Ua,
    udp: Arc<UdpSocket>,
    tcp_conns: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    inbound_tx: mpsc::Sender<Inbound>,
    calls: HashMap<CallRef, CallSlot>,
    policy: AccessPolicy,
    digest: Option<DigestServer>,
    command_tx: mpsc::Sender<(CallRef, CallCommand)>,
    stats: Arc<GatewayStats>,
    public: IpAddr,
    rtp_ports: PortCursor,
    channel: tonic::transport::Channel,
    operator: Option<String>,
    /// Our Contact URI (the From of calls we place).
    ua_contact: Uri,
    ring: Duration,
    /// Bridged transfers: the leg to the operator → the caller's call.
    bridges: HashMap<CallRef, Bridge>,
}

/// A call placed to the operator for a caller whose side refused REFER.
#[derive(Debug)]
struct Bridge {
    /// The caller's call.
    caller: CallRef,
    /// Its RTP socket, handed to the caller's task once the operator answers.
    socket: Option<UdpSocket>,
}

impl std::fmt::Debug for Signalling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signalling")
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

impl Signalling {
    async fn run(
        mut self,
        tcp: TcpListener,
        mut inbound_rx: mpsc::Receiver<Inbound>,
        mut command_rx: mpsc::Receiver<(CallRef, CallCommand)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let udp = Arc::clone(&self.udp);
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        let mut stopping: Option<tokio::time::Instant> = None;
        let stop_signal = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        tokio::pin!(stop_signal);
        loop {
            let wake = self.ua.poll_timeout().map(tokio::time::Instant::from_std);
            let deadline = match (wake, stopping) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                r = udp.recv_from(&mut buf) => match r {
                    Ok((n, source)) => {
                        if n > MAX_MESSAGE {
                            self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%source, "oversized SIP datagram dropped");
                        } else {
                            let bytes = buf[..n].to_vec();
                            self.on_bytes(&bytes, source, Transport::Udp).await;
                        }
                    }
                    // ICMP port unreachable from an earlier send shows up here on some
                    // systems; it is no reason to stop listening.
                    Err(e) => tracing::debug!(error = %e, "SIP UDP receive"),
                },
                r = tcp.accept(), if stopping.is_none() => match r {
                    Ok((stream, peer)) => self.adopt(stream, peer),
                    Err(e) => tracing::warn!(error = %e, "SIP TCP accept"),
                },
                Some(inbound) = inbound_rx.recv() => match inbound {
                    Inbound::Closed(peer) => { self.tcp_conns.remove(&peer); }
                    Inbound::Message(bytes, peer) => self.on_bytes(&bytes, peer, Transport::Tcp).await,
                },
                Some((call, command)) = command_rx.recv() => self.on_command(call, command).await,
                _ = sleep_until(deadline) => {
                    if stopping.is_some_and(|t| tokio::time::Instant::now() >= t) {
                        break;
                    }
                    self.ua.handle_timeout(Instant::now());
                }
                _ = &mut stop_signal, if stopping.is_none() => {
                    let now = Instant::now();
                    let calls: Vec<CallRef> = self.calls.keys().copied().collect();
                    for call in calls {
                        checked(self.ua.hangup(now, call));
                    }
                    stopping = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                }
            }
            self.flush().await;
            if stopping.is_some() && self.calls.is_empty() && self.ua.calls() == 0 {
                break;
            }
        }
    }

    /// Starts reader and writer tasks for a TCP connection.
    fn adopt(&mut self, stream: TcpStream, peer: SocketAddr) {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
        self.tcp_conns.insert(peer, tx);
        spawn_connection(stream, peer, rx, self.inbound_tx.clone());
    }

    async fn on_bytes(&mut self, bytes: &[u8], source: SocketAddr, transport: Transport) {
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return; // keep-alive
        }
        let now = Instant::now();
        let message = match message::parse(bytes) {
            Ok(m) => m,
            Err(err) => {
                self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%source, error = %err, "bad SIP message");
                if self.policy.allowed(source.ip()) {
                    if let Some(reply) = message::error_response(bytes, &err) {
                        self.send(Transmit {
                            dest: source,
                            transport,
                            message: Message::Response(reply),
                        })
                        .await;
                    }
                }
                return;
            }
        };
        if let Message::Request(request) = &message {
            if !self.policy.allowed(source.ip()) {
                self.stats.blocked.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%source, method = %request.method, "SIP request from a source not allowed");
                if request.method != message::Method::Ack {
                    self.ua
                        .respond_stateless(request, source, transport, 403, &[]);
                }
                return;
            }
            let in_dialog = request.to().ok().is_some_and(|to| to.tag().is_some());
            if !in_dialog && request.method != message::Method::Ack {
                if let Admission::Busy { retry_after } =
                    self.policy.admit(now, source.ip(), request.method.as_str())
                {
                    self.stats.blocked.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%source, method = %request.method, "SIP request over its rate");
                    self.ua.respond_stateless(
                        request,
                        source,
                        transport,
                        503,
                        &[("Retry-After", retry_after.as_secs().max(1).to_string())],
                    );
                    return;
                }
            }
        }
        self.ua.receive(now, message, source, transport);
    }

    /// Sends what the core asks and routes its events.
    async fn flush(&mut self) {
        loop {
            let mut idle = true;
            while let Some(t) = self.ua.poll_transmit() {
                idle = false;
                self.send(t).await;
            }
            while let Some(event) = self.ua.poll_event() {
                idle = false;
                self.on_event(event).await;
            }
            if idle {
                break;
            }
        }
    }

    async fn send(&mut self, t: Transmit) {
        let bytes = t.message.to_bytes();
        match t.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send_to(&bytes, t.dest).await {
                    tracing::debug!(dest = %t.dest, error = %e, "SIP UDP send");
                }
            }
            Transport::Tcp => {
                if let Some(tx) = self.tcp_conns.get(&t.dest) {
                    if tx.try_send(bytes).is_err() {
                        tracing::info!(dest = %t.dest, "SIP TCP connection gone or full; message dropped");
                    }
                    return;
                }
                // No connection to it: open one (requests we originate, RFC 3261 18.1.1).
                let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
                let _ = tx.try_send(bytes);
                self.tcp_conns.insert(t.dest, tx.clone());
                let inbound = self.inbound_tx.clone();
                let dest = t.dest;
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(dest))
                        .await
                    {
                        Ok(Ok(stream)) => spawn_connection(stream, dest, rx, inbound),
                        _ => {
                            tracing::info!(%dest, "SIP TCP connect failed");
                            let _ = inbound.send(Inbound::Closed(dest)).await;
                        }
                    }
                });
            }
        }
    }

    async fn on_event(&mut self, event: UaEvent) {
        let now = Instant::now();
        let leg = match &event {
            UaEvent::Answered { call, .. }
            | UaEvent::Ended { call, .. }
            | UaEvent::Cancelled { call }
            | UaEvent::Progress { call, .. } => Some(*call),
            _ => None,
        };
        if let Some(leg) = leg.filter(|l| self.bridges.contains_key(l)) {
            return self.on_bridge_event(leg, event).await;
        }
        match event {
            UaEvent::Incoming {
                call,
                call_id,
                from,
                to,
                request_uri,
                source,
                offer,
                authorization,
                accept_language,
                ..
            } => {
                if !self.policy.has_room() {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%call, "call refused: at the call limit");
                    let retry = match self.policy.call_started() {
                        Admission::Busy { retry_after } => retry_after.as_secs().max(1),
                        _ => 30,
                    };
                    checked(
                        self.ua
                            .reject(now, call, 503, &[("Retry-After", retry.to_string())]),
                    );
                    return;
                }
                if let Some(digest) = &mut self.digest {
                    let verdict = authorization
                        .as_deref()
                        .map(|value| digest.verify(now, "INVITE", value));
                    match verdict {
                        Some(Verdict::Ok { user }) => {
                            tracing::debug!(%call, user, "caller authenticated")
                        }
                        other => {
                            if let Some(Verdict::Invalid(why)) = &other {
                                tracing::info!(%call, %why, "caller's credentials refused");
                            }
                            let stale = matches!(other, Some(Verdict::Stale));
                            let headers: Vec<(&str, String)> = digest
                                .challenge(now, stale)
                                .into_iter()
                                .map(|c| ("WWW-Authenticate", c))
                                .collect();
                            checked(self.ua.reject(now, call, 401, &headers));
                            return;
                        }
                    }
                }
                let Some(offer) = offer else {
                    // Late offer (RFC 3264 with the offer in the 2xx) is not served; see
                    // docs/sip.md.
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    checked(self.ua.reject(
                        now,
                        call,
                        488,
                        &[(
                            "Warning",
                            "399 hotline \"an SDP offer is required in the INVITE\"".to_owned(),
                        )],
                    ));
                    return;
                };
                let socket = match self.rtp_ports.bind(self.public, source).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(%call, error = %e, "no RTP port free");
                        checked(
                            self.ua
                                .reject(now, call, 503, &[("Retry-After", "5".to_owned())]),
                        );
                        return;
                    }
                };
                let local = match socket.local_addr() {
                    Ok(a) => SocketAddr::new(self.public, a.port()),
                    Err(_) => return checked(self.ua.reject(now, call, 500, &[])),
                };
                let offer_text = String::from_utf8_lossy(&offer);
                let mut version = SessionVersion::new(super::rng().random::<u32>().into());
                let (negotiated, answer) = match sdp::answer(&offer_text, local, &mut version) {
                    Ok(pair) => pair,
                    Err(e) => {
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%call, error = %e, "call refused: offer not usable");
                        let warning = match e {
                            OfferError::NoCommonCodec | OfferError::NoAudio => {
                                "305 hotline \"PCMU or PCMA audio is required\""
                            }
                            OfferError::Malformed(_) => "399 hotline \"malformed SDP\"",
                        };
                        checked(
                            self.ua
                                .reject(now, call, 488, &[("Warning", warning.to_owned())]),
                        );
                        return;
                    }
                };
                // Room was checked above; this only counts the call.
                let _ = self.policy.call_started();
                self.stats.active.fetch_add(1, Ordering::Relaxed);
                let (events_tx, events_rx) = mpsc::channel(256);
                self.calls.insert(
                    call,
                    CallSlot {
                        events: events_tx,
                        local,
                        version,
                    },
                );
                let setup = CallSetup {
                    call,
                    call_id,
                    caller: from.uri.user.clone().unwrap_or_default(),
                    called: request_uri
                        .user
                        .clone()
                        .or_else(|| to.uri.user.clone())
                        .unwrap_or_default(),
                    locale_hint: accept_language
                        .as_deref()
                        .map(locale_hint)
                        .unwrap_or_default(),
                    media: negotiated,
                    answer: answer.into_bytes(),
                    socket,
                    channel: self.channel.clone(),
                    operator: self.operator.clone(),
                    stats: Arc::clone(&self.stats),
                    answer_at: Instant::now() + self.ring,
                };
                checked(self.ua.ring(now, call));
                call::spawn(setup, events_rx, self.command_tx.clone());
            }
            UaEvent::Established { call, .. } => self.to_call(call, CallEvent::Established).await,
            UaEvent::Cancelled { call } => self.end_call(call, "cancelled").await,
            UaEvent::Ended { call, reason } => {
                let why = match reason {
                    EndReason::RemoteBye => "caller hung up",
                    EndReason::LocalBye => "hung up",
                    EndReason::NoAck => "no ACK",
                    EndReason::Timeout => "no answer to a request",
                    EndReason::Failed(_) => "failed",
                    EndReason::TransportError => "transport error",
                };
                self.end_call(call, why).await;
            }
            UaEvent::Reoffer { call, offer } => {
                let Some(offer) = offer else {
                    return checked(self.ua.reject_reoffer(now, call, 488));
                };
                let Some(slot) = self.calls.get_mut(&call) else {
                    return checked(self.ua.reject_reoffer(now, call, 481));
                };
                // The RTP port stays; the far end's address, codec or direction may change.
                let offer_text = String::from_utf8_lossy(&offer);
                match sdp::answer(&offer_text, slot.local, &mut slot.version) {
                    Ok((negotiated, answer)) => {
                        checked(self.ua.answer_reoffer(now, call, answer.into_bytes()));
                        self.to_call(call, CallEvent::Media(negotiated)).await;
                    }
                    Err(e) => {
                        tracing::info!(%call, error = %e, "re-INVITE offer not usable");
                        checked(self.ua.reject_reoffer(now, call, 488));
                    }
                }
            }
            UaEvent::Dtmf {
                call,
                key,
                duration_ms,
            } => {
                self.to_call(call, CallEvent::Dtmf { key, duration_ms })
                    .await
            }
            UaEvent::TransferAccepted { call } => {
                tracing::info!(%call, "transfer accepted by the caller's side");
            }
            UaEvent::TransferProgress { call, status } => {
                tracing::info!(%call, status, "transfer progress");
                if (200..300).contains(&status) {
                    self.stats.transfers.fetch_add(1, Ordering::Relaxed);
                    checked(self.ua.hangup(now, call));
                }
            }
            UaEvent::TransferFailed { call, status } => {
                tracing::info!(%call, status, "transfer by REFER failed");
                self.to_call(call, CallEvent::TransferFailed { status })
                    .await;
            }
            UaEvent::Progress { .. } | UaEvent::Answered { .. } | UaEvent::ReofferAnswer { .. } => {
                // Outbound legs (the bridged transfer) are driven by their call task.
            }
        }
    }

    async fn to_call(&mut self, call: CallRef, event: CallEvent) {
        if let Some(slot) = self.calls.get(&call) {
            if slot.events.send(event).await.is_err() {
                self.calls.remove(&call);
            }
        }
    }

    async fn end_call(&mut self, call: CallRef, why: &'static str) {
        if let Some(slot) = self.calls.remove(&call) {
            tracing::info!(%call, why, "call ended");
            let _ = slot.events.send(CallEvent::Ended { why }).await;
            self.policy.call_ended();
            self.stats.active.fetch_sub(1, Ordering::Relaxed);
        }
        // A caller gone ends the leg to the operator too.
        let legs: Vec<CallRef> = self
            .bridges
            .iter()
            .filter(|(_, b)| b.caller == call)
            .map(|(leg, _)| *leg)
            .collect();
        for leg in legs {
            checked(self.ua.hangup(Instant::now(), leg));
        }
    }

    /// An event of a leg placed to the operator.
    async fn on_bridge_event(&mut self, leg: CallRef, event: UaEvent) {
        let Some(bridge) = self.bridges.get_mut(&leg) else {
            return;
        };
        let caller = bridge.caller;
        match event {
            UaEvent::Answered { answer, .. } => {
                let text = answer
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                match (sdp::accept_answer(&text), bridge.socket.take()) {
                    (Ok(media), Some(socket)) => {
                        tracing::info!(%caller, %leg, "the operator answered; bridging");
                        self.stats.transfers.fetch_add(1, Ordering::Relaxed);
                        self.to_call(caller, CallEvent::Bridged { media, socket }).await;
                    }
                    (Err(e), _) => {
                        tracing::warn!(%caller, %leg, error = %e, "the operator's answer is not usable");
                        checked(self.ua.hangup(Instant::now(), leg));
                    }
                    (Ok(_), None) => {}
                }
            }
            UaEvent::Ended { reason, .. } => {
                self.bridges.remove(&leg);
                tracing::info!(%caller, %leg, ?reason, "the operator's leg ended");
                self.to_call(caller, CallEvent::BridgeEnded).await;
            }
            UaEvent::Cancelled { .. } => {
                self.bridges.remove(&leg);
                self.to_call(caller, CallEvent::BridgeEnded).await;
            }
            _ => {}
        }
    }

    /// Places a call to the operator for `caller`, to be bridged when answered.
    async fn place_bridge(&mut self, caller: CallRef, target: &str) -> anyhow::Result<()> {
        let uri = Uri::parse(target).map_err(|e| anyhow::anyhow!("{target}: {e}"))?;
        let (host, port) = uri.host_port();
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let dest = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| anyhow::anyhow!("{target}: name lookup timed out"))??
        .next()
        .with_context(|| format!("{target}: no address"))?;
        let socket = self.rtp_ports.bind(self.public, dest).await?;
        let local = SocketAddr::new(self.public, socket.local_addr()?.port());
        let mut version = SessionVersion::new(super::rng().random::<u32>().into());
        let offer = sdp::offer(local, &mut version);
        let from = crate::sip::header::NameAddr::new(self.ua_contact.clone());
        let leg = self.ua.invite(
            Instant::now(),
            uri,
            from,
            dest,
            Transport::Udp,
            offer.into_bytes(),
            &[],
        );
        tracing::info!(%caller, %leg, target, "calling the operator to bridge the caller");
        self.bridges.insert(
            leg,
            Bridge {
                caller,
                socket: Some(socket),
            },
        );
        Ok(())
    }

    async fn on_command(&mut self, call: CallRef, command: CallCommand) {
        let now = Instant::now();
        match command {
            CallCommand::Answer(sdp) => {
                self.stats.calls.fetch_add(1, Ordering::Relaxed);
                checked(self.ua.answer(now, call, sdp));
            }
            CallCommand::Reject(status) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                let headers: Vec<(&str, String)> = if status == 503 {
                    vec![("Retry-After", "10".to_owned())]
                } else {
                    Vec::new()
                };
                checked(self.ua.reject(now, call, status, &headers));
                if let Some(_slot) = self.calls.remove(&call) {
                    self.policy.call_ended();
                    self.stats.active.fetch_sub(1, Ordering::Relaxed);
                }
            }
            CallCommand::Hangup => checked(self.ua.hangup(now, call)),
            CallCommand::Bridge(target) => {
                if let Err(e) = self.place_bridge(call, &target).await {
                    tracing::warn!(%call, error = %e, "cannot call the operator");
                    self.to_call(call, CallEvent::BridgeEnded).await;
                }
            }
            CallCommand::Transfer(target) => match Uri::parse(&target) {
                Ok(uri) => checked(self.ua.transfer(now, call, &uri)),
                Err(e) => {
                    tracing::warn!(%call, target, error = %e, "transfer target is not a SIP URI");
                    checked(self.ua.hangup(now, call));
                }
            },
        }
    }
}

/// The assistant's locale hint from an `Accept-Language` value: the first language, by
/// q-value, that the hotline speaks ("mn" or "en"); empty when none.
pub fn locale_hint(accept_language: &str) -> String {
    let mut ranked: Vec<(f32, usize, String)> = accept_language
        .split(',')
        .enumerate()
        .filter_map(|(i, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next()?.to_owned();
            (q > 0.0).then_some((q, i, primary))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked
        .into_iter()
        .map(|(_, _, lang)| lang)
        .find(|lang| lang == "mn" || lang == "en")
        .unwrap_or_default()
}

/// Logs what the user agent core refused (a command for a call that has just ended, mostly).
fn checked(result: Result<(), UaError>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "SIP action not taken");
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Reader and writer tasks of one TCP connection.
fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    mut outbound: mpsc::Receiver<Vec<u8>>,
    inbound: mpsc::Sender<Inbound>,
) {
    let (mut reader, mut writer) = stream.into_split();
    tokio::spawn(async move {
        while let Some(bytes) = outbound.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 16 * 1024];
        'conn: loop {
            let n = match tokio::time::timeout(TCP_IDLE, reader.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            loop {
                match message::frame(&buf) {
                    Ok(Some(frame)) => {
                        let end = frame.skip + frame.len;
                        let bytes = buf[frame.skip..end].to_vec();
                        buf.drain(..end);
                        if !bytes.is_empty()
                            && inbound.send(Inbound::Message(bytes, peer)).await.is_err()
                        {
                            break 'conn;
                        }
                    }
                    Ok(None) => {
                        if buf.len() > MAX_MESSAGE {
                            tracing::info!(%peer, "SIP TCP message too large; connection closed");
                            break 'conn;
                        }
                        break;
                    }
                    Err(e) => {
                        // A stream that cannot be framed cannot be resynchronised (RFC 3261
                        // 18.3): answer if possible, then close.
                        tracing::info!(%peer, error = %e, "SIP TCP framing error; connection closed");
                        let bytes = std::mem::take(&mut buf);
                        let _ = inbound.send(Inbound::Message(bytes, peer)).await;
                        break 'conn;
                    }
                }
            }
        }
        let _ = inbound.send(Inbound::Closed(peer)).await;
    });
}

/// Hands out RTP ports from the configured range, round robin, even ports only.
#[derive(Debug)]
struct PortCursor {
    range: std::ops::RangeInclusive<u16>,
    next: u16,
}

impl PortCursor {
    fn new(range: std::ops::RangeInclusive<u16>) -> Self {
        let start = *range.start() + (*range.start() % 2);
        PortCursor { range, next: start }
    }

    /// Binds the next free even port on `ip` (the wildcard address when `ip` is not local).
    async fn bind(&mut self, ip: IpAddr, _peer: SocketAddr) -> std::io::Result<UdpSocket> {
        let first = *self.range.start() + (*self.range.start() % 2);
        let span = (*self.range.end() - first) / 2 + 1;
        let mut last_err = None;
        for _ in 0..span.min(512) {
            let port = self.next;
            self.next = if port.saturating_add(2) > *self.range.end() {
                first
            } else {
                port + 2
            };
            match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                    // `ip` is a public address we are NATed behind: listen everywhere.
                    match UdpSocket::bind(SocketAddr::new(unspecified(ip), port)).await {
                        Ok(s) => return Ok(s),
                        Err(e) => last_err = Some(e),
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("empty RTP port range")))
    }
}

fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::from([0, 0, 0, 0]),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}
