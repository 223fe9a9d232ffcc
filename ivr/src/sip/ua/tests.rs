//! Simulated-time tests: the far end is played by hand-written messages fed through the
//! parser; time only moves when a test says so.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::message::parse;

#[allow(clippy::disallowed_methods)] // the one real instant; everything else is base + offset
fn base() -> Instant {
    Instant::now()
}

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";

fn peer() -> SocketAddr {
    "192.0.2.7:5060".parse().expect("literal address")
}

fn uri(text: &str) -> Uri {
    Uri::parse(text).expect("literal URI")
}

/// A message as a peer would send it: `\n` becomes CRLF, Content-Length is added.
fn wire(head: &str, body: &str) -> String {
    let head = head.trim().replace('\n', "\r\n");
    format!("{head}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// The user agent and a simulated clock, with the far end at `peer()` over UDP.
struct Sim {
    ua: Ua,
    now: Instant,
}

impl Sim {
    fn new() -> Self {
        let config = UaConfig {
            contact: uri("sip:hotline@192.0.2.10:5060"),
            user_agent: "ivr-test".into(),
            timers: Timers::default(),
        };
        Sim {
            ua: Ua::new(config, 7),
            now: base(),
        }
    }

    fn deliver(&mut self, text: &str) {
        let message = parse(text.as_bytes()).expect("test message parses");
        self.ua.receive(self.now, message, peer(), Transport::Udp);
    }

    /// Moves the clock forward, running every timer on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.ua.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.ua.handle_timeout(self.now);
        }
        self.now = until;
    }

    fn sent(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.ua.poll_transmit())
            .map(|t| {
                assert_eq!(t.dest, peer(), "everything goes back to the peer");
                t.message
            })
            .collect()
    }

    fn responses(&mut self) -> Vec<Response> {
        self.sent()
            .into_iter()
            .filter_map(|m| match m {
                Message::Response(r) => Some(r),
                Message::Request(_) => None,
            })
            .collect()
    }

    /// The final (or provisional above 100) statuses sent.
    fn statuses(&mut self) -> Vec<u16> {
        self.responses()
            .iter()
            .map(|r| r.status)
            .filter(|s| *s > 100)
            .collect()
    }

    fn requests(&mut self) -> Vec<Request> {
        self.sent()
            .into_iter()
            .filter_map(|m| match m {
                Message::Request(r) => Some(r),
                Message::Response(_) => None,
            })
            .collect()
    }

    fn events(&mut self) -> Vec<UaEvent> {
        std::iter::from_fn(|| self.ua.poll_event()).collect()
    }

    /// An incoming call from a `Caller`, up to its `Incoming` event.
    fn incoming(&mut self, caller: &mut Caller) -> CallRef {
        self.deliver(&caller.invite(OFFER));
        let events = self.events();
        let [UaEvent::Incoming { call, .. }] = events.as_slice() else {
            panic!("expected one Incoming, got {events:?}");
        };
        *call
    }

    /// An incoming call answered and acknowledged; the caller learns our tag.
    fn established(&mut self, caller: &mut Caller) -> CallRef {
        let call = self.incoming(caller);
        self.ua
            .answer(self.now, call, ANSWER.into())
            .expect("answer");
        let ok = self
            .responses()
            .into_iter()
            .find(|r| r.status == 200)
            .expect("200 sent");
        caller.learn_tag(&ok);
        self.deliver(&caller.ack());
        assert_eq!(
            self.events(),
            vec![UaEvent::Established { call, answer: None }]
        );
        call
    }
}

/// The far end of an incoming call, building its requests by hand.
struct Caller {
    call_id: String,
    to_tag: Option<String>,
    cseq: u32,
    invite_cseq: u32,
    branch: u32,
}

impl Caller {
    fn new(call_id: &str) -> Self {
        Caller {
            call_id: call_id.into(),
            to_tag: None,
            cseq: 10,
            invite_cseq: 10,
            branch: 0,
        }
    }

    fn learn_tag(&mut self, response: &Response) {
        let to = response.to().expect("To");
        self.to_tag = Some(to.tag().expect("To tag on the response").to_owned());
    }

    fn next_branch(&mut self) -> String {
        self.branch += 1;
        format!("z9hG4bKcaller{}", self.branch)
    }

    /// A request with the given method, CSeq and extra header lines.
    fn request_with(
        &mut self,
        method: &str,
        cseq: u32,
        branch: &str,
        extra: &str,
        body: &str,
    ) -> String {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let uri = if self.to_tag.is_some() {
            "sip:hotline@192.0.2.10:5060"
        } else {
            "sip:1111@192.0.2.10"
        };
        wire(
            &format!(
                "{method} {uri} SIP/2.0
Via: SIP/2.0/UDP 192.0.2.7:5060;branch={branch}
Max-Forwards: 70
From: \"Caller\" <sip:99112233@192.0.2.7>;tag=callertag
To: <sip:1111@192.0.2.10>{to_tag}
Call-ID: {call_id}
CSeq: {cseq} {method}
{extra}",
                call_id = self.call_id
            ),
            body,
        )
    }

