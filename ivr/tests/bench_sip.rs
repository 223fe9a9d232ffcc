//! `ivr bench sip` as an operator runs it: the real binary starts the assistant and the phone
//! gateway in-process, SIPp holds two calls through it, and the hold table is printed with
//! the largest level held; no data is left behind. Times are not checked (a loaded machine
//! may not hold even two calls), only the table's shape and what SIPp and the gateway
//! counted. The turn comparison is left out here (a minute of calls per target); its
//! measuring is covered by the module's unit tests.

use std::process::Command;

#[test]
fn two_sipp_calls_are_held_and_the_hold_table_is_printed() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .args([
            "bench",
            "sip",
            "--calls",
            "2",
            "--seconds",
            "3",
            "--no-turns",
        ])
        .env("TMPDIR", tmp.path())
        .output()
        .expect("ivr runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = stdout
        .lines()
        .position(|l| l.starts_with("| calls | ok | failed | RTP sent | RTP received |"))
        .unwrap_or_else(|| panic!("no table in\n{stdout}"));
    let row: Vec<&str> = stdout
        .lines()
        .nth(header + 2)
        .unwrap_or_default()
        .split('|')
        .map(str::trim)
        .collect();
    // "", calls, ok, failed, sent, received, lost, late, spacing, within, CPU %, CPU per
    // call-second, verdict, "".
    assert_eq!(row.len(), 14, "{stdout}");
    assert_eq!(&row[1..4], ["2", "2", "0"], "{stdout}");
    let count = |cell: &str| -> u64 { cell.parse().unwrap_or_else(|_| panic!("{cell}: {stdout}")) };
    // Two calls of 3 s at 50 packets a second each way, give or take the set-up.
    assert!(count(row[4]) >= 200, "sent: {stdout}");
    assert!(count(row[5]) >= 200, "received: {stdout}");
    assert_eq!(row[8].split(" / ").count(), 5, "{stdout}");
    assert!(row[9].ends_with('%'), "{stdout}");
    assert!(
        row[12] == "held" || row[12].starts_with("not held: "),
        "{stdout}"
    );
    let largest = if row[12] == "held" {
        "largest held: 2"
    } else {
        "largest held: none"
    };
    assert!(stdout.contains(largest), "{stdout}");
    assert!(!stdout.contains("Turns:"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("the temporary directory is readable")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
