//! `ivr bench dialogs` as an operator runs it: the real binary prints its three tables and
//! their verdicts, and leaves no data behind. Times are not checked.

use std::process::Command;

#[test]
fn bench_dialogs_prints_every_table_and_cleans_up() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .args(["bench", "dialogs", "--iterations", "2"])
        .env("TMPDIR", tmp.path())
        .output()
        .expect("ivr runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .matches("| what | outcome | n | median µs | p90 µs | max µs |")
            .count(),
        3,
        "{stdout}"
    );
    assert_eq!(stdout.matches("\nverdict: ").count(), 3, "{stdout}");
    for row in [
        "| Flow::builtin()",
        "| Directory::builtin() | 34 services | 2 |",
        "| main menu: key 1 | info (accept",
        "| main menu: \"complain\" (near miss) | file_case",
        "| main menu (mn): \"гомдол\" | file_case",
        "| main menu: \"please call an ambulance\" | emergency",
        "| information menu: \"birth certificate\" | Birth registration and certificate",
        "| status menu: the 10th key | number complete, LookupCase",
        "| complaint: CaseStored(Ok) from the registry | → cmp_done, reads ",
        "| turn: keys \"99112233#\" |",
        "| whole call, 7 turns, with the registry | case ",
    ] {
        assert!(stdout.contains(row), "no row {row:?} in\n{stdout}");
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("the temporary directory is readable")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
