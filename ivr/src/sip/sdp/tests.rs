use super::*;

/// RFC 4566 §5 example, extended with every line type.
const FULL: &str = "v=0\r\n\
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n\
s=SDP Seminar\r\n\
i=A Seminar on the session description protocol\r\n\
u=http://www.example.com/seminars/sdp.pdf\r\n\
e=j.doe@example.com (Jane Doe)\r\n\
p=+1 617 555-6011\r\n\
c=IN IP4 224.2.17.12/127\r\n\
b=CT:128\r\n\
t=2873397496 2873404696\r\n\
r=7d 1h 0 25h\r\n\
z=2882844526 -1h 2898848070 0\r\n\
k=prompt\r\n\
a=recvonly\r\n\
a=x-unknown:some value: with colons\r\n\
m=audio 49170 RTP/AVP 0\r\n\
i=voice\r\n\
c=IN IP4 224.2.17.13/127\r\n\
b=AS:64\r\n\
a=ptime:20\r\n\
m=video 51372/2 RTP/AVP 99\r\n\
a=rtpmap:99 h263-1998/90000\r\n";

const SIPP: &str = "v=0\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\n\
s=-\n\
c=IN IP4 127.0.0.1\n\
t=0 0\n\
m=audio 6000 RTP/AVP 0\n\
a=rtpmap:0 PCMU/8000\n";

fn local() -> SocketAddr {
    "192.0.2.1:30000".parse().expect("literal address")
}

fn offer_with(media: &str) -> String {
    format!(
        "v=0\r\no=- 7 7 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n{media}"
    )
}

fn answer_ok(offer: &str) -> (Negotiated, SessionDescription) {
    let (negotiated, text) = answer(offer, local(), &mut SessionVersion::new(1)).expect("answer");
    let sd = SessionDescription::parse(&text).expect("our answer parses");
    (negotiated, sd)
}

#[test]
fn parses_every_line_type_and_prints_back_the_same_description() {
    let sd = SessionDescription::parse(FULL).expect("parses");
    assert_eq!(sd.origin.username, "jdoe");
    assert_eq!(sd.origin.session_version, "2890842807");
    assert_eq!(sd.session_name, "SDP Seminar");
    assert_eq!(sd.emails, ["j.doe@example.com (Jane Doe)"]);
    assert_eq!(sd.phones, ["+1 617 555-6011"]);
    assert_eq!(
        sd.bandwidths,
        [Bandwidth {
            kind: "CT".into(),
            value: 128
        }]
    );
    assert_eq!(sd.timings[0].repeats, ["7d 1h 0 25h"]);
    assert_eq!(
        sd.time_zones.as_deref(),
        Some("2882844526 -1h 2898848070 0")
    );
    assert_eq!(sd.key.as_deref(), Some("prompt"));
    assert_eq!(
        sd.attribute_values("x-unknown").collect::<Vec<_>>(),
        ["some value: with colons"]
    );
    assert_eq!(sd.media.len(), 2);
    assert_eq!(sd.media[0].information.as_deref(), Some("voice"));
    assert_eq!(sd.media[1].port_count, Some(2));
    assert_eq!(sd.media[1].rtpmap(99), Some("h263-1998/90000"));
    assert_eq!(
        sd.to_string(),
        FULL,
        "printed in RFC order with CRLF, verbatim"
    );
    assert_eq!(SessionDescription::parse(&sd.to_string()), Ok(sd));
}

#[test]
fn bare_lf_and_trailing_blank_lines_are_accepted() {
    let crlf = SIPP.replace('\n', "\r\n");
    let lf = SessionDescription::parse(&format!("{SIPP}\n\n")).expect("LF parses");
    assert_eq!(SessionDescription::parse(&crlf), Ok(lf));
}

