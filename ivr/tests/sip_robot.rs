//! The robot caller over a phone line: `ivr call sip:1111@...` against the real `ivr serve`
//! and its SIP gateway on loopback. The robot calls like a phone (SIP/UDP, G.711 RTP, RFC 4733
//! keys) and knows the prompts only by what Whisper (tiny.en) hears on the line, so the
//! scripts' expectations are key words. It mirrors `grpc_calls.rs`'s complaint scenario: a
//! complaint filed by voice, then its status checked by keypad in a second call.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ivr_proto::v1::case_service_client::CaseServiceClient;
use ivr_proto::v1::{CaseType, ListCasesRequest};

/// The example script that files a complaint by voice over SIP.
const COMPLAINT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/complaint_sip.call"
);

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("script written");
    path
}

/// Runs `ivr call sip:1111@<gateway>` with `script`; fails the test with the timeline and the
/// server's log when the call fails.
fn call(server: &common::Server, script: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .arg("call")
        .arg(format!("sip:1111@{}", server.sip_addr()))
        .arg("--script")
        .arg(script)
        .args(["--lang", "en", "--caller", "99112233", "--timeout", "40"])
        .output()
        .expect("ivr call runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the call failed: {stderr}\n--- timeline ---\n{stdout}\n--- server log ---\n{}",
        server.log()
    );
    out
}

#[test]
fn a_complaint_filed_by_voice_over_sip_is_found_again_by_keypad() {
    let server = common::start_server();
    call(&server, Path::new(COMPLAINT));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let cases = runtime.block_on(async {
        let mut client = CaseServiceClient::connect(server.grpc_url())
            .await
            .expect("CaseService");
        client
            .list_cases(ListCasesRequest::default())
            .await
            .expect("ListCases")
            .into_inner()
            .cases
    });
    assert_eq!(cases.len(), 1, "want one case: {cases:?}");
    let case = &cases[0];
    assert_eq!(case.r#type, CaseType::Complaint as i32, "{case:?}");
    assert_eq!(case.channel, "phone", "{case:?}");
    assert!(
        case.transcript.to_lowercase().contains("school"),
        "the complaint's words: {case:?}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let status = script(
        dir.path(),
        "status.call",
        &format!(
            "# A second call: the status by keypad.\n\
             wait-prompt\n\
             key 3\n\
             wait-prompt\n\
             key {}#\n\
             wait-prompt\n\
             expect (?is)calling.*petition.*status\n\
             key 2\n\
             expect (?i)good ?bye\n",
            case.number
        ),
    );
    call(&server, &status);
}
