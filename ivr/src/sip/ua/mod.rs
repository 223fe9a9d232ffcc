//! The SIP user agent core: dialogs and calls in both directions, sans-IO.
//!
//! [`Ua`] owns a [`TransactionLayer`] and every dialog. It answers what the hotline does not
//! serve, turns requests into [`UaEvent`]s for the gateway driver, and turns the driver's
//! decisions ([`Ua::answer`], [`Ua::hangup`], [`Ua::transfer`], ...) into requests and
//! responses. It reads no clock, opens no socket and knows nothing of SDP: offers and answers
//! are opaque bodies that the driver negotiates with [`crate::sip::sdp`].
//!
//! # Driving it
//!
//! Feed every parsed message with [`Ua::receive`] and call [`Ua::handle_timeout`] once
//! [`Ua::poll_timeout`] is due; after each input (and after each call of the action methods)
//! drain [`Ua::poll_transmit`] and [`Ua::poll_event`]. Timer values come from
//! [`UaConfig::timers`] (T1 = 500 ms by default).
//!
//! ```ignore
//! ua.receive(now, message, source, Transport::Udp);
//! while let Some(event) = ua.poll_event() {
//!     if let UaEvent::Incoming { call, .. } = event { ua.answer(now, call, answer_sdp)?; }
//! }
//! while let Some(transmit) = ua.poll_transmit() { socket.send_to(..) }
//! let wake_at = ua.poll_timeout();
//! ```
//!
//! Every call the driver learns of (by [`UaEvent::Incoming`] or [`Ua::invite`]) ends with
//! exactly one terminal event, [`UaEvent::Cancelled`] or [`UaEvent::Ended`], including when the
//! driver ends it itself ([`Ua::hangup`] → `Ended(LocalBye)`, [`Ua::reject`] →
//! `Ended(Failed(status))`). After it, the call's handle is dead; the core may keep the dialog
//! a little longer to finish a BYE or CANCEL, then forgets it. The core sets no ring
//! timeout: the driver must answer, reject or hang up every `Incoming` call, and hang up
//! outbound calls that ring too long. Memory is then bounded by the calls the driver admits.
//!
//! # What it implements
//!
//! RFC 3261 §8.2 (request checks: 405, 501, 416, 483, 420, 415, 482), §12 (dialogs: route
//! set, remote target, CSeq; 481 and 500), §13 (INVITE both ways, ACK for 2xx; the
//! transaction layer re-ACKs retransmitted 2xx, a 2xx from another fork is ACKed and ended
//! with BYE), §14 (re-INVITE; 500 with Retry-After while one is pending, 491 while our
//! INVITE is), §15 (BYE, also on early dialogs), §9 (CANCEL both ways; ours only after a
//! provisional response, and given up 64·T1 later), §11 (OPTIONS); RFC 3515 REFER with its
//! implicit subscription (NOTIFY with `message/sipfrag`); RFC 6086 legacy INFO carrying
//! `application/dtmf-relay` or `application/dtmf`.
//!
//! Deviations, all deliberate:
//! - In-dialog requests go to the address the dialog was made with (the source of the
//!   INVITE, or where ours went), not to an address resolved from the route set or remote
//!   target: symmetric signalling works behind NAT and needs no DNS in the core. The
//!   Request-URI and Route headers still follow §12.2.1.1 (strict routers included).
//! - No extension is supported (no 100rel, session timers or Replaces), so every `Require`
//!   is refused with 420 and no `Supported` header is sent. We only transfer others (send
//!   REFER, answer its NOTIFYs); a REFER from the far end is refused with 403.
//! - Redirects (3xx) to our INVITEs and 401/407 challenges to our requests are not followed:
//!   they end the call as `Failed(status)` (or fail the transfer).
//! - Target refresh happens when a re-INVITE is answered with 2xx (§12.2.2), not on failure.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::sip::header::NameAddr;
use crate::sip::message::{Headers, Message, Method, Request, Response, TypedHeaders};
use crate::sip::transaction::{
    ClientTxId, ServerTxId, Timers, TransactionLayer, Transmit, Transport, TxEvent,
};
use crate::sip::uri::{Scheme, Uri};

/// Methods this user agent handles, for `Allow` headers.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY";
/// The languages the hotline speaks, for `Accept-Language` in OPTIONS answers.
const ACCEPT_LANGUAGE: &str = "mn, en";
/// Body types accepted in INFO requests.
const ACCEPT_INFO: &str = "application/dtmf-relay, application/dtmf";
/// Max-Forwards on the requests we originate (RFC 3261 8.1.1.6).
const MAX_FORWARDS: &str = "70";

/// How the user agent presents itself.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Our Contact, e.g. `sip:hotline@192.0.2.10:5060`; its host and port also make the
    /// sent-by of our Via headers and the host part of our Call-IDs.
    pub contact: Uri,
    /// Product token for `User-Agent` and `Server` headers.
    pub user_agent: String,
    /// Transaction timers (T1, T2, T4).
    pub timers: Timers,
}

/// A handle on one call, valid from its first event (or [`Ua::invite`]) to its terminal event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(u64);

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The far end sent BYE.
    RemoteBye,
    /// The driver called [`Ua::hangup`].
    LocalBye,
    /// Our 2xx was never acknowledged (RFC 6026 Timer L); a BYE was sent.
    NoAck,
    /// Our INVITE got no final response (Timer B).
    Timeout,
    /// The INVITE ended with this final status: received for our INVITE, sent by
    /// [`Ua::reject`] for theirs, or received for an in-dialog request (481, 408) that
    /// ended the dialog.
    Failed(u16),
    /// The transport could not reach the far end. Not produced by the core itself (the
    /// transaction layer reports no transport errors); kept for drivers that map a lost TCP
    /// connection onto the calls it carried.
    TransportError,
}

