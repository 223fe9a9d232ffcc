use super::*;

#[allow(clippy::disallowed_methods)] // the one real instant the simulated clock starts from
fn base() -> Instant {
    Instant::now()
}

const URI: &str = "sip:1111@hotline.example";

fn server(now: Instant) -> DigestServer {
    let mut config = DigestConfig::new("hotline.example");
    config
        .users
        .insert("pbx".into(), Credentials::password("s3cret"));
    DigestServer::new(config, [9; 32], now)
}

fn field<'a>(header: &'a str, name: &str) -> &'a str {
    let start = header.find(&format!("{name}=")).expect("field present") + name.len() + 1;
    let rest = &header[start..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ',']).unwrap_or(rest.len());
    &rest[..end]
}

fn ok() -> Verdict {
    Verdict::Ok { user: "pbx".into() }
}

#[test]
fn rfc_2617_worked_example() {
    let challenge = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
                     nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
                     opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let auth = respond(
        challenge,
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle Of Life",
        "0a4f113b",
        1,
    )
    .expect("responds");
    assert_eq!(field(&auth, "response"), "6629fae49393a05397450978507c4ef1");
    assert_eq!(field(&auth, "nc"), "00000001");
    assert_eq!(field(&auth, "opaque"), "5ccc069c403ebaf9f0171e9517f40e41");
    assert_eq!(field(&auth, "qop"), "auth");
}

