//! Transaction layer tests in simulated time: time only moves to the next timer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::message::parse;

#[allow(clippy::disallowed_methods)] // the one real instant the simulated clock starts from
fn base() -> Instant {
    Instant::now()
}

fn peer() -> SocketAddr {
    "203.0.113.7:40000".parse().unwrap()
}

/// A request from the peer (its Via names a private address, as behind NAT).
fn request(method: &str, branch: &str, cseq: u32) -> Request {
    let text = format!(
        "{method} sip:1111@gw.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.5:5062;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:1111@gw.example.com>\r\n\
         Call-ID: call-1@example.com\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!("a request line was written"),
    }
}

fn response(req: &Request, status: u16) -> Response {
    let mut r = Response::for_request(req, status);
    if status > 100 {
        let to = format!("{};tag=b2", req.headers.get("To").unwrap());
        r.headers.set("To", to);
    }
    r
}

struct Harness {
    layer: TransactionLayer,
    t0: Instant,
    now: Instant,
    sent: Vec<(u64, Transmit)>,
    events: Vec<(u64, TxEvent)>,
}

impl Harness {
    fn new() -> Self {
        let t0 = base();
        Harness {
            layer: TransactionLayer::new(Timers::default()),
            t0,
            now: t0,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn ms(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }

    fn drain(&mut self) {
        let ms = self.ms();
        while let Some(t) = self.layer.poll_transmit() {
            self.sent.push((ms, t));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push((ms, e));
        }
    }

    /// Fires timers up to `until_ms` after the start, one wake-up at a time.
    fn run_until(&mut self, until_ms: u64) {
        let until = self.t0 + Duration::from_millis(until_ms);
        while let Some(at) = self.layer.poll_timeout() {
            if at > until {
                break;
            }
            self.now = at;
            self.layer.handle_timeout(at);
            self.drain();
        }
        self.now = until;
    }

    fn receive(&mut self, msg: Message, transport: Transport) {
        self.layer.receive(self.now, msg, peer(), transport);
        self.drain();
    }

    fn respond(&mut self, id: ServerTxId, resp: Response) {
        self.layer.respond(self.now, id, resp);
        self.drain();
    }

    fn take_sent(&mut self) -> Vec<(u64, Transmit)> {
        std::mem::take(&mut self.sent)
    }

    fn take_events(&mut self) -> Vec<(u64, TxEvent)> {
        std::mem::take(&mut self.events)
    }

    /// The server transaction of the one new request event.
    fn new_request(&mut self) -> ServerTxId {
        let events = self.take_events();
        match events.as_slice() {
            [(_, TxEvent::Request { id, .. })] => *id,
            other => panic!("expected one request event, got {other:?}"),
        }
    }
}

fn statuses(sent: &[(u64, Transmit)]) -> Vec<(u64, u16)> {
    sent.iter()
        .map(|(ms, t)| match &t.message {
            Message::Response(r) => (*ms, r.status),
            Message::Request(_) => (*ms, 0),
        })
        .collect()
}

fn times(sent: &[(u64, Transmit)]) -> Vec<u64> {
    sent.iter().map(|(ms, _)| *ms).collect()
}

#[test]
fn invite_gets_100_trying_after_200_ms_when_the_user_is_silent() {
    let mut h = Harness::new();
    h.receive(
        Message::Request(request("INVITE", "z9hG4bKinv1", 1)),
        Transport::Udp,
    );
    h.new_request();
    h.run_until(199);
    assert!(h.take_sent().is_empty());
    h.run_until(1000);
    assert_eq!(statuses(&h.take_sent()), [(200, 100)]);
}

#[test]
fn no_100_trying_when_the_user_answers_first() {
    let mut h = Harness::new();
    let req = request("INVITE", "z9hG4bKinv1", 1);
    h.receive(Message::Request(req.clone()), Transport::Udp);
    let id = h.new_request();
    h.run_until(100);
    h.respond(id, response(&req, 180));
    h.run_until(1000);
    assert_eq!(statuses(&h.take_sent()), [(100, 180)]);
}

#[test]
fn responses_go_to_the_source_with_received_and_rport() {
    let mut h = Harness::new();
    h.receive(
        Message::Request(request("OPTIONS", "z9hG4bKopt", 1)),
        Transport::Udp,
    );
    let events = h.take_events();
    let TxEvent::Request { id, request, .. } = &events[0].1 else {
        panic!("expected a request");
    };
    let via = request.top_via().unwrap();
    assert_eq!(via.received(), Some("203.0.113.7"));
    assert_eq!(via.rport(), Some(Some(40000)));
    h.respond(*id, response(request, 200));
    let sent = h.take_sent();
    assert_eq!(sent[0].1.dest, peer());
    let Message::Response(r) = &sent[0].1.message else {
        panic!("expected a response");
    };
    assert_eq!(r.top_via().unwrap().received(), Some("203.0.113.7"));
}

#[test]
fn non_2xx_final_retransmits_on_timer_g_until_the_ack_then_timer_i_ends_it() {
    let mut h = Harness::new();
    let req = request("INVITE", "z9hG4bKinv1", 1);
    h.receive(Message::Request(req.clone()), Transport::Udp);
    let id = h.new_request();
    h.respond(id, response(&req, 486));
    // G: T1, 2T1, 4T1, then capped at T2.
    h.run_until(12_000);
    assert_eq!(times(&h.take_sent()), [0, 500, 1500, 3500, 7500, 11_500]);
    // The ACK (same branch) confirms: no more retransmissions, not passed up.
    h.receive(
        Message::Request(request("ACK", "z9hG4bKinv1", 1)),
        Transport::Udp,
    );
    assert!(h.take_events().is_empty());
    h.run_until(16_999);
    assert!(h.take_sent().is_empty());
    assert_eq!(h.layer.len(), 1);
    // Timer I: T4 after the ACK.
    h.run_until(17_000);
    assert_eq!(h.layer.len(), 0);
}

#[test]
fn timer_h_reports_a_missing_ack_for_a_non_2xx() {
    let mut h = Harness::new();
    let req = request("INVITE", "z9hG4bKinv1", 1);
    h.receive(Message::Request(req.clone()), Transport::Udp);
    let id = h.new_request();
    h.respond(id, response(&req, 503));
    h.run_until(31_999);
    assert!(h.take_events().is_empty());
    h.run_until(32_000);
    assert_eq!(h.take_events(), [(32_000, TxEvent::NoAck { id })]);
    assert!(h.layer.is_empty());
}

#[test]
fn accepted_2xx_is_retransmitted_until_the_ack_rfc6026() {
    let mut h = Harness::new();
    let req = request("INVITE", "z9hG4bKinv1", 1);
    h.receive(Message::Request(req.clone()), Transport::Udp);
    let id = h.new_request();
    h.respond(id, response(&req, 200));
    h.run_until(8_000);
    assert_eq!(times(&h.take_sent()), [0, 500, 1500, 3500, 7500]);
    // The ACK of a 2xx has its own branch; it goes to the user and stops the 2xx.
    h.receive(
        Message::Request(request("ACK", "z9hG4bKack1", 1)),
        Transport::Udp,
    );
    assert!(matches!(
        h.take_events().as_slice(),
        [(_, TxEvent::Ack { .. })]
    ));
    // A late INVITE retransmission is absorbed while Accepted.
    h.receive(Message::Request(req.clone()), Transport::Udp);
    assert!(h.take_events().is_empty());
    h.run_until(32_000);
    assert!(h.take_sent().is_empty());
    assert!(h.take_events().is_empty(), "no NoAck after an ACK");
    assert!(h.layer.is_empty(), "Timer L ends the transaction");
}

#[test]
fn accepted_2xx_without_ack_reports_no_ack_at_timer_l() {
    let mut h = Harness::new();
    let req = request("INVITE", "z9hG4bKinv1", 1);
    h.receive(Message::Request(req.clone()), Transport::Udp);
    let id = h.new_request();
    h.respond(id, response(&req, 200));
    h.run_until(32_000);
    let sent = times(&h.take_sent());
    assert_eq!(sent[..6], [0, 500, 1500, 3500, 7500, 11_500]);
    assert!(
        sent.windows(2).all(|w| w[1] - w[0] <= 4000),
        "capped at T2: {sent:?}"
    );
    assert_eq!(h.take_events(), [(32_000, TxEvent::NoAck { id })]);
}

#[test]
fn retransmitted_requests_get_the_last_response_again() {
    let mut h = Harness::new();
    let req = request("INVITE", "z9hG4bKinv1", 1);
    h.receive(Message::Request(req.clone()), Transport::Udp);
    let id = h.new_request();
    h.respond(id, response(&req, 180));
    h.receive(Message::Request(req.clone()), Transport::Udp);
    assert!(
        h.take_events().is_empty(),
        "the retransmission is not a new request"
    );
    assert_eq!(statuses(&h.take_sent()), [(0, 180), (0, 180)]);

    let bye = request("BYE", "z9hG4bKbye", 2);
    h.receive(Message::Request(bye.clone()), Transport::Udp);
    let bye_id = h.new_request();
    // Trying: a retransmission is absorbed silently.
    h.receive(Message::Request(bye.clone()), Transport::Udp);
    assert!(h.take_sent().is_empty());
    h.respond(bye_id, response(&bye, 200));
    h.receive(Message::Request(bye), Transport::Udp);
    assert_eq!(statuses(&h.take_sent()), [(0, 200), (0, 200)]);
}

#[test]
fn non_invite_server_lingers_for_timer_j_on_udp_only() {
    let mut h = Harness::new();
    let bye = request("BYE", "z9hG4bKbye", 2);
    h.receive(Message::Request(bye.clone()), Transport::Udp);
    let id = h.new_request();
    h.respond(id, response(&bye, 200));
    h.run_until(31_999);
    assert_eq!(h.layer.len(), 1);
    h.run_until(32_000);
    assert!(h.layer.is_empty());

    h.receive(
        Message::Request(request("BYE", "z9hG4bKbye2", 3)),
        Transport::Tcp,
    );
    let id = h.new_request();
    h.respond(id, response(&bye, 200));
    assert!(h.layer.is_empty(), "J is zero on TCP");
}

#[test]
fn tcp_server_sends_no_retransmissions_but_keeps_timer_h() {
    let mut h = Harness::new();
    let req = request("INVITE", "z9hG4bKinv1", 1);
    h.receive(Message::Request(req.clone()), Transport::Tcp);
    let id = h.new_request();
    h.respond(id, response(&req, 486));
    h.run_until(32_000);
    assert_eq!(times(&h.take_sent()), [0]);
    assert_eq!(h.take_events(), [(32_000, TxEvent::NoAck { id })]);

    let req = request("INVITE", "z9hG4bKinv2", 2);
    h.receive(Message::Request(req.clone()), Transport::Tcp);
    let id = h.new_request();
    h.respond(id, response(&req, 486));
    h.receive(
        Message::Request(request("ACK", "z9hG4bKinv2", 2)),
        Transport::Tcp,
    );
    assert!(h.layer.is_empty(), "I is zero on TCP");
}

#[test]
fn cancel_finds_its_invite() {
    let mut h = Harness::new();
    h.receive(
        Message::Request(request("INVITE", "z9hG4bKinv1", 1)),
        Transport::Udp,
    );
    let invite_id = h.new_request();
    let cancel = request("CANCEL", "z9hG4bKinv1", 1);
    h.receive(Message::Request(cancel.clone()), Transport::Udp);
    let cancel_id = h.new_request();
    assert_ne!(cancel_id, invite_id, "CANCEL is a transaction of its own");
    assert_eq!(h.layer.find_invite(&cancel), Some(invite_id));
    assert_eq!(
        h.layer.find_invite(&request("CANCEL", "z9hG4bKother", 1)),
        None
    );
}

#[test]
fn requests_without_a_3261_branch_match_the_rfc2543_way() {
    let mut h = Harness::new();
    let req = request("OPTIONS", "z9hG4bK", 8);
    h.receive(Message::Request(req.clone()), Transport::Udp);
    let id = h.new_request();
    h.respond(id, response(&req, 200));
    h.receive(Message::Request(req), Transport::Udp);
    assert!(h.take_events().is_empty());
    assert_eq!(statuses(&h.take_sent()), [(0, 200), (0, 200)]);
    h.receive(
        Message::Request(request("OPTIONS", "z9hG4bK", 9)),
        Transport::Udp,
    );
    h.new_request();
}

fn our_request(method: &str, branch: &str) -> Request {
    let mut r = request(method, branch, 1);
    r.headers
        .set("Via", format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch}"));
    r
}

fn reply(req: &Request, status: u16) -> Message {
    Message::Response(response(req, status))
}

#[test]
fn invite_client_timer_a_doubles_and_timer_b_times_out() {
    let mut h = Harness::new();
    let id = h.layer.request(
        h.now,
        our_request("INVITE", "z9hG4bKc1"),
        peer(),
        Transport::Udp,
    );
    h.drain();
    h.run_until(40_000);
    assert_eq!(
        times(&h.take_sent()),
        [0, 500, 1500, 3500, 7500, 15_500, 31_500]
    );
    assert_eq!(h.take_events(), [(32_000, TxEvent::Timeout { id })]);
    assert!(h.layer.is_empty());
}

#[test]
fn invite_client_on_tcp_never_retransmits() {
    let mut h = Harness::new();
    let id = h.layer.request(
        h.now,
        our_request("INVITE", "z9hG4bKc1"),
        peer(),
        Transport::Tcp,
    );
    h.drain();
    h.run_until(40_000);
    assert_eq!(times(&h.take_sent()), [0]);
    assert_eq!(h.take_events(), [(32_000, TxEvent::Timeout { id })]);
}

#[test]
fn provisional_response_stops_timer_a_and_timer_b() {
    let mut h = Harness::new();
    let req = our_request("INVITE", "z9hG4bKc1");
    h.layer.request(h.now, req.clone(), peer(), Transport::Udp);
    h.drain();
    h.run_until(600);
    h.receive(reply(&req, 180), Transport::Udp);
    h.receive(reply(&req, 180), Transport::Udp);
    h.run_until(100_000);
    assert_eq!(times(&h.take_sent()), [0, 500]);
    assert_eq!(
        h.take_events().len(),
        1,
        "one 180, once; no timeout in Proceeding"
    );
    assert_eq!(h.layer.len(), 1);
}

#[test]
fn invite_client_acks_a_non_2xx_and_absorbs_its_retransmissions() {
    let mut h = Harness::new();
    let req = our_request("INVITE", "z9hG4bKc1");
    let id = h.layer.request(h.now, req.clone(), peer(), Transport::Udp);
    h.drain();
    h.take_sent();
    h.receive(reply(&req, 486), Transport::Udp);
    assert!(
        matches!(h.take_events().as_slice(), [(_, TxEvent::Response { id: got, .. })] if *got == id)
    );
    let sent = h.take_sent();
    let Message::Request(ack) = &sent[0].1.message else {
        panic!("expected the ACK");
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    assert_eq!(ack.branch(), req.branch());
    assert_eq!(ack.to().unwrap().tag(), Some("b2"));
    h.receive(reply(&req, 486), Transport::Udp);
    assert!(h.take_events().is_empty());
    assert_eq!(h.take_sent().len(), 1, "the ACK again");
    // Timer D: 32 s.
    h.run_until(31_999);
    assert_eq!(h.layer.len(), 1);
    h.run_until(32_000);
    assert!(h.layer.is_empty());
}

#[test]
fn invite_client_accepted_resends_the_users_ack_for_2xx_retransmissions() {
    let mut h = Harness::new();
    let req = our_request("INVITE", "z9hG4bKc1");
    h.layer.request(h.now, req.clone(), peer(), Transport::Udp);
    h.drain();
    h.take_sent();
    h.receive(reply(&req, 200), Transport::Udp);
    assert_eq!(h.take_events().len(), 1);
    let mut ack = our_request("ACK", "z9hG4bKack");
    ack.headers.set("CSeq", "1 ACK");
    h.layer.send_ack(ack.clone(), peer(), Transport::Udp);
    h.drain();
    h.take_sent();
    h.receive(reply(&req, 200), Transport::Udp);
    assert!(
        h.take_events().is_empty(),
        "the retransmitted 2xx is absorbed"
    );
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.message, Message::Request(ack));
    // A 2xx from another fork (other To tag) goes up.
    let mut forked = response(&req, 200);
    forked
        .headers
        .set("To", "<sip:1111@gw.example.com>;tag=fork2");
    h.receive(Message::Response(forked), Transport::Udp);
    assert_eq!(h.take_events().len(), 1);
    // Timer M ends it.
    h.run_until(32_000);
    assert!(h.layer.is_empty());
}

#[test]
fn non_invite_client_timer_e_caps_at_t2_and_timer_f_times_out() {
    let mut h = Harness::new();
    let id = h.layer.request(
        h.now,
        our_request("OPTIONS", "z9hG4bKo1"),
        peer(),
        Transport::Udp,
    );
    h.drain();
    h.run_until(40_000);
    assert_eq!(
        times(&h.take_sent()),
        [0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(h.take_events(), [(32_000, TxEvent::Timeout { id })]);
}

#[test]
fn non_invite_client_in_proceeding_retransmits_every_t2() {
    let mut h = Harness::new();
    let req = our_request("OPTIONS", "z9hG4bKo1");
    h.layer.request(h.now, req.clone(), peer(), Transport::Udp);
    h.drain();
    h.run_until(600);
    h.receive(reply(&req, 100), Transport::Udp);
    h.run_until(13_000);
    // The E already due at 1.5 s fires, then every T2 (§17.1.2.2).
    assert_eq!(times(&h.take_sent()), [0, 500, 1500, 5500, 9500]);
}

#[test]
fn non_invite_client_timer_k_is_t4_on_udp_and_zero_on_tcp() {
    let mut h = Harness::new();
    let req = our_request("OPTIONS", "z9hG4bKo1");
    h.layer.request(h.now, req.clone(), peer(), Transport::Udp);
    h.drain();
    h.receive(reply(&req, 200), Transport::Udp);
    h.receive(reply(&req, 200), Transport::Udp);
    assert_eq!(h.take_events().len(), 1, "the final once");
    h.run_until(4_999);
    assert_eq!(h.layer.len(), 1);
    h.run_until(5_000);
    assert!(h.layer.is_empty());

    let req = our_request("OPTIONS", "z9hG4bKo2");
    h.layer.request(h.now, req.clone(), peer(), Transport::Tcp);
    h.receive(reply(&req, 200), Transport::Tcp);
    assert!(h.layer.is_empty());
}

#[test]
fn stray_responses_are_dropped() {
    let mut h = Harness::new();
    let req = our_request("OPTIONS", "z9hG4bKnobody");
    h.receive(reply(&req, 200), Transport::Udp);
    assert!(h.take_events().is_empty());
    assert!(h.take_sent().is_empty());
}