/// What the driver learns from the user agent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one Incoming per call: boxing would buy nothing
pub enum UaEvent {
    /// A new INVITE passed every check; answer it with [`Ua::ring`], [`Ua::answer`] or
    /// [`Ua::reject`].
    Incoming {
        call: CallRef,
        call_id: String,
        from: NameAddr,
        to: NameAddr,
        request_uri: Uri,
        source: SocketAddr,
        transport: Transport,
        /// The SDP offer, or `None` for an offerless INVITE (then [`Ua::answer`]'s body is
        /// our offer and the answer comes in [`UaEvent::Established`]).
        offer: Option<Vec<u8>>,
        /// The `Authorization` header, for the driver's digest check.
        authorization: Option<String>,
        /// The `Accept-Language` header: the languages the caller prefers (RFC 3261 20.3).
        accept_language: Option<String>,
    },
    /// The ACK for our 2xx arrived; `answer` is its body (the SDP answer when the INVITE
    /// had no offer).
    Established {
        call: CallRef,
        answer: Option<Vec<u8>>,
    },
    /// CANCEL before we answered: 200 to the CANCEL and 487 to the INVITE have been sent.
    Cancelled { call: CallRef },
    /// The call is over; its handle is dead.
    Ended { call: CallRef, reason: EndReason },
    /// A re-INVITE (hold, unhold, codec change); answer with [`Ua::answer_reoffer`] or
    /// [`Ua::reject_reoffer`].
    Reoffer {
        call: CallRef,
        offer: Option<Vec<u8>>,
    },
    /// The ACK for our answer to an offerless re-INVITE carried the far end's answer.
    ReofferAnswer { call: CallRef, answer: Vec<u8> },
    /// A key pressed, carried by SIP INFO; `duration_ms` is 0 when the peer did not say.
    Dtmf {
        call: CallRef,
        key: char,
        duration_ms: u32,
    },
    /// Our INVITE got a provisional response (180, 183, ...).
    Progress { call: CallRef, status: u16 },
    /// Our INVITE was answered (the ACK is already sent); `answer` is the 2xx body.
    Answered {
        call: CallRef,
        answer: Option<Vec<u8>>,
    },
    /// The far end accepted our REFER (202).
    TransferAccepted { call: CallRef },
    /// A NOTIFY reported the transfer's progress (1xx), or its success (2xx: hang up now).
    TransferProgress { call: CallRef, status: u16 },
    /// The REFER was refused or timed out (408), or a NOTIFY reported a final failure.
    TransferFailed { call: CallRef, status: u16 },
}

/// A request the driver made that does not fit the call (a bug in the driver, or a race
/// with the far end that the driver may ignore).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UaError {
    /// No live call has this handle (it never existed or has had its terminal event).
    UnknownCall(CallRef),
    /// The call is not in a state where this action applies.
    WrongState { call: CallRef, action: &'static str },
    /// The status code does not fit the action (e.g. `reject` with a 2xx).
    BadStatus(u16),
}

impl fmt::Display for UaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UaError::UnknownCall(call) => write!(f, "{call} is not a live call"),
            UaError::WrongState { call, action } => write!(f, "{call} cannot {action} now"),
            UaError::BadStatus(status) => write!(f, "status {status} does not fit this action"),
        }
    }
}

impl std::error::Error for UaError {}

/// The user agent core. See the module docs for how to drive it.
pub struct Ua {
    config: UaConfig,
    rng: StdRng,
    tx: TransactionLayer,
    calls: HashMap<CallRef, Call>,
    /// (Call-ID, local tag) → call.
    dialogs: HashMap<(String, String), CallRef>,
    /// INVITE server transactions still tied to a call (unanswered, or 2xx awaiting ACK).
    server: HashMap<ServerTxId, CallRef>,
    /// Client transactions we started and what they were for.
    client: HashMap<ClientTxId, Pending>,
    next_call: u64,
    events: VecDeque<UaEvent>,
    transmits: VecDeque<Transmit>,
}

impl fmt::Debug for Ua {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ua")
            .field("calls", &self.calls.len())
            .field("contact", &self.config.contact)
            .finish_non_exhaustive()
    }
}

impl Ua {
    /// A user agent whose tags, branches, Call-IDs and CSeq starts come from `rng_seed`.
    pub fn new(config: UaConfig, rng_seed: u64) -> Self {
        Ua {
            tx: TransactionLayer::new(config.timers),
            config,
            rng: StdRng::seed_from_u64(rng_seed),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            server: HashMap::new(),
            client: HashMap::new(),
            next_call: 1,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
        }
    }

    /// Handles one message from the network.
    pub fn receive(
        &mut self,
        now: Instant,
        message: Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        self.tx.receive(now, message, source, transport);
        self.drain(now);
    }

    /// Sends 180 Ringing for an incoming call.
    pub fn ring(&mut self, now: Instant, call: CallRef) -> Result<(), UaError> {
        let (tx, invite, tag, transport) = self.offered(call, "ring")?;
        let mut response = self.response(&invite, 180, Some(&tag), &[]);
        response.headers.push("Contact", self.contact(transport));
        self.tx.respond(now, tx, response);
        self.drain(now);
        Ok(())
    }

    /// Answers an incoming call with 200 OK carrying `sdp` (our answer, or our offer when the
    /// INVITE had none). [`UaEvent::Established`] follows once the ACK arrives.
    pub fn answer(&mut self, now: Instant, call: CallRef, sdp: Vec<u8>) -> Result<(), UaError> {
        let (tx, invite, tag, transport) = self.offered(call, "answer")?;
        let seq = invite.cseq().map(|cseq| cseq.seq).unwrap_or_default();
        let response = self.answer_response(&invite, &tag, transport, sdp);
        self.tx.respond(now, tx, response);
        if let Some(c) = self.calls.get_mut(&call) {
            c.phase = Phase::Answered { tx, seq };
        }
        self.drain(now);
        Ok(())
    }

    /// Refuses an incoming call with a final status of 300 to 699 and extra headers (e.g.
    /// 503 with Retry-After, 401 with WWW-Authenticate, 488). Emits `Ended(Failed(status))`.
    pub fn reject(
        &mut self,
        now: Instant,
        call: CallRef,
        status: u16,
        headers: &[(&str, String)],
    ) -> Result<(), UaError> {
        if !(300..=699).contains(&status) {
            return Err(UaError::BadStatus(status));
        }
        let (tx, invite, tag, _) = self.offered(call, "reject")?;
        let response = self.response(&invite, status, Some(&tag), headers);
        self.tx.respond(now, tx, response);
        self.end(call, EndReason::Failed(status));
        self.forget(call);
        self.drain(now);
        Ok(())
    }

    /// Answers the pending re-INVITE with 200 OK carrying `sdp`.
    pub fn answer_reoffer(
        &mut self,
        now: Instant,
        call: CallRef,
        sdp: Vec<u8>,
    ) -> Result<(), UaError> {
        let c = self.live_mut(call)?;
        let Some(reoffer) = c.reoffer.take() else {
            return Err(UaError::WrongState {
                call,
                action: "answer a re-offer",
            });
        };
        // Target refresh (RFC 3261 12.2.2): the re-INVITE's Contact becomes the remote target.
        if let Some(contact) = reoffer
            .request
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
        {
            c.dialog.remote_target = contact.uri;
        }
        let seq = reoffer
            .request
            .cseq()
            .map(|cseq| cseq.seq)
            .unwrap_or_default();
        c.reoffer_ack = Some((reoffer.tx, seq));
        let (tag, transport) = (c.dialog.local_tag.clone(), c.dialog.transport);
        let response = self.answer_response(&reoffer.request, &tag, transport, sdp);
        self.tx.respond(now, reoffer.tx, response);
        self.drain(now);
        Ok(())
    }

