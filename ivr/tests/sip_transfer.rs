//! Transfer to the operator over SIP, against SIPp playing the caller and the operator.
//!
//! The caller keys 0 (a person, anywhere in the flow) once the greeting is over; the server
//! runs a copy of the hotline's flow open all week, so the operator state transfers rather
//! than offering a call-back, and `--operator` points the transfer at a URI of the test's.
//!
//! - `transfer_refer.xml`: the caller takes the REFER (RFC 3515): 202, a final NOTIFY with
//!   `SIP/2.0 200 OK`, and the hotline hangs up. Refer-To must be the operator's URI.
//! - `transfer_refused.xml` + `operator.xml`: the caller answers the REFER with 501, so the
//!   hotline calls the operator (a second SIPp) and relays audio between the legs. The
//!   operator's media port is a socket of this test: it counts what the hotline sends (the
//!   caller's speech, relayed, is told from the silence the hotline sends when nobody talks)
//!   and sends each packet back as the operator's voice. The caller hangs up; the operator
//!   must then get BYE.
//!
//! SIPp's scenarios are in `tests/sip/` (see its README). A failure prints both SIPp's
//! message logs (`-trace_msg`), their error logs and the server's log. A missing `sipp`,
//! `flite` or `sox` fails the test with "run scripts/setup.sh".

mod common;

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The SIPp scenarios and their README.
const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/sip");

/// The hotline's flow and its prompts, copied and opened all week for these tests.
const FLOW_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dialogs/flows");

/// The server's log filter: the gateway's account of each call, for failure messages.
const SERVER_LOG: &str = "warn,ivr=info";

/// What the caller says to the operator.
const SPEECH: &str = "Hello, I would like to speak to somebody about my pension.";

/// The current instant, for the deadlines below.
#[allow(clippy::disallowed_methods)] // Deadlines of real child processes need the real clock.
fn now() -> Instant {
    Instant::now()
}

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

/// The caller's words as raw G.711 u-law at 8 kHz (what SIPp's `rtp_stream` sends as it is),
/// 5 s: 0.3 s of silence, the speech (Flite, a voice other than the hotline's), silence.
fn caller_audio(dir: &Path) {
    let speech = dir.join("speech.wav");
    let speech = speech.to_string_lossy();
    run_tool("flite", &["-voice", "rms", "-t", SPEECH, "-o", &speech]);
    let out = dir.join("caller.ul");
    run_tool(
        "sox",
        &[
            &speech,
            "-r",
            "8000",
            "-c",
            "1",
            "-t",
            "ul",
            &out.to_string_lossy(),
            "pad",
            "0.3",
            "5",
            "trim",
            "0",
            "5",
        ],
    );
}

/// Copies the hotline's flow into `dir`, open every day around the clock, so key 0 leads to
/// a transfer whatever the time of the test; returns the flow file.
fn open_all_week(dir: &Path) -> PathBuf {
    let flow = std::fs::read_to_string(Path::new(FLOW_DIR).join("hotline.toml"))
        .unwrap_or_else(|e| panic!("cannot read the hotline's flow: {e}"));
    let mut rewritten = 0;
    let flow: String = flow
        .lines()
        .map(|line| {
            let key = line.split('=').next().unwrap_or_default().trim();
            match key {
                "hours" => {
                    rewritten += 1;
                    "hours = \"00:00-24:00\"".to_owned()
                }
                "days" => {
                    rewritten += 1;
                    "days = \"mon-sun\"".to_owned()
                }
                _ => line.to_owned(),
            }
        })
        .map(|line| line + "\n")
        .collect();
    assert_eq!(
        rewritten, 2,
        "hotline.toml has no hours/days to open:\n{flow}"
    );
    let file = dir.join("hotline.toml");
    std::fs::write(&file, flow).unwrap_or_else(|e| panic!("cannot write the flow: {e}"));
    std::fs::copy(
        Path::new(FLOW_DIR).join("prompts.tsv"),
        dir.join("prompts.tsv"),
    )
    .unwrap_or_else(|e| panic!("cannot copy prompts.tsv: {e}"));
    file
}