    /// A new request in the dialog (next CSeq, fresh branch).
    fn request(&mut self, method: &str, extra: &str, body: &str) -> String {
        self.cseq += 1;
        let branch = self.next_branch();
        self.request_with(method, self.cseq, &branch, extra, body)
    }

    fn invite(&mut self, body: &str) -> String {
        self.invite_cseq = self.cseq;
        let branch = self.next_branch();
        let extra = "Contact: <sip:99112233@192.0.2.7:5060>
Record-Route: <sip:proxy1.example;lr>, <sip:proxy2.example;lr>
Content-Type: application/sdp";
        self.request_with("INVITE", self.cseq, &branch, extra, body)
    }

    fn reinvite(&mut self, body: &str) -> String {
        self.cseq += 1;
        self.invite_cseq = self.cseq;
        let branch = self.next_branch();
        let extra = "Contact: <sip:99112233@192.0.2.7:5070>\nContent-Type: application/sdp";
        self.request_with("INVITE", self.cseq, &branch, extra, body)
    }

    /// The ACK for the last INVITE's 2xx (its own transaction).
    fn ack(&mut self) -> String {
        let branch = self.next_branch();
        self.request_with("ACK", self.invite_cseq, &branch, "", "")
    }

    /// CANCEL for the last INVITE: same branch and CSeq number (RFC 3261 9.1).
    fn cancel(&mut self) -> String {
        let branch = format!("z9hG4bKcaller{}", self.branch);
        let saved = self.to_tag.take();
        let text = self.request_with("CANCEL", self.invite_cseq, &branch, "", "");
        self.to_tag = saved;
        text
    }
}

/// A response from the far end to one of our requests.
fn answer_to(request: &Request, status: u16, to_tag: &str, extra: &str, body: &str) -> String {
    let h = |name: &str| {
        request
            .headers
            .get(name)
            .expect("header on our request")
            .to_owned()
    };
    let to = request.to().expect("To");
    let to = if to.tag().is_some() || to_tag.is_empty() {
        h("To")
    } else {
        format!("{};tag={to_tag}", h("To"))
    };
    wire(
        &format!(
            "SIP/2.0 {status} Whatever
Via: {via}
From: {from}
To: {to}
Call-ID: {call_id}
CSeq: {cseq}
{extra}",
            via = h("Via"),
            from = h("From"),
            call_id = h("Call-ID"),
            cseq = h("CSeq"),
        ),
        body,
    )
}

fn header(message: &Response, name: &str) -> String {
    message.headers.get(name).unwrap_or_default().to_owned()
}

// ---- incoming calls --------------------------------------------------------------------

#[test]
fn incoming_call_rings_is_answered_and_ends_with_the_callers_bye() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-1@192.0.2.7");
    sim.deliver(&caller.invite(OFFER));
    let events = sim.events();
    let [UaEvent::Incoming {
        call,
        call_id,
        from,
        offer,
        source,
        ..
    }] = events.as_slice()
    else {
        panic!("expected Incoming, got {events:?}");
    };
    let call = *call;
    assert_eq!(call_id, "in-1@192.0.2.7");
    assert_eq!(from.uri.user.as_deref(), Some("99112233"));
    assert_eq!(offer.as_deref(), Some(OFFER.as_bytes()));
    assert_eq!(*source, peer());
    assert!(
        sim.sent().is_empty(),
        "100 Trying only if the driver takes more than 200 ms"
    );
    sim.advance(Duration::from_millis(250));
    assert_eq!(
        sim.responses().iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![100]
    );

    sim.ua.ring(sim.now, call).expect("ring");
    let ringing = sim.responses();
    assert_eq!(ringing[0].status, 180);
    let tag = ringing[0]
        .to()
        .expect("To")
        .tag()
        .expect("tag on 180")
        .to_owned();
    assert!(header(&ringing[0], "Contact").contains("sip:hotline@192.0.2.10:5060"));

    sim.ua.answer(sim.now, call, ANSWER.into()).expect("answer");
    let ok = sim.responses();
    assert_eq!(ok[0].status, 200);
    assert_eq!(
        ok[0].to().expect("To").tag(),
        Some(tag.as_str()),
        "one tag for 1xx and 2xx"
    );
    assert_eq!(ok[0].body, ANSWER.as_bytes());
    assert_eq!(header(&ok[0], "Content-Type"), "application/sdp");
    assert!(!header(&ok[0], "Contact").is_empty());

    caller.learn_tag(&ok[0]);
    sim.deliver(&caller.ack());
    assert_eq!(
        sim.events(),
        vec![UaEvent::Established { call, answer: None }]
    );

    sim.deliver(&caller.request("BYE", "", ""));
    assert_eq!(sim.statuses(), vec![200]);
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(sim.ua.calls(), 0);
    assert_eq!(
        sim.ua.hangup(sim.now, call),
        Err(UaError::UnknownCall(call))
    );
}

