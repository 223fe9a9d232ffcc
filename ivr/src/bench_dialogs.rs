//! `ivr bench dialogs`: what one step of the dialog engine costs on this CPU.
//!
//! Prints three tables, each followed by a verdict line:
//!
//! - **Loading**: building and checking the built-in hotline flow ([`Flow::builtin`]: TOML,
//!   prompts, grammars) and the service directory ([`Directory::builtin`]). Both happen once
//!   per process; every call's [`Engine`] shares them.
//! - **Engine steps**: one [`Engine::handle`] call for a typical input — a key and spoken
//!   answers in the main menu (exact, near miss, global commands, an emergency, Mongolian), a
//!   spoken search in the information menu, the keys of a case number, and the registry's
//!   answer that makes the engine read a new case number back. For every sample a fresh
//!   engine is brought into the right state by feeding it the inputs before the step
//!   (untimed); only the step itself is timed. Its outputs are dropped after the clock stops.
//! - **Scripted call**: a whole call (greeting, filing a complaint by voice, keying a call-back
//!   number, the case number read back, goodbye) against a real [`Backend`] in a temporary data
//!   directory, timed per caller turn and in total. A turn is the caller's input and
//!   everything that follows from it: each prompt reported heard at once, storage effects
//!   carried out, their answers fed back.
//!
//! Times are in microseconds: n samples, median, p90 (nearest rank) and maximum. Before timing,
//! each workload runs once and its outcome is checked (say, "complaint" in the main menu must
//! lead to the recording state), so a table never reports the speed of a step that no longer
//! does what it should. The warm-up runs each workload a tenth of `--iterations` more times.
//!
//! Simulated time: the engine gets `Instant`s from one real origin moved forward by fixed
//! amounts, and a fixed wall-clock time inside opening hours (a Friday, 10:00 in Ulaanbaatar),
//! so the operator row always transfers. Reads the clock (that is the point); creates and
//! removes one temporary directory; starts no threads of its own (the profile store may).
//! Measures; asserts nothing about speed.

// Timing code: reading the clock is the point of this module.
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;
use dialogs::backend::Backend;
use dialogs::directory::Directory;
use dialogs::engine::{Engine, Hypothesis, Input, Output};
use dialogs::flow::Flow;
use dialogs::registry::{Case, CaseNumber, Deadlines};
use grammars::Lang;
use rand::rngs::StdRng;
use rand::SeedableRng;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Options of `ivr bench dialogs`.
#[derive(Debug, Args)]
pub struct DialogBenchArgs {
    /// Timed samples per table row (the warm-up adds a tenth).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: u32,
}

/// What one dialog step may cost: "well under a millisecond" is checked as a p90 below this.
pub const STEP_TARGET: Duration = Duration::from_millis(1);

/// The times of one row, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many samples were timed.
    pub n: usize,
    /// The median sample.
    pub median: Duration,
    /// The 90th percentile sample (nearest rank).
    pub p90: Duration,
    /// The slowest sample.
    pub max: Duration,
}

impl Summary {
    /// Summarises samples (sorted in place); `None` for no samples.
    pub fn of(samples: &mut [Duration]) -> Option<Summary> {
        samples.sort_unstable();
        Some(Summary {
            n: samples.len(),
            median: nearest_rank(samples, 50)?,
            p90: nearest_rank(samples, 90)?,
            max: *samples.last()?,
        })
    }
}

/// The nearest-rank `percent` percentile of sorted samples; `None` when there are none.
fn nearest_rank(sorted: &[Duration], percent: usize) -> Option<Duration> {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// A duration in microseconds, two decimals.
pub fn micros(d: Duration) -> String {
    format!("{:.2}", d.as_nanos() as f64 / 1e3)
}

/// One table row: what was timed, what it did (checked before timing), and the times.
#[derive(Debug, Clone)]
pub struct Row {
    /// The step and its input.
    pub what: String,
    /// What the step did.
    pub outcome: String,
    /// The times.
    pub summary: Summary,
}

/// The markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| what | outcome | n | median µs | p90 µs | max µs |\n|---|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.what.replace('|', "\\|"),
            r.outcome.replace('|', "\\|"),
            r.summary.n,
            micros(r.summary.median),
            micros(r.summary.p90),
            micros(r.summary.max),
        ));
    }
    out
}