/// A child process with its stdout and stderr in files, killed if still running when
/// dropped.
struct Child {
    name: String,
    pid: u32,
    exited: mpsc::Receiver<std::io::Result<ExitStatus>>,
    status: Option<ExitStatus>,
    stdout: PathBuf,
}

impl Child {
    /// Starts `command` in `dir`, its output going to `dir/NAME.stdout` and `.stderr`.
    fn spawn(name: &str, mut command: Command, dir: &Path) -> Child {
        let stdout = dir.join(format!("{name}.stdout"));
        let file = |path: &Path| {
            File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
        };
        let mut child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file(&stdout))
            .stderr(file(&dir.join(format!("{name}.stderr"))))
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

/// One SIPp process playing `scenario` (copied from `tests/sip/` into `dir`), in `dir`.
struct Sipp {
    scenario: String,
    dir: PathBuf,
    child: Child,
    limit: Duration,
}

/// How SIPp ended.
struct SippResult {
    status: ExitStatus,
    successful: u64,
    failed: u64,
}

impl Sipp {
    /// Starts `sipp -sf SCENARIO ARGS...` on 127.0.0.1:`port`, one call, bounded by `limit`
    /// (SIPp fails with exit 1 past it), with its messages and errors logged.
    fn start(dir: &Path, scenario: &str, port: u16, args: &[&str], limit: Duration) -> Sipp {
        let from = Path::new(SCENARIOS).join(scenario);
        std::fs::copy(&from, dir.join(scenario))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
        let mut command = Command::new(require("sipp"));
        command
            .args(["-sf", scenario, "-m", "1", "-i", "127.0.0.1", "-nostdin"])
            .args(["-p", &port.to_string()])
            .args(["-trace_err", "-trace_msg"])
            .args([
                "-timeout",
                &format!("{}s", limit.as_secs()),
                "-timeout_error",
            ])
            .args(args);
        let name = scenario.trim_end_matches(".xml");
        Sipp {
            scenario: name.to_owned(),
            dir: dir.to_owned(),
            child: Child::spawn(name, command, dir),
            limit,
        }
    }

    /// Waits for SIPp to end and reads its final statistics; `None` (SIPp killed) when it
    /// runs well past its own limit.
    fn finish(&mut self) -> Option<SippResult> {
        let Some(status) = self.child.wait(self.limit + Duration::from_secs(10)) else {
            self.child.kill();
            return None;
        };
        let stdout = std::fs::read_to_string(&self.child.stdout).unwrap_or_default();
        Some(SippResult {
            status,
            successful: final_count(&stdout, "Successful call").unwrap_or(0),
            failed: final_count(&stdout, "Failed call").unwrap_or(0),
        })
    }

    /// A SIPp log of this scenario (`messages`, `errors`), empty when there is none.
    fn log(&self, kind: &str) -> String {
        let prefix = format!("{}_", self.scenario);
        let suffix = format!("_{kind}.log");
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&prefix) && name.ends_with(&suffix))
            .map(|name| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default())
            .collect()
    }

    /// Its screen, messages and errors, for failure messages.
    fn report(&self) -> String {
        let stdout = std::fs::read_to_string(&self.child.stdout).unwrap_or_default();
        format!(
            "--- {0} screen ---\n{1}\n--- {0} messages ---\n{2}\n--- {0} errors ---\n{3}",
            self.scenario,
            tail(&stdout, 3_000),
            tail(&self.log("messages"), 12_000),
            tail(&self.log("errors"), 4_000),
        )
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
    /// Whether SIPp exited 0 with one successful call and none failed.
    fn one_call_passed(&self) -> bool {
        self.status.success() && self.successful == 1 && self.failed == 0
    }
}