#[test]
fn hangup_sends_bye_along_the_route_set_and_forgets_the_call_once_answered() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-2@192.0.2.7");
    let call = sim.established(&mut caller);

    sim.ua.hangup(sim.now, call).expect("hangup");
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::LocalBye
        }]
    );
    let requests = sim.requests();
    let [bye] = requests.as_slice() else {
        panic!("expected one BYE, got {requests:?}")
    };
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(
        bye.uri.to_string(),
        "sip:99112233@192.0.2.7:5060",
        "remote target = Contact"
    );
    let routes: Vec<&str> = bye.headers.get_all("Route").collect();
    assert_eq!(
        routes,
        vec!["<sip:proxy1.example;lr>", "<sip:proxy2.example;lr>"]
    );
    assert_eq!(bye.to().expect("To").tag(), Some("callertag"));
    assert_eq!(bye.from().expect("From").tag(), caller.to_tag.as_deref());
    assert_eq!(bye.call_id().expect("Call-ID"), "in-2@192.0.2.7");
    assert_eq!(sim.ua.calls(), 1, "kept until the BYE completes");

    sim.deliver(&answer_to(bye, 200, "unused", "", ""));
    assert_eq!(sim.ua.calls(), 0);
    assert!(sim.events().is_empty());
}

#[test]
fn cancel_before_answer_sends_200_and_487_and_reports_cancelled() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-3@192.0.2.7");
    let call = sim.incoming(&mut caller);
    sim.ua.ring(sim.now, call).expect("ring");
    sim.sent();

    sim.deliver(&caller.cancel());
    let responses = sim.responses();
    let summary: Vec<(u16, String)> = responses
        .iter()
        .map(|r| (r.status, r.cseq().expect("CSeq").method.to_string()))
        .collect();
    assert_eq!(
        summary,
        vec![(200, "CANCEL".into()), (487, "INVITE".into())]
    );
    assert_eq!(sim.events(), vec![UaEvent::Cancelled { call }]);
    assert_eq!(sim.ua.calls(), 0);
    // The driver's answer racing the CANCEL is refused, not sent.
    assert_eq!(
        sim.ua.answer(sim.now, call, ANSWER.into()),
        Err(UaError::UnknownCall(call))
    );
    assert!(sim.sent().is_empty());
}

#[test]
fn cancel_after_the_answer_only_gets_200() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-4@192.0.2.7");
    let call = sim.incoming(&mut caller);
    sim.ua.answer(sim.now, call, ANSWER.into()).expect("answer");
    sim.sent();
    sim.deliver(&caller.cancel());
    assert_eq!(sim.statuses(), vec![200]);
    assert!(sim.events().is_empty());
    assert_eq!(sim.ua.calls(), 1);
}

#[test]
fn cancel_matching_no_invite_gets_481() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-5@192.0.2.7");
    caller.branch = 41;
    sim.deliver(&caller.cancel());
    assert_eq!(sim.statuses(), vec![481]);
}

#[test]
fn missing_ack_ends_the_call_with_bye() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-6@192.0.2.7");
    let call = sim.incoming(&mut caller);
    sim.ua.answer(sim.now, call, ANSWER.into()).expect("answer");
    sim.sent();
    sim.advance(Duration::from_secs(33));
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::NoAck
        }]
    );
    let requests = sim.requests();
    assert!(
        requests.iter().any(|r| r.method == Method::Bye),
        "BYE sent: {requests:?}"
    );
}

#[test]
fn hangup_before_the_ack_holds_the_bye_until_the_ack() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-7@192.0.2.7");
    let call = sim.incoming(&mut caller);
    sim.ua.answer(sim.now, call, ANSWER.into()).expect("answer");
    let ok = sim
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .expect("200");
    caller.learn_tag(&ok);
    sim.ua.hangup(sim.now, call).expect("hangup");
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::LocalBye
        }]
    );
    assert!(
        sim.requests().is_empty(),
        "no BYE before the ACK (RFC 3261 15)"
    );
    sim.deliver(&caller.ack());
    let requests = sim.requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| r.method.clone())
            .collect::<Vec<_>>(),
        vec![Method::Bye]
    );
    assert!(
        sim.events().is_empty(),
        "no Established for a call already ended"
    );
}

#[test]
fn hangup_of_an_unanswered_call_sends_480() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-8@192.0.2.7");
    let call = sim.incoming(&mut caller);
    sim.sent();
    sim.ua.hangup(sim.now, call).expect("hangup");
    assert_eq!(sim.statuses(), vec![480]);
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::LocalBye
        }]
    );
    assert_eq!(sim.ua.calls(), 0);
}

#[test]
fn reject_sends_the_status_with_extra_headers() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-9@192.0.2.7");
    let call = sim.incoming(&mut caller);
    sim.sent();
    sim.ua
        .reject(sim.now, call, 503, &[("Retry-After", "30".into())])
        .expect("reject");
    let responses = sim.responses();
    assert_eq!(responses[0].status, 503);
    assert_eq!(header(&responses[0], "Retry-After"), "30");
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::Failed(503)
        }]
    );
    assert_eq!(
        sim.ua.reject(sim.now, call, 200, &[]),
        Err(UaError::BadStatus(200))
    );
}