#[test]
fn errors_name_the_offending_line() {
    let bad = |text: &str| SessionDescription::parse(text).expect_err("refused");
    assert_eq!(
        bad("v=1\r\n"),
        SdpError {
            line: 1,
            kind: SdpErrorKind::Version
        }
    );
    assert_eq!(bad("o=- 1 1 IN IP4 a\r\n").kind, SdpErrorKind::Version);
    let unknown = SIPP.replace("t=0 0", "x=what");
    assert_eq!(
        bad(&unknown),
        SdpError {
            line: 5,
            kind: SdpErrorKind::Unexpected('x')
        }
    );
    let no_equals = SIPP.replace("t=0 0", "t 0 0");
    assert_eq!(
        bad(&no_equals),
        SdpError {
            line: 5,
            kind: SdpErrorKind::Syntax
        }
    );
    let bad_port = SIPP.replace("6000", "70000");
    assert_eq!(
        bad(&bad_port),
        SdpError {
            line: 6,
            kind: SdpErrorKind::Field('m')
        }
    );
    let no_formats = SIPP.replace("RTP/AVP 0", "RTP/AVP");
    assert_eq!(bad(&no_formats).kind, SdpErrorKind::Field('m'));
    let short_origin = SIPP.replace("IN IP4 127.0.0.1\ns", "IN IP4\ns");
    assert_eq!(
        bad(&short_origin),
        SdpError {
            line: 2,
            kind: SdpErrorKind::Field('o')
        }
    );
    let no_session = SIPP.replace("s=-\n", "");
    assert_eq!(bad(&no_session).kind, SdpErrorKind::Missing('s'));
    let origin_in_media = format!("{SIPP}o=- 1 1 IN IP4 127.0.0.1\n");
    assert_eq!(
        bad(&origin_in_media),
        SdpError {
            line: 8,
            kind: SdpErrorKind::Unexpected('o')
        }
    );
    let repeat_before_time = SIPP.replace("t=0 0", "r=1 2 3");
    assert_eq!(bad(&repeat_before_time).kind, SdpErrorKind::Unexpected('r'));
    let empty_attribute = format!("{SIPP}a=\n");
    assert_eq!(
        bad(&empty_attribute),
        SdpError {
            line: 8,
            kind: SdpErrorKind::Field('a')
        }
    );
    let text = bad(&unknown).to_string();
    assert!(text.contains("line 5"), "{text}");
}

#[test]
fn oversized_descriptions_are_refused() {
    let long = format!("{SIPP}{}", "a=x\n".repeat(MAX_SDP_LEN / 4));
    assert_eq!(
        SessionDescription::parse(&long).expect_err("too long").kind,
        SdpErrorKind::TooLarge
    );
    let many = format!("{SIPP}{}", "m=audio 0 RTP/AVP 0\n".repeat(MAX_MEDIA));
    let err = SessionDescription::parse(&many).expect_err("too many media");
    assert_eq!(
        err,
        SdpError {
            line: 7 + MAX_MEDIA,
            kind: SdpErrorKind::TooLarge
        }
    );
}

#[test]
fn connection_addresses_of_both_families_resolve_and_host_names_do_not() {
    let c = |addr_type: &str, address: &str| Connection {
        net_type: "IN".into(),
        addr_type: addr_type.into(),
        address: address.into(),
    };
    assert_eq!(c("IP4", "224.2.1.1/127").ip(), "224.2.1.1".parse().ok());
    assert_eq!(c("IP6", "2001:db8::1").ip(), "2001:db8::1".parse().ok());
    assert_eq!(c("IP4", "2001:db8::1").ip(), None, "family must match");
    assert_eq!(c("IP4", "pbx.example.com").ip(), None);
}

#[test]
fn answer_accepts_the_callers_preferred_codec_with_its_dtmf_type() {
    let offer = offer_with(
        "m=audio 40000 RTP/AVP 8 0 100\r\na=rtpmap:100 telephone-event/8000\r\n\
         a=fmtp:100 0-15\r\n",
    );
    let (n, sd) = answer_ok(&offer);
    assert_eq!(n.codec, Codec::Pcma);
    assert_eq!((n.codec_pt, n.dtmf_pt), (8, Some(100)));
    assert_eq!(n.remote, "198.51.100.9:40000".parse().expect("literal"));
    assert_eq!(n.direction, Direction::SendRecv);
    let m = &sd.media[0];
    assert_eq!(
        (m.port, m.formats.clone()),
        (30000, vec!["8".to_string(), "100".to_string()])
    );
    assert_eq!(m.rtpmap(100), Some("telephone-event/8000"));
    assert_eq!(
        sd.connection.as_ref().and_then(Connection::ip),
        Some(local().ip())
    );
    assert_eq!(sd.direction_for(m), Direction::SendRecv);
}