/// How a SIPp run ended, for failure messages.
fn outcome(result: &Option<SippResult>) -> String {
    match result {
        Some(r) => format!(
            "{}, {} successful, {} failed",
            r.status, r.successful, r.failed
        ),
        None => "killed before its end".to_owned(),
    }
}

/// Whether a SIPp run exited 0 with its one call passed.
fn passed(result: &Option<SippResult>) -> bool {
    result.as_ref().is_some_and(SippResult::one_call_passed)
}

/// The value of the first header `name` (or its compact form) in a SIPp message log.
fn logged_header(messages: &str, names: &[&str]) -> Option<String> {
    messages.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        names
            .iter()
            .any(|n| name.trim().eq_ignore_ascii_case(n))
            .then(|| value.trim().to_owned())
    })
}

/// The operator's media port: receives what the hotline sends on the operator's leg and
/// sends every packet back (with an SSRC of its own), so the caller hears the operator.
struct OperatorMedia {
    port: u16,
    done: mpsc::Receiver<MediaCount>,
}

/// What reached the operator's media port.
#[derive(Debug, Default)]
struct MediaCount {
    /// RTP packets.
    packets: u64,
    /// PCMU packets that carry sound (the caller's speech), not digital silence.
    speech: u64,
    /// Packets sent back to the hotline.
    echoed: u64,
    /// Where the hotline sent from.
    sources: Vec<SocketAddr>,
}

impl OperatorMedia {
    /// Binds a port of 127.0.0.1 and serves it until nothing came for 3 s after the first
    /// packet, or until `limit`.
    fn start(limit: Duration) -> OperatorMedia {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("the operator's media port: {e}"));
        let port = socket
            .local_addr()
            .unwrap_or_else(|e| panic!("the operator's media port: {e}"))
            .port();
        let (tx, done) = mpsc::channel();
        let deadline = now() + limit;
        // A plain thread serving one socket with bounded reads.
        #[allow(clippy::disallowed_methods)]
        std::thread::spawn(move || {
            let mut count = MediaCount::default();
            let mut buf = [0u8; 2048];
            loop {
                let left = deadline.saturating_duration_since(now());
                let wait = if count.packets == 0 {
                    left
                } else {
                    left.min(Duration::from_secs(3))
                };
                if wait.is_zero() || socket.set_read_timeout(Some(wait)).is_err() {
                    break;
                }
                let Ok((n, source)) = socket.recv_from(&mut buf) else {
                    break;
                };
                let packet = &mut buf[..n];
                if n < 12 || packet[0] >> 6 != 2 {
                    continue;
                }
                count.packets += 1;
                if !count.sources.contains(&source) {
                    count.sources.push(source);
                }
                if packet[1] & 0x7f == 0 && is_speech(&packet[12..]) {
                    count.speech += 1;
                }
                packet[8..12].copy_from_slice(&0x0bad_cafe_u32.to_be_bytes());
                if socket.send_to(packet, source).is_ok() {
                    count.echoed += 1;
                }
            }
            let _ = tx.send(count);
        });
        OperatorMedia { port, done }
    }

    /// What came, once the port has gone quiet (at most `limit` from now).
    fn count(self, limit: Duration) -> MediaCount {
        self.done.recv_timeout(limit).unwrap_or_default()
    }
}

/// Whether a PCMU payload is sound rather than silence: its mean level is above -40 dBFS.
fn is_speech(payload: &[u8]) -> bool {
    if payload.is_empty() {
        return false;
    }
    let sum: u64 = payload
        .iter()
        .map(|&b| u64::from(ulaw_to_linear(b).unsigned_abs()))
        .sum();
    sum / payload.len() as u64 > 330
}

/// ITU-T G.711 µ-law to 16-bit linear.
fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let magnitude = ((((u & 0x0f) as i32) << 3) + 0x84) << exponent;
    let value = (magnitude - 0x84) as i16;
    if u & 0x80 != 0 {
        -value
    } else {
        value
    }
}