#[test]
fn bye_on_an_early_dialog_ends_the_call_and_the_invite_gets_487() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-10@192.0.2.7");
    let call = sim.incoming(&mut caller);
    sim.ua.ring(sim.now, call).expect("ring");
    let ringing = sim
        .responses()
        .into_iter()
        .find(|r| r.status == 180)
        .expect("180");
    caller.learn_tag(&ringing);
    sim.deliver(&caller.request("BYE", "", ""));
    let responses = sim.responses();
    let summary: Vec<(u16, String)> = responses
        .iter()
        .map(|r| (r.status, r.cseq().expect("CSeq").method.to_string()))
        .collect();
    assert_eq!(summary, vec![(200, "BYE".into()), (487, "INVITE".into())]);
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(sim.ua.calls(), 0);
}

#[test]
fn retransmitted_invite_and_bye_are_absorbed() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-11@192.0.2.7");
    let invite = caller.invite(OFFER);
    sim.deliver(&invite);
    sim.deliver(&invite);
    assert_eq!(sim.events().len(), 1, "one Incoming for two copies");
    let call = CallRef(1);
    sim.ua.answer(sim.now, call, ANSWER.into()).expect("answer");
    let ok = sim
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .expect("200");
    caller.learn_tag(&ok);
    sim.deliver(&caller.ack());
    sim.events();
    let bye = caller.request("BYE", "", "");
    sim.deliver(&bye);
    sim.deliver(&bye);
    assert_eq!(
        sim.statuses(),
        vec![200, 200],
        "the 200 is sent again for the copy"
    );
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
}

// ---- re-INVITE and INFO ------------------------------------------------------------------

#[test]
fn reinvite_hold_and_unhold_are_answered_by_the_driver() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-12@192.0.2.7");
    let call = sim.established(&mut caller);
    sim.sent();

    let hold = format!("{OFFER}a=sendonly\r\n");
    sim.deliver(&caller.reinvite(&hold));
    assert_eq!(
        sim.events(),
        vec![UaEvent::Reoffer {
            call,
            offer: Some(hold.clone().into_bytes())
        }]
    );
    sim.ua
        .answer_reoffer(sim.now, call, b"recvonly answer".to_vec())
        .expect("answer re-offer");
    let ok = sim
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .expect("200");
    assert_eq!(ok.body, b"recvonly answer");
    sim.deliver(&caller.ack());
    assert!(sim.events().is_empty());

    // The re-INVITE's Contact is the new remote target.
    sim.deliver(&caller.reinvite(OFFER));
    assert_eq!(
        sim.events(),
        vec![UaEvent::Reoffer {
            call,
            offer: Some(OFFER.into())
        }]
    );
    sim.ua
        .answer_reoffer(sim.now, call, ANSWER.into())
        .expect("answer unhold");
    sim.deliver(&caller.ack());
    sim.sent();
    sim.ua.hangup(sim.now, call).expect("hangup");
    let bye = sim.requests().pop().expect("BYE");
    assert_eq!(bye.uri.to_string(), "sip:99112233@192.0.2.7:5070");
}

#[test]
fn reinvite_while_one_is_pending_gets_500_with_retry_after() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-13@192.0.2.7");
    let call = sim.established(&mut caller);
    sim.deliver(&caller.reinvite(OFFER));
    sim.events();
    sim.sent();
    sim.deliver(&caller.reinvite(OFFER));
    let responses = sim.responses();
    assert_eq!(responses[0].status, 500);
    let wait: u32 = header(&responses[0], "Retry-After")
        .parse()
        .expect("Retry-After seconds");
    assert!(wait <= 10);
    // The first one is still answerable.
    sim.ua
        .reject_reoffer(sim.now, call, 488)
        .expect("reject re-offer");
    assert_eq!(sim.statuses(), vec![488]);
}

#[test]
fn reinvite_before_the_first_invite_is_answered_gets_500() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-14@192.0.2.7");
    let call = sim.incoming(&mut caller);
    sim.ua.ring(sim.now, call).expect("ring");
    let ringing = sim
        .responses()
        .into_iter()
        .find(|r| r.status == 180)
        .expect("180");
    caller.learn_tag(&ringing);
    sim.deliver(&caller.reinvite(OFFER));
    let responses = sim.responses();
    assert_eq!(responses[0].status, 500);
    assert!(!header(&responses[0], "Retry-After").is_empty());
}

#[test]
fn info_carries_dtmf_in_both_body_formats() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("in-15@192.0.2.7");
    let call = sim.established(&mut caller);
    sim.deliver(&caller.request(
        "INFO",
        "Content-Type: application/dtmf-relay",
        "Signal=5\r\nDuration=160\r\n",
    ));
    sim.deliver(&caller.request(
        "INFO",
        "Content-Type: application/dtmf-relay",
        "Signal= 11\r\n",
    ));
    sim.deliver(&caller.request("INFO", "Content-Type: application/dtmf", "*"));
    assert_eq!(sim.statuses(), vec![200, 200, 200]);
    assert_eq!(
        sim.events(),
        vec![
            UaEvent::Dtmf {
                call,
                key: '5',
                duration_ms: 160
            },
            UaEvent::Dtmf {
                call,
                key: '#',
                duration_ms: 0
            },
            UaEvent::Dtmf {
                call,
                key: '*',
                duration_ms: 0
            },
        ]
    );
    sim.deliver(&caller.request("INFO", "Content-Type: text/plain", "hello"));
    sim.deliver(&caller.request(
        "INFO",
        "Content-Type: application/dtmf-relay",
        "Signal=X\r\n",
    ));
    sim.deliver(&caller.request("INFO", "", ""));
    assert_eq!(sim.statuses(), vec![415, 400, 200]);
    assert!(sim.events().is_empty());
}

