//! The SIP transaction layer (RFC 3261 §17, with RFC 6026's Accepted state), sans-IO.
//!
//! [`TransactionLayer`] owns every client and server transaction. It reads no clock and
//! opens no socket: each input carries `now`, and the effects come out of
//! [`TransactionLayer::poll_transmit`] (messages to send) and
//! [`TransactionLayer::poll_event`] (what the transaction user must know). After each input
//! drain both, then call [`TransactionLayer::handle_timeout`] at
//! [`TransactionLayer::poll_timeout`].
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use ivr::sip::transaction::{TransactionLayer, Timers, TxEvent, Transport};
//! # fn drive(now: Instant, datagram: &[u8], from: std::net::SocketAddr) {
//! let mut layer = TransactionLayer::new(Timers::default());
//! if let Ok(msg) = ivr::sip::message::parse(datagram) {
//!     layer.receive(now, msg, from, Transport::Udp);
//! }
//! while let Some(_transmit) = layer.poll_transmit() { /* send it */ }
//! while let Some(_event) = layer.poll_event() { /* hand it to the user agent */ }
//! let _wake_at: Option<Instant> = layer.poll_timeout();
//! # }
//! ```
//!
//! Timers (T1 = 500 ms, T2 = 4 s, T4 = 5 s by default): A (INVITE retransmit, doubling),
//! B (INVITE timeout, 64·T1), D (wait for final retransmissions, 32 s), E (non-INVITE
//! retransmit, doubling to T2), F (non-INVITE timeout, 64·T1), G (non-2xx final retransmit,
//! doubling to T2), H (wait for ACK, 64·T1), I (absorb ACKs, T4), J (absorb non-INVITE
//! retransmissions, 64·T1), K (absorb response retransmissions, T4), L and M (RFC 6026
//! Accepted, 64·T1). On a reliable transport A, E and G never fire and D, I, J, K are zero.
//!
//! Server side: an INVITE the user has not answered within 200 ms gets a `100 Trying`
//! (§17.2.1). A 2xx to an INVITE moves the transaction to Accepted; the layer retransmits
//! that 2xx (T1 doubling, capped at T2) until an ACK for it arrives and reports
//! [`TxEvent::NoAck`] if none has by Timer L. The ACK of a 2xx is its own transaction
//! (new branch), so it is matched to the Accepted INVITE by Call-ID, CSeq number and From
//! tag, and always handed to the user as [`TxEvent::Ack`]. Responses go back to the address
//! the request came from (RFC 3581 symmetric response routing); the layer adds `received`
//! to the top Via when its host is not the source address and fills in `rport` when the
//! client asked for it (§18.2.1).
//!
//! Client side: the user puts a top Via with a unique `z9hG4bK` branch on each request it
//! sends. The ACK for a non-2xx final is built and sent by the INVITE client transaction
//! (§17.1.1.3); the ACK for a 2xx is the user's ([`TransactionLayer::send_ack`]), and the
//! layer resends it when the 2xx is retransmitted.
//!
//! Deviations: on a reliable transport the 2xx is not retransmitted (the transport does not
//! lose it; RFC 3261 §13.3.1.4 retransmits it anyway); the INVITE server transaction
//! absorbs INVITE retransmissions in Accepted, as RFC 6026 says. Requests without an RFC
//! 3261 branch are matched the RFC 2543 way (§17.2.3) by Request-URI, From tag, Call-ID,
//! CSeq number and top Via, ignoring the To tag. A stray response (no transaction) is
//! dropped. Merged requests (§8.2.2.2) are not detected.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sip::message::{Message, Method, Request, Response, TypedHeaders};

/// The transport a message came in on or goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, the layer retransmits.
    Udp,
    /// TCP: reliable, no retransmissions.
    Tcp,
}

impl Transport {
    /// Whether the transport delivers reliably (no retransmissions needed).
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }
}

/// Timer base values (RFC 3261 §17.1.1.1, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub dest: SocketAddr,
    /// Over which transport.
    pub transport: Transport,
    /// What.
    pub message: Message,
}

/// Identifies a server transaction (a request we received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerTxId(u64);

/// Identifies a client transaction (a request we sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientTxId(u64);

