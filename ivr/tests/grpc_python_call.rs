//! The real `ivr serve` against a gateway not written here: `tests/python/grpc_client.py`,
//! which builds every message from the server's reflection service (grpcio,
//! grpcio-reflection and protobuf only; no stubs, no `.proto` files).
//!
//! In `--converse` mode the client acts as an instant-playout media gateway and keys one
//! group of digits each time the assistant listens; these tests read what it printed of the
//! call (`down: prompt ID: text`, `down: transfer to ...`). In its services mode it checks
//! reflection, health, directory search and the case operations against the same full server,
//! whose reflection then lists the media gateway too.
//!
//! The Python environment is prepared by `scripts/pyenv.sh` (idempotent; `make test` runs it
//! first). If it cannot be prepared, these tests fail and say why; they never skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use dialogs::registry::{CaseRegistry, CaseType, Channel, Deadlines, NewCase, SqliteRegistry};
use rand::rngs::StdRng;
use rand::SeedableRng;
use time::OffsetDateTime;

use common::Server;

/// A well-formed case number (its Damm check digit is right) that was never issued.
const UNKNOWN_CASE: &str = "1234567894";

/// The workspace root (this crate lives in `ivr/`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| panic!("the ivr crate lives inside the workspace"))
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
         (scripts/pyenv.sh exited with {}); these tests need python3 with venv and access to \
         PyPI.\nstdout:\n{}\nstderr:\n{}",
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

/// Runs the Python client against `server` with `args`; its stdout, after checking that it
/// exited 0 with no failed check.
fn client(server: &Server, args: &[&str]) -> String {
    let python = python();
    let output = Command::new(&python)
        .arg(workspace_root().join("tests/python/grpc_client.py"))
        .args(["--target", &server.grpc_addr().to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client failed ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
        output.status,
        server.log()
    );
    assert!(
        !stdout.lines().any(|line| line.starts_with("FAIL:")),
        "{stdout}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    stdout
}

/// The prompt ids the assistant said, in order, from `down: prompt ID: text` lines.
fn prompts(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("down: prompt "))
        .filter_map(|rest| rest.split_once(": ").map(|(id, _)| id))
        .collect()
}

#[test]
fn python_gateway_keys_a_status_query_and_hears_the_number_is_unknown() {
    let server = common::start_server();
    let keys = format!("3 {UNKNOWN_CASE}#");
    let stdout = client(&server, &["--converse", "--keys", &keys]);

    let said = prompts(&stdout);
    assert_eq!(said.first(), Some(&"GREET"), "{stdout}");
    // The client keys as soon as the assistant listens, so the menus' prompts may be cut
    // before they are sent; the states it listened in show the path.
    let order = [
        "down: listening in main",
        "down: listening in stat_ask",
        "down: listening in stat_notfound",
    ];
    let positions: Vec<Option<usize>> = order.iter().map(|l| stdout.find(l)).collect();
    assert!(
        positions.iter().all(Option::is_some) && positions.is_sorted(),
        "expected {order:?} in that order:\n{stdout}"
    );
    assert!(
        stdout.contains("down: prompt STAT_NOTFOUND: Sorry, we could not find that number."),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("down: heard '{UNKNOWN_CASE}' -> {UNKNOWN_CASE}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("services: ") && stdout.contains("ivr.v1.MediaGateway"),
        "{stdout}"
    );
    assert!(!stdout.contains("down: transfer"), "{stdout}");
}

#[test]
fn python_gateway_asking_for_staff_is_transferred_or_told_the_hours() {
    let server = common::start_server();
    let stdout = client(&server, &["--converse", "--keys", "0"]);

    assert!(
        stdout.contains("down: heard '0' -> operator"),
        "the 0 key should ask for staff:\n{stdout}"
    );
    let said = prompts(&stdout);
    // Staff hours depend on the wall clock: inside them the call is transferred, outside the
    // caller (with no number to call back) hears when staff answer.
    if said.contains(&"OPER") {
        assert!(
            stdout.contains("down: transfer to sip:"),
            "OPER was said but no transfer followed:\n{stdout}"
        );
        assert!(!said.contains(&"OPER_HOURS"), "{stdout}");
    } else {
        assert!(
            said.contains(&"OPER_HOURS"),
            "neither a transfer nor the hours:\n{stdout}"
        );
        assert!(!stdout.contains("down: transfer"), "{stdout}");
    }
}

#[test]
fn python_client_checks_the_staff_services_of_the_full_server() {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary data dir: {e}"));
    let case = {
        let registry = SqliteRegistry::open(
            data.path().join("cases.sqlite"),
            Deadlines::default(),
            StdRng::seed_from_u64(11),
        )
        .unwrap_or_else(|e| panic!("open the registry: {e}"));
        let mut complaint = NewCase::new(CaseType::Complaint, "en", Channel::Phone);
        complaint.transcript = Some("The bus stop sign fell over".to_owned());
        registry
            .store(
                complaint,
                OffsetDateTime::now_utc() - time::Duration::days(1),
            )
            .unwrap_or_else(|e| panic!("store a case: {e}"))
    };
    let server = common::start_server_in(data);

    let number = case.number.to_string();
    let stdout = client(
        &server,
        &["--case", &number, "--expect-cases", "1", "--agency", "GASR"],
    );
    let services = stdout
        .lines()
        .find_map(|line| line.strip_prefix("services: "))
        .unwrap_or_else(|| panic!("no services line:\n{stdout}"));
    for name in [
        "ivr.v1.MediaGateway",
        "ivr.v1.CaseService",
        "ivr.v1.DirectoryService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.split_whitespace().any(|s| s == name),
            "reflection does not list {name}: {services}"
        );
    }
}