/// Whether every row's p90 is below `target`: "met" or "NOT met", the rows that miss it, and
/// the slowest row.
pub fn verdict(rows: &[Row], target: Duration) -> String {
    let Some(slowest) = rows.iter().max_by_key(|r| r.summary.p90) else {
        return "nothing measured".into();
    };
    let over: Vec<&str> = rows
        .iter()
        .filter(|r| r.summary.p90 >= target)
        .map(|r| r.what.as_str())
        .collect();
    let slowest = format!(
        "slowest p90 {} µs ({}), median {} µs",
        micros(slowest.summary.p90),
        slowest.what,
        micros(slowest.summary.median)
    );
    if over.is_empty() {
        format!(
            "met: every p90 is below {} µs; {slowest}",
            target.as_micros()
        )
    } else {
        format!(
            "NOT met: p90 at or above {} µs for {}; {slowest}",
            target.as_micros(),
            over.join(", ")
        )
    }
}

/// Runs the benchmark and prints the tables.
pub fn dialogs(args: DialogBenchArgs) -> anyhow::Result<()> {
    let iterations = usize::try_from(args.iterations)
        .unwrap_or(usize::MAX)
        .max(1);
    let started = Instant::now();

    let flow = Arc::new(Flow::builtin().context("loading the built-in flow")?);
    let directory = Arc::new(Directory::builtin().context("loading the service directory")?);
    let loading = loading_rows(iterations, &flow, &directory)?;
    let data = TempDir::new("ivr-bench-dialogs")?;
    let backend = Backend::open(
        data.path(),
        Deadlines::default(),
        StdRng::seed_from_u64(1111),
    )
    .context("opening the temporary registry")?;
    let bench = Bench {
        flow,
        directory,
        origin: Instant::now(),
        wall: OffsetDateTime::parse(WALL, &Rfc3339).context("the bench's wall-clock time")?,
    };
    let steps = bench.step_rows(iterations, &backend)?;
    let (call, call_verdict) = bench.call_rows(iterations, &backend)?;

    println!("Loading (once per process, shared by every call)\n");
    println!("{}", table(&loading));
    let total: Duration = loading.iter().map(|r| r.summary.median).sum();
    println!(
        "verdict: no per-step target; loaded once per process and shared by every call's \
         engine ({} µs median in all)\n",
        micros(total)
    );
    println!("Engine steps (one Engine::handle call, engine already in the state)\n");
    println!("{}", table(&steps));
    println!("verdict: {}\n", verdict(&steps, STEP_TARGET));
    println!(
        "Scripted call: greeting, complaint by voice, call-back number, case number, goodbye\n"
    );
    println!("{}", table(&call));
    println!("verdict: {call_verdict}\n");
    println!(
        "{iterations} timed samples per row after {} warm-up runs; single thread; {}; \
         {:.1} s in all.",
        warm_ups(iterations),
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        },
        started.elapsed().as_secs_f64()
    );
    println!(
        "The call's registry is SQLite (synchronous=FULL) in a temporary directory under {}.",
        std::env::temp_dir().display()
    );
    Ok(())
}

/// Untimed runs of each workload before its samples.
fn warm_ups(iterations: usize) -> usize {
    (iterations / 10).max(1)
}

/// Times `op` `iterations` times after the warm-up.
fn time_calls<T>(iterations: usize, mut op: impl FnMut() -> T) -> Summary {
    for _ in 0..warm_ups(iterations) {
        black_box(op());
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t0 = Instant::now();
        let out = op();
        samples.push(t0.elapsed());
        black_box(out);
    }
    Summary::of(&mut samples).unwrap_or(EMPTY)
}

/// The summary of no samples (only when zero iterations slip through).
const EMPTY: Summary = Summary {
    n: 0,
    median: Duration::ZERO,
    p90: Duration::ZERO,
    max: Duration::ZERO,
};