#[test]
fn answer_takes_a_dynamic_pcmu_at_the_peers_payload_type() {
    let offer = offer_with("m=audio 40000 RTP/AVP 96 18\r\na=rtpmap:96 pcmu/8000/1\r\n");
    let (n, sd) = answer_ok(&offer);
    assert_eq!((n.codec, n.codec_pt, n.dtmf_pt), (Codec::Pcmu, 96, None));
    assert_eq!(sd.media[0].formats, ["96"]);
    assert_eq!(sd.media[0].rtpmap(96), Some("PCMU/8000"));
}

#[test]
fn answer_keeps_the_offered_rtp_profile() {
    let (_, sd) = answer_ok(&offer_with("m=audio 40000 RTP/AVPF 0\r\n"));
    assert_eq!(sd.media[0].proto, "RTP/AVPF");
}

#[test]
fn answer_ignores_static_types_remapped_to_other_codecs() {
    let offer = offer_with("m=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 G729/8000\r\n");
    assert_eq!(answer_ok(&offer).0.codec, Codec::Pcma);
}

#[test]
fn answer_rejects_other_streams_with_port_zero_in_offer_order() {
    let offer = offer_with(
        "m=video 50000 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n\
         m=audio 40002 RTP/AVP 18\r\n\
         m=audio 40000 RTP/AVP 0\r\n\
         m=audio 40004 RTP/AVP 0\r\n",
    );
    let (n, sd) = answer_ok(&offer);
    assert_eq!(n.remote.port(), 40000);
    let ports: Vec<_> = sd
        .media
        .iter()
        .map(|m| (m.media.as_str(), m.port))
        .collect();
    assert_eq!(
        ports,
        [("video", 0), ("audio", 0), ("audio", 30000), ("audio", 0)]
    );
    assert_eq!(
        sd.media[0].formats,
        ["99"],
        "a rejected line keeps the offered formats"
    );
}

#[test]
fn offers_without_usable_audio_are_refused() {
    let refuse = |media: &str| answer(&offer_with(media), local(), &mut SessionVersion::new(1));
    assert_eq!(
        refuse("m=video 5000 RTP/AVP 99\r\n").unwrap_err(),
        OfferError::NoAudio
    );
    assert_eq!(refuse("").unwrap_err(), OfferError::NoAudio);
    let g729 = "m=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    assert_eq!(refuse(g729).unwrap_err(), OfferError::NoCommonCodec);
    let srtp = "m=audio 5000 RTP/SAVP 0\r\n";
    assert_eq!(refuse(srtp).unwrap_err(), OfferError::NoCommonCodec);
    let wideband = "m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 PCMU/16000\r\n";
    assert_eq!(refuse(wideband).unwrap_err(), OfferError::NoCommonCodec);
    let disabled = "m=audio 0 RTP/AVP 0\r\n";
    assert_eq!(refuse(disabled).unwrap_err(), OfferError::NoCommonCodec);
    let garbage = answer("v=0\r\nnonsense", local(), &mut SessionVersion::new(1));
    assert!(matches!(
        garbage,
        Err(OfferError::Malformed(SdpError { line: 2, .. }))
    ));
}

#[test]
fn hold_is_mirrored_in_our_direction() {
    let cases = [
        ("a=sendonly\r\n", Direction::RecvOnly),
        ("a=recvonly\r\n", Direction::SendOnly),
        ("a=inactive\r\n", Direction::Inactive),
    ];
    for (attribute, ours) in cases {
        let (n, sd) = answer_ok(&offer_with(&format!(
            "m=audio 4000 RTP/AVP 0\r\n{attribute}"
        )));
        assert_eq!(n.direction, ours, "{attribute}");
        assert_eq!(sd.direction_for(&sd.media[0]), ours, "{attribute}");
    }
    // Session-level direction applies when the media says nothing.
    let session_level =
        offer_with("m=audio 4000 RTP/AVP 0\r\n").replace("t=0 0", "t=0 0\r\na=sendonly");
    assert_eq!(answer_ok(&session_level).0.direction, Direction::RecvOnly);
}

