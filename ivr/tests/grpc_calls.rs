//! Whole calls over gRPC on loopback: the real server (`ivr serve`: Whisper tiny.en, Flite,
//! SQLite) called by the real robot (`ivr call`: caller speech synthesized with another voice,
//! at 8 kHz through G.711 µ-law, paced in real time). Calls take real time (prompts are
//! played out at the speed a caller hears them), so each scenario barges in where a caller
//! would and keeps its script short.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The server, killed when dropped.
struct Server {
    child: Child,
    grpc: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .arg("--data")
        .arg(data.path())
        // The assistant alone: these calls use gRPC, and tests run side by side.
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--no-sip",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ivr serve starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let grpc = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.split("grpc://").nth(1) {
                    break rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                }
            }
            _ => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("ivr serve did not start: {err}");
            }
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    #[allow(clippy::disallowed_methods)] // a test owns its helper thread
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        grpc,
        _data: data,
    }
}

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("script written");
    path
}

/// Runs `ivr call` (give `--timeout`: how long each expectation may wait).
fn call(server: &Server, script: &Path, extra: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .arg("call")
        .arg(format!("grpc://{}", server.grpc))
        .arg("--script")
        .arg(script)
        .args(["--lang", "en", "--caller", "99112233"])
        .args(extra)
        .output()
        .expect("ivr call runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the call failed: {stderr}\n--- timeline ---\n{stdout}"
    );
    out
}

/// Someone answers: a transfer inside opening hours, the closed message outside them (the
/// server runs on the real clock).
const OPERATOR: &str = "Connecting you to a staff member|We are closed now";

#[test]
fn a_complaint_filed_by_voice_is_found_again_by_keypad() {
    let server = start_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = script(
        dir.path(),
        "file.call",
        "# Barge into the main menu, file a complaint by voice, hear the number.\n\
         expect For information about public services\n\
         silence 1\n\
         say I want to make a complaint\n\
         expect After the tone\n\
         wait-prompt\n\
         say The street light outside my house has been broken for a month and the road is dark.\n\
         expect If this is a complaint\n\
         key 1\n\
         expect which office\n\
         key 1\n\
         expect reply to the number you are calling from\n\
         key 1\n\
         expect Your number is\n\
         wait-prompt\n\
         key 2\n\
         expect Goodbye\n",
    );
    let out = call(&server, &file, &["--transcript", "--timeout", "40"]);
    let transcript = String::from_utf8_lossy(&out.stdout);
    let line = transcript
        .lines()
        .find(|l| l.contains("Your number is"))
        .expect("the number was said");
    let digits: String = line
        .split("Your number is")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(digits.len(), 10, "{line}");

    let status = script(
        dir.path(),
        "status.call",
        &format!(
            "# A second call: the status by keypad.\n\
             expect For information about public services\n\
             key 3\n\
             expect key in your petition number\n\
             key {digits}#\n\
             expect Your complaint from .* Status: received\n\
             key 2\n\
             expect Goodbye\n"
        ),
    );
    call(&server, &status, &["--no-asr-check", "--timeout", "40"]);
}

#[test]
fn service_information_by_voice_then_a_person() {
    let server = start_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let s = script(
        dir.path(),
        "info.call",
        &format!(
            "expect For information about public services\n\
             silence 1\n\
             say information\n\
             expect Civil registration and ID card\n\
             silence 1\n\
             say birth certificate\n\
             expect Birth registration\n\
             key 0\n\
             expect {OPERATOR}\n"
        ),
    );
    let out = call(&server, &s, &["--no-asr-check", "--timeout", "40"]);
    let timeline = String::from_utf8_lossy(&out.stdout);
    // The caller spoke over the main menu and over the topics: both prompts were cut.
    assert!(
        timeline.matches("barge-in").count() >= 2,
        "no barge-in in the timeline:\n{timeline}"
    );
}

#[test]
fn silence_is_met_with_a_reprompt_then_the_key_map() {
    let server = start_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let s = script(
        dir.path(),
        "silence.call",
        "expect To change the language\n\
         wait-prompt\n\
         silence 9\n\
         expect Sorry, I did not hear a choice\n\
         wait-prompt\n\
         silence 9\n\
         expect Sorry, I did not hear a choice. At any time: press 9\n\
         key 0\n",
    );
    call(&server, &s, &["--no-asr-check", "--timeout", "60"]);
}

#[test]
fn words_that_mean_nothing_here_are_not_a_choice() {
    let server = start_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let s = script(
        dir.path(),
        "nonsense.call",
        "expect For information about public services\n\
         silence 1\n\
         say banana pancake umbrella\n\
         expect Sorry, that is not a choice\n\
         key 0\n",
    );
    call(&server, &s, &["--no-asr-check", "--timeout", "40"]);
}
