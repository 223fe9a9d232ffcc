//! An acknowledged case survives the process being killed.
//!
//! The test re-runs its own binary as a child (selected by an environment variable) that
//! stores cases in a loop and prints each number only after `store` returned, as the hotline
//! speaks it only then. The parent kills the child with SIGKILL after a random number of
//! acknowledgements, fifty times over the same file, then reopens the file and checks that every
//! acknowledged number is there and the database passes SQLite's integrity check.
//!
//! This covers a crash of the process (the committed WAL frames are in the OS's hands), not a
//! power cut, which a test cannot stage without a VM.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use dialogs::registry::{
    CaseFilter, CaseNumber, CaseRegistry, CaseType, Channel, Deadlines, NewCase, SqliteRegistry,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use time::OffsetDateTime;

/// Set in the child: the database file to fill.
const CHILD_DB: &str = "DIALOGS_DURABILITY_CHILD_DB";
/// Set in the child: the seed of its number RNG.
const CHILD_SEED: &str = "DIALOGS_DURABILITY_CHILD_SEED";
/// Prefix of an acknowledgement line on the child's stdout.
const ACK: &str = "ACK ";
/// Upper bound on a child's stores, so an orphaned child ends by itself.
const CHILD_MAX_STORES: u32 = 10_000;
const RUNS: u32 = 50;

#[test]
fn acknowledged_cases_survive_a_killed_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("cases.sqlite");
    let exe = std::env::current_exe().expect("test binary path");
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut acknowledged = BTreeSet::new();

    for run in 0..RUNS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "durability_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db)
            .env(CHILD_SEED, run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut lines = BufReader::new(stdout).lines();
        let kill_after = rng.random_range(1..=25);
        let mut seen = 0;
        while seen < kill_after {
            match lines.next() {
                Some(line) => {
                    let line = line.expect("child stdout is UTF-8");
                    if let Some(number) = acknowledgement(&line) {
                        acknowledged.insert(number);
                        seen += 1;
                    }
                }
                None => panic!("child {run} ended before it was killed"),
            }
        }
        child.kill().expect("kill child");
        // Lines already written before the kill were acknowledged too.
        for line in lines.map_while(Result::ok) {
            if let Some(number) = acknowledgement(&line) {
                acknowledged.insert(number);
            }
        }
        child.wait().expect("reap child");
    }

    assert!(acknowledged.len() >= RUNS as usize);
    let registry = SqliteRegistry::open(&db, Deadlines::default(), StdRng::seed_from_u64(1))
        .expect("reopen after kills");
    for number in &acknowledged {
        assert!(
            registry.get(number).expect("get").is_some(),
            "acknowledged case {number} was lost"
        );
    }
    let stored = registry.list(&CaseFilter::default()).expect("list").len();
    // At most one case per run was committed but killed before it was printed.
    assert!(
        stored >= acknowledged.len() && stored <= acknowledged.len() + RUNS as usize,
        "{stored} stored, {} acknowledged",
        acknowledged.len()
    );
    let conn = rusqlite::Connection::open(&db).expect("plain connection");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(integrity, "ok");
}

/// The child's side; does nothing unless started by the test above.
#[test]
fn durability_child() {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let seed = std::env::var(CHILD_SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    fill(Path::new(&db), seed);
}

fn fill(db: &Path, seed: u64) {
    let registry = SqliteRegistry::open(db, Deadlines::default(), StdRng::seed_from_u64(seed))
        .expect("child opens registry");
    // A fixed instant: this test is about durability, not dates.
    let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid instant");
    for i in 0..CHILD_MAX_STORES {
        let mut new = NewCase::new(CaseType::Complaint, "mn", Channel::Phone);
        new.transcript = Some(format!("run {seed} case {i}"));
        let case = registry.store(new, now).expect("child store");
        // `println!` flushes on the newline: stdout to a pipe is line-buffered in Rust.
        println!("{ACK}{}", case.number);
    }
}

/// The number acknowledged on this line of the child's stdout, if any. The marker may follow
/// the harness's own text on the same line ("test durability_child ... ACK 8757806583").
fn acknowledgement(line: &str) -> Option<CaseNumber> {
    let (_, number) = line.split_once(ACK)?;
    Some(
        number
            .trim()
            .parse()
            .expect("child prints valid case numbers"),
    )
}