/// Loading the flow and the directory again and again; `flow` and `directory` are what one
/// load gives.
fn loading_rows(iterations: usize, flow: &Flow, directory: &Directory) -> anyhow::Result<Vec<Row>> {
    ensure!(!flow.states.is_empty(), "the built-in flow has no states");
    ensure!(
        !directory.is_empty(),
        "the built-in directory has no services"
    );
    Ok(vec![
        Row {
            what: "Flow::builtin() (parse, prompts, grammars, checks)".into(),
            outcome: format!("{} states", flow.states.len()),
            summary: time_calls(iterations, || {
                Flow::builtin().map(|f| f.states.len()).unwrap_or(0)
            }),
        },
        Row {
            what: "Directory::builtin()".into(),
            outcome: format!("{} services", directory.len()),
            summary: time_calls(iterations, || {
                Directory::builtin().map(|d| d.len()).unwrap_or(0)
            }),
        },
    ])
}

/// The call's wall-clock time: a Friday inside opening hours.
const WALL: &str = "2026-11-27T10:00:00+08:00";

/// A case number with a valid check digit, keyed in the status menu.
const CASE_KEYS: &str = "4710395826";

/// What the caller says when recording the complaint.
const STATEMENT: &str = "The bus driver on route 7 was rude to me this morning";

/// The call-back number keyed in the scripted call, `#` included.
const CALLBACK_KEYS: &str = "99112233#";

/// Simulated time between two caller inputs.
const TURN_GAP: Duration = Duration::from_secs(2);

/// Simulated time between two keys.
const KEY_GAP: Duration = Duration::from_millis(300);

/// One spoken turn: the caller starts to speak, then is heard with full confidence.
fn said(text: &str) -> [Input; 2] {
    [
        Input::SpeechStarted,
        Input::Heard(vec![Hypothesis::new(text, 1.0)]),
    ]
}

/// The spoken answer of a step (its `SpeechStarted` goes into the setup).
fn heard(text: &str) -> Input {
    Input::Heard(vec![Hypothesis::new(text, 1.0)])
}

/// Keys, one input each.
fn keys(keys: &str) -> Vec<Input> {
    keys.chars().map(Input::Keyed).collect()
}

/// The inputs that bring a call in the main menu to the point where the case is stored.
fn complaint_until_store() -> Vec<Input> {
    let mut inputs = Vec::new();
    inputs.extend(said("file a complaint"));
    inputs.push(Input::Recorded {
        transcript: Some(STATEMENT.into()),
        recording: None,
    });
    inputs.extend(said("complaint"));
    inputs.extend(said("skip"));
    inputs.extend(keys(CALLBACK_KEYS));
    inputs
}

/// A timed engine step: the call's language, the inputs before it (after the call started),
/// the step, and what it must lead to.
struct StepCase {
    what: &'static str,
    locale: Lang,
    setup: Vec<Input>,
    step: Input,
    /// The state the engine is in right after the step.
    state: &'static str,
    /// The meaning the engine reports for the input, where it reports one.
    value: Option<&'static str>,
}

/// An engine in a state, and the simulated time of its next input.
struct Prepared {
    engine: Engine,
    now: Instant,
    /// The outputs of the last setup input.
    last: Vec<Output>,
}

struct Bench {
    flow: Arc<Flow>,
    directory: Arc<Directory>,
    origin: Instant,
    wall: OffsetDateTime,
}

impl Bench {
    /// A fresh engine whose call has started in `locale` (no caller number) and which has been
    /// fed `setup`, each input followed by the playback of the prompts it caused.
    fn prepare(&self, locale: Lang, setup: &[Input]) -> Prepared {
        let mut engine = Engine::new(self.flow.clone(), self.directory.clone());
        let mut now = self.origin;
        let mut last = settle(&mut engine, now, self.started(locale));
        for input in setup {
            now += gap(input);
            last = settle(&mut engine, now, input.clone());
        }
        Prepared {
            engine,
            now: now + TURN_GAP,
            last,
        }
    }

    fn started(&self, locale: Lang) -> Input {
        Input::CallStarted {
            caller: None,
            locale: Some(locale),
            profile: None,
            session: None,
            wall: self.wall,
        }
    }