// ---- requests we do not serve --------------------------------------------------------------

/// One request out of any dialog, and the response it got.
fn lone_request(method: &str, request_uri: &str, extra: &str, body: &str) -> Response {
    let mut sim = Sim::new();
    let text = wire(
        &format!(
            "{method} {request_uri} SIP/2.0
Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKlone
Max-Forwards: 70
From: <sip:99112233@192.0.2.7>;tag=lone
To: <sip:1111@192.0.2.10>
Call-ID: lone@192.0.2.7
CSeq: 1 {method}
Contact: <sip:99112233@192.0.2.7>
{extra}"
        ),
        body,
    );
    sim.deliver(&text);
    assert!(sim.events().is_empty(), "no call for a refused request");
    let mut responses: Vec<Response> = sim
        .responses()
        .into_iter()
        .filter(|r| r.status > 100)
        .collect();
    assert_eq!(responses.len(), 1, "exactly one final response");
    let response = responses.remove(0);
    assert!(
        response.to().expect("To").tag().is_some(),
        "To tag on a final response"
    );
    response
}

#[test]
fn methods_the_hotline_does_not_serve_get_405_with_allow() {
    for method in ["REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE"] {
        let response = lone_request(method, "sip:1111@192.0.2.10", "", "");
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(header(&response, "Allow"), ALLOW);
    }
}

#[test]
fn unknown_methods_get_501() {
    assert_eq!(
        lone_request("FROBNICATE", "sip:1111@192.0.2.10", "", "").status,
        501
    );
}

#[test]
fn in_dialog_requests_without_a_dialog_get_481_and_acks_are_absorbed() {
    let mut sim = Sim::new();
    let mut stranger = Caller::new("nobody@192.0.2.7");
    stranger.to_tag = Some("neverissued".into());
    sim.deliver(&stranger.request("BYE", "", ""));
    sim.deliver(&stranger.request("INFO", "", ""));
    assert_eq!(sim.statuses(), vec![481, 481]);
    sim.deliver(&stranger.ack());
    assert!(sim.sent().is_empty(), "an ACK is never answered");
    assert_eq!(
        lone_request("BYE", "sip:1111@192.0.2.10", "", "").status,
        481
    );
}

#[test]
fn max_forwards_zero_gets_483_but_options_is_still_answered() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("mf0@192.0.2.7");
    let invite = caller
        .invite(OFFER)
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    sim.deliver(&invite);
    assert_eq!(sim.statuses(), vec![483]);
    assert!(sim.events().is_empty());
    let options = lone_request("OPTIONS", "sip:1111@192.0.2.10", "", "");
    assert_eq!(options.status, 200);
}

#[test]
fn unsupported_uri_schemes_get_416() {
    assert_eq!(
        lone_request("INVITE", "mailto:someone@example.com", "", "").status,
        416
    );
    assert_eq!(
        lone_request("OPTIONS", "tel:+97611111111", "", "").status,
        200
    );
}

#[test]
fn required_extensions_get_420_naming_them() {
    let response = lone_request(
        "INVITE",
        "sip:1111@192.0.2.10",
        "Require: 100rel, timer",
        "",
    );
    assert_eq!(response.status, 420);
    assert_eq!(header(&response, "Unsupported"), "100rel, timer");
}

#[test]
fn invite_bodies_other_than_sdp_get_415_with_accept() {
    let response = lone_request(
        "INVITE",
        "sip:1111@192.0.2.10",
        "Content-Type: text/plain",
        "hello",
    );
    assert_eq!(response.status, 415);
    assert_eq!(header(&response, "Accept"), "application/sdp");
}

#[test]
fn options_reports_our_capabilities() {
    let response = lone_request("OPTIONS", "sip:1111@192.0.2.10", "", "");
    assert_eq!(response.status, 200);
    assert_eq!(header(&response, "Allow"), ALLOW);
    assert_eq!(header(&response, "Accept"), "application/sdp");
    assert_eq!(header(&response, "Accept-Language"), "mn, en");
}

#[test]
fn out_of_order_cseq_in_a_dialog_gets_500() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("cseq@192.0.2.7");
    sim.established(&mut caller);
    sim.sent();
    let stale = caller.request_with("INFO", caller.invite_cseq, "z9hG4bKstale", "", "");
    sim.deliver(&stale);
    sim.deliver(&caller.request("OPTIONS", "", ""));
    assert_eq!(sim.statuses(), vec![500, 200]);
}

