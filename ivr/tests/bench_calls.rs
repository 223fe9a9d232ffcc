//! `ivr bench calls` as an operator runs it: the real binary starts the assistant in-process,
//! runs one robot call against it, prints its table and leaves no data behind. Times are not
//! checked.

use std::process::Command;

#[test]
fn one_robot_call_passes_and_its_table_is_printed() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .args(["bench", "calls", "--concurrent", "1", "--rounds", "1"])
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
        .position(|l| l.starts_with("| concurrent calls | passed | failed | turns |"))
        .unwrap_or_else(|| panic!("no table in\n{stdout}"));
    let row: Vec<&str> = stdout
        .lines()
        .nth(header + 2)
        .unwrap_or_default()
        .split('|')
        .map(str::trim)
        .collect();
    // "", concurrent, passed, failed, turns, first audio, transcript, CPU one core, all, "".
    assert_eq!(row.len(), 10, "{stdout}");
    assert_eq!(&row[1..4], ["1", "1", "0"], "{stdout}");
    let turns: u32 = row[4].parse().expect("a turn count");
    // The assistant measures spoken turns: the script has three.
    assert!(turns >= 3, "{stdout}");
    for spread in &row[5..7] {
        assert_eq!(spread.split(" / ").count(), 3, "{stdout}");
    }
    assert!(!stdout.contains("failed calls"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("the temporary directory is readable")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