    fn step_rows(&self, iterations: usize, backend: &Backend) -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        for case in step_cases() {
            rows.push(self.step_row(iterations, case)?);
        }
        rows.extend(self.case_number_rows(iterations)?);
        rows.push(self.case_stored_row(iterations, backend)?);
        Ok(rows)
    }

    /// Checks one step's outcome, then times it on a freshly prepared engine per sample.
    fn step_row(&self, iterations: usize, case: StepCase) -> anyhow::Result<Row> {
        let mut p = self.prepare(case.locale, &case.setup);
        let outputs = p.engine.handle(p.now, case.step.clone());
        let outcome = check_step(&p.engine, &outputs, case.state, case.value)
            .with_context(|| format!("step {:?}", case.what))?;
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..warm_ups(iterations) + iterations {
            let mut p = self.prepare(case.locale, &case.setup);
            let input = case.step.clone();
            let t0 = Instant::now();
            let outputs = p.engine.handle(p.now, input);
            let took = t0.elapsed();
            black_box(outputs);
            if i >= warm_ups(iterations) {
                samples.push(took);
            }
        }
        Ok(Row {
            what: case.what.into(),
            outcome,
            summary: Summary::of(&mut samples).unwrap_or(EMPTY),
        })
    }

    /// The keys of a case number in the status menu: each digit before the last, the last
    /// (which completes the number and asks for the lookup), and all ten in a row.
    fn case_number_rows(&self, iterations: usize) -> anyhow::Result<Vec<Row>> {
        let number: CaseNumber = CASE_KEYS.parse().context("the benchmark's case number")?;
        let digits: Vec<char> = CASE_KEYS.chars().collect();
        let Some((&final_key, leading)) = digits.split_last() else {
            bail!("the benchmark's case number is empty");
        };
        let setup = keys("3");

        // Check: the keys lead to a lookup of exactly this number.
        let mut p = self.prepare(Lang::En, &setup);
        ensure!(
            p.engine.state_name() == "stat_ask",
            "key 3 in the main menu led to {}, not stat_ask",
            p.engine.state_name()
        );
        let mut outputs = Vec::new();
        for &key in &digits {
            outputs = p.engine.handle(p.now, Input::Keyed(key));
            p.now += KEY_GAP;
        }
        ensure!(
            outputs.contains(&Output::LookupCase(number)),
            "keying {CASE_KEYS} did not look the case up: {outputs:?}"
        );
        let state = p.engine.state_name().to_string();

        let mut per_digit = Vec::with_capacity(iterations * leading.len());
        let mut last = Vec::with_capacity(iterations);
        let mut whole = Vec::with_capacity(iterations);
        for i in 0..warm_ups(iterations) + iterations {
            let timed = i >= warm_ups(iterations);
            let mut p = self.prepare(Lang::En, &setup);
            for &key in leading {
                let t0 = Instant::now();
                let outputs = p.engine.handle(p.now, Input::Keyed(key));
                let took = t0.elapsed();
                black_box(outputs);
                p.now += KEY_GAP;
                if timed {
                    per_digit.push(took);
                }
            }
            let t0 = Instant::now();
            let outputs = p.engine.handle(p.now, Input::Keyed(final_key));
            let took = t0.elapsed();
            black_box(outputs);
            if timed {
                last.push(took);
            }

            let mut p = self.prepare(Lang::En, &setup);
            let mut at = Vec::with_capacity(digits.len());
            for _ in &digits {
                at.push(p.now);
                p.now += KEY_GAP;
            }
            let mut outputs = Vec::with_capacity(digits.len());
            let t0 = Instant::now();
            for (&key, &now) in digits.iter().zip(&at) {
                outputs.push(p.engine.handle(now, Input::Keyed(key)));
            }
            let took = t0.elapsed();
            black_box(outputs);
            if timed {
                whole.push(took);
            }
        }
        Ok(vec![
            Row {
                what: format!("status menu: key a digit of \"{CASE_KEYS}\" (1st to 9th)"),
                outcome: "collects it".into(),
                summary: Summary::of(&mut per_digit).unwrap_or(EMPTY),
            },
            Row {
                what: "status menu: the 10th key".into(),
                outcome: format!("number complete, LookupCase → {state}"),
                summary: Summary::of(&mut last).unwrap_or(EMPTY),
            },
            Row {
                what: format!("status menu: all 10 keys of \"{CASE_KEYS}\""),
                outcome: format!("LookupCase → {state}"),
                summary: Summary::of(&mut whole).unwrap_or(EMPTY),
            },
        ])
    }

    /// The registry's answer to a filed complaint: the engine reads the number back.
    fn case_stored_row(&self, iterations: usize, backend: &Backend) -> anyhow::Result<Row> {
        let setup = complaint_until_store();
        let p = self.prepare(Lang::En, &setup);
        let Some(new) = p.last.iter().find_map(|o| match o {
            Output::StoreCase(new) => Some(new.clone()),
            _ => None,
        }) else {
            bail!(
                "filing a complaint stopped in {} without storing it",
                p.engine.state_name()
            );
        };
        let case: Case = backend
            .registry()
            .store(new, self.wall)
            .context("storing the benchmark's case")?;
        let step = Input::CaseStored(Ok(case.clone()));

        let mut p = self.prepare(Lang::En, &setup);
        let outputs = p.engine.handle(p.now, step.clone());
        let mut outcome = check_step(&p.engine, &outputs, "cmp_done", None)?;
        let first_group = &case.number.groups()[0];
        ensure!(
            outputs.iter().any(
                |o| matches!(o, Output::Play(play) if play.text().contains(first_group.as_str()))
            ),
            "the stored case's number {} was not read back: {outputs:?}",
            case.number
        );
        outcome.push_str(&format!(", reads {} back", case.number));

        let mut samples = Vec::with_capacity(iterations);
        for i in 0..warm_ups(iterations) + iterations {
            let mut p = self.prepare(Lang::En, &setup);
            let input = step.clone();
            let t0 = Instant::now();
            let outputs = p.engine.handle(p.now, input);
            let took = t0.elapsed();
            black_box(outputs);
            if i >= warm_ups(iterations) {
                samples.push(took);
            }
        }
        Ok(Row {
            what: "complaint: CaseStored(Ok) from the registry".into(),
            outcome,
            summary: Summary::of(&mut samples).unwrap_or(EMPTY),
        })
    }

    /// The scripted call: a row per turn, one for the whole call and one for the engine's
    /// share of it, and the verdict.
    fn call_rows(
        &self,
        iterations: usize,
        backend: &Backend,
    ) -> anyhow::Result<(Vec<Row>, String)> {
        let turns = call_script();
        let first = self.run_call(&turns, backend)?;
        ensure!(
            first.ended,
            "the scripted call did not end; it stopped in {}",
            first.last_state
        );
        ensure!(first.stored.is_some(), "the scripted call stored no case");

        let mut per_turn: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations); turns.len()];
        let mut engine_per_turn: Vec<Vec<Duration>> =
            vec![Vec::with_capacity(iterations); turns.len()];
        let mut whole = Vec::with_capacity(iterations);
        let mut engine_whole = Vec::with_capacity(iterations);
        for i in 0..warm_ups(iterations) + iterations {
            let run = self.run_call(&turns, backend)?;
            if i < warm_ups(iterations) {
                continue;
            }
            for (t, (total, engine)) in run.turns.iter().enumerate() {
                per_turn[t].push(*total);
                engine_per_turn[t].push(*engine);
            }
            whole.push(run.turns.iter().map(|(total, _)| *total).sum());
            engine_whole.push(run.turns.iter().map(|(_, engine)| *engine).sum());
        }

        let mut rows = Vec::new();
        let mut engine_rows = Vec::new();
        for ((turn, samples), engine_samples) in
            turns.iter().zip(&mut per_turn).zip(&mut engine_per_turn)
        {
            rows.push(Row {
                what: format!("turn: {}", turn.what),
                outcome: turn.outcome.into(),
                summary: Summary::of(samples).unwrap_or(EMPTY),
            });
            engine_rows.push(Row {
                what: turn.what.into(),
                outcome: String::new(),
                summary: Summary::of(engine_samples).unwrap_or(EMPTY),
            });
        }
        let stored = first
            .stored
            .map(|n| format!("case {n} filed and read back"))
            .unwrap_or_default();
        rows.push(Row {
            what: format!("whole call, {} turns, with the registry", turns.len()),
            outcome: stored,
            summary: Summary::of(&mut whole).unwrap_or(EMPTY),
        });
        rows.push(Row {
            what: "whole call, engine only (sum of Engine::handle)".into(),
            outcome: format!("{} inputs", first.inputs),
            summary: Summary::of(&mut engine_whole).unwrap_or(EMPTY),
        });
        let call_verdict = format!(
            "engine work per turn, {}",
            verdict(&engine_rows, STEP_TARGET)
        );
        Ok((rows, call_verdict))
    }

    /// Runs the scripted call once on a fresh engine; times each turn in all (engine and
    /// backend) and the engine's share of it.
    fn run_call(&self, turns: &[Turn], backend: &Backend) -> anyhow::Result<CallRun> {
        let mut engine = Engine::new(self.flow.clone(), self.directory.clone());
        let mut now = self.origin;
        let mut run = CallRun {
            turns: Vec::with_capacity(turns.len()),
            ended: false,
            stored: None,
            inputs: 0,
            last_state: String::new(),
        };
        for turn in turns {
            let mut engine_time = Duration::ZERO;
            let t0 = Instant::now();
            for first in turn.inputs(self) {
                let mut pending = VecDeque::from([first]);
                while let Some(input) = pending.pop_front() {
                    run.inputs += 1;
                    let h0 = Instant::now();
                    let outputs = engine.handle(now, input);
                    engine_time += h0.elapsed();
                    let wall = self.wall + now.saturating_duration_since(self.origin);
                    for output in &outputs {
                        match output {
                            Output::Play(play) => {
                                pending.push_back(Input::PlaybackFinished(play.mark))
                            }
                            Output::Hangup { .. } | Output::Transfer { .. } => run.ended = true,
                            _ => {}
                        }
                        if let Some(answer) = backend.perform(None, output, wall) {
                            if let Input::CaseStored(Ok(case)) = &answer {
                                run.stored = Some(case.number);
                            }
                            pending.push_back(answer);
                        }
                    }
                    black_box(outputs);
                }
                now += KEY_GAP;
            }
            run.turns.push((t0.elapsed(), engine_time));
            now += TURN_GAP;
        }
        run.last_state = engine.state_name().to_string();
        Ok(run)
    }
}