    /// Refuses the pending re-INVITE (e.g. 488); the session stays as it was.
    pub fn reject_reoffer(
        &mut self,
        now: Instant,
        call: CallRef,
        status: u16,
    ) -> Result<(), UaError> {
        if !(300..=699).contains(&status) {
            return Err(UaError::BadStatus(status));
        }
        let c = self.live_mut(call)?;
        let Some(reoffer) = c.reoffer.take() else {
            return Err(UaError::WrongState {
                call,
                action: "reject a re-offer",
            });
        };
        self.server.remove(&reoffer.tx);
        self.reply(now, reoffer.tx, &reoffer.request, status, &[]);
        self.drain(now);
        Ok(())
    }

    /// Ends a call from our side: BYE once confirmed (after the ACK for our 2xx), CANCEL while
    /// our INVITE is unanswered (BYE if a 2xx still arrives), 480 to their unanswered INVITE.
    /// Emits `Ended(LocalBye)` at once.
    pub fn hangup(&mut self, now: Instant, call: CallRef) -> Result<(), UaError> {
        self.live(call)?;
        let Some(mut c) = self.calls.remove(&call) else {
            return Err(UaError::UnknownCall(call));
        };
        c.ended = true;
        self.events.push_back(UaEvent::Ended {
            call,
            reason: EndReason::LocalBye,
        });
        self.refuse_reoffer(now, &mut c);
        let keep = match &mut c.phase {
            Phase::Offered { tx, invite } => {
                let (tx, invite) = (*tx, invite.clone());
                let response = self.response(&invite, 480, Some(&c.dialog.local_tag), &[]);
                self.tx.respond(now, tx, response);
                false
            }
            // The BYE waits for the ACK or its timeout (RFC 3261 15).
            Phase::Answered { .. } => true,
            Phase::Calling {
                provisional,
                cancelled,
                ..
            } => {
                *cancelled = true;
                if *provisional {
                    self.send_cancel(now, call, &mut c);
                }
                true
            }
            Phase::Confirmed => {
                self.send_bye(now, call, &mut c);
                true
            }
            Phase::Closing => true,
        };
        self.settle(call, c, keep);
        self.drain(now);
        Ok(())
    }

    /// Asks the far end to call `target` instead (REFER with Refer-To and Referred-By).
    /// The outcome arrives as `TransferAccepted`, `TransferProgress` or `TransferFailed`.
    pub fn transfer(&mut self, now: Instant, call: CallRef, target: &Uri) -> Result<(), UaError> {
        let c = self.live(call)?;
        if !matches!(c.phase, Phase::Confirmed)
            || !matches!(c.transfer, Transfer::Idle | Transfer::Finished)
        {
            return Err(UaError::WrongState {
                call,
                action: "transfer",
            });
        }
        let Some(mut c) = self.calls.remove(&call) else {
            return Err(UaError::UnknownCall(call));
        };
        c.dialog.local_seq = c.dialog.local_seq.wrapping_add(1);
        let mut refer = self.build_request(&c.dialog, Method::Refer, c.dialog.local_seq);
        refer.headers.push("Refer-To", format!("<{target}>"));
        refer
            .headers
            .push("Referred-By", format!("<{}>", c.dialog.local.uri));
        let id = self
            .tx
            .request(now, refer, c.dialog.peer, c.dialog.transport);
        self.client.insert(
            id,
            Pending {
                call,
                kind: Kind::Refer,
            },
        );
        c.transfer = Transfer::Requested;
        self.calls.insert(call, c);
        self.drain(now);
        Ok(())
    }

    /// Places a call: INVITE to `target` through `dest`, with `sdp` as the offer and extra
    /// headers. Expect `Progress`, then `Answered` or `Ended`.
    #[allow(clippy::too_many_arguments)] // the INVITE's parts, each distinct
    pub fn invite(
        &mut self,
        now: Instant,
        target: Uri,
        from: NameAddr,
        dest: SocketAddr,
        transport: Transport,
        sdp: Vec<u8>,
        headers: &[(&str, String)],
    ) -> CallRef {
        let call = self.new_call();
        let local_tag = self.token();
        let call_id = format!("{}@{}", self.token(), self.config.contact.host);
        let mut local = from;
        local.params.set("tag", Some(local_tag.clone()));
        let dialog = Dialog {
            call_id: call_id.clone(),
            local,
            remote: NameAddr::new(target.clone()),
            local_tag: local_tag.clone(),
            local_seq: self.initial_seq(),
            remote_seq: None,
            remote_target: target,
            route_set: Vec::new(),
            peer: dest,
            transport,
        };
        let mut invite = self.build_request(&dialog, Method::Invite, dialog.local_seq);
        invite.headers.push("Allow", ALLOW);
        for (name, value) in headers {
            invite.headers.push(name, value.clone());
        }
        if !sdp.is_empty() {
            invite.headers.push("Content-Type", "application/sdp");
        }
        invite.body = sdp;
        let tx = self.tx.request(now, invite.clone(), dest, transport);
        self.client.insert(
            tx,
            Pending {
                call,
                kind: Kind::Invite,
            },
        );
        self.dialogs.insert((call_id, local_tag), call);
        let phase = Phase::Calling {
            invite,
            provisional: false,
            cancelled: false,
        };
        self.calls.insert(call, Call::new(dialog, phase));
        self.drain(now);
        call
    }

    /// Answers a request statelessly, before any state exists (the driver's 403, 429 or 503
    /// from its access checks). ACKs are never answered.
    pub fn respond_stateless(
        &mut self,
        request: &Request,
        source: SocketAddr,
        transport: Transport,
        status: u16,
        headers: &[(&str, String)],
    ) {
        if request.method == Method::Ack {
            return;
        }
        let response = self.response(request, status, None, headers);
        self.transmits.push_back(Transmit {
            dest: source,
            transport,
            message: Message::Response(response),
        });
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits
            .pop_front()
            .or_else(|| self.tx.poll_transmit())
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// When [`Ua::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(|c| c.deadline);
        self.tx.poll_timeout().into_iter().chain(calls).min()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drain(now);
        let due: Vec<CallRef> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|at| at <= now))
            .map(|(call, _)| *call)
            .collect();
        for call in due {
            // The only deadline: a CANCEL that never brought the INVITE's final response
            // (RFC 3261 9.1: give up on the INVITE 64*T1 after the CANCEL).
            self.forget(call);
        }
    }

    /// Calls held in memory, including ended ones still finishing a BYE or CANCEL.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }
}

/// One call and its dialog.
struct Call {
    dialog: Dialog,
    phase: Phase,
    /// The terminal event has been emitted; the driver no longer knows this call.
    ended: bool,
    /// A re-INVITE waiting for the driver's answer.
    reoffer: Option<Reoffer>,
    /// Our 2xx to a re-INVITE, waiting for its ACK: (transaction, CSeq).
    reoffer_ack: Option<(ServerTxId, u32)>,
    transfer: Transfer,
    /// When to give up on the call (only after a CANCEL, see `handle_timeout`).
    deadline: Option<Instant>,
}

impl Call {
    fn new(dialog: Dialog, phase: Phase) -> Self {
        Call {
            dialog,
            phase,
            ended: false,
            reoffer: None,
            reoffer_ack: None,
            transfer: Transfer::Idle,
            deadline: None,
        }
    }
}