#[test]
fn a_caller_who_keys_0_is_transferred_by_refer_and_released() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary dir: {e}"));
    let flow = open_all_week(dir.path());
    let operator = format!("sip:operator@127.0.0.1:{}", common::free_port());
    let server = common::start_server_with(&[
        "--log",
        SERVER_LOG,
        "--flow",
        &flow.to_string_lossy(),
        "--operator",
        &operator,
    ]);

    let mut caller = Sipp::start(
        dir.path(),
        "transfer_refer.xml",
        common::free_port(),
        &[
            "-s",
            "1111",
            "-mp",
            &common::free_udp_pair().to_string(),
            &server.sip_addr().to_string(),
        ],
        Duration::from_secs(60),
    );
    let result = caller.finish();
    let report = || {
        format!(
            "{}\n--- server log ---\n{}",
            caller.report(),
            tail(&server.log(), 8_000)
        )
    };
    assert!(
        passed(&result),
        "the caller's scenario: {}\n{}",
        outcome(&result),
        report()
    );

    let refer_to = logged_header(&caller.log("messages"), &["Refer-To", "r"]);
    assert_eq!(
        refer_to.as_deref(),
        Some(format!("<{operator}>").as_str()),
        "Refer-To\n{}",
        report()
    );
    let transfers = block_on(server.metric("ivr_sip_transfers_total"));
    assert_eq!(
        transfers,
        Some(1.0),
        "ivr_sip_transfers_total\n{}",
        report()
    );
}

#[test]
fn a_refused_refer_is_bridged_to_the_operator_until_the_caller_hangs_up() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary dir: {e}"));
    let flow = open_all_week(dir.path());
    caller_audio(dir.path());

    let media = OperatorMedia::start(Duration::from_secs(90));
    let operator_port = common::free_port();
    let mut operator = Sipp::start(
        dir.path(),
        "operator.xml",
        operator_port,
        &["-key", "media_sink", &media.port.to_string()],
        Duration::from_secs(90),
    );
    let operator_uri = format!("sip:operator@127.0.0.1:{operator_port}");
    let server = common::start_server_with(&[
        "--log",
        SERVER_LOG,
        "--flow",
        &flow.to_string_lossy(),
        "--operator",
        &operator_uri,
    ]);

    let mut caller = Sipp::start(
        dir.path(),
        "transfer_refused.xml",
        common::free_port(),
        &[
            "-s",
            "1111",
            "-mp",
            &common::free_udp_pair().to_string(),
            &server.sip_addr().to_string(),
        ],
        Duration::from_secs(60),
    );
    let report = |caller: &Sipp, operator: &Sipp| {
        format!(
            "{}\n{}\n--- server log ---\n{}",
            caller.report(),
            operator.report(),
            tail(&server.log(), 8_000)
        )
    };
    let called = caller.finish();
    // The operator's leg ends with the caller's; the operator's SIPp then exits. A caller
    // whose scenario failed says enough: the operator's is not waited for.
    let answered = if passed(&called) {
        operator.finish()
    } else {
        operator.child.kill();
        None
    };
    assert!(
        passed(&called) && passed(&answered),
        "caller: {}; operator: {}\n{}",
        outcome(&called),
        outcome(&answered),
        report(&caller, &operator)
    );

    let refer_to = logged_header(&caller.log("messages"), &["Refer-To", "r"]);
    assert_eq!(
        refer_to.as_deref(),
        Some(format!("<{operator_uri}>").as_str()),
        "Refer-To\n{}",
        report(&caller, &operator)
    );
    let heard = media.count(Duration::from_secs(10));
    // The caller talks for about 3 of its 5 s: a second of speech is plainly relayed.
    assert!(
        heard.speech >= 50 && heard.echoed >= 100,
        "the operator's media port got {heard:?}\n{}",
        report(&caller, &operator)
    );
    let transfers = block_on(server.metric("ivr_sip_transfers_total"));
    assert_eq!(
        transfers,
        Some(1.0),
        "ivr_sip_transfers_total\n{}",
        report(&caller, &operator)
    );
}