/// Feeds `input` and the playback of every prompt it causes; returns the outputs of `input`
/// itself.
fn settle(engine: &mut Engine, now: Instant, input: Input) -> Vec<Output> {
    let first = engine.handle(now, input);
    let mut marks: VecDeque<u64> = played(&first).into();
    while let Some(mark) = marks.pop_front() {
        let outputs = engine.handle(now, Input::PlaybackFinished(mark));
        marks.extend(played(&outputs));
    }
    first
}

/// The marks of the prompts among `outputs`.
fn played(outputs: &[Output]) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Play(play) => Some(play.mark),
            _ => None,
        })
        .collect()
}

/// Simulated time before an input.
fn gap(input: &Input) -> Duration {
    match input {
        Input::Keyed(_) | Input::Heard(_) => KEY_GAP,
        _ => TURN_GAP,
    }
}

/// Checks the engine's state after a step and the meaning it reported; describes both.
fn check_step(
    engine: &Engine,
    outputs: &[Output],
    state: &str,
    value: Option<&str>,
) -> anyhow::Result<String> {
    let understood = outputs.iter().find_map(|o| match o {
        Output::Understood(u) => Some(u),
        _ => None,
    });
    let got = understood.and_then(|u| u.value.as_deref());
    if let Some(want) = value {
        ensure!(
            got == Some(want),
            "meant {got:?}, expected {want:?} ({outputs:?})"
        );
    }
    ensure!(
        engine.state_name() == state,
        "led to {}, expected {state}",
        engine.state_name()
    );
    Ok(match understood {
        Some(u) => format!(
            "{} ({}, {:.2}) → {state}",
            u.value.as_deref().unwrap_or("-"),
            u.decision,
            u.confidence
        ),
        None => format!("→ {state}"),
    })
}

