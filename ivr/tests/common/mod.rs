//! The real `ivr serve` for end-to-end tests: the binary cargo built for this crate, on free
//! ports of 127.0.0.1, over a data directory of its own, stopped when the handle is dropped.
//!
//! ```ignore
//! mod common;
//!
//! let server = common::start_server();
//! let mut client = MediaGatewayClient::connect(server.grpc_url()).await?;
//! let (status, body) = server.http_get("/healthz").await;
//! ```
//!
//! The server loads its Whisper models from the model store (`IVR_MODELS_DIR`, which
//! `make test` fills); a language whose model is missing is served by keypad, so tests that
//! only key digits do not depend on the models. Its stdout is read for the address lines
//! `ivr serve` prints (`grpc://ADDR ...`, `http://ADDR/metrics ...` and, with the phone
//! gateway, `ivr: phones call sip:1111@ADDR (udp, tcp)`); its stderr (the log, warnings and
//! up) goes to `server.log` in the data directory, and [`Server::log`] returns it for failure
//! messages.
//!
//! The gateway listens on `--sip 127.0.0.1:PORT`, a port free for both UDP and TCP when the
//! server starts ([`free_port`]). A binary whose `serve` has no `--sip` option is started
//! without one, and [`Server::sip_addr`] then fails the test that needs it.
//!
//! Every wait here is bounded: a server that does not come up within [`STARTUP`] fails the
//! test with its log instead of hanging it.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the server may take to load its models and print its addresses.
pub const STARTUP: Duration = Duration::from_secs(60);

/// A running `ivr serve`; dropping it kills the process and removes its data directory.
#[derive(Debug)]
pub struct Server {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
    sip: Option<SocketAddr>,
    log: PathBuf,
    // Dropped after the process is killed (fields drop in order, after `Drop::drop`).
    data: tempfile::TempDir,
}

/// Starts `ivr serve` over a fresh, empty data directory.
///
/// Panics (failing the test) when the binary cannot be started or does not print its
/// addresses within [`STARTUP`]; the panic message carries the server's log.
pub fn start_server() -> Server {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary data dir: {e}"));
    start_server_in(data)
}

/// Starts `ivr serve` over `data`, which the test may have filled first (cases in
/// `cases.sqlite`, profiles, ...). The directory is removed when the server is dropped.
pub fn start_server_in(data: tempfile::TempDir) -> Server {
    launch(data, &[])
}

/// Starts `ivr serve` over a fresh data directory with `args` added to its command line
/// (gateway options such as `--sip-user alice:secret` or `--max-calls 1`).
pub fn start_server_args(args: &[&str]) -> Server {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary data dir: {e}"));
    launch(data, args)
}

fn launch(data: tempfile::TempDir, args: &[&str]) -> Server {
    let log = data.path().join("server.log");
    let stderr =
        File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_ivr"));
    command.arg("--data").arg(data.path()).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ]);
    let with_sip = serves_sip();
    if with_sip {
        command
            .arg("--sip")
            .arg(format!("127.0.0.1:{}", free_port()));
    }
    command.args(args);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", env!("CARGO_BIN_EXE_ivr")));
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        panic!("the server's stdout was not captured");
    };

    // A thread reads stdout to its end (so the server never blocks on a full pipe) and hands
    // over each line; the test waits for the address lines with a bound.
    let (tx, rx) = mpsc::channel::<String>();
    // A plain thread: the helper serves sync and async tests alike.
    #[allow(clippy::disallowed_methods)]
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                // Nobody listens any more; keep draining.
                continue;
            }
        }
    });

    let mut grpc = None;
    let mut http = None;
    let mut sip = None;
    let mut seen = Vec::new();
    let fail = |child: &mut Child, why: String, seen: &[String]| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "ivr serve did not start: {why}\nstdout:\n{}\nlog:\n{log}",
            seen.join("\n")
        );
    };
    while grpc.is_none() || http.is_none() || (with_sip && sip.is_none()) {
        match rx.recv_timeout(STARTUP) {
            Ok(line) => {
                grpc = grpc.or_else(|| address_after(&line, "grpc://"));
                http = http.or_else(|| address_after(&line, "http://"));
                sip = sip.or_else(|| sip_address(&line));
                seen.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => fail(
                &mut child,
                format!("no addresses within {} s", STARTUP.as_secs()),
                &seen,
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                fail(&mut child, format!("it exited ({status})"), &seen)
            }
        }
    }
    let (Some(grpc), Some(http)) = (grpc, http) else {
        unreachable!("the loop above ends only once both addresses are known")
    };
    Server {
        child,
        grpc,
        http,
        sip,
        log,
        data,
    }
}

