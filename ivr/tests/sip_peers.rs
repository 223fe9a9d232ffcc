//! The phone gateway against SIP user agents written elsewhere: SIPp (Debian `sip-tester`)
//! and baresip, each run as a child process against the real `ivr serve` on loopback.
//!
//! - SIPp runs the scenarios of `tests/sip/` (described in `tests/sip/README.md`): a caller
//!   who files a complaint by keypad (RFC 4733 from SIPp's own captures, SIP INFO) and voice
//!   (`rtp_stream`), a CANCEL before the answer, a BYE in the middle of the greeting, and the
//!   built-in `uac` at 20 calls per second for 30 s.
//! - baresip is a second, independent user agent, driven through its `ctrl_tcp` module: it
//!   calls, keys the same complaint (RFC 4733, its own packets), and hangs up.
//!
//! SIPp cannot hear the prompts, so keys are timed, with room to spare; the hotline's answer
//! is checked where it lands: the case registry (`CaseService`) and `/metrics`.
//!
//! Every child is bounded in time (its own limit, and a kill when the test's limit passes or
//! the test ends) and a failure prints its output, SIPp's error log and the server's log. A
//! missing `sipp`, `baresip`, `flite` or `sox` fails the test with "run scripts/setup.sh":
//! nothing is skipped.

mod common;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ivr_proto::v1::case_service_client::CaseServiceClient;
use ivr_proto::v1::{CaseType, ListCasesRequest};

/// The SIPp scenarios and their README.
const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/sip");

/// Where SIPp's RFC 4733 captures (`dtmf_2833_*.pcap`) are installed: Debian's `sip-tester`,
/// then SIPp's own `make install` layout.
const PCAP_DIRS: &[&str] = &[
    "/usr/share/sip-tester",
    "/usr/local/share/sipp/pcap",
    "/usr/share/sipp/pcap",
];

/// What the caller says when asked for the complaint.
const COMPLAINT: &str = "The street light outside my house is broken.";

/// The number keyed for the call-back, and the case type keyed (1: complaint).
const CALLBACK: &str = "88001122";

/// The current instant, for the deadlines below.
#[allow(clippy::disallowed_methods)] // Deadlines of real child processes need the real clock.
fn now() -> Instant {
    Instant::now()
}

/// Runs `future` to its end on a fresh runtime (the tests themselves are synchronous: they
/// wait for child processes).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("a tokio runtime: {e}"))
        .block_on(future)
}

/// The path of `program` on `PATH`; fails the test when it is not installed.
fn require(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is not installed: run scripts/setup.sh"))
}

/// Runs a tool to its end and fails the test with its output when it fails.
fn run_tool(program: &str, args: &[&str]) {
    let out = Command::new(require(program))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The caller's words, synthesized by Flite (a voice of its own, not the hotline's) and
/// written by sox as 8 kHz mono audio of exactly `seconds`: `lead` seconds of silence, the
/// speech, then silence. `format` is sox's output type (`ul`: raw G.711 u-law; `wav`).
fn caller_audio(dir: &Path, name: &str, format: &str, lead: f64, seconds: f64) -> PathBuf {
    let speech = dir.join("speech.wav");
    let speech = speech.to_string_lossy();
    run_tool("flite", &["-voice", "rms", "-t", COMPLAINT, "-o", &speech]);
    let out = dir.join(name);
    let out_str = out.to_string_lossy();
    let (lead, seconds) = (lead.to_string(), seconds.to_string());
    let mut args = vec![&*speech, "-r", "8000", "-c", "1"];
    match format {
        "ul" => args.extend(["-t", "ul"]),
        _ => args.extend(["-b", "16", "-e", "signed-integer"]),
    }
    args.extend([&*out_str, "pad", &lead, &seconds, "trim", "0", &seconds]);
    run_tool("sox", &args);
    out
}

