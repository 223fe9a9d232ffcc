//! Broken flows are reported precisely: every flow file in `dialogs/testdata/flows/` declares,
//! in its header comments, exactly the problems [`Flow::load`] must report for it, and loading
//! it must report those and no others, in that order, without panicking.
//!
//! Header directives (comment lines before the first line that is not a comment or blank):
//!
//! - `# expect: LINE:COLUMN: MESSAGE` — a problem in the flow file itself;
//!   `# expect: FILE:LINE:COLUMN: MESSAGE` or `# expect: FILE: MESSAGE` — a problem in another
//!   file (a prompts file, a grammar), named relative to `testdata/flows/`; `# expect: MESSAGE`
//!   — a problem about the flow file as a whole (line 0). This is how the loader prints a
//!   problem, with the test data directory taken off every path.
//! - `# expect: ok` — the flow loads (only the reference flow every broken one departs from).
//! - `# grammars: DIR` — load the grammars from `testdata/flows/DIR` instead of the built-in set.
//!
//! Every file of the directory must be accounted for: each `*.toml` declares at least one
//! `# expect:`, each prompts file is named by a flow, each grammar directory is used by a flow,
//! and `README.md` mentions every one of them.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use dialogs::flow::{Flow, FlowError};

/// The expectation of a flow that loads without problems.
const LOADS: &str = "ok";

fn flows_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/flows")
}

/// What a flow file's header declares.
#[derive(Debug)]
struct Header {
    /// The problems, as printed (paths relative to the flows directory).
    expect: Vec<String>,
    /// The grammar directory, relative to the flows directory; `None` for the built-in set.
    grammars: Option<String>,
}

fn read_header(src: &str) -> Result<Header, String> {
    let mut header = Header {
        expect: Vec::new(),
        grammars: None,
    };
    for line in src.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        let comment = comment.trim_start();
        if let Some(e) = comment.strip_prefix("expect:") {
            header.expect.push(e.trim().to_string());
        } else if let Some(g) = comment.strip_prefix("grammars:") {
            if header.grammars.replace(g.trim().to_string()).is_some() {
                return Err("`# grammars:` is given twice".into());
            }
        } else if comment.starts_with("expect") || comment.starts_with("grammars") {
            return Err(format!("malformed directive `{line}`"));
        }
    }
    if header.expect.is_empty() {
        return Err("declares no `# expect:` line".into());
    }
    if header.expect.iter().any(|e| e == LOADS) && header.expect.len() > 1 {
        return Err("`# expect: ok` cannot be combined with problems".into());
    }
    Ok(header)
}

/// The loader's problems as a flow author reads them, with the flows directory taken off
/// every path and the flow file's own name off its problems.
fn printed(error: &FlowError, flow: &Path, dir: &Path) -> Vec<String> {
    let dir_prefix = format!("{}/", dir.display());
    let own = format!("{}:", flow.display());
    error
        .problems
        .iter()
        .map(|p| {
            let text = p.to_string();
            let text = match text.strip_prefix(&own) {
                Some(rest) => rest.trim_start().to_string(),
                None => text,
            };
            text.replace(&dir_prefix, "")
        })
        .collect()
}

/// The `*.toml` files of the flows directory, sorted.
fn flow_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the flows test data directory is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// Loads `path` as its header says; `Err` describes how the outcome differs from the header.
fn check(path: &Path, dir: &Path) -> Result<(), String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let header = read_header(&src)?;
    let grammar_dir = header.grammars.as_ref().map(|g| dir.join(g));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        Flow::load(path, grammar_dir.as_deref())
    }))
    .map_err(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        format!("loading it panicked: {why}")
    })?;
    let got = match &outcome {
        Ok(_) => vec![LOADS.to_string()],
        Err(e) => printed(e, path, dir),
    };
    if got == header.expect {
        return Ok(());
    }
    let expected: BTreeSet<&String> = header.expect.iter().collect();
    let reported: BTreeSet<&String> = got.iter().collect();
    let mut why = String::new();
    for missing in expected.difference(&reported) {
        why.push_str(&format!("\n    missing:    {missing}"));
    }
    for extra in reported.difference(&expected) {
        why.push_str(&format!("\n    unexpected: {extra}"));
    }
    if why.is_empty() {
        why.push_str("\n    the problems are right but out of order or repeated");
    }
    why.push_str("\n    reported:");
    for p in &got {
        why.push_str(&format!("\n      # expect: {p}"));
    }
    Err(why)
}

#[test]
fn every_broken_flow_reports_exactly_its_declared_problems() {
    let dir = flows_dir();
    let files = flow_files(&dir);
    assert!(
        files.len() >= 40,
        "expected the whole broken-flow set in {}, found {} flow files",
        dir.display(),
        files.len()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            check(path, &dir).err().map(|why| {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                format!("{}:{why}", name.unwrap_or_default())
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} flows differ from their headers:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn only_the_reference_flow_is_declared_to_load() {
    let dir = flows_dir();
    let loading: Vec<String> = flow_files(&dir)
        .iter()
        .filter(|p| {
            let src = std::fs::read_to_string(p).expect("flow file is readable");
            read_header(&src).is_ok_and(|h| h.expect == [LOADS])
        })
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(loading, ["reference.toml"]);
}

#[test]
fn every_file_in_the_directory_is_accounted_for() {
    let dir = flows_dir();
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md is readable");
    let mut prompts_named = BTreeSet::new();
    let mut grammars_named = BTreeSet::new();
    let mut problems = Vec::new();
    for path in flow_files(&dir) {
        let src = std::fs::read_to_string(&path).expect("flow file is readable");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match read_header(&src) {
            Ok(h) => grammars_named.extend(h.grammars),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
        // The prompts file a flow names, read by line so that broken TOML counts too.
        for line in src.lines() {
            if let Some(rest) = line.trim().strip_prefix("prompts") {
                if let Some(value) = rest.trim_start().strip_prefix('=') {
                    prompts_named.insert(value.trim().trim_matches('"').to_string());
                }
            }
        }
        if !readme.contains(&format!("`{name}`")) {
            problems.push(format!("{name}: not listed in README.md"));
        }
    }
    for entry in std::fs::read_dir(&dir).expect("the flows directory is readable") {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let used = if path.is_dir() {
            grammars_named.contains(&name)
        } else if name.ends_with(".toml") || name == "README.md" {
            true
        } else {
            prompts_named.contains(&name)
        };
        if !used {
            problems.push(format!("{name}: no flow uses it"));
        }
        let listed = if path.is_dir() {
            format!("`{name}/`")
        } else {
            format!("`{name}`")
        };
        if name != "README.md" && !name.ends_with(".toml") && !readme.contains(&listed) {
            problems.push(format!("{name}: not listed in README.md as {listed}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn headers_without_expectations_are_refused() {
    assert!(read_header("# a flow\n[flow]\n").is_err());
    assert!(read_header("# expect: ok\n# expect: 1:1: x\n").is_err());
    assert!(read_header("# expects: 1:1: x\n").is_err());
    // Directives after the header do not count.
    assert!(read_header("[flow]\n# expect: 1:1: x\n").is_err());
    let h = read_header("# grammars: g\n\n# expect: 3:1: x\n[flow]\n").expect("a header");
    assert_eq!(h.expect, ["3:1: x"]);
    assert_eq!(h.grammars.as_deref(), Some("g"));
}
