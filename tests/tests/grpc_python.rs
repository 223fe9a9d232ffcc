//! The staff gRPC services against a client not written here: `tests/python/grpc_client.py`,
//! which uses only grpcio, grpcio-reflection and protobuf and builds every message from the
//! server's reflection service (no generated stubs, no `.proto` files).
//!
//! The server is the real one: [`ivr::services::add_services`] over an SQLite registry in a
//! temporary directory (filled through the registry API) and the built-in service directory,
//! on 127.0.0.1 with a free port. The Python client checks reflection, health, directory
//! search and the case operations; this test then checks in the registry that the client's
//! answer was stored.
//!
//! The Python environment is prepared by `scripts/pyenv.sh` (idempotent; `make test` runs it
//! first). If it cannot be prepared, this test fails and says why; it never skips.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use dialogs::directory::Directory;
use dialogs::registry::{
    CaseRegistry, CaseStatus, CaseType, Channel, Deadlines, NewCase, SqliteRegistry,
};
use ivr::services::{add_services, Clock};
use rand::rngs::StdRng;
use rand::SeedableRng;
use time::{OffsetDateTime, UtcOffset};
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

/// The workspace root (this crate lives in `tests/`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| panic!("the tests crate lives inside the workspace"))
        .to_path_buf()
}

/// The venv's python, after `scripts/pyenv.sh` made sure the venv is complete.
fn python() -> PathBuf {
    let root = workspace_root();
    let output = Command::new("bash")
        .arg(root.join("scripts/pyenv.sh"))
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/pyenv.sh: {e}"));
    assert!(
        output.status.success(),
        "the Python environment for the gRPC client could not be prepared \
         (scripts/pyenv.sh exited with {}); the gRPC end-to-end test needs python3 with venv \
         and access to PyPI.\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    let venv = std::env::var_os("IVR_PYENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/ivr/pyenv"))
        })
        .unwrap_or_else(|| panic!("neither IVR_PYENV nor HOME is set; cannot find the venv"));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "scripts/pyenv.sh succeeded but {} does not exist",
        python.display()
    );
    python
}

/// A server with the staff services, running on its own runtime until dropped.
struct TestServer {
    address: SocketAddr,
    registry: Arc<SqliteRegistry<StdRng>>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl TestServer {
    fn start(now: OffsetDateTime) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let registry = Arc::new(
            SqliteRegistry::open(
                dir.path().join("cases.sqlite"),
                Deadlines::default(),
                StdRng::seed_from_u64(2026),
            )
            .unwrap_or_else(|e| panic!("open registry: {e}")),
        );
        let directory =
            Arc::new(Directory::builtin().unwrap_or_else(|e| panic!("built-in catalog: {e}")));
        let clock: Clock = Arc::new(move || now);
        let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
        let services_registry: Arc<dyn CaseRegistry> = registry.clone();
        let address = runtime.block_on(async {
            let mut routes = RoutesBuilder::default();
            add_services(&mut routes, services_registry, directory, clock)
                .await
                .unwrap_or_else(|e| panic!("add services: {e}"));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("bind: {e}"));
            let address = listener
                .local_addr()
                .unwrap_or_else(|e| panic!("local address: {e}"));
            let server = Server::builder()
                .add_routes(routes.routes())
                .serve_with_incoming(TcpIncoming::from(listener));
            tokio::spawn(async move {
                if let Err(e) = server.await {
                    panic!("gRPC server failed: {e}");
                }
            });
            address
        });
        Self {
            address,
            registry,
            _runtime: runtime,
            _dir: dir,
        }
    }
}

/// 2026-03-02 09:00 in Ulaanbaatar.
fn now() -> OffsetDateTime {
    let offset = UtcOffset::from_hms(8, 0, 0).unwrap_or_else(|e| panic!("offset: {e}"));
    OffsetDateTime::from_unix_timestamp(1_772_413_200)
        .unwrap_or_else(|e| panic!("instant: {e}"))
        .to_offset(offset)
}

#[test]
fn python_client_without_stubs_uses_reflection_health_directory_and_cases() {
    let python = python();
    let server = TestServer::start(now());
    let mut complaint = NewCase::new(CaseType::Complaint, "en", Channel::Phone);
    complaint.transcript = Some("The street light on my road is broken".to_owned());
    let case = server
        .registry
        .store(complaint, now() - time::Duration::days(3))
        .unwrap_or_else(|e| panic!("store: {e}"));
    server
        .registry
        .store(
            NewCase::new(CaseType::Thanks, "mn", Channel::Web),
            now() - time::Duration::days(1),
        )
        .unwrap_or_else(|e| panic!("store: {e}"));

    let answer = "The street light was repaired on 5 March.";
    let output = Command::new(&python)
        .arg(workspace_root().join("tests/python/grpc_client.py"))
        .args(["--target", &server.address.to_string()])
        .args(["--case", &case.number.to_string()])
        .args(["--expect-cases", "2"])
        .args(["--agency", "Ulaanbaatar City Governor's Office"])
        .args(["--answer", answer])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        !stdout.lines().any(|line| line.starts_with("FAIL:")),
        "{stdout}"
    );
    assert!(
        stdout.contains("services: ") && stdout.contains("ivr.v1.CaseService"),
        "{stdout}"
    );
    assert!(
        stdout.contains("search: Birth"),
        "no birth certificate service in the search output:\n{stdout}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");

    // What the client did is in the registry.
    let stored = server
        .registry
        .get(&case.number)
        .unwrap_or_else(|e| panic!("get: {e}"))
        .unwrap_or_else(|| panic!("case {} vanished", case.number));
    assert_eq!(stored.status, CaseStatus::Answered);
    assert_eq!(stored.answer.as_deref(), Some(answer));
    let statuses: Vec<CaseStatus> = stored.history.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            CaseStatus::Received,
            CaseStatus::Forwarded,
            CaseStatus::Answered
        ]
    );
    assert_eq!(stored.history[1].at, now());
    assert!(
        stored.history[1]
            .note
            .as_deref()
            .is_some_and(|note| note.contains("Ulaanbaatar City Governor's Office")),
        "{:?}",
        stored.history[1].note
    );
}