#[test]
fn rfc_7616_worked_examples_for_md5_and_sha256() {
    let challenge = |algorithm: &str| {
        format!(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
             algorithm={algorithm}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        )
    };
    let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    let run = |algorithm| {
        let c = challenge(algorithm);
        respond(
            &c,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            cnonce,
            1,
        )
        .expect("responds")
    };
    assert_eq!(
        field(&run("MD5"), "response"),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
    let sha = run("SHA-256");
    assert_eq!(
        field(&sha, "response"),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(field(&sha, "algorithm"), "SHA-256");
}

#[test]
fn client_answers_legacy_challenges_without_qop_and_refuses_unknown_ones() {
    let legacy = "Digest realm=\"r\", nonce=\"n\"";
    let auth = respond(legacy, "INVITE", URI, "u", "p", "c", 1).expect("responds");
    let ha1 = Algorithm::Md5.hex("u:r:p");
    let ha2 = Algorithm::Md5.hex(&format!("INVITE:{URI}"));
    assert_eq!(
        field(&auth, "response"),
        Algorithm::Md5.hex(&format!("{ha1}:n:{ha2}"))
    );
    assert!(!auth.contains("nc="), "{auth}");
    let sess = "Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess";
    assert!(matches!(
        respond(sess, "INVITE", URI, "u", "p", "c", 1),
        Err(AuthError::Unsupported(_))
    ));
    let int_only = "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"";
    assert!(matches!(
        respond(int_only, "INVITE", URI, "u", "p", "c", 1),
        Err(AuthError::Unsupported(_))
    ));
    assert_eq!(
        respond("Basic realm=\"r\"", "INVITE", URI, "u", "p", "c", 1),
        Err(AuthError::Malformed)
    );
    assert_eq!(
        respond("Digest realm=\"r\"", "INVITE", URI, "u", "p", "c", 1),
        Err(AuthError::Malformed)
    );
}

#[test]
fn a_challenge_offers_each_algorithm_with_one_nonce() {
    let t0 = base();
    let mut s = server(t0);
    let values = s.challenge(t0, false);
    assert_eq!(values.len(), 2);
    assert_eq!(field(&values[0], "algorithm"), "MD5");
    assert_eq!(field(&values[1], "algorithm"), "SHA-256");
    assert_eq!(field(&values[0], "nonce"), field(&values[1], "nonce"));
    assert_eq!(field(&values[0], "qop"), "auth");
    assert!(!values[0].contains("stale"));
    assert!(s.challenge(t0, true)[0].ends_with(", stale=true"));
    assert_ne!(
        field(&s.challenge(t0, false)[0], "nonce"),
        field(&values[0], "nonce")
    );
}

#[test]
fn right_credentials_pass_with_either_algorithm() {
    let t0 = base();
    let mut s = server(t0);
    for index in 0..2 {
        // A fresh challenge each time: the algorithms share one nonce and its nonce-count.
        let challenge = s.challenge(t0, false).remove(index);
        let auth = respond(&challenge, "INVITE", URI, "pbx", "s3cret", "abc", 1).expect("responds");
        assert_eq!(
            s.verify(t0 + Duration::from_millis(30), "INVITE", &auth),
            ok(),
            "{challenge}"
        );
    }
}

#[test]
fn wrong_password_user_realm_or_method_is_refused() {
    let t0 = base();
    let mut s = server(t0);
    let challenge = s.challenge(t0, false).remove(0);
    let bad = |s: &mut DigestServer, method: &str, auth: &str| s.verify(t0, method, auth);
    let wrong = respond(&challenge, "INVITE", URI, "pbx", "guess", "abc", 1).expect("responds");
    assert_eq!(
        bad(&mut s, "INVITE", &wrong),
        Verdict::Invalid(Reject::Response)
    );
    let right = respond(&challenge, "INVITE", URI, "pbx", "s3cret", "abc", 1).expect("responds");
    assert_eq!(
        bad(&mut s, "BYE", &right),
        Verdict::Invalid(Reject::Response)
    );
    let stranger = respond(&challenge, "INVITE", URI, "eve", "s3cret", "abc", 1).expect("responds");
    assert_eq!(
        bad(&mut s, "INVITE", &stranger),
        Verdict::Invalid(Reject::User)
    );
    let other_realm = right.replace("realm=\"hotline.example\"", "realm=\"elsewhere\"");
    assert_eq!(
        bad(&mut s, "INVITE", &other_realm),
        Verdict::Invalid(Reject::Realm)
    );
    assert_eq!(
        bad(&mut s, "INVITE", "Digest username=\"pbx\""),
        Verdict::Invalid(Reject::Malformed)
    );
    assert_eq!(
        bad(&mut s, "INVITE", "Basic cGJ4OnMzY3JldA=="),
        Verdict::Invalid(Reject::Malformed)
    );
    let no_qop = right.replace(", qop=auth", "");
    assert_eq!(
        bad(&mut s, "INVITE", &no_qop),
        Verdict::Invalid(Reject::Unsupported)
    );
    // The right credential still works after all those failures.
    assert_eq!(bad(&mut s, "INVITE", &right), ok());
}

#[test]
fn forged_nonces_are_refused_and_ours_from_another_key_too() {
    let t0 = base();
    let mut s = server(t0);
    let mut other = DigestServer::new(DigestConfig::new("hotline.example"), [1; 32], t0);
    for challenge in [
        other.challenge(t0, false).remove(0),
        "Digest realm=\"hotline.example\", nonce=\"abcd\", qop=\"auth\"".to_string(),
    ] {
        let auth = respond(&challenge, "INVITE", URI, "pbx", "s3cret", "abc", 1).expect("responds");
        assert_eq!(
            s.verify(t0, "INVITE", &auth),
            Verdict::Invalid(Reject::Nonce)
        );
    }
}

#[test]
fn a_replayed_nonce_count_is_refused_and_a_higher_one_accepted() {
    let t0 = base();
    let mut s = server(t0);
    let challenge = s.challenge(t0, false).remove(0);
    let with_nc =
        |nc| respond(&challenge, "INVITE", URI, "pbx", "s3cret", "abc", nc).expect("responds");
    assert_eq!(s.verify(t0, "INVITE", &with_nc(1)), ok());
    assert_eq!(
        s.verify(t0, "INVITE", &with_nc(1)),
        Verdict::Invalid(Reject::Replay)
    );
    assert_eq!(s.verify(t0, "INVITE", &with_nc(3)), ok());
    assert_eq!(
        s.verify(t0, "INVITE", &with_nc(2)),
        Verdict::Invalid(Reject::Replay)
    );
}

#[test]
fn an_expired_nonce_with_right_credentials_is_stale() {
    let t0 = base();
    let mut s = server(t0);
    let challenge = s.challenge(t0, false).remove(0);
    let auth = respond(&challenge, "INVITE", URI, "pbx", "s3cret", "abc", 1).expect("responds");
    let late = t0 + Duration::from_secs(301);
    assert_eq!(s.verify(late, "INVITE", &auth), Verdict::Stale);
    let wrong = respond(&challenge, "INVITE", URI, "pbx", "guess", "abc", 1).expect("responds");
    assert_eq!(
        s.verify(late, "INVITE", &wrong),
        Verdict::Invalid(Reject::Response)
    );
    // A fresh challenge at that time works.
    let fresh = s.challenge(late, true).remove(0);
    let auth = respond(&fresh, "INVITE", URI, "pbx", "s3cret", "abc", 1).expect("responds");
    assert_eq!(
        s.verify(late + Duration::from_secs(1), "INVITE", &auth),
        ok()
    );
}

#[test]
fn the_nonce_table_is_bounded_and_forgets_the_oldest_first() {
    let t0 = base();
    let mut config = DigestConfig::new("hotline.example");
    config.max_nonces = 3;
    config
        .users
        .insert("pbx".into(), Credentials::password("s3cret"));
    let mut s = DigestServer::new(config, [9; 32], t0);
    let challenges: Vec<String> = (0..4).map(|_| s.challenge(t0, false).remove(0)).collect();
    assert!(s.nonces.len() <= 3 && s.order.len() <= 3);
    let auth = |c: &str| respond(c, "INVITE", URI, "pbx", "s3cret", "abc", 1).expect("responds");
    assert_eq!(
        s.verify(t0, "INVITE", &auth(&challenges[0])),
        Verdict::Stale
    );
    assert_eq!(s.verify(t0, "INVITE", &auth(&challenges[3])), ok());
}

#[test]
fn stored_ha1_values_authenticate_without_a_password() {
    let t0 = base();
    let mut config = DigestConfig::new("hotline.example");
    let user = Credentials {
        password: None,
        ha1_md5: Some(
            Algorithm::Md5
                .hex("pbx:hotline.example:s3cret")
                .to_uppercase(),
        ),
        ha1_sha256: None,
    };
    config.users.insert("pbx".into(), user);
    let mut s = DigestServer::new(config, [9; 32], t0);
    let [md5, sha] = <[String; 2]>::try_from(s.challenge(t0, false)).expect("two algorithms");
    let auth = |c: &str| respond(c, "INVITE", URI, "pbx", "s3cret", "abc", 1).expect("responds");
    assert_eq!(s.verify(t0, "INVITE", &auth(&md5)), ok());
    assert_eq!(
        s.verify(t0, "INVITE", &auth(&sha)),
        Verdict::Invalid(Reject::User)
    );
}

#[test]
fn config_reads_from_toml_with_defaults() {
    let config: DigestConfig = toml::from_str(
        "realm = \"hotline.example\"\n\
         algorithms = [\"SHA-256\"]\n\
         [users.pbx]\npassword = \"s3cret\"\n\
         [users.trunk]\nha1_md5 = \"0123\"\n",
    )
    .expect("parses");
    assert_eq!(config.algorithms, [Algorithm::Sha256]);
    assert_eq!(config.nonce_lifetime_s, 300);
    assert_eq!(config.users["pbx"], Credentials::password("s3cret"));
    assert_eq!(config.users["trunk"].ha1_md5.as_deref(), Some("0123"));
    assert!(toml::from_str::<DigestConfig>("realm = \"r\"\nalgorithms = [\"SHA1\"]").is_err());
}

#[test]
fn digest_params_handle_quoting_escapes_and_refuse_repeats() {
    let p = parse_digest("Digest  a=\"x\\\"y, z\" ,b=tok ,c=\"\"").expect("parses");
    assert_eq!(
        (p.get("a"), p.get("b"), p.get("c")),
        (Some("x\"y, z"), Some("tok"), Some(""))
    );
    assert!(parse_digest("Digest a=1, a=2").is_none());
    assert!(parse_digest("Digest a=\"unterminated").is_none());
    assert!(parse_digest("Digest a=\"x\" junk, b=1").is_none());
    assert!(parse_digest(&format!("Digest a=\"{}\"", "x".repeat(MAX_HEADER_LEN))).is_none());
    assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(parse_nc("+0000001"), None);
    assert_eq!(parse_nc("0000000a"), Some(10));
}