/// A child process with its stdout and stderr in files, killed if still running when
/// dropped.
struct Child {
    name: String,
    pid: u32,
    exited: mpsc::Receiver<std::io::Result<ExitStatus>>,
    status: Option<ExitStatus>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Child {
    /// Starts `command` in `dir`, its output going to `dir/NAME.stdout` and `.stderr`.
    fn spawn(name: &str, mut command: Command, dir: &Path) -> Child {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let file = |path: &Path| {
            File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
        };
        let mut child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let pid = child.id();
        let (tx, exited) = mpsc::channel();
        // A waiting thread owns the process; the test keeps its pid to kill it.
        #[allow(clippy::disallowed_methods)]
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        Child {
            name: name.to_string(),
            pid,
            exited,
            status: None,
            stdout,
            stderr,
        }
    }

    /// Waits for the process to end, at most `limit`; `None` when it is still running.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.exited.recv_timeout(limit) {
                Ok(Ok(status)) => self.status = Some(status),
                Ok(Err(e)) => panic!("waiting for {}: {e}", self.name),
                Err(_) => return None,
            }
        }
        self.status
    }

    /// Its output so far, for failure messages.
    fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            tail(&read(&self.stdout), 12_000),
            self.name,
            tail(&read(&self.stderr), 4_000)
        )
    }

    fn kill(&mut self) {
        if self.status.is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
            let _ = self.wait(Duration::from_secs(5));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The end of `text`, at most about `max` bytes.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A directory to run SIPp in: the scenario copied next to the files it plays (SIPp looks
/// for them next to the scenario), and its logs.
struct SippRun {
    dir: tempfile::TempDir,
}

/// What SIPp reported.
struct SippResult {
    status: ExitStatus,
    successful: u64,
    failed: u64,
    report: String,
}

impl SippRun {
    fn new() -> SippRun {
        require("sipp");
        SippRun {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary dir: {e}")),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `tests/sip/NAME` here.
    fn scenario(&self, name: &str) {
        let from = Path::new(SCENARIOS).join(name);
        std::fs::copy(&from, self.path().join(name))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
    }

    /// Copies SIPp's capture of the RFC 4733 key `key` (`2`, `pound`, ...) here.
    fn dtmf_pcap(&self, key: &str) {
        let name = format!("dtmf_2833_{key}.pcap");
        let from = PCAP_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(&name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!("SIPp's {name} is not in {PCAP_DIRS:?}: run scripts/setup.sh")
            });
        std::fs::copy(&from, self.path().join(&name))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
    }

    /// Runs `sipp ARGS... SERVER` here, at most `limit`, and reads its final statistics.
    fn run(&self, server: &common::Server, args: &[&str], limit: Duration) -> SippResult {
        let mut command = Command::new(require("sipp"));
        command
            .args(args)
            .args(["-i", "127.0.0.1", "-s", "1111", "-nostdin", "-trace_err"])
            .args(["-p", &common::free_port().to_string()])
            .args(["-mp", &common::free_udp_pair().to_string()])
            // SIPp's own bound: it fails (exit 1) rather than run past the test's limit.
            .args([
                "-timeout",
                &format!("{}s", limit.as_secs()),
                "-timeout_error",
            ])
            .arg(server.sip_addr().to_string());
        let mut child = Child::spawn("sipp", command, self.path());
        let status = child.wait(limit + Duration::from_secs(10));
        let mut report = child.output();
        for entry in std::fs::read_dir(self.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("_errors.log") || name.ends_with("_error_codes.log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                report.push_str(&format!("\n--- {name} ---\n{}", tail(&text, 6_000)));
            }
        }
        report.push_str(&format!(
            "\n--- server log ---\n{}",
            tail(&server.log(), 8_000)
        ));
        let Some(status) = status else {
            child.kill();
            panic!("sipp ran past {} s\n{report}", limit.as_secs());
        };
        let stdout = std::fs::read_to_string(&child.stdout).unwrap_or_default();
        SippResult {
            status,
            successful: final_count(&stdout, "Successful call").unwrap_or(0),
            failed: final_count(&stdout, "Failed call").unwrap_or(0),
            report,
        }
    }
}

/// The cumulative value of a counter in SIPp's last statistics screen, e.g.
/// `  Successful call        |        0                  |        1                 `.
fn final_count(screen: &str, counter: &str) -> Option<u64> {
    let line = screen
        .lines()
        .rfind(|l| l.trim_start().starts_with(counter))?;
    line.split('|').nth(2)?.trim().parse().ok()
}

impl SippResult {
    /// Asserts SIPp's exit code 0 (every call as its scenario says) and the counts.
    fn assert_calls(&self, successful: u64) {
        assert!(
            self.status.success() && self.successful == successful && self.failed == 0,
            "sipp: {}, {} successful (want {successful}), {} failed\n{}",
            self.status,
            self.successful,
            self.failed,
            self.report
        );
    }
}

/// The one case the hotline holds, found through `CaseService`.
async fn the_only_case(server: &common::Server) -> ivr_proto::v1::Case {
    let mut cases = CaseServiceClient::connect(server.grpc_url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to CaseService: {e}"));
    let list = cases
        .list_cases(ListCasesRequest::default())
        .await
        .unwrap_or_else(|e| panic!("ListCases: {e}"))
        .into_inner();
    assert_eq!(
        list.cases.len(),
        1,
        "want one case: {:?}\n--- server log ---\n{}",
        list.cases,
        server.log()
    );
    list.cases
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!("one case, checked above"))
}

/// Checks a complaint filed by keypad from the phone: type complaint, channel phone, the
/// recording kept, and the call-back number keyed (after a `2` that is either "no" to "the
/// number you call from" or the number's first digit, depending on whether the gateway knew
/// the caller's number).
async fn assert_keyed_complaint(server: &common::Server) {
    let case = the_only_case(server).await;
    assert_eq!(case.r#type, CaseType::Complaint as i32, "{case:?}");
    assert_eq!(case.channel, "phone", "{case:?}");
    assert!(!case.recording_path.is_empty(), "no recording: {case:?}");
    assert!(
        case.callback_number == CALLBACK || case.callback_number == format!("2{CALLBACK}"),
        "call-back number {:?}, want {CALLBACK}: {case:?}",
        case.callback_number
    );
    let filed = server.metric("ivr_cases_filed_total").await;
    assert_eq!(filed, Some(1.0), "ivr_cases_filed_total");
}

#[test]
fn a_sipp_caller_files_a_complaint_by_keypad_and_voice() {
    let run = SippRun::new();
    run.scenario("call_keys.xml");
    run.dtmf_pcap("2");
    run.dtmf_pcap("pound");
    caller_audio(run.path(), "caller.ul", "ul", 0.3, 5.0);
    let server = common::start_server();

    let result = run.run(
        &server,
        &["-sf", "call_keys.xml", "-m", "1"],
        Duration::from_secs(120),
    );
    result.assert_calls(1);

    block_on(async {
        assert_keyed_complaint(&server).await;
        let calls = server.metric("ivr_calls_total").await;
        assert_eq!(calls, Some(1.0), "ivr_calls_total\n{}", server.log());
    });
}

#[test]
fn a_cancel_before_the_answer_gets_200_and_the_invite_487() {
    let run = SippRun::new();
    run.scenario("cancel.xml");
    let server = common::start_server();
    let result = run.run(
        &server,
        &["-sf", "cancel.xml", "-m", "1"],
        Duration::from_secs(30),
    );
    result.assert_calls(1);
}

#[test]
fn a_bye_in_the_middle_of_the_greeting_gets_200() {
    let run = SippRun::new();
    run.scenario("bye_mid_prompt.xml");
    let server = common::start_server();
    let result = run.run(
        &server,
        &["-sf", "bye_mid_prompt.xml", "-m", "1"],
        Duration::from_secs(30),
    );
    result.assert_calls(1);
    let calls = block_on(server.metric("ivr_calls_total"));
    assert_eq!(calls, Some(1.0), "ivr_calls_total\n{}", server.log());
}

#[test]
fn six_hundred_calls_at_twenty_per_second_all_succeed() {
    let run = SippRun::new();
    let server = common::start_server();
    // SIPp's built-in caller: INVITE, ACK, a pause of -d ms (the hotline talks), BYE.
    let result = run.run(
        &server,
        &[
            "-sn", "uac", "-r", "20", "-m", "600", "-d", "1000", "-l", "200",
        ],
        Duration::from_secs(120),
    );
    result.assert_calls(600);
    let calls = block_on(server.metric("ivr_calls_total"));
    assert_eq!(calls, Some(600.0), "ivr_calls_total\n{}", server.log());
}

/// baresip driven through its `ctrl_tcp` module: JSON commands and events in netstrings.
struct Baresip {
    child: Child,
    control: TcpStream,
    buffer: Vec<u8>,
    /// Every event and response so far, one JSON text each.
    seen: Vec<String>,
}

impl Baresip {
    /// Starts baresip with a configuration made in `dir`: SIP on 127.0.0.1 only, G.711, no
    /// sound card (`source` played by `aufile`, nothing played out), and `ctrl_tcp`.
    fn start(dir: &Path, source: &Path, limit: Duration) -> Baresip {
        let sip_port = common::free_port();
        let control_port = common::free_port();
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip_port}\n\
             sip_transports\t\tudp\n\
             net_interface\t\t127.0.0.1\n\
             audio_source\t\taufile,{source}\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module\t\t\tctrl_tcp.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             ctrl_tcp_listen\t\t127.0.0.1:{control_port}\n",
            source = source.display()
        );
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text)
                .unwrap_or_else(|e| panic!("cannot write baresip's {name}: {e}"))
        };
        write("config", &config);
        // No registration: the hotline is called directly.
        write("accounts", "<sip:99112233@127.0.0.1>;regint=0\n");
        write("contacts", "");

        let mut command = Command::new(require("baresip"));
        command
            .arg("-f")
            .arg(dir)
            .args(["-t", &limit.as_secs().to_string()]);
        let mut child = Child::spawn("baresip", command, dir);

        // baresip opens its control port once its modules are loaded.
        let deadline = now() + Duration::from_secs(10);
        let control = loop {
            match TcpStream::connect(("127.0.0.1", control_port)) {
                Ok(stream) => break stream,
                Err(e) => {
                    if let Some(status) = child.wait(Duration::from_millis(100)) {
                        panic!("baresip exited ({status})\n{}", child.output());
                    }
                    assert!(
                        now() < deadline,
                        "baresip's ctrl_tcp did not open: {e}\n{}",
                        child.output()
                    );
                }
            }
        };
        Baresip {
            child,
            control,
            buffer: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Sends one command (`dial`, `sndcode`, `hangup`, `quit`).
    fn command(&mut self, command: &str, params: &str) {
        let json =
            serde_json::json!({"command": command, "params": params, "token": command}).to_string();
        let frame = format!("{}:{json},", json.len());
        if let Err(e) = self.control.write_all(frame.as_bytes()) {
            panic!("baresip's ctrl_tcp: {e}\n{}", self.report());
        }
    }

    /// Reads events until `deadline`, or until one of type `until` (returned).
    fn events(&mut self, deadline: Instant, until: Option<&str>) -> Option<serde_json::Value> {
        loop {
            while let Some(text) = self.next_frame() {
                let value: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("baresip sent {text:?}: {e}"));
                self.seen.push(text);
                if until.is_some() && value["type"].as_str() == until {
                    return Some(value);
                }
                let kind = value["type"].as_str().unwrap_or_default();
                if matches!(kind, "CALL_CLOSED" | "AUDIO_ERROR") && until != Some(kind) {
                    panic!("the call ended early\n{}", self.report());
                }
            }
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return None;
            }
            let _ = self.control.set_read_timeout(Some(left));
            let mut chunk = [0u8; 4096];
            match self.control.read(&mut chunk) {
                Ok(0) => panic!("baresip closed its control port\n{}", self.report()),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("baresip's ctrl_tcp: {e}\n{}", self.report()),
            }
        }
    }

    /// Lets `time` pass on the call (events are read meanwhile; the call must stay up).
    fn pass(&mut self, time: Duration) {
        let _ = self.events(now() + time, None);
    }

    /// Waits at most `limit` for an event of type `kind`.
    fn expect(&mut self, kind: &str, limit: Duration) -> serde_json::Value {
        self.events(now() + limit, Some(kind))
            .unwrap_or_else(|| panic!("no {kind} from baresip\n{}", self.report()))
    }

    /// One netstring's text, once it is all buffered.
    fn next_frame(&mut self) -> Option<String> {
        let colon = self.buffer.iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&self.buffer[..colon])
            .ok()?
            .parse()
            .ok()?;
        let end = colon + 1 + len;
        if self.buffer.len() <= end {
            return None;
        }
        let text = String::from_utf8_lossy(&self.buffer[colon + 1..end]).into_owned();
        self.buffer.drain(..=end);
        Some(text)
    }

    fn report(&self) -> String {
        format!(
            "--- baresip events ---\n{}\n{}",
            self.seen.join("\n"),
            self.child.output()
        )
    }
}