/// The timed engine steps (the case-number keys and the stored case have their own rows).
fn step_cases() -> Vec<StepCase> {
    let spoken = |what, locale, text: &'static str, state, value| StepCase {
        what,
        locale,
        setup: vec![Input::SpeechStarted],
        step: heard(text),
        state,
        value,
    };
    vec![
        StepCase {
            what: "main menu: key 1",
            locale: Lang::En,
            setup: Vec::new(),
            step: Input::Keyed('1'),
            state: "info",
            value: Some("info"),
        },
        spoken(
            "main menu: \"complaint\"",
            Lang::En,
            "complaint",
            "cmp_record",
            Some("file_case"),
        ),
        spoken(
            "main menu: \"file a complaint\"",
            Lang::En,
            "file a complaint",
            "cmp_record",
            Some("file_case"),
        ),
        spoken(
            "main menu: \"complain\" (near miss)",
            Lang::En,
            "complain",
            "cmp_record",
            Some("file_case"),
        ),
        spoken(
            "main menu: \"operator\"",
            Lang::En,
            "operator",
            "oper_connect",
            Some("operator"),
        ),
        spoken(
            "main menu: \"repeat\"",
            Lang::En,
            "repeat",
            "main",
            Some("repeat"),
        ),
        spoken(
            "main menu: \"please call an ambulance\"",
            Lang::En,
            "please call an ambulance",
            "emergency",
            Some("emergency"),
        ),
        spoken(
            "main menu (mn): \"гомдол\"",
            Lang::Mn,
            "гомдол",
            "cmp_record",
            Some("file_case"),
        ),
        StepCase {
            what: "information menu: \"birth certificate\"",
            locale: Lang::En,
            setup: vec![Input::Keyed('1'), Input::SpeechStarted],
            step: heard("birth certificate"),
            state: "info",
            value: Some("Birth registration and certificate"),
        },
    ]
}