/// The dialog state of RFC 3261 12: identifiers, sequence numbers, route set, remote target.
struct Dialog {
    call_id: String,
    /// Our side (From of our requests), tag included.
    local: NameAddr,
    /// Their side (To of our requests), tag included once known.
    remote: NameAddr,
    local_tag: String,
    local_seq: u32,
    remote_seq: Option<u32>,
    remote_target: Uri,
    /// Route headers for our requests, in order.
    route_set: Vec<NameAddr>,
    /// Where our in-dialog requests go (see the module docs).
    peer: SocketAddr,
    transport: Transport,
}

enum Phase {
    /// UAS: their INVITE is waiting for the driver.
    Offered { tx: ServerTxId, invite: Request },
    /// UAS: our 2xx is sent, its ACK (with this CSeq) has not arrived.
    Answered { tx: ServerTxId, seq: u32 },
    /// UAC: our INVITE has no final response yet. `cancelled`: hang up asked, CANCEL goes
    /// (or went) out once a provisional response is in.
    Calling {
        invite: Request,
        provisional: bool,
        cancelled: bool,
    },
    /// The dialog is confirmed.
    Confirmed,
    /// Our BYE is out; the call is forgotten when it completes.
    Closing,
}

struct Reoffer {
    tx: ServerTxId,
    request: Request,
}

enum Transfer {
    Idle,
    Requested,
    Accepted,
    /// A final NOTIFY came; later NOTIFYs of the same subscription are acknowledged quietly.
    Finished,
}

#[derive(Clone, Copy)]
struct Pending {
    call: CallRef,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invite,
    Cancel,
    Bye,
    Refer,
    /// ACK-and-BYE for a forked 2xx we did not take.
    Stray,
}