#[test]
fn a_forked_copy_of_a_pending_invite_gets_482() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("merged@192.0.2.7");
    sim.incoming(&mut caller);
    sim.sent();
    let copy = caller.invite(OFFER); // same Call-ID, From tag and CSeq, other branch
    sim.deliver(&copy);
    assert_eq!(sim.statuses(), vec![482]);
    assert!(sim.events().is_empty());
}

#[test]
fn stateless_responses_carry_a_to_tag_and_the_headers_given() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("stateless@192.0.2.7");
    let Ok(Message::Request(invite)) = parse(caller.invite(OFFER).as_bytes()) else {
        panic!("INVITE parses");
    };
    sim.ua.respond_stateless(
        &invite,
        peer(),
        Transport::Udp,
        503,
        &[("Retry-After", "5".into())],
    );
    let responses = sim.responses();
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 503);
    assert_eq!(header(&responses[0], "Retry-After"), "5");
    assert!(responses[0].to().expect("To").tag().is_some());
    assert_eq!(sim.ua.calls(), 0);
}

// ---- transfer ----------------------------------------------------------------------------

fn notify(caller: &mut Caller, frag: &str, state: &str) -> String {
    caller.request(
        "NOTIFY",
        &format!(
            "Event: refer\nSubscription-State: {state}\nContent-Type: message/sipfrag;version=2.0"
        ),
        frag,
    )
}

#[test]
fn refer_accepted_then_notify_reports_progress_and_success() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("refer-1@192.0.2.7");
    let call = sim.established(&mut caller);
    sim.sent();
    sim.ua
        .transfer(sim.now, call, &uri("sip:operators@192.0.2.20"))
        .expect("transfer");
    let refer = sim.requests().pop().expect("REFER");
    assert_eq!(refer.method, Method::Refer);
    assert_eq!(
        refer.headers.get("Refer-To"),
        Some("<sip:operators@192.0.2.20>")
    );
    assert!(refer.headers.get("Referred-By").is_some());
    assert!(refer.headers.get("Contact").is_some());
    assert_eq!(
        sim.ua.transfer(sim.now, call, &uri("sip:x@192.0.2.20")),
        Err(UaError::WrongState {
            call,
            action: "transfer"
        })
    );

    sim.deliver(&answer_to(&refer, 202, "", "", ""));
    assert_eq!(sim.events(), vec![UaEvent::TransferAccepted { call }]);
    sim.deliver(&notify(
        &mut caller,
        "SIP/2.0 100 Trying\r\n",
        "active;expires=60",
    ));
    sim.deliver(&notify(
        &mut caller,
        "SIP/2.0 200 OK\r\n",
        "terminated;reason=noresource",
    ));
    assert_eq!(sim.statuses(), vec![200, 200]);
    assert_eq!(
        sim.events(),
        vec![
            UaEvent::TransferProgress { call, status: 100 },
            UaEvent::TransferProgress { call, status: 200 }
        ]
    );
}

#[test]
fn refer_refused_with_501_fails_the_transfer() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("refer-2@192.0.2.7");
    let call = sim.established(&mut caller);
    sim.sent();
    sim.ua
        .transfer(sim.now, call, &uri("sip:operators@192.0.2.20"))
        .expect("transfer");
    let refer = sim.requests().pop().expect("REFER");
    sim.deliver(&answer_to(&refer, 501, "", "", ""));
    assert_eq!(
        sim.events(),
        vec![UaEvent::TransferFailed { call, status: 501 }]
    );
    // The call goes on, and a second try is allowed (the bridged fallback is the driver's).
    sim.ua
        .transfer(sim.now, call, &uri("sip:operators@192.0.2.20"))
        .expect("second transfer");
}

#[test]
fn notify_with_a_final_failure_fails_the_transfer() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("refer-3@192.0.2.7");
    let call = sim.established(&mut caller);
    sim.ua
        .transfer(sim.now, call, &uri("sip:operators@192.0.2.20"))
        .expect("transfer");
    let refer = sim.requests().pop().expect("REFER");
    // The NOTIFY overtakes the 202.
    sim.deliver(&notify(
        &mut caller,
        "SIP/2.0 486 Busy Here\r\n",
        "terminated",
    ));
    sim.deliver(&answer_to(&refer, 202, "", "", ""));
    assert_eq!(
        sim.events(),
        vec![
            UaEvent::TransferAccepted { call },
            UaEvent::TransferFailed { call, status: 486 }
        ]
    );
}

#[test]
fn unanswered_refer_fails_the_transfer_with_408() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("refer-4@192.0.2.7");
    let call = sim.established(&mut caller);
    sim.ua
        .transfer(sim.now, call, &uri("sip:operators@192.0.2.20"))
        .expect("transfer");
    sim.advance(Duration::from_secs(40));
    assert_eq!(
        sim.events(),
        vec![UaEvent::TransferFailed { call, status: 408 }]
    );
}

// ---- outbound calls ----------------------------------------------------------------------

fn call_out(sim: &mut Sim) -> (CallRef, Request) {
    let from = NameAddr::parse("<sip:hotline@192.0.2.10>").expect("literal name-addr");
    let call = sim.ua.invite(
        sim.now,
        uri("sip:99112233@192.0.2.7"),
        from,
        peer(),
        Transport::Udp,
        OFFER.into(),
        &[("P-Asserted-Identity", "<sip:1111@192.0.2.10>".into())],
    );
    let invite = sim.requests().pop().expect("INVITE sent");
    (call, invite)
}