#[test]
fn legacy_hold_by_unspecified_address_stops_our_sending() {
    let offer = offer_with("m=audio 4000 RTP/AVP 0\r\n")
        .replace("c=IN IP4 198.51.100.9", "c=IN IP4 0.0.0.0");
    let (n, _) = answer_ok(&offer);
    assert!(n.remote.ip().is_unspecified());
    assert_eq!(n.direction, Direction::RecvOnly);
}

#[test]
fn we_send_twenty_millisecond_packets_and_say_so() {
    let (n, sd) = answer_ok(&offer_with("m=audio 4000 RTP/AVP 0\r\na=ptime:30\r\n"));
    assert_eq!(n.ptime_ms, 20);
    assert_eq!(
        sd.media[0].attribute_values("ptime").collect::<Vec<_>>(),
        ["20"]
    );
    let peer = MediaOffer::from_media(&sd, &sd.media[0]);
    assert_eq!(
        peer.map(|p| p.ptime_ms),
        Some(Some(20)),
        "our answer reads back as 20 ms"
    );
}

#[test]
fn ipv6_offers_and_local_addresses_work() {
    let offer = "v=0\r\no=- 1 1 IN IP6 2001:db8::9\r\ns=-\r\nc=IN IP6 2001:db8::9\r\nt=0 0\r\n\
                 m=audio 4000 RTP/AVP 0\r\n";
    let local: SocketAddr = "[2001:db8::1]:30000".parse().expect("literal");
    let (n, text) = answer(offer, local, &mut SessionVersion::new(5)).expect("answers");
    assert_eq!(n.remote, "[2001:db8::9]:4000".parse().expect("literal"));
    assert!(text.contains("c=IN IP6 2001:db8::1\r\n"), "{text}");
    assert!(text.contains("o=- 5 1 IN IP6 2001:db8::1\r\n"), "{text}");
}

#[test]
fn each_new_description_of_a_session_bumps_its_version() {
    let mut session = SessionVersion::new(77);
    assert_eq!(session.current(), None);
    let first = SessionDescription::parse(&offer(local(), &mut session)).expect("parses");
    let (_, second) = answer(SIPP, local(), &mut session).expect("answers");
    let second = SessionDescription::parse(&second).expect("parses");
    assert_eq!(first.origin.session_id, "77");
    assert_eq!(second.origin.session_id, "77");
    assert_eq!(first.origin.session_version, "1");
    assert_eq!(second.origin.session_version, "2");
    assert_eq!(session.current(), Some(2));
}

#[test]
fn our_offer_lists_both_codecs_and_events_and_accepts_a_peers_answer() {
    let text = offer(local(), &mut SessionVersion::new(3));
    let sd = SessionDescription::parse(&text).expect("parses");
    let m = &sd.media[0];
    assert_eq!(m.formats, ["0", "8", "101"]);
    assert_eq!(m.fmtp(101), Some("0-16"));
    // A peer that answers with our own rules: picks PCMU, keeps our event type.
    let (theirs, answer_text) = answer(
        &text,
        "203.0.113.5:7000".parse().expect("literal"),
        &mut SessionVersion::new(9),
    )
    .expect("answers our offer");
    assert_eq!((theirs.codec, theirs.dtmf_pt), (Codec::Pcmu, Some(101)));
    let ours = accept_answer(&answer_text).expect("accepts");
    assert_eq!(ours.remote, "203.0.113.5:7000".parse().expect("literal"));
    assert_eq!(
        (ours.codec, ours.codec_pt, ours.dtmf_pt),
        (Codec::Pcmu, 0, Some(101))
    );
    assert_eq!(ours.direction, Direction::SendRecv);
}

#[test]
fn accept_answer_refuses_a_rejected_stream_and_mirrors_hold() {
    let rejected = offer_with("m=audio 0 RTP/AVP 0\r\n");
    assert_eq!(accept_answer(&rejected), Err(OfferError::NoCommonCodec));
    let recvonly = offer_with("m=audio 4000 RTP/AVP 8\r\na=recvonly\r\n");
    let n = accept_answer(&recvonly).expect("accepts");
    assert_eq!((n.codec, n.direction), (Codec::Pcma, Direction::SendOnly));
}
