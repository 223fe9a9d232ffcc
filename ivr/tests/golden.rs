//! Golden conversations: whole calls replayed through the real `ivr chat` binary.
//!
//! Each `tests/golden/*.chat` file is one or more calls sharing one data directory, written as
//! the transcript `ivr chat --echo` prints (format in `tests/golden/README.md`). The caller's
//! turns are taken from the transcript's `>` lines, fed to the binary, and what it prints must
//! equal the transcript line for line. Time is simulated and every call names `--at` and
//! `--seed`, so a conversation always comes out the same.
//!
//! `IVR_GOLDEN_UPDATE=1 cargo test -p ivr --test golden` rewrites the files from what the
//! binary prints, keeping their comment and `# call:` lines: read the result before committing.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The line that starts a call; the rest of the line is the call's `ivr chat` arguments.
const CALL_MARK: &str = "# call:";
/// Lines of context shown before the first difference.
const CONTEXT: usize = 4;
/// Lines shown from the first difference on.
const SHOWN_AFTER: usize = 6;

#[test]
fn golden_conversations_replay_exactly() {
    let update = std::env::var_os("IVR_GOLDEN_UPDATE").is_some_and(|v| !v.is_empty() && v != "0");
    let files = golden_files();
    assert!(
        !files.is_empty(),
        "no conversations in {}",
        golden_dir().display()
    );
    let mut failures = Vec::new();
    for path in &files {
        if let Err(why) = check_file(path, update) {
            failures.push(format!("{}:\n{why}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden conversations differ (IVR_GOLDEN_UPDATE=1 rewrites them; read \
         the result before committing):\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_call_without_a_fixed_time_and_seed_is_refused() {
    let problem = parse("# call: --lang en --seed 1\nassistant: Hello.\n").unwrap_err();
    assert!(problem.contains("--at"), "{problem}");
    let problem = parse("# call: --at 2026-11-27T10:00:00+08:00\n").unwrap_err();
    assert!(problem.contains("--seed"), "{problem}");
}

#[test]
fn transcript_lines_before_the_first_call_are_refused() {
    let problem = parse("assistant: Hello.\n# call: --at x --seed 1\n").unwrap_err();
    assert!(problem.starts_with("line 1:"), "{problem}");
}

#[test]
fn inputs_are_the_echoed_caller_lines_and_a_lone_marker_is_silence() {
    let conv = parse(
        "# A comment.\n\
         # call: --lang en --at 2026-11-27T10:00:00+08:00 --seed 7\n\
         assistant: Hello.\n\
         > 2\n\
         # silence next\n\
         >\n\
         > ~0.6 complaint\n\
         -- the caller hung up\n",
    )
    .unwrap();
    assert_eq!(conv.calls.len(), 1);
    let call = &conv.calls[0];
    assert_eq!(call.inputs(), ["2", "", "~0.6 complaint"]);
    assert_eq!(call.expected.len(), 5);
    assert_eq!(call.expected[2].text, ">");
}

#[test]
fn a_difference_names_the_file_line_and_shows_both_sides() {
    let conv = parse(
        "# call: --at 2026-11-27T10:00:00+08:00 --seed 7\n\
         assistant: Hello.\n\
         > 2\n\
         assistant: Main menu.\n",
    )
    .unwrap();
    let actual = ["assistant: Hello.", "> 2", "assistant: Something else."];
    let report = diff(&conv.calls[0], &actual).expect("the transcripts differ");
    assert!(report.contains("line 4"), "{report}");
    assert!(report.contains("- assistant: Main menu."), "{report}");
    assert!(report.contains("+ assistant: Something else."), "{report}");
    assert!(diff(&conv.calls[0], &actual[..2]).is_some());
    let same = ["assistant: Hello.", "> 2", "assistant: Main menu."];
    assert_eq!(diff(&conv.calls[0], &same), None);
}

/// A conversation file: leading comments, then calls.
#[derive(Debug)]
struct Conversation {
    /// Comment and blank lines before the first call.
    preamble: Vec<String>,
    calls: Vec<Call>,
}

/// One call: its arguments and what it prints.
#[derive(Debug)]
struct Call {
    /// The `# call:` line as written.
    header: String,
    /// Its arguments.
    args: Vec<String>,
    /// The transcript lines, with their line numbers in the file.
    expected: Vec<Line>,
    /// Comment lines inside the call, each with the number of caller inputs before it.
    comments: Vec<(usize, String)>,
}

#[derive(Debug)]
struct Line {
    number: usize,
    text: String,
}

impl Call {
    /// The caller's turns: `> TEXT` is `TEXT`, a lone `>` is silence.
    fn inputs(&self) -> Vec<String> {
        self.expected
            .iter()
            .filter_map(|l| input_of(&l.text))
            .collect()
    }
}

/// The caller input an echoed line stands for, if it is one.
fn input_of(line: &str) -> Option<String> {
    line.strip_prefix('>').map(|rest| rest.trim().to_string())
}

fn is_comment(line: &str) -> bool {
    line.trim().is_empty() || line.starts_with('#')
}

/// Reads a conversation; the error names the line.
fn parse(src: &str) -> Result<Conversation, String> {
    let mut conv = Conversation {
        preamble: Vec::new(),
        calls: Vec::new(),
    };
    for (i, raw) in src.lines().enumerate() {
        let number = i + 1;
        let line = raw.trim_end();
        if let Some(args) = line.strip_prefix(CALL_MARK) {
            let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
            for required in ["--at", "--seed"] {
                if !args.iter().any(|a| a == required) {
                    return Err(format!(
                        "line {number}: a call needs {required} so that it replays the same"
                    ));
                }
            }
            for owned in ["--data", "--echo"] {
                if args.iter().any(|a| a == owned) {
                    return Err(format!(
                        "line {number}: {owned} is given by the test, not the call"
                    ));
                }
            }
            conv.calls.push(Call {
                header: line.to_string(),
                args,
                expected: Vec::new(),
                comments: Vec::new(),
            });
            continue;
        }
        match conv.calls.last_mut() {
            None if is_comment(line) => conv.preamble.push(line.to_string()),
            None => {
                return Err(format!(
                    "line {number}: transcript before the first `{CALL_MARK}` line"
                ))
            }
            Some(call) if is_comment(line) => {
                let inputs = call.inputs().len();
                call.comments.push((inputs, line.to_string()));
            }
            Some(call) => call.expected.push(Line {
                number,
                text: line.to_string(),
            }),
        }
    }
    if conv.calls.is_empty() {
        return Err(format!("no `{CALL_MARK}` line"));
    }
    Ok(conv)
}

/// Where the first difference is, with context; `None` when the transcripts agree.
fn diff(call: &Call, actual: &[&str]) -> Option<String> {
    let expected: Vec<&str> = call.expected.iter().map(|l| l.text.as_str()).collect();
    let at = expected
        .iter()
        .zip(actual)
        .position(|(e, a)| e != a)
        .or_else(|| (expected.len() != actual.len()).then(|| expected.len().min(actual.len())))?;
    let mut report = String::new();
    let where_ = match call.expected.get(at) {
        Some(line) => format!("line {}", line.number),
        None => match call.expected.last() {
            Some(line) => format!("after line {} (the call's end)", line.number),
            None => "right after the call line".to_string(),
        },
    };
    let _ = writeln!(report, "  {} — first difference at {where_}:", call.header);
    for line in &expected[at.saturating_sub(CONTEXT)..at] {
        let _ = writeln!(report, "    {line}");
    }
    let show = |side: &[&str], mark: char, report: &mut String| {
        let end = side.len().min(at + SHOWN_AFTER);
        if at >= end {
            let _ = writeln!(report, "  {mark} (nothing)");
        }
        for line in side.get(at..end).unwrap_or_default() {
            let _ = writeln!(report, "  {mark} {line}");
        }
    };
    let _ = writeln!(report, "  expected (-):");
    show(&expected, '-', &mut report);
    let _ = writeln!(report, "  actual (+):");
    show(actual, '+', &mut report);
    Some(report)
}

/// Replays one file; in update mode rewrites it from the actual output instead of comparing.
fn check_file(path: &Path, update: bool) -> Result<(), String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("  cannot read: {e}"))?;
    let conv = parse(&src).map_err(|e| format!("  {e}"))?;
    let data = tempfile::tempdir().map_err(|e| format!("  no temporary directory: {e}"))?;
    let mut outputs = Vec::new();
    let mut problems = Vec::new();
    for (index, call) in conv.calls.iter().enumerate() {
        let actual = run_call(data.path(), index, call)?;
        let lines: Vec<&str> = actual.lines().collect();
        if !update {
            if let Some(report) = diff(call, &lines) {
                problems.push(report);
            }
        }
        outputs.push(actual);
    }
    if update {
        std::fs::write(path, render(&conv, &outputs))
            .map_err(|e| format!("  cannot rewrite: {e}"))?;
        return Ok(());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Runs `ivr chat --echo` for one call with its inputs on stdin; returns what it printed.
fn run_call(data: &Path, index: usize, call: &Call) -> Result<String, String> {
    let mut input = call.inputs().join("\n");
    input.push('\n');
    let input_path = data.join(format!("call-{index}.input"));
    std::fs::write(&input_path, input).map_err(|e| format!("  cannot write the input: {e}"))?;
    let stdin = File::open(&input_path).map_err(|e| format!("  cannot read the input: {e}"))?;
    let output = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .arg("--data")
        .arg(data)
        .arg("chat")
        .arg("--echo")
        .args(&call.args)
        .stdin(Stdio::from(stdin))
        .output()
        .map_err(|e| format!("  cannot run ivr: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "  {} — ivr chat failed ({}):\n{}",
            call.header,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("  output is not UTF-8: {e}"))
}

/// The file again, with each call's transcript replaced by what was printed; comments inside a
/// call stay before the caller input they preceded.
fn render(conv: &Conversation, outputs: &[String]) -> String {
    let mut text = String::new();
    for line in &conv.preamble {
        let _ = writeln!(text, "{line}");
    }
    for (call, output) in conv.calls.iter().zip(outputs) {
        let _ = writeln!(text, "{}", call.header);
        let mut comments = call.comments.iter().peekable();
        let mut inputs = 0;
        for line in output.lines() {
            if input_of(line).is_some() {
                while let Some((_, comment)) = comments.next_if(|(before, _)| *before <= inputs) {
                    let _ = writeln!(text, "{comment}");
                }
                inputs += 1;
            }
            let _ = writeln!(text, "{line}");
        }
        for (_, comment) in comments {
            let _ = writeln!(text, "{comment}");
        }
    }
    text
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn golden_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "chat"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