/// A request from the callee of our INVITE, in its dialog (their tag: `callee`).
fn from_callee(invite: &Request, method: &str, cseq: u32, extra: &str, body: &str) -> String {
    let to = invite.headers.get("To").expect("To");
    let from = invite.headers.get("From").expect("From");
    let call_id = invite.call_id().expect("Call-ID");
    wire(
        &format!(
            "{method} sip:hotline@192.0.2.10:5060 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.7:5080;branch=z9hG4bKcallee{method}{cseq}
Max-Forwards: 70
From: {to};tag=callee
To: {from}
Call-ID: {call_id}
CSeq: {cseq} {method}
{extra}"
        ),
        body,
    )
}

const CALLEE_2XX: &str = "Contact: <sip:99112233@192.0.2.7:5080>
Record-Route: <sip:proxy1.example;lr>, <sip:proxy2.example;lr>
Content-Type: application/sdp";

#[test]
fn outbound_call_rings_is_answered_acked_and_ended_by_the_callee() {
    let mut sim = Sim::new();
    let (call, invite) = call_out(&mut sim);
    assert_eq!(invite.method, Method::Invite);
    assert_eq!(invite.body, OFFER.as_bytes());
    assert!(invite.from().expect("From").tag().is_some());
    assert_eq!(
        invite.headers.get("P-Asserted-Identity"),
        Some("<sip:1111@192.0.2.10>")
    );

    sim.deliver(&answer_to(&invite, 180, "callee", "", ""));
    assert_eq!(sim.events(), vec![UaEvent::Progress { call, status: 180 }]);
    let ok = answer_to(&invite, 200, "callee", CALLEE_2XX, ANSWER);
    sim.deliver(&ok);
    assert_eq!(
        sim.events(),
        vec![UaEvent::Answered {
            call,
            answer: Some(ANSWER.into())
        }]
    );
    let acks = sim.requests();
    let [ack] = acks.as_slice() else {
        panic!("one ACK, got {acks:?}")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri.to_string(), "sip:99112233@192.0.2.7:5080");
    let routes: Vec<&str> = ack.headers.get_all("Route").collect();
    assert_eq!(
        routes,
        vec!["<sip:proxy2.example;lr>", "<sip:proxy1.example;lr>"],
        "reversed"
    );
    assert_eq!(
        ack.cseq().expect("CSeq").seq,
        invite.cseq().expect("CSeq").seq
    );

    // A retransmitted 2xx is ACKed again.
    sim.deliver(&ok);
    assert_eq!(
        sim.requests()
            .iter()
            .filter(|r| r.method == Method::Ack)
            .count(),
        1
    );
    assert!(sim.events().is_empty());

    // The callee hangs up.
    let bye = from_callee(&invite, "BYE", 1, "", "");
    sim.deliver(&bye);
    assert_eq!(sim.statuses(), vec![200]);
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(sim.ua.calls(), 0);
}

#[test]
fn outbound_call_to_a_busy_line_fails_with_its_status() {
    let mut sim = Sim::new();
    let (call, invite) = call_out(&mut sim);
    sim.deliver(&answer_to(&invite, 486, "callee", "", ""));
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::Failed(486)
        }]
    );
    assert_eq!(sim.ua.calls(), 0);
}

#[test]
fn outbound_call_hung_up_while_ringing_is_cancelled() {
    let mut sim = Sim::new();
    let (call, invite) = call_out(&mut sim);
    sim.deliver(&answer_to(&invite, 180, "callee", "", ""));
    sim.events();
    sim.ua.hangup(sim.now, call).expect("hangup");
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::LocalBye
        }]
    );
    let cancel = sim.requests().pop().expect("CANCEL");
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(
        cancel.headers.get("Via"),
        invite.headers.get("Via"),
        "same branch as the INVITE"
    );
    assert_eq!(
        cancel.cseq().expect("CSeq").seq,
        invite.cseq().expect("CSeq").seq
    );
    sim.deliver(&answer_to(&cancel, 200, "callee", "", ""));
    sim.deliver(&answer_to(&invite, 487, "callee", "", ""));
    assert!(sim.events().is_empty());
    assert_eq!(sim.ua.calls(), 0);
}

#[test]
fn outbound_cancel_waits_for_a_provisional_response() {
    let mut sim = Sim::new();
    let (call, invite) = call_out(&mut sim);
    sim.ua.hangup(sim.now, call).expect("hangup");
    assert!(
        sim.requests().is_empty(),
        "no CANCEL before a provisional response (RFC 3261 9.1)"
    );
    sim.deliver(&answer_to(&invite, 100, "", "", ""));
    let requests = sim.requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| r.method.clone())
            .collect::<Vec<_>>(),
        vec![Method::Cancel]
    );
    // The far end never sends the 487: the call is given up 64*T1 after the CANCEL.
    sim.advance(Duration::from_secs(33));
    assert_eq!(sim.ua.calls(), 0);
}