#[test]
fn baresip_calls_keys_a_complaint_and_hangs_up() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary dir: {e}"));
    // The source plays from the answer on: silence through the greeting and the menus, the
    // complaint after the recording prompt, then silence to the end of the call.
    let source = caller_audio(dir.path(), "caller.wav", "wav", 28.0, 90.0);
    let server = common::start_server();
    let mut phone = Baresip::start(dir.path(), &source, Duration::from_secs(100));

    phone.command("dial", &format!("sip:1111@{}", server.sip_addr()));
    let established = phone.expect("CALL_ESTABLISHED", Duration::from_secs(10));
    assert_eq!(established["direction"], "outgoing", "{established}");

    // The same keys as call_keys.xml (tests/sip/README.md), all by RFC 4733.
    let mut key = |wait_ms: u64, keys: &str| {
        phone.pass(Duration::from_millis(wait_ms));
        for k in keys.chars() {
            phone.command("sndcode", &k.to_string());
            phone.pass(Duration::from_millis(300));
        }
    };
    key(15_000, "2"); // English
    key(2_000, "2"); // a petition or complaint; the recording prompt, the speech at 28 s
    key(15_000, "#"); // the end of the recording
    key(6_000, "1"); // complaint
    key(2_000, "1"); // no office named
    key(2_000, "2"); // not the calling number, or the number's first digit
    key(1_000, &format!("{CALLBACK}#"));
    phone.pass(Duration::from_secs(3));

    phone.command("hangup", "");
    let closed = phone.expect("CALL_CLOSED", Duration::from_secs(10));
    let reason = closed["param"].as_str().unwrap_or_default();
    assert!(
        !reason.contains("error") && !reason.contains("end of file"),
        "the call closed with {reason:?}\n{}",
        phone.report()
    );
    phone.command("quit", "");
    let exited = phone.child.wait(Duration::from_secs(10));
    assert!(
        exited.is_some_and(|s| s.success()),
        "baresip did not quit cleanly: {exited:?}\n{}",
        phone.report()
    );

    block_on(assert_keyed_complaint(&server));
}
