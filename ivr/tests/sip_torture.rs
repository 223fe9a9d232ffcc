//! RFC 4475 (and RFC 5118) torture messages through the SIP parser.
//!
//! The corpus in `shared/testdata/rfc4475/` holds transcriptions, not wire bytes (see its
//! README): lines end in bare LF and the final CRLF became a space. [`normalise`] restores
//! CRLF line ends and the lost CRLF (and the empty line ending the head of a body-less
//! message). A few copies are damaged further; the tables say which and how the test deals
//! with it. The raw, un-normalised bytes must never panic the parser.
//!
//! Well-formed messages must parse with the listed key fields. Malformed ones must be
//! rejected with the listed answer, or parse and expose what the element above needs to
//! answer as the RFC section says (416, 420, 415, 406, ...).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ivr::sip::message::{error_response, parse, Message, ParseError, TypedHeaders};
use ivr::sip::uri::Scheme;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/rfc4475");

fn corpus_dir(sub: &str) -> PathBuf {
    let dir = Path::new(CORPUS).join(sub);
    assert!(
        dir.is_dir(),
        "torture corpus missing: {} (the repository must sit beside shared/)",
        dir.display()
    );
    dir
}

fn files(sub: &str) -> BTreeSet<String> {
    std::fs::read_dir(corpus_dir(sub))
        .expect("read the torture corpus")
        .map(|e| {
            e.expect("corpus entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".sip"))
        .collect()
}

fn raw(sub: &str, name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir(sub).join(name)).expect("read a torture message")
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

/// Replaces the declared Content-Length with the real body length (for copies that lost
/// body octets).
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

enum Start {
    Request(&'static str, &'static str),
    Response(u16, &'static str),
}

struct Wellformed {
    file: &'static str,
    start: Start,
    call_id: &'static str,
    cseq: (u32, &'static str),
    branch: Option<&'static str>,
    to: &'static str,
    from: &'static str,
    body_len: usize,
    /// The copy lost body octets: Content-Length must be repaired first (and the unrepaired
    /// copy must be rejected, as the declared length runs past the datagram).
    repair: bool,
    /// File-specific checks of what the section is about.
    check: fn(&Message),
}

fn none(_: &Message) {}

fn req(m: &Message) -> &ivr::sip::message::Request {
    match m {
        Message::Request(r) => r,
        Message::Response(_) => panic!("expected a request"),
    }
}

const WELLFORMED: &[Wellformed] = &[
    Wellformed {
        file: "3.1.1.1_wsinv.sip",
        start: Start::Request("INVITE", "sip:vivekg@chair-dnrc.example.com;unknownparam"),
        call_id: "wsinv.ndaksdj@192.0.2.1",
        cseq: (9, "INVITE"),
        branch: Some("390skdjuw"),
        to: "sip:vivekg@chair-dnrc.example.com",
        from: "sip:jdrosen@example.com",
        body_len: 150,
        repair: false,
        check: |m| {
            assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
            let from = m.from().unwrap();
            assert_eq!(from.tag(), Some("98asjd8"));
            // The copy's display name is `"J Rosenberg \""` (the RFC has one more escape).
            assert_eq!(from.display.as_deref(), Some("J Rosenberg \""));
            assert_eq!(m.max_forwards().unwrap(), Some(68));
            let vias = m.vias().unwrap();
            assert_eq!(vias.len(), 3);
            assert_eq!(vias[1].transport, "TCP");
            assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
            assert_eq!(vias[2].host, "192.168.255.111");
            assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
            assert_eq!(m.headers().get("s"), Some(""));
            assert_eq!(
                m.headers().get("newfangledheader"),
                Some("newfangled value continued newfangled value")
            );
            assert_eq!(
                m.headers().get("UnknownHeaderWithUnusualValue"),
                Some(";;,,;;,;")
            );
            let route = m.routes().unwrap();
            assert_eq!(route[0].uri.params.value("unknownwith"), Some("value"));
            // The copy garbled the Contact's quoting (`"Quoted string ""\"`): the quoted
            // string never ends, so the Contact is refused when the element asks for it.
            assert!(m.contacts().is_err());
        },
    },
    Wellformed {
        file: "3.1.1.3_esc01.sip",
        start: Start::Request("INVITE", "sip:sips%3Auser%40example.com@example.net"),
        call_id: "esc01.239409asdfakjkn23onasd0-3234",
        cseq: (234234, "INVITE"),
        branch: Some("z9hG4bKkdjuw"),
        to: "sip:%75se%72@example.com",
        from: "sip:I%20have%20spaces@example.net",
        body_len: 150,
        repair: false,
        check: |m| {
            let user = req(m).uri.user.clone().unwrap();
            assert_eq!(ivr::sip::uri::unescape(&user), "sips:user@example.com");
            let to = m.to().unwrap();
            assert_eq!(
                ivr::sip::uri::unescape(to.uri.user.as_deref().unwrap()),
                "user"
            );
            let contact = &m.contacts().unwrap()[0];
            assert_eq!(contact.uri.params.value("n%61me"), Some("v%61lue%25%34%31"));
            assert_eq!(m.content_type(), Some("application/sdp"));
        },
    },
    Wellformed {
        file: "3.1.1.4_escnull.sip",
        start: Start::Request("REGISTER", "sip:example.com"),
        call_id: "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
        cseq: (14398234, "REGISTER"),
        branch: Some("z9hG4bKkdjuw"),
        to: "sip:null-%00-null@example.com",
        from: "sip:null-%00-null@example.com",
        body_len: 0,
        repair: false,
        check: |m| {
            let contacts = m.contacts().unwrap();
            assert_eq!(contacts.len(), 2);
            assert_eq!(
                ivr::sip::uri::unescape(contacts[1].uri.user.as_deref().unwrap()),
                "\0\0"
            );
        },
    },
    Wellformed {
        file: "3.1.1.5_esc02.sip",
        start: Start::Request("RE%47IST%45R", "sip:registrar.example.com"),
        call_id: "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
        cseq: (29344, "RE%47IST%45R"),
        branch: Some("z9hG4bK209%fzsnel234"),
        to: "sip:resource@example.com",
        from: "sip:resource@example.com",
        body_len: 0,
        repair: false,
        check: |m| {
            assert_eq!(m.to().unwrap().display.as_deref(), Some("%Z%45"));
            // `C%6Fntact` is an unknown header, not a Contact.
            assert_eq!(m.contacts().unwrap().len(), 2);
            assert_eq!(
                m.headers().get("C%6Fntact"),
                Some("<sip:alias2@host2.example.com>")
            );
        },
    },
    Wellformed {
        // The copy lost the trailing INVITE: the test appends trailing octets itself.
        file: "3.1.1.8_dblreq.sip",
        start: Start::Request("REGISTER", "sip:example.com"),
        call_id: "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
        cseq: (8, "REGISTER"),
        branch: Some("z9hG4bKkdjuw23492"),
        to: "sip:j.user@example.com",
        from: "sip:j.user@example.com",
        body_len: 0,
        repair: false,
        check: none,
    },
    Wellformed {
        file: "3.1.1.9_semiuri.sip",
        start: Start::Request("OPTIONS", "sip:user;par=u%40example.net@example.com"),
        call_id: "semiuri.0ha0isndaksdj",
        cseq: (8, "OPTIONS"),
        branch: Some("z9hG4bKkdjuw"),
        to: "sip:j_user@example.com",
        from: "sip:caller@example.org",
        body_len: 0,
        repair: false,
        check: |m| {
            assert_eq!(req(m).uri.user.as_deref(), Some("user;par=u%40example.net"));
            assert!(req(m).uri.params.is_empty());
            assert_eq!(m.tokens("Accept").len(), 6);
        },
    },
    Wellformed {
        file: "3.1.1.10_transports.sip",
        start: Start::Request("OPTIONS", "sip:user@example.com"),
        call_id: "transports.kijh4akdnaqjkwendsasfdj",
        cseq: (60, "OPTIONS"),
        branch: Some("z9hG4bKkdjuw"),
        to: "sip:user@example.com",
        from: "sip:caller@example.com",
        body_len: 0,
        repair: false,
        check: |m| {
            let t: Vec<String> = m.vias().unwrap().into_iter().map(|v| v.transport).collect();
            assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
        },
    },
    Wellformed {
        file: "3.1.1.11_mpart01.sip",
        start: Start::Request("MESSAGE", "sip:kumiko@example.org"),
        call_id: "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
        cseq: (1, "MESSAGE"),
        branch: Some("z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-"),
        to: "sip:kumiko@example.org",
        from: "sip:fluffy@example.com",
        body_len: 256,
        repair: true,
        check: |m| {
            assert_eq!(m.content_type(), Some("multipart/mixed"));
            let ct = m.value_params("Content-Type").unwrap().unwrap();
            assert_eq!(ct.params.value("boundary"), Some("7a9cbec02ceef655"));
            assert_eq!(m.top_via().unwrap().port, Some(5070));
            assert_eq!(m.top_via().unwrap().rport(), Some(None));
        },
    },
    Wellformed {
        file: "3.1.1.12_unreason.sip",
        start: Start::Response(200, "= 2**3 * 5**2 но сто девяносто девять - простое"),
        call_id: "unreason.1234ksdfak3j2erwedfsASdf",
        cseq: (35, "INVITE"),
        branch: Some("z9hG4bK1324923"),
        to: "sip:user@example.edu",
        from: "sip:user@example.com",
        body_len: 154,
        repair: true,
        check: none,
    },
    Wellformed {
        file: "3.1.1.13_noreason.sip",
        start: Start::Response(100, ""),
        call_id: "noreason.asndj203insdf99223ndf",
        cseq: (35, "INVITE"),
        branch: Some("z9hG4bK2398ndaoe"),
        to: "sip:user@example.edu",
        from: "sip:user@example.com",
        body_len: 0,
        repair: false,
        check: none,
    },
    Wellformed {
        file: "3.3.2_unkscm.sip",
        start: Start::Request("OPTIONS", "nobodyknowsthisscheme:totallyopaquecontent"),
        call_id: "unkscm.nasdfasser0q239nwsdfasdkl34",
        cseq: (3923423, "OPTIONS"),
        branch: Some("z9hG4bKkdjuw39234"),
        to: "sip:user@example.com",
        from: "sip:caller@example.net",
        body_len: 0,
        repair: false,
        // The element answers 416 Unsupported URI Scheme.
        check: |m| assert!(matches!(req(m).uri.scheme, Scheme::Other(_))),
    },
    Wellformed {
        file: "3.3.3_novelsc.sip",
        start: Start::Request("OPTIONS", "soap.beep://192.0.2.103:3002"),
        call_id: "novelsc.asdfasser0q239nwsdfasdkl34",
        cseq: (3923423, "OPTIONS"),
        branch: Some("z9hG4bKkdjuw39234"),
        to: "sip:user@example.com",
        from: "sip:caller@example.net",
        body_len: 0,
        repair: false,
        check: |m| assert_eq!(req(m).uri.scheme, Scheme::Other("soap.beep".into())),
    },
    Wellformed {
        file: "3.3.7_regaut01.sip",
        start: Start::Request("REGISTER", "sip:example.com"),
        call_id: "regaut01.0ha0isndaksdj",
        cseq: (9338, "REGISTER"),
        branch: Some("z9hG4bKkdjuw"),
        to: "sip:j.user@example.com",
        from: "sip:j.user@example.com",
        body_len: 0,
        repair: false,
        check: |m| {
            assert_eq!(
                m.headers().get("Authorization"),
                Some("NoOneKnowsThisScheme opaque-data=here")
            );
        },
    },
    Wellformed {
        file: "3.3.10_bcast.sip",
        start: Start::Response(200, "OK"),
        call_id: "bcast.0384840201234ksdfak3j2erwedfsASdf",
        cseq: (35, "INVITE"),
        branch: Some("z9hG4bK1324923"),
        to: "sip:user@example.edu",
        from: "sip:user@example.com",
        body_len: 154,
        repair: false,
        check: |m| assert_eq!(m.vias().unwrap()[1].host, "255.255.255.255"),
    },
    Wellformed {
        file: "3.3.11_zeromf.sip",
        start: Start::Request("OPTIONS", "sip:user@example.com"),
        call_id: "zeromf.jfasdlfnm2o2l43r5u0asdfas",
        cseq: (39234321, "OPTIONS"),
        branch: Some("z9hG4bKkdjuw2349i"),
        to: "sip:user@example.com",
        from: "sip:caller@example.net",
        body_len: 0,
        repair: false,
        // A UAS answers it; a proxy would answer 483.
        check: |m| assert_eq!(m.max_forwards().unwrap(), Some(0)),
    },
    Wellformed {
        file: "3.3.12_cparam01.sip",
        start: Start::Request("REGISTER", "sip:example.com"),
        call_id: "cparam01.70710@saturn.example.com",
        cseq: (2, "REGISTER"),
        branch: Some("z9hG4bKkdjuw"),
        to: "sip:watson@example.com",
        from: "sip:watson@example.com",
        body_len: 0,
        repair: false,
        check: |m| {
            // Without <>, `;unknownparam` is a Contact header parameter.
            let c = &m.contacts().unwrap()[0];
            assert!(c.params.has("unknownparam"));
            assert!(c.uri.params.is_empty());
        },
    },
    Wellformed {
        file: "3.3.13_cparam02.sip",
        start: Start::Request("REGISTER", "sip:example.com"),
        call_id: "cparam02.70710@saturn.example.com",
        cseq: (3, "REGISTER"),
        branch: Some("z9hG4bKkdjuw"),
        to: "sip:watson@example.com",
        from: "sip:watson@example.com",
        body_len: 0,
        repair: false,
        check: |m| {
            // Inside <>, `;unknownparam` is a URI parameter.
            let c = &m.contacts().unwrap()[0];
            assert!(c.uri.params.has("unknownparam"));
            assert!(c.params.is_empty());
        },
    },
    Wellformed {
        file: "3.3.14_regescrt.sip",
        start: Start::Request("REGISTER", "sip:example.com"),
        call_id: "regescrt.k345asrl3fdbv@192.0.2.1",
        cseq: (14398234, "REGISTER"),
        branch: Some("z9hG4bKkdjuw"),
        to: "sip:user@example.com",
        from: "sip:user@example.com",
        body_len: 0,
        repair: false,
        check: |m| {
            let c = &m.contacts().unwrap()[0];
            assert_eq!(
                c.uri.headers,
                [("Route".to_owned(), "%3Csip:sip.example.com%3E".to_owned())]
            );
        },
    },
    Wellformed {
        file: "4.1_ipv6-good.sip",
        start: Start::Request("REGISTER", "sip:[2001:db8::10]"),
        call_id: "SSG9559905523997077@hlau_4100",
        cseq: (98176, "REGISTER"),
        branch: Some("z9hG4bKas3-111"),
        to: "sip:user@example.com",
        from: "sip:user@example.com",
        body_len: 0,
        repair: false,
        check: |m| {
            assert_eq!(req(m).uri.host, "[2001:db8::10]");
            assert_eq!(m.top_via().unwrap().host, "[2001:db8::9:1]");
            assert_eq!(m.contacts().unwrap()[0].uri.host, "[2001:db8::1]");
        },
    },
    Wellformed {
        file: "4.3_port-ambiguous.sip",
        start: Start::Request("REGISTER", "sip:[2001:db8::10:5070]"),
        call_id: "SSG9559905523997077@hlau_4100",
        cseq: (98176, "REGISTER"),
        branch: Some("z9hG4bKas3-111"),
        to: "sip:user@example.com",
        from: "sip:user@example.com",
        body_len: 0,
        repair: false,
        // Inside the brackets `:5070` is part of the address, not a port.
        check: |m| assert_eq!(req(m).uri.port, None),
    },
    Wellformed {
        file: "4.6_ipv6-in-sdp.sip",
        start: Start::Request("INVITE", "sip:user@[2001:db8::10]"),
        call_id: "SSG9559905523997077@hlau_4100",
        cseq: (8612, "INVITE"),
        branch: Some("z9hG4bKas3-111"),
        to: "sip:user@[2001:db8::10]",
        from: "sip:user@example.com",
        body_len: 251,
        repair: true,
        check: none,
    },
    Wellformed {
        // Declares 181 of 189 body octets: the rest are trailing octets and ignored.
        file: "4.8_mult-ip-in-sdp.sip",
        start: Start::Request("INVITE", "sip:user@[2001:db8::10]"),
        call_id: "SSG9559905523997077@hlau_4100",
        cseq: (8912, "INVITE"),
        branch: Some("z9hG4bKas3-111"),
        to: "sip:user@[2001:db8::10]",
        from: "sip:user@example.com",
        body_len: 181,
        repair: false,
        check: none,
    },
    Wellformed {
        // Declares 236 of 245 body octets.
        file: "4.9_ipv4-mapped-ipv6.sip",
        start: Start::Request("INVITE", "sip:user@example.com"),
        call_id: "SSG9559905523997077@hlau_4100",
        cseq: (612, "INVITE"),
        branch: Some("z9hG4bKbh19"),
        to: "sip:user@example.com",
        from: "sip:user@east.example.com",
        body_len: 236,
        repair: false,
        check: |m| {
            let v = m.top_via().unwrap();
            assert_eq!(
                (v.host.as_str(), v.port),
                ("[::ffff:192.0.2.10]", Some(19823))
            );
            assert_eq!(
                m.contacts().unwrap()[0].display.as_deref(),
                Some("T. desk phone")
            );
        },
    },
    Wellformed {
        file: "4.10_ipv6-bug-abnf-3-colons.sip",
        start: Start::Request("OPTIONS", "sip:user@[2001:db8:::192.0.2.1]"),
        call_id: "G9559905523997077@hlau_4100",
        cseq: (689, "OPTIONS"),
        branch: Some("z9hG4bKas3-111"),
        to: "sip:user@[2001:db8:::192.0.2.1]",
        from: "sip:user@example.com",
        body_len: 0,
        repair: false,
        check: none,
    },
];

enum Outcome {
    /// `parse` fails; the server answers with this status (`None`: a response, or nothing
    /// to route an answer by, so it is dropped).
    Rejected(Option<u16>),
    /// `parse` succeeds; the check shows the fault the element above answers for.
    Parses(fn(&Message)),
}

const MALFORMED: &[(&str, Outcome)] = &[
    // RFC 4475 calls 3.1.1.7 valid, but the copy is truncated after the To header: no Via,
    // no empty line. Rejected, and with no Via there is nobody to answer.
    ("3.1.1.7_longreq.sip", Outcome::Rejected(None)),
    ("3.1.2.1_badinv01.sip", Outcome::Rejected(Some(400))),
    ("3.1.2.2_clerr.sip", Outcome::Rejected(Some(400))),
    ("3.1.2.3_ncl.sip", Outcome::Rejected(Some(400))),
    ("3.1.2.5_scalarlg.sip", Outcome::Rejected(None)),
    ("3.1.2.6_quotbal.sip", Outcome::Rejected(Some(400))),
    ("3.1.2.8_lwsruri.sip", Outcome::Rejected(Some(400))),
    ("3.1.2.9_lwsstart.sip", Outcome::Rejected(Some(400))),
    ("3.1.2.11_escruri.sip", Outcome::Rejected(Some(400))),
    // §3.1.2.12 allows an element to accept a bad Date it does not use: we never parse Date.
    (
        "3.1.2.12_baddate.sip",
        Outcome::Parses(|m| {
            assert_eq!(
                m.headers().get("Date"),
                Some("Fri, 01 Jan 2010 16:00:00 EST")
            )
        }),
    ),
    // The Contact URI has a `?` outside <>: the element that reads Contact answers 400.
    (
        "3.1.2.13_regbadct.sip",
        Outcome::Parses(|m| assert!(m.contacts().is_err())),
    ),
    ("3.1.2.15_baddn.sip", Outcome::Rejected(Some(400))),
    ("3.1.2.16_badvers.sip", Outcome::Rejected(Some(505))),
    ("3.1.2.18_mismatch02.sip", Outcome::Rejected(Some(400))),
    ("3.1.2.19_bigcode.sip", Outcome::Rejected(None)),
    // The branch is the bare magic cookie: the transaction layer falls back to RFC 2543
    // matching for it.
    (
        "3.2.1_badbranch.sip",
        Outcome::Parses(|m| assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK"))),
    ),
    ("3.3.1_insuf.sip", Outcome::Rejected(Some(400))),
    // Schemes that have no place in To/From/Contact: they parse as opaque URIs, and the
    // element refuses them.
    (
        "3.3.4_unksm2.sip",
        Outcome::Parses(|m| {
            assert_eq!(m.to().unwrap().uri.scheme, Scheme::Other("isbn".into()));
            assert_eq!(m.from().unwrap().uri.scheme, Scheme::Other("http".into()));
            assert_eq!(
                m.contacts().unwrap()[0].uri.scheme,
                Scheme::Other("name".into())
            );
        }),
    ),
    // 420 Bad Extension, listing the Require tags.
    (
        "3.3.5_bext01.sip",
        Outcome::Parses(|m| {
            assert_eq!(
                m.tokens("Require"),
                ["nothingSupportsThis", "nothingSupportsThisEither"]
            );
            assert_eq!(m.tokens("Proxy-Require").len(), 2);
        }),
    ),
    // 415 Unsupported Media Type.
    (
        "3.3.6_invut.sip",
        Outcome::Parses(|m| assert_eq!(m.content_type(), Some("application/unknownformat"))),
    ),
    ("3.3.8_multi01.sip", Outcome::Rejected(Some(400))),
    ("3.3.9_mcl01.sip", Outcome::Rejected(Some(400))),
    // 406 Not Acceptable: the only acceptable body type is unknown.
    (
        "3.3.15_sdp01.sip",
        Outcome::Parses(|m| assert_eq!(m.tokens("Accept"), ["text/nobodyKnowsThis"])),
    ),
];

fn check_wellformed(w: &Wellformed, m: &Message) {
    match (&w.start, m) {
        (Start::Request(method, uri), Message::Request(r)) => {
            assert_eq!(r.method.as_str(), *method);
            assert_eq!(r.uri.to_string(), *uri);
        }
        (Start::Response(status, reason), Message::Response(r)) => {
            assert_eq!((r.status, r.reason.as_str()), (*status, *reason));
        }
        _ => panic!("wrong kind of message"),
    }
    assert_eq!(m.call_id().unwrap(), w.call_id);
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method.as_str()), w.cseq);
    assert_eq!(m.top_via().unwrap().branch(), w.branch);
    assert_eq!(m.to().unwrap().uri.to_string(), w.to);
    assert_eq!(m.from().unwrap().uri.to_string(), w.from);
    let body = match m {
        Message::Request(r) => &r.body,
        Message::Response(r) => &r.body,
    };
    assert_eq!(body.len(), w.body_len);
    (w.check)(m);
}

#[test]
fn every_wellformed_message_is_accepted_with_its_key_fields() {
    let listed: BTreeSet<String> = WELLFORMED.iter().map(|w| w.file.to_owned()).collect();
    assert_eq!(
        files("wellformed"),
        listed,
        "the table must cover the folder exactly"
    );
    for w in WELLFORMED {
        let mut bytes = normalise(&raw("wellformed", w.file));
        if w.repair {
            assert!(
                matches!(parse(&bytes), Err(ParseError::BadRequest(_))),
                "{}: the damaged Content-Length should be refused",
                w.file
            );
            bytes = repair_content_length(&bytes);
        }
        if w.file.starts_with("3.1.1.8") {
            bytes.extend_from_slice(
                b"INVITE sip:joe@example.com SIP/2.0\r\nTo: sip:joe@example.com\r\n",
            );
        }
        let m = parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", w.file));
        check_wellformed(w, &m);
        // What we print parses back to the same message.
        assert_eq!(
            parse(&m.to_bytes()).as_ref(),
            Ok(&m),
            "{}: print round trip",
            w.file
        );
    }
}

#[test]
fn every_malformed_message_is_handled_as_its_section_says() {
    let listed: BTreeSet<String> = MALFORMED.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(
        files("malformed"),
        listed,
        "the table must cover the folder exactly"
    );
    for (file, outcome) in MALFORMED {
        let bytes = normalise(&raw("malformed", file));
        match (outcome, parse(&bytes)) {
            (Outcome::Rejected(answer), Err(err)) => {
                let resp = error_response(&bytes, &err);
                assert_eq!(resp.as_ref().map(|r| r.status), *answer, "{file}: {err}");
                if let Some(resp) = resp {
                    // The answer carries the request's Via so it can be routed and matched.
                    assert!(resp.headers.get("Via").is_some(), "{file}");
                }
            }
            (Outcome::Parses(check), Ok(m)) => check(&m),
            (Outcome::Rejected(_), Ok(_)) => panic!("{file}: parsed, expected a rejection"),
            (Outcome::Parses(_), Err(e)) => panic!("{file}: rejected ({e}), expected to parse"),
        }
    }
}

#[test]
fn raw_corpus_bytes_never_panic() {
    for sub in ["wellformed", "malformed"] {
        for file in files(sub) {
            let bytes = raw(sub, &file);
            // Every prefix too: truncated datagrams and partial TCP reads.
            for end in 0..=bytes.len() {
                let part = &bytes[..end];
                if let Err(e) = parse(part) {
                    let _ = error_response(part, &e);
                }
                let _ = ivr::sip::message::frame(part);
            }
        }
    }
}