/// Whether this build's `ivr serve` has the phone gateway (a `--sip` option); asked once.
fn serves_sip() -> bool {
    static SERVES_SIP: OnceLock<bool> = OnceLock::new();
    *SERVES_SIP.get_or_init(|| {
        Command::new(env!("CARGO_BIN_EXE_ivr"))
            .args(["serve", "--help"])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).contains("--sip"))
            .unwrap_or(false)
    })
}

/// A port of 127.0.0.1 free for both UDP and TCP right now (the gateway takes both).
///
/// Another process may take it before the caller binds it; the chance is small on a test
/// machine, and a server that cannot bind fails the test with its log.
pub fn free_port() -> u16 {
    for _ in 0..64 {
        let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port of 127.0.0.1 is free for both UDP and TCP");
}

/// A UDP port of 127.0.0.1 free right now, and the one above it (RTP and RTCP, or SIPp's
/// media and video-echo ports).
pub fn free_udp_pair() -> u16 {
    for _ in 0..64 {
        let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if port < u16::MAX - 2 && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no pair of UDP ports of 127.0.0.1 is free");
}

/// The gateway's address in `ivr: phones call sip:1111@127.0.0.1:5060 (udp, tcp)`.
fn sip_address(line: &str) -> Option<SocketAddr> {
    let uri = &line[line.find("sip:")? + "sip:".len()..];
    let host = uri.split_whitespace().next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    host.trim_end_matches([',', '.', ';']).parse().ok()
}
/// The socket address right after `scheme` in a line such as
/// `ivr: metrics on http://127.0.0.1:8080/metrics, ...`.
fn address_after(line: &str, scheme: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(scheme)? + scheme.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || ".:[]".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Server {
    /// The gRPC endpoint as tonic wants it: `http://127.0.0.1:PORT`.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The gRPC listening address, `127.0.0.1:PORT` (for clients that take host:port).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// The HTTP listening address (`/metrics`, `/healthz`).
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The phone gateway's address (UDP and TCP), `127.0.0.1:PORT`.
    ///
    /// Panics when this build's `ivr serve` has no SIP gateway.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip.unwrap_or_else(|| {
            panic!("this ivr serve has no SIP gateway (no --sip option in `ivr serve --help`)")
        })
    }

    /// The server's data directory (cases, profiles, recordings, the voice cache).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// What the server has logged so far (stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` on the HTTP port: the status code and the body.
    ///
    /// Panics when the server cannot be reached or answers something that is not HTTP.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.http)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to http://{}: {e}", self.http));
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.http
        );
        stream
            .write_all(request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let text = String::from_utf8_lossy(&raw);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            panic!("GET {path}: not an HTTP response: {text:?}");
        };
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("GET {path}: no status code in {head:?}"));
        (code, body.to_string())
    }

    /// The value of one sample in `/metrics`, by its full name with labels as the text
    /// exposition writes it (`ivr_active_calls`, `ivr_stream_errors_total{code="Internal"}`);
    /// `None` when the sample is not there.
    pub async fn metric(&self, sample: &str) -> Option<f64> {
        let (code, body) = self.http_get("/metrics").await;
        assert_eq!(code, 200, "GET /metrics: {body}");
        metric_value(&body, sample)
    }
}

/// The value of `sample` in a Prometheus text exposition.
pub fn metric_value(exposition: &str, sample: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