impl Ua {
    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.tx.poll_event() {
            match event {
                TxEvent::Request {
                    id,
                    request,
                    source,
                    transport,
                } => self.handle_request(now, id, request, source, transport),
                TxEvent::Ack { request, .. } => self.handle_ack(now, &request),
                TxEvent::Response { id, response } => self.handle_response(now, id, response),
                TxEvent::Timeout { id } => self.handle_client_timeout(now, id),
                TxEvent::NoAck { id } => self.handle_no_ack(now, id),
            }
        }
    }

    /// The unanswered INVITE of a live incoming call: its transaction, the request, our tag
    /// and the transport.
    fn offered(
        &self,
        call: CallRef,
        action: &'static str,
    ) -> Result<(ServerTxId, Request, String, Transport), UaError> {
        let c = self.live(call)?;
        match &c.phase {
            Phase::Offered { tx, invite } => Ok((
                *tx,
                invite.clone(),
                c.dialog.local_tag.clone(),
                c.dialog.transport,
            )),
            _ => Err(UaError::WrongState { call, action }),
        }
    }

    fn live(&self, call: CallRef) -> Result<&Call, UaError> {
        match self.calls.get(&call) {
            Some(c) if !c.ended => Ok(c),
            _ => Err(UaError::UnknownCall(call)),
        }
    }

    fn live_mut(&mut self, call: CallRef) -> Result<&mut Call, UaError> {
        match self.calls.get_mut(&call) {
            Some(c) if !c.ended => Ok(c),
            _ => Err(UaError::UnknownCall(call)),
        }
    }

    /// Emits the terminal event unless the call already had one.
    fn end(&mut self, call: CallRef, reason: EndReason) {
        if let Some(c) = self.calls.get_mut(&call) {
            if !std::mem::replace(&mut c.ended, true) {
                self.events.push_back(UaEvent::Ended { call, reason });
            }
        }
    }

    /// Puts a call taken out of the map back, or forgets it.
    fn settle(&mut self, call: CallRef, c: Call, keep: bool) {
        self.calls.insert(call, c);
        if !keep {
            self.forget(call);
        }
    }

    /// Drops a call and everything that points at it, except client transactions still
    /// running (they end on their own and are ignored then).
    fn forget(&mut self, call: CallRef) {
        if let Some(c) = self.calls.remove(&call) {
            self.dialogs.remove(&(c.dialog.call_id, c.dialog.local_tag));
        }
        self.server.retain(|_, owner| *owner != call);
        self.client
            .retain(|_, p| p.call != call || p.kind != Kind::Invite);
    }

    // ---- requests from the far end -------------------------------------------------------

    fn handle_request(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        // RFC 3261 8.2.1: the method.
        match request.method {
            Method::Ack => return, // ACKs for 2xx arrive as TxEvent::Ack; others stay in the layer
            Method::Cancel => return self.handle_cancel(now, id, &request),
            Method::Extension(_) => {
                return self.reply(now, id, &request, 501, &[("Allow", ALLOW.into())])
            }
            Method::Register
            | Method::Subscribe
            | Method::Publish
            | Method::Message
            | Method::Update
            | Method::Prack => {
                return self.reply(now, id, &request, 405, &[("Allow", ALLOW.into())])
            }
            _ => {}
        }
        // 8.2.2.1: the Request-URI scheme.
        if !matches!(request.uri.scheme, Scheme::Sip | Scheme::Sips | Scheme::Tel) {
            return self.reply(now, id, &request, 416, &[]);
        }
        // 16.3 item 3 as the final recipient: OPTIONS with Max-Forwards 0 is still answered.
        match request.max_forwards() {
            Ok(Some(0)) if request.method != Method::Options => {
                return self.reply(now, id, &request, 483, &[]);
            }
            Err(_) => return self.reply(now, id, &request, 400, &[]),
            _ => {}
        }
        // 8.2.2.3: we support no extension, so every Require is unsupported.
        let required = request.tokens("Require").join(", ");
        if !required.is_empty() {
            return self.reply(now, id, &request, 420, &[("Unsupported", required)]);
        }
        let (Ok(from), Ok(to)) = (request.from(), request.to()) else {
            return self.reply(now, id, &request, 400, &[]);
        };
        if let Some(tag) = to.tag() {
            let tag = tag.to_owned();
            return self.handle_in_dialog(now, id, request, &tag);
        }
        match request.method {
            Method::Invite => self.handle_invite(now, id, request, from, to, source, transport),
            Method::Options => self.reply(now, id, &request, 200, &capabilities()),
            // BYE, INFO, NOTIFY, REFER only make sense inside a dialog.
            _ => self.reply(now, id, &request, 481, &[]),
        }
    }

    #[allow(clippy::too_many_arguments)] // the request and what was parsed out of it
    fn handle_invite(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Request,
        from: NameAddr,
        to: NameAddr,
        source: SocketAddr,
        transport: Transport,
    ) {
        if !sdp_or_empty(&request) {
            return self.reply(
                now,
                id,
                &request,
                415,
                &[("Accept", "application/sdp".into())],
            );
        }
        // 8.2.3 / 21.4.7: our answer is SDP; a caller that accepts no SDP gets 406.
        if !accepts_sdp(&request) {
            return self.reply(
                now,
                id,
                &request,
                406,
                &[("Accept", "application/sdp".into())],
            );
        }
        let Ok(call_id) = request.call_id().map(str::to_owned) else {
            return self.reply(now, id, &request, 400, &[]);
        };
        let Ok(seq) = request.cseq().map(|cseq| cseq.seq) else {
            return self.reply(now, id, &request, 400, &[]);
        };
        // 8.2.2.2: the same request reaching us twice by different paths (another branch,
        // so the transaction layer took it for a new one) while the first is still pending.
        let merged = self.calls.values().any(|c| {
            matches!(c.phase, Phase::Offered { .. })
                && c.dialog.call_id == call_id
                && c.dialog.remote.tag() == from.tag()
        });
        if merged {
            return self.reply(now, id, &request, 482, &[]);
        }
        let Some(contact) = request.contacts().ok().and_then(|c| c.into_iter().next()) else {
            return self.reply(now, id, &request, 400, &[]);
        };
        let Ok(route_set) = request.record_routes() else {
            return self.reply(now, id, &request, 400, &[]);
        };
        let call = self.new_call();
        let local_tag = self.token();
        let mut local = to.clone();
        local.params.set("tag", Some(local_tag.clone()));
        let dialog = Dialog {
            call_id: call_id.clone(),
            local,
            remote: from.clone(),
            local_tag: local_tag.clone(),
            local_seq: self.initial_seq(),
            remote_seq: Some(seq),
            remote_target: contact.uri,
            route_set,
            peer: source,
            transport,
        };
        self.events.push_back(UaEvent::Incoming {
            call,
            call_id: call_id.clone(),
            from,
            to,
            request_uri: request.uri.clone(),
            source,
            transport,
            offer: body(&request.body),
            authorization: request.headers.get("Authorization").map(str::to_owned),
            accept_language: request.headers.get("Accept-Language").map(str::to_owned),
        });
        self.dialogs.insert((call_id, local_tag), call);
        self.server.insert(id, call);
        self.calls.insert(
            call,
            Call::new(
                dialog,
                Phase::Offered {
                    tx: id,
                    invite: request,
                },
            ),
        );
    }

    fn handle_in_dialog(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Request,
        local_tag: &str,
    ) {
        let key = (
            request.call_id().unwrap_or_default().to_owned(),
            local_tag.to_owned(),
        );
        let Some(&call) = self.dialogs.get(&key) else {
            return self.reply(now, id, &request, 481, &[]);
        };
        let Some(mut c) = self.calls.remove(&call) else {
            return self.reply(now, id, &request, 481, &[]);
        };
        let from_tag = request.from().ok().and_then(|f| f.tag().map(str::to_owned));
        let stranger = c
            .dialog
            .remote
            .tag()
            .is_some_and(|tag| Some(tag) != from_tag.as_deref());
        if stranger || (c.ended && request.method != Method::Bye) {
            self.calls.insert(call, c);
            return self.reply(now, id, &request, 481, &[]);
        }
        // 12.2.2: CSeq must grow.
        let seq = request.cseq().map(|cseq| cseq.seq).unwrap_or_default();
        if c.dialog.remote_seq.is_some_and(|remote| seq <= remote) {
            self.calls.insert(call, c);
            return self.reply(now, id, &request, 500, &[]);
        }
        c.dialog.remote_seq = Some(seq);
        let keep = match request.method {
            Method::Bye => self.handle_bye(now, id, &request, call, &mut c),
            Method::Invite => self.handle_reinvite(now, id, request, call, &mut c),
            Method::Info => self.handle_info(now, id, &request, call),
            Method::Notify => self.handle_notify(now, id, &request, call, &mut c),
            Method::Options => {
                self.reply(now, id, &request, 200, &capabilities());
                true
            }
            // We transfer others; we do not let the far end transfer us.
            Method::Refer => {
                self.reply(now, id, &request, 403, &[]);
                true
            }
            _ => {
                self.reply(now, id, &request, 405, &[("Allow", ALLOW.into())]);
                true
            }
        };
        self.settle(call, c, keep);
    }

    /// RFC 3261 15.1.2 (and 15 for early dialogs). Returns whether to keep the call.
    fn handle_bye(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Request,
        call: CallRef,
        c: &mut Call,
    ) -> bool {
        self.reply(now, id, request, 200, &[]);
        if !std::mem::replace(&mut c.ended, true) {
            self.events.push_back(UaEvent::Ended {
                call,
                reason: EndReason::RemoteBye,
            });
        }
        self.refuse_reoffer(now, c);
        match &mut c.phase {
            Phase::Offered { tx, invite } => {
                let (tx, invite) = (*tx, invite.clone());
                let response = self.response(&invite, 487, Some(&c.dialog.local_tag), &[]);
                self.tx.respond(now, tx, response);
                false
            }
            // An early dialog of our INVITE: the INVITE itself must still be cancelled.
            Phase::Calling {
                provisional,
                cancelled,
                ..
            } => {
                if !std::mem::replace(cancelled, true) && *provisional {
                    self.send_cancel(now, call, c);
                }
                true
            }
            Phase::Answered { .. } | Phase::Confirmed | Phase::Closing => false,
        }
    }

    /// RFC 3261 14.2. Returns whether to keep the call (always).
    fn handle_reinvite(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Request,
        call: CallRef,
        c: &mut Call,
    ) -> bool {
        match c.phase {
            Phase::Calling { .. } => {
                self.reply(now, id, &request, 491, &[]);
                return true;
            }
            Phase::Offered { .. } => {
                let wait = self.rng.random_range(0..=10u32).to_string();
                self.reply(now, id, &request, 500, &[("Retry-After", wait)]);
                return true;
            }
            Phase::Answered { .. } | Phase::Confirmed => {}
            Phase::Closing => {
                self.reply(now, id, &request, 481, &[]);
                return true;
            }
        }
        if c.reoffer.is_some() {
            let wait = self.rng.random_range(0..=10u32).to_string();
            self.reply(now, id, &request, 500, &[("Retry-After", wait)]);
            return true;
        }
        if !sdp_or_empty(&request) {
            self.reply(
                now,
                id,
                &request,
                415,
                &[("Accept", "application/sdp".into())],
            );
            return true;
        }
        self.events.push_back(UaEvent::Reoffer {
            call,
            offer: body(&request.body),
        });
        self.server.insert(id, call);
        c.reoffer = Some(Reoffer { tx: id, request });
        true
    }

    /// RFC 6086 legacy INFO with DTMF. Returns whether to keep the call (always).
    fn handle_info(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Request,
        call: CallRef,
    ) -> bool {
        if request.body.is_empty() {
            // An empty INFO is a keep-alive probe.
            self.reply(now, id, request, 200, &[]);
            return true;
        }
        let kind = request.content_type().map(media_type).unwrap_or_default();
        let text = String::from_utf8_lossy(&request.body);
        let parsed = match kind.as_str() {
            "application/dtmf-relay" => parse_dtmf_relay(&text),
            "application/dtmf" => dtmf_key(text.trim()).map(|key| (key, 0)),
            _ => {
                self.reply(now, id, request, 415, &[("Accept", ACCEPT_INFO.into())]);
                return true;
            }
        };
        match parsed {
            Some((key, duration_ms)) => {
                self.reply(now, id, request, 200, &[]);
                self.events.push_back(UaEvent::Dtmf {
                    call,
                    key,
                    duration_ms,
                });
            }
            None => self.reply(now, id, request, 400, &[]),
        }
        true
    }

    /// RFC 3515 2.4.4 / RFC 6665: NOTIFY for our REFER's implicit subscription.
    fn handle_notify(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Request,
        call: CallRef,
        c: &mut Call,
    ) -> bool {
        let event = request
            .headers
            .get("Event")
            .map(media_type)
            .unwrap_or_default();
        if event != "refer" {
            self.reply(now, id, request, 489, &[]);
            return true;
        }
        if matches!(c.transfer, Transfer::Idle) {
            self.reply(now, id, request, 481, &[]);
            return true;
        }
        let Some(status) = sipfrag_status(&request.body) else {
            self.reply(now, id, request, 400, &[]);
            return true;
        };
        self.reply(now, id, request, 200, &[]);
        if let Transfer::Requested = c.transfer {
            // The NOTIFY overtook the 202.
            self.events.push_back(UaEvent::TransferAccepted { call });
            c.transfer = Transfer::Accepted;
        }
        if matches!(c.transfer, Transfer::Finished) {
            return true;
        }
        if status < 300 {
            self.events
                .push_back(UaEvent::TransferProgress { call, status });
        } else {
            self.events
                .push_back(UaEvent::TransferFailed { call, status });
        }
        if status >= 200 {
            c.transfer = Transfer::Finished;
        }
        true
    }

    /// RFC 3261 9.2.
    fn handle_cancel(&mut self, now: Instant, id: ServerTxId, request: &Request) {
        let Some(invite_tx) = self.tx.find_invite(request) else {
            return self.reply(now, id, request, 481, &[]);
        };
        let Some(&call) = self.server.get(&invite_tx) else {
            return self.reply(now, id, request, 200, &[]);
        };
        let Some(mut c) = self.calls.remove(&call) else {
            return self.reply(now, id, request, 200, &[]);
        };
        let tag = c.dialog.local_tag.clone();
        let response = self.response(request, 200, Some(&tag), &[]);
        self.tx.respond(now, id, response);
        let keep = match &c.phase {
            Phase::Offered { tx, invite } if *tx == invite_tx => {
                let response = self.response(invite, 487, Some(&tag), &[]);
                self.tx.respond(now, invite_tx, response);
                if !std::mem::replace(&mut c.ended, true) {
                    self.events.push_back(UaEvent::Cancelled { call });
                }
                false
            }
            _ => {
                if c.reoffer.as_ref().is_some_and(|r| r.tx == invite_tx) {
                    self.refuse_reoffer(now, &mut c);
                }
                true
            }
        };
        self.settle(call, c, keep);
    }

    /// The ACK for one of our 2xx responses.
    fn handle_ack(&mut self, now: Instant, ack: &Request) {
        let (Ok(call_id), Ok(to), Ok(cseq)) = (ack.call_id(), ack.to(), ack.cseq()) else {
            return;
        };
        let Some(tag) = to.tag() else { return };
        let Some(&call) = self.dialogs.get(&(call_id.to_owned(), tag.to_owned())) else {
            return; // an ACK for no dialog is absorbed (RFC 3261 12.2.2)
        };
        let Some(mut c) = self.calls.remove(&call) else {
            return;
        };
        match c.phase {
            Phase::Answered { tx, seq } if seq == cseq.seq => {
                self.server.remove(&tx);
                c.phase = Phase::Confirmed;
                if c.ended {
                    // hangup() came before the ACK: now the BYE may go.
                    self.send_bye(now, call, &mut c);
                } else {
                    self.events.push_back(UaEvent::Established {
                        call,
                        answer: body(&ack.body),
                    });
                }
            }
            _ => {
                if let Some((tx, seq)) = c.reoffer_ack {
                    if seq == cseq.seq {
                        self.server.remove(&tx);
                        c.reoffer_ack = None;
                        if !ack.body.is_empty() && !c.ended {
                            self.events.push_back(UaEvent::ReofferAnswer {
                                call,
                                answer: ack.body.clone(),
                            });
                        }
                    }
                }
            }
        }
        self.calls.insert(call, c);
    }

    /// Our 2xx (to an INVITE or re-INVITE) was never acknowledged: end the call with BYE.
    fn handle_no_ack(&mut self, now: Instant, id: ServerTxId) {
        let Some(call) = self.server.remove(&id) else {
            return;
        };
        let Some(mut c) = self.calls.remove(&call) else {
            return;
        };
        let ours = match c.phase {
            Phase::Answered { tx, .. } => tx == id,
            _ => c.reoffer_ack.is_some_and(|(tx, _)| tx == id),
        };
        if ours {
            if !std::mem::replace(&mut c.ended, true) {
                self.events.push_back(UaEvent::Ended {
                    call,
                    reason: EndReason::NoAck,
                });
            }
            c.reoffer_ack = None;
            self.send_bye(now, call, &mut c);
        }
        self.calls.insert(call, c);
    }

    // ---- responses to our requests -------------------------------------------------------

    fn handle_response(&mut self, now: Instant, id: ClientTxId, response: Response) {
        let Some(pending) = self.client.get(&id).copied() else {
            return;
        };
        let status = response.status;
        if status >= 200 && pending.kind != Kind::Invite {
            self.client.remove(&id);
        }
        let call = pending.call;
        let Some(mut c) = self.calls.remove(&call) else {
            if status >= 200 {
                self.client.remove(&id);
            }
            return;
        };
        let keep = match pending.kind {
            Kind::Invite => self.handle_invite_response(now, id, &response, call, &mut c),
            Kind::Bye => status < 200,
            Kind::Refer => {
                self.handle_refer_response(call, &mut c, status);
                // 481 and 408 to an in-dialog request end the dialog (RFC 3261 12.2.1.2).
                if matches!(status, 408 | 481) {
                    if !std::mem::replace(&mut c.ended, true) {
                        self.events.push_back(UaEvent::Ended {
                            call,
                            reason: EndReason::Failed(status),
                        });
                    }
                    false
                } else {
                    true
                }
            }
            Kind::Cancel | Kind::Stray => true,
        };
        self.settle(call, c, keep);
    }

    fn handle_invite_response(
        &mut self,
        now: Instant,
        id: ClientTxId,
        response: &Response,
        call: CallRef,
        c: &mut Call,
    ) -> bool {
        let status = response.status;
        match status {
            100..=199 => {
                if let Phase::Calling {
                    provisional,
                    cancelled,
                    ..
                } = &mut c.phase
                {
                    let first = !std::mem::replace(provisional, true);
                    if first && *cancelled {
                        self.send_cancel(now, call, c);
                    } else if status > 100 && !c.ended {
                        self.events.push_back(UaEvent::Progress { call, status });
                    }
                }
                true
            }
            200..=299 => {
                self.handle_invite_2xx(now, response, call, c);
                true
            }
            _ => {
                self.client.remove(&id);
                if matches!(c.phase, Phase::Calling { .. }) {
                    if !std::mem::replace(&mut c.ended, true) {
                        self.events.push_back(UaEvent::Ended {
                            call,
                            reason: EndReason::Failed(status),
                        });
                    }
                    false
                } else {
                    true
                }
            }
        }
    }

    /// RFC 3261 13.2.2.4: a 2xx to our INVITE makes the dialog; ACK it, every time it comes.
    fn handle_invite_2xx(
        &mut self,
        now: Instant,
        response: &Response,
        call: CallRef,
        c: &mut Call,
    ) {
        let Ok(to) = response.to() else { return };
        let seq = response
            .cseq()
            .map(|cseq| cseq.seq)
            .unwrap_or(c.dialog.local_seq);
        if !matches!(c.phase, Phase::Calling { .. }) {
            // The same 2xx again is re-ACKed by the transaction layer; another fork's is ours.
            if c.dialog.remote.tag() != to.tag() {
                self.end_fork(now, response, call, c);
            }
            return;
        }
        c.dialog.remote = to;
        if let Some(contact) = response
            .contacts()
            .ok()
            .and_then(|cs| cs.into_iter().next())
        {
            c.dialog.remote_target = contact.uri;
        }
        let mut routes = response.record_routes().unwrap_or_default();
        routes.reverse();
        c.dialog.route_set = routes;
        let ack = self.build_request(&c.dialog, Method::Ack, seq);
        self.tx.send_ack(ack, c.dialog.peer, c.dialog.transport);
        c.phase = Phase::Confirmed;
        if c.ended {
            // Hung up (CANCEL sent) but answered anyway: end it with BYE (RFC 3261 15).
            c.deadline = None;
            self.send_bye(now, call, c);
        } else {
            self.events.push_back(UaEvent::Answered {
                call,
                answer: body(&response.body),
            });
        }
    }

    /// A 2xx from a second fork of our INVITE: acknowledge it and end that dialog at once.
    fn end_fork(&mut self, now: Instant, response: &Response, call: CallRef, c: &Call) {
        let Ok(remote) = response.to() else { return };
        let Some(contact) = response
            .contacts()
            .ok()
            .and_then(|cs| cs.into_iter().next())
        else {
            return;
        };
        let mut route_set = response.record_routes().unwrap_or_default();
        route_set.reverse();
        let seq = response
            .cseq()
            .map(|cseq| cseq.seq)
            .unwrap_or(c.dialog.local_seq);
        let fork = Dialog {
            call_id: c.dialog.call_id.clone(),
            local: c.dialog.local.clone(),
            remote,
            local_tag: c.dialog.local_tag.clone(),
            local_seq: seq,
            remote_seq: None,
            remote_target: contact.uri,
            route_set,
            peer: c.dialog.peer,
            transport: c.dialog.transport,
        };
        let ack = self.build_request(&fork, Method::Ack, seq);
        self.tx.send_ack(ack, fork.peer, fork.transport);
        let bye = self.build_request(&fork, Method::Bye, seq.wrapping_add(1));
        let id = self.tx.request(now, bye, fork.peer, fork.transport);
        self.client.insert(
            id,
            Pending {
                call,
                kind: Kind::Stray,
            },
        );
    }

    fn handle_refer_response(&mut self, call: CallRef, c: &mut Call, status: u16) {
        if !matches!(c.transfer, Transfer::Requested) || c.ended || status < 200 {
            return;
        }
        if status < 300 {
            self.events.push_back(UaEvent::TransferAccepted { call });
            c.transfer = Transfer::Accepted;
        } else {
            self.events
                .push_back(UaEvent::TransferFailed { call, status });
            c.transfer = Transfer::Idle;
        }
    }

    fn handle_client_timeout(&mut self, _now: Instant, id: ClientTxId) {
        let Some(pending) = self.client.remove(&id) else {
            return;
        };
        let call = pending.call;
        let Some(mut c) = self.calls.remove(&call) else {
            return;
        };
        let keep = match pending.kind {
            Kind::Invite => {
                if !std::mem::replace(&mut c.ended, true) {
                    self.events.push_back(UaEvent::Ended {
                        call,
                        reason: EndReason::Timeout,
                    });
                }
                !matches!(c.phase, Phase::Calling { .. })
            }
            Kind::Bye => false,
            Kind::Refer => {
                if matches!(c.transfer, Transfer::Requested) && !c.ended {
                    self.events
                        .push_back(UaEvent::TransferFailed { call, status: 408 });
                    c.transfer = Transfer::Idle;
                }
                true
            }
            Kind::Cancel | Kind::Stray => true,
        };
        self.settle(call, c, keep);
    }

    // ---- what we send --------------------------------------------------------------------

    fn send_bye(&mut self, now: Instant, call: CallRef, c: &mut Call) {
        c.dialog.local_seq = c.dialog.local_seq.wrapping_add(1);
        let bye = self.build_request(&c.dialog, Method::Bye, c.dialog.local_seq);
        let id = self.tx.request(now, bye, c.dialog.peer, c.dialog.transport);
        self.client.insert(
            id,
            Pending {
                call,
                kind: Kind::Bye,
            },
        );
        c.phase = Phase::Closing;
    }

    /// RFC 3261 9.1: CANCEL built from our INVITE; give up on the INVITE 64*T1 later.
    fn send_cancel(&mut self, now: Instant, call: CallRef, c: &mut Call) {
        let Phase::Calling { invite, .. } = &c.phase else {
            return;
        };
        let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
        for name in ["Via", "Route", "From", "To", "Call-ID"] {
            for value in invite.headers.get_all(name) {
                cancel.headers.push(name, value);
                if name == "Via" {
                    break; // only the top Via, i.e. the INVITE's own
                }
            }
        }
        let seq = invite
            .cseq()
            .map(|cseq| cseq.seq)
            .unwrap_or(c.dialog.local_seq);
        cancel.headers.push("CSeq", format!("{seq} CANCEL"));
        cancel.headers.push("Max-Forwards", MAX_FORWARDS);
        cancel
            .headers
            .push("User-Agent", self.config.user_agent.clone());
        let id = self
            .tx
            .request(now, cancel, c.dialog.peer, c.dialog.transport);
        self.client.insert(
            id,
            Pending {
                call,
                kind: Kind::Cancel,
            },
        );
        c.deadline = Some(now + self.config.timers.t1 * 64);
    }

    /// 487 to a re-INVITE the driver has not answered (the dialog is going away).
    fn refuse_reoffer(&mut self, now: Instant, c: &mut Call) {
        if let Some(reoffer) = c.reoffer.take() {
            self.server.remove(&reoffer.tx);
            self.reply(now, reoffer.tx, &reoffer.request, 487, &[]);
        }
    }

    /// A request inside `dialog` (RFC 3261 12.2.1.1), with a fresh branch.
    fn build_request(&mut self, dialog: &Dialog, method: Method, seq: u32) -> Request {
        let (uri, routes): (Uri, Vec<String>) = match dialog.route_set.split_first() {
            // A strict router first: it goes in the Request-URI, the remote target last.
            Some((first, rest)) if !first.uri.params.has("lr") => {
                let mut routes: Vec<String> = rest.iter().map(ToString::to_string).collect();
                routes.push(format!("<{}>", dialog.remote_target));
                let mut uri = first.uri.clone();
                uri.headers.clear();
                (uri, routes)
            }
            _ => (
                dialog.remote_target.clone(),
                dialog.route_set.iter().map(ToString::to_string).collect(),
            ),
        };
        let mut headers = Headers::new();
        headers.push("Via", self.via(dialog.transport));
        for route in routes {
            headers.push("Route", route);
        }
        headers.push("Max-Forwards", MAX_FORWARDS);
        headers.push("From", dialog.local.to_string());
        headers.push("To", dialog.remote.to_string());
        headers.push("Call-ID", dialog.call_id.clone());
        headers.push("CSeq", format!("{seq} {method}"));
        if matches!(method, Method::Invite | Method::Refer) {
            headers.push("Contact", self.contact(dialog.transport));
        }
        headers.push("User-Agent", self.config.user_agent.clone());
        Request {
            method,
            uri,
            headers,
            body: Vec::new(),
        }
    }

    fn via(&mut self, transport: Transport) -> String {
        let contact = &self.config.contact;
        let sent_by = match contact.port {
            Some(port) => format!("{}:{port}", contact.host),
            None => contact.host.clone(),
        };
        let branch = format!("z9hG4bK{}", self.token());
        format!(
            "SIP/2.0/{} {sent_by};branch={branch};rport",
            transport_name(transport)
        )
    }

    fn contact(&self, transport: Transport) -> String {
        let mut uri = self.config.contact.clone();
        if transport == Transport::Tcp && !uri.params.has("transport") {
            uri.params.set("transport", Some("tcp".into()));
        }
        format!("<{uri}>")
    }

    /// A 200 OK to an INVITE or re-INVITE, carrying our session description.
    fn answer_response(
        &mut self,
        invite: &Request,
        tag: &str,
        transport: Transport,
        sdp: Vec<u8>,
    ) -> Response {
        let mut response = self.response(invite, 200, Some(tag), &[]);
        response.headers.push("Contact", self.contact(transport));
        response.headers.push("Allow", ALLOW);
        if !sdp.is_empty() {
            response.headers.push("Content-Type", "application/sdp");
        }
        response.body = sdp;
        response
    }

    /// A response to `request` (RFC 3261 8.2.6): To gets `tag` (or a fresh one) unless it
    /// has one or this is a 100.
    fn response(
        &mut self,
        request: &Request,
        status: u16,
        tag: Option<&str>,
        headers: &[(&str, String)],
    ) -> Response {
        let mut response = Response::for_request(request, status);
        if status > 100 {
            if let Ok(mut to) = request.to() {
                if to.tag().is_none() {
                    let tag = tag.map_or_else(|| self.token(), str::to_owned);
                    to.params.set("tag", Some(tag));
                    response.headers.set("To", to.to_string());
                }
            }
        }
        response
            .headers
            .push("Server", self.config.user_agent.clone());
        for (name, value) in headers {
            response.headers.push(name, value.clone());
        }
        response
    }

    fn reply(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Request,
        status: u16,
        headers: &[(&str, String)],
    ) {
        let response = self.response(request, status, None, headers);
        self.tx.respond(now, id, response);
    }

    fn new_call(&mut self) -> CallRef {
        let call = CallRef(self.next_call);
        self.next_call += 1;
        call
    }

    /// 64 random bits in hex: tags, branches, Call-IDs.
    fn token(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }

    /// A first CSeq: random and well below 2^31 (RFC 3261 8.1.1.5).
    fn initial_seq(&mut self) -> u32 {
        self.rng.random_range(1..=0xffff)
    }
}

