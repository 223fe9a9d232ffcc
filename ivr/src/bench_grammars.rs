//! `ivr bench grammars`: how long the hotline's grammar and directory work takes on this CPU.
//!
//! Times, one table row each: loading and compiling every grammar file of both locales,
//! matching typical transcripts against the main menu + global + emergency grammars
//! ([`grammars::recognize_all`]), keypad built-ins, hint and GBNF export, the service
//! directory (load and spoken search) and case-number parsing. Each row runs a warm-up, then
//! calls the operation one at a time until its time box (`--row-ms`, default 300 ms) is spent,
//! and prints the median and p99 of the single-call times and the number of calls.
//!
//! Before timing, every workload is run once and its outcome checked (say, "complaint" must
//! mean `file_case`), so a table never reports the speed of a grammar that no longer matches.
//! Reads grammar files (from `--grammars DIR`, default the workspace's `grammars/`) and the
//! clock; starts no threads. Measures; asserts nothing about speed.

// Timing code: reading the clock is the point of this module.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;
use dialogs::directory::Directory;
use grammars::ast::Mode;
use grammars::dtmf::{Builtin, DtmfMatch};
use grammars::{recognize_all, Grammar, Lang, MatchOptions};

/// Options of `ivr bench grammars`.
#[derive(Debug, Args)]
pub struct GrammarBenchArgs {
    /// Directory holding the `en/` and `mn/` grammar folders [default: the workspace's `grammars/`].
    #[arg(long)]
    pub grammars: Option<PathBuf>,
    /// Time box per table row, in milliseconds (the warm-up takes a tenth more).
    #[arg(long, default_value_t = 300)]
    pub row_ms: u64,
}

/// Calls timed per row at most, whatever the time box (bounds the sample memory).
pub const MAX_SAMPLES: usize = 2_000_000;

/// Calls timed per row at least, even when one call outlasts the time box.
pub const MIN_SAMPLES: usize = 5;

/// The single-call times of one row, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The median call time.
    pub median: Duration,
    /// The 99th percentile call time (nearest rank).
    pub p99: Duration,
    /// How many calls were timed.
    pub iterations: usize,
}

impl Summary {
    /// Summarises call times (sorted in place); `None` for no samples.
    pub fn of(samples: &mut [Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        Some(Summary {
            median: nearest_rank(samples, 50),
            p99: nearest_rank(samples, 99),
            iterations: samples.len(),
        })
    }
}

/// The nearest-rank `percent` percentile of sorted, non-empty samples.
fn nearest_rank(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (percent * sorted.len())
        .div_ceil(100)
        .clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Runs `op` for about a tenth of `budget` to warm caches, then times single calls until
/// `budget` is spent (at least [`MIN_SAMPLES`], at most [`MAX_SAMPLES`] calls).
pub fn measure<T>(budget: Duration, mut op: impl FnMut() -> T) -> Summary {
    let warm_until = Instant::now() + budget / 10;
    loop {
        black_box(op());
        if Instant::now() >= warm_until {
            break;
        }
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < MAX_SAMPLES && (samples.len() < MIN_SAMPLES || start.elapsed() < budget) {
        let t0 = Instant::now();
        black_box(op());
        samples.push(t0.elapsed());
    }
    // At least MIN_SAMPLES (> 0) calls were timed above.
    Summary::of(&mut samples).unwrap_or(Summary {
        median: Duration::ZERO,
        p99: Duration::ZERO,
        iterations: 0,
    })
}

/// A duration for the table: ns below 1 µs, µs below 1 ms, else ms.
pub fn human(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else {
        format!("{:.2} ms", ns as f64 / 1e6)
    }
}

/// One table row: what was timed, what it produced, and the times.
#[derive(Debug, Clone)]
pub struct Row {
    /// The operation and its input.
    pub name: String,
    /// What one call produced (checked before timing).
    pub outcome: String,
    /// The times.
    pub summary: Summary,
}

/// The markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| operation | outcome | median | p99 | iterations |\n|---|---|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.name.replace('|', "\\|"),
            r.outcome.replace('|', "\\|"),
            human(r.summary.median),
            human(r.summary.p99),
            r.summary.iterations
        ));
    }
    out
}

/// The default grammar directory: the workspace's `grammars/`.
pub fn default_grammar_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../grammars")
}