/// One caller turn of the scripted call.
struct Turn {
    what: &'static str,
    outcome: &'static str,
    kind: TurnKind,
}

enum TurnKind {
    Start,
    Say(&'static str),
    Record(&'static str),
    Keys(&'static str),
}

impl Turn {
    fn inputs(&self, bench: &Bench) -> Vec<Input> {
        match self.kind {
            TurnKind::Start => vec![bench.started(Lang::En)],
            TurnKind::Say(text) => said(text).into(),
            TurnKind::Record(text) => vec![Input::Recorded {
                transcript: Some(text.into()),
                recording: None,
            }],
            TurnKind::Keys(k) => keys(k),
        }
    }
}

/// Greeting, a complaint by voice, a call-back number, the case number, goodbye.
fn call_script() -> Vec<Turn> {
    vec![
        Turn {
            what: "call starts",
            outcome: "greeting, main menu",
            kind: TurnKind::Start,
        },
        Turn {
            what: "\"file a complaint\"",
            outcome: "asks for the statement",
            kind: TurnKind::Say("file a complaint"),
        },
        Turn {
            what: "the recorded statement",
            outcome: "asks the case type",
            kind: TurnKind::Record(STATEMENT),
        },
        Turn {
            what: "\"complaint\"",
            outcome: "asks the agency",
            kind: TurnKind::Say("complaint"),
        },
        Turn {
            what: "\"skip\"",
            outcome: "asks a call-back number",
            kind: TurnKind::Say("skip"),
        },
        Turn {
            what: "keys \"99112233#\"",
            outcome: "stores the case (SQLite commit), reads its number",
            kind: TurnKind::Keys(CALLBACK_KEYS),
        },
        Turn {
            what: "\"no\"",
            outcome: "goodbye, hangs up",
            kind: TurnKind::Say("no"),
        },
    ]
}

/// What one run of the scripted call gave.
struct CallRun {
    /// Per turn: the time in all and the engine's share.
    turns: Vec<(Duration, Duration)>,
    /// The engine hung up or transferred.
    ended: bool,
    /// The number of the case it stored.
    stored: Option<CaseNumber>,
    /// Inputs fed, answers included.
    inputs: usize,
    /// The state the call ended in.
    last_state: String,
}

/// A directory under the system's temporary directory, removed when dropped (the benches'
/// scratch data).
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(prefix: &str) -> anyhow::Result<TempDir> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let path = base.join(format!("{prefix}-{}-{attempt}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!("no free temporary directory name under {}", base.display())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "cannot remove the bench's data");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    fn row(what: &str, median: u64, p90: u64) -> Row {
        Row {
            what: what.into(),
            outcome: String::new(),
            summary: Summary {
                n: 1,
                median: us(median),
                p90: us(p90),
                max: us(p90),
            },
        }
    }

    fn bench() -> Bench {
        Bench {
            flow: Arc::new(Flow::builtin().unwrap_or_else(|e| panic!("built-in flow: {e}"))),
            directory: Arc::new(
                Directory::builtin().unwrap_or_else(|e| panic!("built-in directory: {e}")),
            ),
            origin: Instant::now(),
            wall: OffsetDateTime::parse(WALL, &Rfc3339).unwrap_or_else(|e| panic!("{WALL}: {e}")),
        }
    }

    fn backend(dir: &Path) -> Backend {
        Backend::open(dir, Deadlines::default(), StdRng::seed_from_u64(7))
            .unwrap_or_else(|e| panic!("backend: {e}"))
    }

    #[test]
    fn summary_of_nothing_is_none() {
        assert_eq!(Summary::of(&mut []), None);
    }

    #[test]
    fn summary_takes_nearest_rank_median_p90_and_max() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(us).collect();
        let s = Summary::of(&mut samples).unwrap_or_else(|| panic!("samples are not empty"));
        assert_eq!(
            (s.n, s.median, s.p90, s.max),
            (100, us(50), us(90), us(100))
        );
    }

    #[test]
    fn summary_of_one_sample_is_that_sample() {
        let s = Summary::of(&mut [us(7)]).unwrap_or_else(|| panic!("one sample"));
        assert_eq!((s.n, s.median, s.p90, s.max), (1, us(7), us(7), us(7)));
    }

    #[test]
    fn micros_prints_two_decimals() {
        assert_eq!(micros(Duration::from_nanos(850)), "0.85");
        assert_eq!(micros(Duration::from_nanos(12_345)), "12.35");
        assert_eq!(micros(Duration::from_millis(2)), "2000.00");
    }

    #[test]
    fn table_escapes_pipes_and_has_a_line_per_row() {
        let t = table(&[row("a | b", 1, 2)]);
        assert_eq!(t.lines().count(), 3);
        assert!(t.contains("| a \\| b |  | 1 | 1.00 | 2.00 | 2.00 |"), "{t}");
    }

    #[test]
    fn verdict_names_the_rows_over_the_target() {
        let rows = [row("fast", 10, 20), row("slow", 900, 1500)];
        let v = verdict(&rows, STEP_TARGET);
        assert!(v.starts_with("NOT met"), "{v}");
        assert!(v.contains("for slow;"), "{v}");
        assert!(!v.contains("for fast"), "{v}");
    }

    #[test]
    fn verdict_is_met_when_every_p90_is_below_the_target() {
        let v = verdict(&[row("a", 10, 20), row("b", 300, 400)], STEP_TARGET);
        assert!(v.starts_with("met"), "{v}");
        assert!(v.contains("slowest p90 400.00 µs (b)"), "{v}");
        assert_eq!(verdict(&[], STEP_TARGET), "nothing measured");
    }

    #[test]
    fn every_step_leads_where_its_row_says() {
        let bench = bench();
        for case in step_cases() {
            let mut p = bench.prepare(case.locale, &case.setup);
            let outputs = p.engine.handle(p.now, case.step.clone());
            if let Err(e) = check_step(&p.engine, &outputs, case.state, case.value) {
                panic!("{}: {e:#}", case.what);
            }
        }
    }

    #[test]
    fn filing_a_complaint_waits_for_the_store() {
        let p = bench().prepare(Lang::En, &complaint_until_store());
        assert_eq!(p.engine.state_name(), "cmp_store");
        assert!(
            p.last.iter().any(|o| matches!(o, Output::StoreCase(_))),
            "{:?}",
            p.last
        );
    }

    #[test]
    fn scripted_call_files_a_case_and_ends() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let backend = backend(dir.path());
        let turns = call_script();
        let run = bench()
            .run_call(&turns, &backend)
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(run.ended, "stopped in {}", run.last_state);
        assert_eq!(run.turns.len(), turns.len());
        let number = run.stored.unwrap_or_else(|| panic!("no case stored"));
        let stored = backend
            .registry()
            .get(&number)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            stored.and_then(|c| c.transcript).as_deref(),
            Some(STATEMENT)
        );
    }

    #[test]
    fn temp_dir_is_removed_when_dropped() {
        let dir = TempDir::new("ivr-bench-dialogs-test").unwrap_or_else(|e| panic!("{e:#}"));
        let path = dir.path().to_path_buf();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }
}