/// Whether the request's `Accept` (if any) admits `application/sdp`: absent, empty (RFC
/// 3261 20.1: the default), `*/*`, `application/*` or `application/sdp`.
fn accepts_sdp(request: &Request) -> bool {
    let mut any = false;
    for item in request
        .headers
        .get_all("Accept")
        .flat_map(|line| line.split(','))
    {
        let media = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media.is_empty() {
            continue;
        }
        any = true;
        if matches!(media.as_str(), "*/*" | "application/*" | "application/sdp") {
            return true;
        }
    }
    !any
}

/// Allow, Accept, Accept-Language for OPTIONS answers (RFC 3261 11.2).
fn capabilities() -> Vec<(&'static str, String)> {
    vec![
        ("Allow", ALLOW.into()),
        ("Accept", "application/sdp".into()),
        ("Accept-Language", ACCEPT_LANGUAGE.into()),
    ]
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    }
}

/// The media type of a Content-Type or Event value, lowercased, parameters dropped.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether an INVITE's body is absent or SDP (RFC 3261 8.2.3).
fn sdp_or_empty(request: &Request) -> bool {
    request.body.is_empty()
        || request.content_type().map(media_type).as_deref() == Some("application/sdp")
}

fn body(bytes: &[u8]) -> Option<Vec<u8>> {
    (!bytes.is_empty()).then(|| bytes.to_vec())
}

/// `Signal=5` / `Duration=160` lines of application/dtmf-relay.
fn parse_dtmf_relay(text: &str) -> Option<(char, u32)> {
    let mut key = None;
    let mut duration = 0;
    for line in text.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "signal" => key = dtmf_key(value.trim()),
            "duration" => duration = value.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    key.map(|key| (key, duration))
}

/// A DTMF key given as itself (`5`, `*`, `A`) or as its RFC 4733 event code (`10` is `*`).
fn dtmf_key(value: &str) -> Option<char> {
    const KEYS: &[u8; 16] = b"0123456789*#ABCD";
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() && KEYS.contains(&(c.to_ascii_uppercase() as u8)) => {
            Some(c.to_ascii_uppercase())
        }
        _ => value
            .parse::<usize>()
            .ok()
            .and_then(|code| KEYS.get(code))
            .map(|&b| char::from(b)),
    }
}

/// The status code of a `message/sipfrag` body's status line (`SIP/2.0 200 OK`).
fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.trim_start().lines().next()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts
        .next()?
        .parse()
        .ok()
        .filter(|status| (100..=699).contains(status))
}

#[cfg(test)]
mod tests;