/// The grammar of `grammars` in `lang` whose file is `name.abnf`.
fn find<'a>(grammars: &'a [Grammar], lang: Lang, name: &str) -> anyhow::Result<&'a Grammar> {
    grammars
        .iter()
        .find(|g| g.lang() == lang && Path::new(g.origin()).file_stem().is_some_and(|s| s == name))
        .with_context(|| format!("no {name}.abnf grammar for {lang}"))
}

/// The transcripts matched against the main menu: label, locale, transcript, expected value
/// of the best result (`None`: no result expected).
const UTTERANCES: [(&str, Lang, &str, Option<&str>); 7] = [
    ("exact", Lang::En, "complaint", Some("file_case")),
    (
        "fillers",
        Lang::En,
        "um I want to file a complaint please",
        Some("file_case"),
    ),
    (
        "near miss",
        Lang::En,
        "I want to complain",
        Some("file_case"),
    ),
    ("no match", Lang::En, "the weather is nice today", None),
    (
        "emergency",
        Lang::En,
        "please call an ambulance",
        Some("emergency"),
    ),
    ("exact", Lang::Mn, "гомдол", Some("file_case")),
    ("no match", Lang::Mn, "өнөөдөр цаг агаар сайхан", None),
];

/// Runs the benchmark and prints the table.
pub fn grammars(args: GrammarBenchArgs) -> anyhow::Result<()> {
    let dir = args.grammars.unwrap_or_else(default_grammar_dir);
    let budget = Duration::from_millis(args.row_ms.max(1));
    let mut rows = Vec::new();

    let dirs = [dir.join("en"), dir.join("mn")];
    let load_all = || -> anyhow::Result<Vec<Grammar>> {
        let mut all = Vec::new();
        for d in &dirs {
            all.extend(Grammar::load_dir(d).with_context(|| format!("loading {}", d.display()))?);
        }
        Ok(all)
    };
    let all = load_all()?;
    ensure!(!all.is_empty(), "no grammar files under {}", dir.display());
    rows.push(Row {
        name: "load + compile grammars/{en,mn}".into(),
        outcome: format!("{} grammars", all.len()),
        summary: measure(budget, || load_all().map(|g| g.len()).unwrap_or(0)),
    });

    let options = MatchOptions::default();
    for (label, lang, heard, expected) in UTTERANCES {
        let active = [
            find(&all, lang, "main_menu")?,
            find(&all, lang, "global")?,
            find(&all, lang, "emergency")?,
        ];
        let results = recognize_all(&active, heard, 0.9, &options);
        let best = results.first().map(|r| r.value.to_string());
        ensure!(
            best.as_deref() == expected,
            "{heard:?} ({lang}) gave {best:?}, expected {expected:?}"
        );
        let outcome = match results.first() {
            Some(r) => format!("{} (confidence {:.2})", r.value, r.confidence),
            None => "no result".into(),
        };
        rows.push(Row {
            name: format!("recognize_all, {lang} {label}: \"{heard}\""),
            outcome,
            summary: measure(budget, || recognize_all(&active, heard, 0.9, &options)),
        });
    }

    let keypad = [
        ("4710395826#", "complete"),
        ("4710395823", "invalid"),
        ("47103", "need more"),
    ];
    for (keys, expected) in keypad {
        let got = match Builtin::CaseNumber.handle_keys(keys) {
            DtmfMatch::Complete { .. } => "complete",
            DtmfMatch::NeedMore => "need more",
            DtmfMatch::Invalid(_) => "invalid",
            _ => "other",
        };
        ensure!(
            got == expected,
            "case-number keys {keys:?} gave {got}, expected {expected}"
        );
        rows.push(Row {
            name: format!("Builtin::CaseNumber.handle_keys(\"{keys}\")"),
            outcome: got.into(),
            summary: measure(budget, || Builtin::CaseNumber.handle_keys(keys)),
        });
    }

    for lang in [Lang::En, Lang::Mn] {
        let menu = find(&all, lang, "main_menu")?;
        ensure!(
            menu.mode() == Mode::Voice,
            "{} is not a voice grammar",
            menu.origin()
        );
        let hints = grammars::hints(&[menu]);
        ensure!(!hints.is_empty(), "{} gives no hints", menu.origin());
        rows.push(Row {
            name: format!("hints, {lang} main menu"),
            outcome: format!("{} phrases", hints.len()),
            summary: measure(budget, || grammars::hints(&[menu])),
        });
        let text = grammars::gbnf(menu);
        ensure!(
            text.contains("root"),
            "{} gives no GBNF root",
            menu.origin()
        );
        rows.push(Row {
            name: format!("gbnf, {lang} main menu"),
            outcome: format!("{} bytes", text.len()),
            summary: measure(budget, || grammars::gbnf(menu)),
        });
    }

    let directory = Directory::builtin().context("loading the built-in service directory")?;
    rows.push(Row {
        name: "Directory::builtin()".into(),
        outcome: format!("{} services", directory.len()),
        summary: measure(budget, || {
            Directory::builtin().map(|d| d.len()).unwrap_or(0)
        }),
    });
    for (lang, query) in [
        (Lang::En, "birth certificate"),
        (Lang::Mn, "төрсний гэрчилгээ"),
    ] {
        let found = directory.search(lang, query);
        let Some((id, score)) = found.first().copied() else {
            bail!("directory search {query:?} ({lang}) found nothing");
        };
        let name = directory
            .service(id)
            .map(|s| s.name.get(lang).to_string())
            .unwrap_or_else(|| format!("service {}", id.0));
        rows.push(Row {
            name: format!("Directory::search, {lang}: \"{query}\""),
            outcome: format!("{name} ({score:.2})"),
            summary: measure(budget, || directory.search(lang, query)),
        });
    }

    for (text, ok) in [("4710395826", true), ("471 039 5823", false)] {
        let parsed = text.parse::<dialogs::registry::CaseNumber>();
        ensure!(
            parsed.is_ok() == ok,
            "case number {text:?} parsed as {parsed:?}"
        );
        rows.push(Row {
            name: format!("registry::CaseNumber parse \"{text}\""),
            outcome: match parsed {
                Ok(n) => format!("ok {n}"),
                Err(e) => format!("error: {e}"),
            },
            summary: measure(budget, || text.parse::<dialogs::registry::CaseNumber>()),
        });
    }

    println!("{}", table(&rows));
    println!(
        "Times are single calls on one thread; each row ran for about {} ms after a warm-up.",
        budget.as_millis()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn summary_of_nothing_is_none() {
        assert_eq!(Summary::of(&mut []), None);
    }

    #[test]
    fn summary_takes_nearest_rank_median_and_p99() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(ms).collect();
        let s = Summary::of(&mut samples).unwrap_or_else(|| panic!("samples are not empty"));
        assert_eq!(s.median, ms(50));
        assert_eq!(s.p99, ms(99));
        assert_eq!(s.iterations, 100);
    }

    #[test]
    fn summary_of_one_sample_is_that_sample() {
        let s = Summary::of(&mut [ms(7)]).unwrap_or_else(|| panic!("one sample"));
        assert_eq!((s.median, s.p99, s.iterations), (ms(7), ms(7), 1));
    }

    #[test]
    fn human_picks_the_unit() {
        assert_eq!(human(Duration::from_nanos(850)), "850 ns");
        assert_eq!(human(Duration::from_nanos(12_340)), "12.34 µs");
        assert_eq!(human(Duration::from_micros(2_500)), "2.50 ms");
    }

    #[test]
    fn table_escapes_pipes_and_has_a_row_per_entry() {
        let summary = Summary {
            median: ms(1),
            p99: ms(2),
            iterations: 3,
        };
        let rows = [Row {
            name: "a | b".into(),
            outcome: "ok".into(),
            summary,
        }];
        let t = table(&rows);
        assert_eq!(t.lines().count(), 3);
        assert!(t.contains("| a \\| b | ok | 1.00 ms | 2.00 ms | 3 |"));
    }

    #[test]
    fn measure_times_at_least_the_minimum_calls() {
        let mut calls = 0usize;
        let s = measure(Duration::ZERO, || calls += 1);
        assert!(s.iterations >= MIN_SAMPLES);
        assert!(calls > s.iterations, "the warm-up calls too");
    }

    #[test]
    fn bundled_grammars_hold_every_benchmarked_menu() {
        let dir = default_grammar_dir();
        let mut all = Vec::new();
        for lang in ["en", "mn"] {
            all.extend(
                Grammar::load_dir(&dir.join(lang)).unwrap_or_else(|e| panic!("{lang}: {e}")),
            );
        }
        for (_, lang, heard, expected) in UTTERANCES {
            let active: Vec<&Grammar> = ["main_menu", "global", "emergency"]
                .iter()
                .map(|n| find(&all, lang, n).unwrap_or_else(|e| panic!("{e}")))
                .collect();
            let best = recognize_all(&active, heard, 0.9, &MatchOptions::default())
                .first()
                .map(|r| r.value.to_string());
            assert_eq!(best.as_deref(), expected, "{heard}");
        }
    }
}