#[test]
fn outbound_call_answered_after_cancel_is_acked_and_ended_with_bye() {
    let mut sim = Sim::new();
    let (call, invite) = call_out(&mut sim);
    sim.deliver(&answer_to(&invite, 180, "callee", "", ""));
    sim.ua.hangup(sim.now, call).expect("hangup");
    sim.events();
    sim.sent();
    sim.deliver(&answer_to(&invite, 200, "callee", CALLEE_2XX, ANSWER));
    let methods: Vec<Method> = sim.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, vec![Method::Ack, Method::Bye]);
    assert!(sim.events().is_empty(), "the driver already had Ended");
}

#[test]
fn reinvite_from_the_callee_of_an_outbound_call_is_a_reoffer() {
    let mut sim = Sim::new();
    let (call, invite) = call_out(&mut sim);
    sim.deliver(&answer_to(&invite, 200, "callee", CALLEE_2XX, ANSWER));
    sim.events();
    sim.sent();
    let extra = "Contact: <sip:99112233@192.0.2.7:5080>\nContent-Type: application/sdp";
    let reinvite = from_callee(&invite, "INVITE", 7, extra, OFFER);
    sim.deliver(&reinvite);
    assert_eq!(
        sim.events(),
        vec![UaEvent::Reoffer {
            call,
            offer: Some(OFFER.into())
        }]
    );
}

#[test]
fn outbound_call_without_any_response_times_out() {
    let mut sim = Sim::new();
    let (call, _) = call_out(&mut sim);
    sim.advance(Duration::from_secs(33));
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::Timeout
        }]
    );
    assert_eq!(sim.ua.calls(), 0);
}

#[test]
fn reinvite_in_the_early_dialog_of_our_invite_gets_491() {
    let mut sim = Sim::new();
    let (call, invite) = call_out(&mut sim);
    sim.deliver(&answer_to(&invite, 180, "callee", "", ""));
    assert_eq!(sim.events(), vec![UaEvent::Progress { call, status: 180 }]);
    let extra = "Contact: <sip:99112233@192.0.2.7:5080>\nContent-Type: application/sdp";
    sim.deliver(&from_callee(&invite, "INVITE", 3, extra, OFFER));
    assert_eq!(sim.statuses(), vec![491]);
    assert!(sim.events().is_empty());
}

#[test]
fn a_second_fork_answering_our_invite_is_acked_and_sent_bye() {
    let mut sim = Sim::new();
    let (call, invite) = call_out(&mut sim);
    sim.deliver(&answer_to(&invite, 200, "callee", CALLEE_2XX, ANSWER));
    assert_eq!(
        sim.events(),
        vec![UaEvent::Answered {
            call,
            answer: Some(ANSWER.into())
        }]
    );
    sim.sent();
    sim.deliver(&answer_to(&invite, 200, "otherfork", CALLEE_2XX, ANSWER));
    let requests = sim.requests();
    let summary: Vec<(Method, Option<String>)> = requests
        .iter()
        .map(|r| {
            let tag = r.to().expect("To").tag().map(str::to_owned);
            (r.method.clone(), tag)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Method::Ack, Some("otherfork".into())),
            (Method::Bye, Some("otherfork".into()))
        ]
    );
    assert!(sim.events().is_empty(), "the first answer keeps the call");
    assert_eq!(sim.ua.calls(), 1);
}

#[test]
fn unacknowledged_answer_to_a_reinvite_ends_the_call() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("reack@192.0.2.7");
    let call = sim.established(&mut caller);
    sim.deliver(&caller.reinvite(OFFER));
    sim.events();
    sim.ua
        .answer_reoffer(sim.now, call, ANSWER.into())
        .expect("answer re-offer");
    sim.sent();
    sim.advance(Duration::from_secs(33));
    assert_eq!(
        sim.events(),
        vec![UaEvent::Ended {
            call,
            reason: EndReason::NoAck
        }]
    );
    assert!(sim.requests().iter().any(|r| r.method == Method::Bye));
}

#[test]
fn calls_over_tcp_advertise_a_tcp_contact() {
    let mut sim = Sim::new();
    let mut caller = Caller::new("tcp@192.0.2.7");
    let message = parse(caller.invite(OFFER).as_bytes()).expect("INVITE parses");
    sim.ua.receive(sim.now, message, peer(), Transport::Tcp);
    let events = sim.events();
    let [UaEvent::Incoming {
        call, transport, ..
    }] = events.as_slice()
    else {
        panic!("expected Incoming, got {events:?}");
    };
    assert_eq!(*transport, Transport::Tcp);
    sim.ua
        .answer(sim.now, *call, ANSWER.into())
        .expect("answer");
    let transmits: Vec<Transmit> = std::iter::from_fn(|| sim.ua.poll_transmit()).collect();
    let Some(Message::Response(ok)) = transmits.first().map(|t| &t.message) else {
        panic!("expected the 200, got {transmits:?}");
    };
    assert_eq!(transmits[0].transport, Transport::Tcp);
    assert_eq!(
        header(ok, "Contact"),
        "<sip:hotline@192.0.2.10:5060;transport=tcp>"
    );
}