/// What the transaction user (the user agent core) must handle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxEvent {
    /// A new request (any method but ACK); answer it with [`TransactionLayer::respond`].
    Request {
        /// Its transaction.
        id: ServerTxId,
        /// The request, top Via already stamped with `received`/`rport`.
        request: Request,
        /// Where it came from (and where responses go).
        source: SocketAddr,
        /// The transport it came on.
        transport: Transport,
    },
    /// An ACK for a 2xx (matched to an Accepted INVITE or not): for the dialog.
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        source: SocketAddr,
        /// The transport it came on.
        transport: Transport,
    },
    /// A response to one of our requests; each provisional and final response once.
    Response {
        /// The client transaction.
        id: ClientTxId,
        /// The response.
        response: Response,
    },
    /// Timer B or F: no final response came.
    Timeout {
        /// The client transaction.
        id: ClientTxId,
    },
    /// No ACK came for a final response to an INVITE (Timer H for non-2xx, L for 2xx).
    NoAck {
        /// The server transaction.
        id: ServerTxId,
    },
}

/// All transactions of one SIP endpoint.
#[derive(Debug)]
pub struct TransactionLayer {
    timers: Timers,
    next_id: u64,
    servers: HashMap<ServerTxId, ServerTx>,
    server_keys: HashMap<String, ServerTxId>,
    /// Accepted INVITE server transactions by [`ack_key`], to match the ACK of the 2xx.
    accepted: HashMap<String, ServerTxId>,
    clients: HashMap<ClientTxId, ClientTx>,
    client_keys: HashMap<String, ClientTxId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerTimer {
    Trying100,
    G,
    H,
    I,
    J,
    L,
    Retransmit2xx,
}

#[derive(Debug)]
struct ServerTx {
    key: String,
    invite: bool,
    request: Request,
    source: SocketAddr,
    transport: Transport,
    state: ServerState,
    last_response: Option<Response>,
    timers: Vec<(Instant, ServerTimer)>,
    interval: Duration,
    acked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientTimer {
    A,
    B,
    D,
    E,
    F,
    K,
    M,
}

#[derive(Debug)]
struct ClientTx {
    key: String,
    invite: bool,
    request: Request,
    dest: SocketAddr,
    transport: Transport,
    state: ClientState,
    timers: Vec<(Instant, ClientTimer)>,
    interval: Duration,
    /// The ACK sent for the final response, resent on its retransmissions.
    ack: Option<Request>,
    /// (status, To tag) of the responses already passed up.
    seen: Vec<(u16, Option<String>)>,
}

/// Longest `seen` list kept per client transaction (forked provisional responses).
const MAX_SEEN: usize = 32;

impl TransactionLayer {
    /// An empty layer.
    pub fn new(timers: Timers) -> Self {
        TransactionLayer {
            timers,
            next_id: 0,
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            accepted: HashMap::new(),
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A message from the network (already parsed).
    pub fn receive(
        &mut self,
        now: Instant,
        message: Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        match message {
            Message::Request(r) => self.receive_request(now, r, source, transport),
            Message::Response(r) => self.receive_response(now, r),
        }
    }

    /// Sends a response (100..=699) in server transaction `id`. Responses the state does not
    /// allow (a second final, a provisional after the final) are dropped.
    pub fn respond(&mut self, now: Instant, id: ServerTxId, response: Response) {
        let (t1, t2) = (self.timers.t1, self.timers.t2);
        let Some(tx) = self.servers.get_mut(&id) else {
            tracing::debug!(?id, "response for a finished server transaction dropped");
            return;
        };
        let status = response.status;
        let reliable = tx.transport.reliable();
        let allowed = match tx.state {
            ServerState::Trying | ServerState::Proceeding => true,
            ServerState::Accepted => (200..300).contains(&status),
            ServerState::Completed | ServerState::Confirmed => false,
        };
        if !allowed {
            tracing::debug!(
                ?id,
                status,
                "response not allowed in this transaction state"
            );
            return;
        }
        self.transmits.push_back(Transmit {
            dest: tx.source,
            transport: tx.transport,
            message: Message::Response(response.clone()),
        });
        tx.last_response = Some(response);
        tx.timers.retain(|(_, t)| *t != ServerTimer::Trying100);
        let final_at = now + 64 * t1;
        if status < 200 {
            tx.state = ServerState::Proceeding;
        } else if !tx.invite {
            tx.state = ServerState::Completed;
            if reliable {
                self.terminate_server(id);
            } else {
                tx.timers.push((final_at, ServerTimer::J));
            }
        } else if status < 300 {
            if tx.state != ServerState::Accepted {
                tx.state = ServerState::Accepted;
                tx.timers.push((final_at, ServerTimer::L));
                if let Some(key) = ack_key(&tx.request) {
                    self.accepted.insert(key, id);
                }
            }
            tx.timers.retain(|(_, t)| *t != ServerTimer::Retransmit2xx);
            if !reliable && !tx.acked {
                tx.interval = t1;
                tx.timers.push((now + t1, ServerTimer::Retransmit2xx));
            }
        } else {
            tx.state = ServerState::Completed;
            tx.timers.push((final_at, ServerTimer::H));
            if !reliable {
                tx.interval = t1;
                tx.timers.push((now + t1.min(t2), ServerTimer::G));
            }
        }
    }

    /// Sends a request in a new client transaction. The request must carry a top Via with a
    /// unique `z9hG4bK` branch; responses are matched by it. An ACK is sent as by
    /// [`TransactionLayer::send_ack`] and gets an id of no transaction.
    pub fn request(
        &mut self,
        now: Instant,
        request: Request,
        dest: SocketAddr,
        transport: Transport,
    ) -> ClientTxId {
        let id = ClientTxId(self.fresh_id());
        if request.method == Method::Ack {
            self.send_ack(request, dest, transport);
            return id;
        }
        let invite = request.method == Method::Invite;
        let key = client_key(&request.branch(), &request.method);
        let t1 = self.timers.t1;
        let mut timers = vec![(
            now + 64 * t1,
            if invite {
                ClientTimer::B
            } else {
                ClientTimer::F
            },
        )];
        if !transport.reliable() {
            timers.push((
                now + t1,
                if invite {
                    ClientTimer::A
                } else {
                    ClientTimer::E
                },
            ));
        }
        self.transmits.push_back(Transmit {
            dest,
            transport,
            message: Message::Request(request.clone()),
        });
        if let Some(key) = &key {
            self.client_keys.insert(key.clone(), id);
        }
        self.clients.insert(
            id,
            ClientTx {
                key: key.unwrap_or_default(),
                invite,
                request,
                dest,
                transport,
                state: if invite {
                    ClientState::Calling
                } else {
                    ClientState::Trying
                },
                timers,
                interval: t1,
                ack: None,
                seen: Vec::new(),
            },
        );
        id
    }

    /// Sends the ACK for a 2xx (RFC 3261 §13.2.2.4): no transaction of its own, but the
    /// Accepted INVITE client transaction it belongs to resends it when the 2xx comes again.
    pub fn send_ack(&mut self, ack: Request, dest: SocketAddr, transport: Transport) {
        if let Some(key) = ack_key(&ack) {
            let tx = self.clients.values_mut().find(|tx| {
                tx.invite
                    && tx.state == ClientState::Accepted
                    && ack_key(&tx.request).as_ref() == Some(&key)
            });
            if let Some(tx) = tx {
                tx.ack = Some(ack.clone());
            }
        }
        self.transmits.push_back(Transmit {
            dest,
            transport,
            message: Message::Request(ack),
        });
    }

    /// The INVITE server transaction a CANCEL cancels (§9.2: same matching as §17.2.3, with
    /// the method taken as INVITE).
    pub fn find_invite(&self, cancel: &Request) -> Option<ServerTxId> {
        let key = server_key(cancel, &Method::Invite)?;
        let id = *self.server_keys.get(&key)?;
        self.servers.get(&id).filter(|tx| tx.invite).map(|_| id)
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let s = self
            .servers
            .values()
            .flat_map(|tx| tx.timers.iter().map(|(at, _)| *at));
        let c = self
            .clients
            .values()
            .flat_map(|tx| tx.timers.iter().map(|(at, _)| *at));
        s.chain(c).min()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due_servers: Vec<ServerTxId> = self
            .servers
            .iter()
            .filter(|(_, tx)| tx.timers.iter().any(|(at, _)| *at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due_servers {
            self.fire_server(now, id);
        }
        let due_clients: Vec<ClientTxId> = self
            .clients
            .iter()
            .filter(|(_, tx)| tx.timers.iter().any(|(at, _)| *at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due_clients {
            self.fire_client(now, id);
        }
    }

    /// Live transactions, client and server.
    pub fn len(&self) -> usize {
        self.servers.len() + self.clients.len()
    }

    /// Whether there are no live transactions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn receive_request(
        &mut self,
        now: Instant,
        mut request: Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        stamp_via(&mut request, source);
        let is_ack = request.method == Method::Ack;
        let method = if is_ack {
            Method::Invite
        } else {
            request.method.clone()
        };
        let Some(key) = server_key(&request, &method) else {
            tracing::debug!("request without a usable top Via dropped");
            return;
        };
        if let Some(&id) = self.server_keys.get(&key) {
            self.retransmission(now, id, request, source, transport);
            return;
        }
        if is_ack {
            // The ACK of a 2xx: a transaction of its own, matched to the dialog's INVITE.
            if let Some(id) = ack_key(&request).and_then(|k| self.accepted.get(&k).copied()) {
                if let Some(tx) = self.servers.get_mut(&id) {
                    tx.acked = true;
                    tx.timers.retain(|(_, t)| *t != ServerTimer::Retransmit2xx);
                }
            }
            self.events.push_back(TxEvent::Ack {
                request,
                source,
                transport,
            });
            return;
        }
        let id = ServerTxId(self.fresh_id());
        let invite = request.method == Method::Invite;
        let timers = if invite {
            vec![(now + Duration::from_millis(200), ServerTimer::Trying100)]
        } else {
            Vec::new()
        };
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerTx {
                key,
                invite,
                request: request.clone(),
                source,
                transport,
                state: if invite {
                    ServerState::Proceeding
                } else {
                    ServerState::Trying
                },
                last_response: None,
                timers,
                interval: self.timers.t1,
                acked: false,
            },
        );
        self.events.push_back(TxEvent::Request {
            id,
            request,
            source,
            transport,
        });
    }

    /// A request matching server transaction `id`: a retransmission, or the ACK of its
    /// final response.
    fn retransmission(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        let t4 = self.timers.t4;
        let Some(tx) = self.servers.get_mut(&id) else {
            return;
        };
        if request.method == Method::Ack {
            match tx.state {
                ServerState::Completed => {
                    tx.state = ServerState::Confirmed;
                    tx.timers
                        .retain(|(_, t)| !matches!(t, ServerTimer::G | ServerTimer::H));
                    if tx.transport.reliable() {
                        self.terminate_server(id);
                    } else {
                        tx.timers.push((now + t4, ServerTimer::I));
                    }
                }
                ServerState::Accepted | ServerState::Proceeding => {
                    // The ACK of a 2xx that reused the INVITE's branch.
                    tx.acked = true;
                    tx.timers.retain(|(_, t)| *t != ServerTimer::Retransmit2xx);
                    self.events.push_back(TxEvent::Ack {
                        request,
                        source,
                        transport,
                    });
                }
                ServerState::Confirmed | ServerState::Trying => {}
            }
            return;
        }
        match tx.state {
            ServerState::Proceeding | ServerState::Completed => {
                if let Some(resp) = &tx.last_response {
                    self.transmits.push_back(Transmit {
                        dest: tx.source,
                        transport: tx.transport,
                        message: Message::Response(resp.clone()),
                    });
                }
            }
            ServerState::Trying | ServerState::Confirmed | ServerState::Accepted => {}
        }
    }

    fn receive_response(&mut self, now: Instant, response: Response) {
        let Ok(cseq) = response.cseq() else {
            return;
        };
        let branch = response
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned));
        let Some(id) =
            client_key(&branch, &cseq.method).and_then(|k| self.client_keys.get(&k).copied())
        else {
            tracing::debug!(
                status = response.status,
                "response without a client transaction dropped"
            );
            return;
        };
        let timers = self.timers;
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        let status = response.status;
        let to_tag = response.to().ok().and_then(|t| t.tag().map(str::to_owned));
        let seen_key = (status, to_tag);
        let first_time = !tx.seen.contains(&seen_key);
        if first_time && tx.seen.len() < MAX_SEEN {
            tx.seen.push(seen_key);
        }
        let reliable = tx.transport.reliable();
        let pass_up = match (tx.invite, tx.state, status) {
            (
                _,
                ClientState::Calling | ClientState::Trying | ClientState::Proceeding,
                100..=199,
            ) => {
                // Timers A and B only run in Calling (§17.1.1.2); E and F go on.
                tx.timers
                    .retain(|(_, t)| !matches!(t, ClientTimer::A | ClientTimer::B));
                if tx.state == ClientState::Trying {
                    // Timer E now fires every T2 (§17.1.2.2).
                    tx.interval = timers.t2;
                }
                tx.state = ClientState::Proceeding;
                first_time
            }
            (true, ClientState::Calling | ClientState::Proceeding, 200..=299) => {
                tx.state = ClientState::Accepted;
                tx.timers.clear();
                tx.timers.push((now + 64 * timers.t1, ClientTimer::M));
                true
            }
            (true, ClientState::Calling | ClientState::Proceeding, _) => {
                let ack = ack_for_non_2xx(&tx.request, &response);
                self.transmits.push_back(Transmit {
                    dest: tx.dest,
                    transport: tx.transport,
                    message: Message::Request(ack.clone()),
                });
                tx.ack = Some(ack);
                tx.state = ClientState::Completed;
                tx.timers.clear();
                if reliable {
                    self.terminate_client(id);
                } else {
                    tx.timers.push((
                        now + Duration::from_secs(32).max(64 * timers.t1),
                        ClientTimer::D,
                    ));
                }
                true
            }
            (false, ClientState::Trying | ClientState::Proceeding, _) => {
                tx.state = ClientState::Completed;
                tx.timers.clear();
                if reliable {
                    self.terminate_client(id);
                } else {
                    tx.timers.push((now + timers.t4, ClientTimer::K));
                }
                true
            }
            (true, ClientState::Accepted, 200..=299) if first_time => true,
            (true, ClientState::Accepted | ClientState::Completed, 200..=699) => {
                // A retransmitted final: send the ACK again.
                if let Some(ack) = &tx.ack {
                    self.transmits.push_back(Transmit {
                        dest: tx.dest,
                        transport: tx.transport,
                        message: Message::Request(ack.clone()),
                    });
                }
                false
            }
            _ => false,
        };
        if pass_up {
            self.events.push_back(TxEvent::Response { id, response });
        }
    }

    fn fire_server(&mut self, now: Instant, id: ServerTxId) {
        let t2 = self.timers.t2;
        let Some(tx) = self.servers.get_mut(&id) else {
            return;
        };
        let (due, keep): (Vec<_>, Vec<_>) = tx.timers.drain(..).partition(|(at, _)| *at <= now);
        tx.timers = keep;
        for (_, timer) in due {
            match timer {
                ServerTimer::Trying100 => {
                    if tx.last_response.is_none() {
                        let trying = Response::for_request(&tx.request, 100);
                        self.transmits.push_back(Transmit {
                            dest: tx.source,
                            transport: tx.transport,
                            message: Message::Response(trying.clone()),
                        });
                        tx.last_response = Some(trying);
                    }
                }
                ServerTimer::G | ServerTimer::Retransmit2xx => {
                    if let Some(resp) = &tx.last_response {
                        self.transmits.push_back(Transmit {
                            dest: tx.source,
                            transport: tx.transport,
                            message: Message::Response(resp.clone()),
                        });
                    }
                    tx.interval = (tx.interval * 2).min(t2);
                    tx.timers.push((now + tx.interval, timer));
                }
                ServerTimer::H | ServerTimer::L => {
                    if timer == ServerTimer::H || !tx.acked {
                        self.events.push_back(TxEvent::NoAck { id });
                    }
                    self.terminate_server(id);
                    return;
                }
                ServerTimer::I | ServerTimer::J => {
                    self.terminate_server(id);
                    return;
                }
            }
        }
    }

    fn fire_client(&mut self, now: Instant, id: ClientTxId) {
        let t2 = self.timers.t2;
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        let (due, keep): (Vec<_>, Vec<_>) = tx.timers.drain(..).partition(|(at, _)| *at <= now);
        tx.timers = keep;
        for (_, timer) in due {
            match timer {
                ClientTimer::A | ClientTimer::E => {
                    self.transmits.push_back(Transmit {
                        dest: tx.dest,
                        transport: tx.transport,
                        message: Message::Request(tx.request.clone()),
                    });
                    tx.interval = match (timer, tx.state) {
                        (ClientTimer::A, _) => tx.interval * 2,
                        (_, ClientState::Proceeding) => t2,
                        _ => (tx.interval * 2).min(t2),
                    };
                    tx.timers.push((now + tx.interval, timer));
                }
                ClientTimer::B | ClientTimer::F => {
                    self.events.push_back(TxEvent::Timeout { id });
                    self.terminate_client(id);
                    return;
                }
                ClientTimer::D | ClientTimer::K | ClientTimer::M => {
                    self.terminate_client(id);
                    return;
                }
            }
        }
    }

    fn terminate_server(&mut self, id: ServerTxId) {
        if let Some(tx) = self.servers.remove(&id) {
            self.server_keys.remove(&tx.key);
            if let Some(key) = ack_key(&tx.request) {
                if self.accepted.get(&key) == Some(&id) {
                    self.accepted.remove(&key);
                }
            }
        }
    }

    fn terminate_client(&mut self, id: ClientTxId) {
        if let Some(tx) = self.clients.remove(&id) {
            if self.client_keys.get(&tx.key) == Some(&id) {
                self.client_keys.remove(&tx.key);
            }
        }
    }
}

const MAGIC_COOKIE: &str = "z9hG4bK";

/// §17.2.3 server matching key for `request` taken as `method` (ACK and CANCEL look up
/// their INVITE with `Method::Invite`).
fn server_key(request: &Request, method: &Method) -> Option<String> {
    let via = request.top_via().ok()?;
    let sent_by = format!("{}:{}", via.host, via.port.unwrap_or(0));
    match via.branch() {
        Some(b) if b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len() => {
            Some(format!("3261\0{b}\0{sent_by}\0{method}"))
        }
        _ => {
            // RFC 2543 matching (§17.2.3): no usable branch.
            let from_tag = request
                .from()
                .ok()?
                .tag()
                .map(str::to_owned)
                .unwrap_or_default();
            let cseq = request.cseq().ok()?.seq;
            let call_id = request.call_id().ok()?;
            Some(format!(
                "2543\0{}\0{from_tag}\0{call_id}\0{cseq}\0{via}\0{method}",
                request.uri
            ))
        }
    }
}

/// §17.1.3 client matching key: branch and CSeq method.
fn client_key(branch: &Option<String>, method: &Method) -> Option<String> {
    branch.as_ref().map(|b| format!("{b}\0{method}"))
}

/// Call-ID, CSeq number and From tag: what an INVITE and the ACK of its 2xx share.
fn ack_key(request: &Request) -> Option<String> {
    let from = request.from().ok()?;
    Some(format!(
        "{}\0{}\0{}",
        request.call_id().ok()?,
        request.cseq().ok()?.seq,
        from.tag().unwrap_or("")
    ))
}

/// Adds `received` (and the `rport` value) to the top Via (§18.2.1, RFC 3581 §4).
fn stamp_via(request: &mut Request, source: SocketAddr) {
    let Ok(mut via) = request.top_via() else {
        return;
    };
    let ip = source.ip().to_string();
    let host = via.host.trim_start_matches('[').trim_end_matches(']');
    let wants_rport = via.rport().is_some();
    if host != ip || wants_rport {
        via.params.set("received", Some(ip));
    }
    if wants_rport {
        via.params.set("rport", Some(source.port().to_string()));
    }
    request.headers.set_top_via(&via);
}

/// The ACK for a non-2xx final response (§17.1.1.3).
fn ack_for_non_2xx(invite: &Request, response: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(via) = invite.headers.get_all("Via").next() {
        ack.headers.push("Via", via);
    }
    for route in invite.headers.get_lines("Route") {
        ack.headers.push("Route", route);
    }
    ack.headers.push("Max-Forwards", "70");
    for name in ["From", "Call-ID"] {
        if let Some(v) = invite.headers.get(name) {
            ack.headers.push(name, v);
        }
    }
    if let Some(to) = response.headers.get("To") {
        ack.headers.push("To", to);
    }
    if let Ok(cseq) = invite.cseq() {
        ack.headers.push("CSeq", format!("{} ACK", cseq.seq));
    }
    ack
}

#[cfg(test)]
mod tests;
