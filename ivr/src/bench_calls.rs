//! `ivr bench calls`: how the assistant answers when several callers talk to it at once.
//!
//! Runs `--concurrent N` robot callers ([`crate::robot`]) side by side, `--rounds R` times,
//! against the assistant, and prints one table row: calls passed and failed, the turns the
//! assistant reported, the spread (p50 / p95 / max, nearest rank) of two turn latencies — the
//! end of the caller's speech to the first answer audio (`first_audio_ms`) and to the
//! transcript (`transcript_ms`) — and the CPU the process used while the calls ran. Failed
//! calls are listed below the table with their failure; any failure makes the command fail.
//!
//! Without `--target` the assistant runs in this process with the same parts as `ivr serve`
//! ([`crate::serve::shared`], [`crate::serve::serve`]: Whisper `tiny.en`, Flite, SQLite and
//! sled) in a temporary data directory that is removed at the end, gRPC and HTTP on loopback;
//! it is stopped when the calls are over. With `--target grpc://HOST:PORT` the robots call
//! that server instead and the CPU columns measure the robots alone.
//!
//! The robots check prompt texts only (no transcriber: the CPU goes to the assistant), speak
//! with the caller voice at 8 kHz through G.711 µ-law, and have distinct caller numbers
//! (`99000001`, `99000002`, … across all rounds, so no call finds another's profile). The
//! built-in script ([`BUILTIN_SCRIPT`]) files a complaint: it barges into the main menu by
//! voice, says the statement, answers the case-type menu by voice, then finishes by keypad and
//! hangs up. `--script FILE` runs another script (English).
//!
//! CPU: user + system time of this process (all threads, the assistant's Whisper and the
//! robots) from `/proc/self/stat`, over the wall time from the first call placed to the last
//! call ended; child processes (the synthesizer rendering prompts not yet cached) are shown
//! apart. Where `/proc` is missing the CPU columns say `n/a`.
//!
//! Reads the clock, spawns runtimes and tasks, and waits on the wall clock: calls are real
//! time. Measures; asserts nothing about speed.

// Timing and pacing real calls: reading the clock and waiting are the point of this module.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use speech::models::ModelStore;
use speech::tts::Speaker;
use speech::{Locale, SampleRate};

use crate::bench_dialogs::TempDir;
use crate::robot::{self, CallOptions, PreparedScript, Script, Target, TurnLatency};
use crate::serve::ServeArgs;

/// The built-in call: a complaint filed by voice, finished by keypad.
pub const BUILTIN_SCRIPT: &str = "\
# Barge into the main menu, file a complaint by voice, finish by keypad, hang up.
expect For information about public services
silence 1
say I want to make a complaint
expect After the tone
wait-prompt
say The street light outside my house has been broken for a month and the road is dark.
expect If this is a complaint
wait-prompt
say complaint
expect which office
key 1
expect reply to the number you are calling from
key 1
expect Your number is
wait-prompt
key 2
expect Goodbye
hangup
";

/// The name the built-in script is reported under.
const BUILTIN_ORIGIN: &str = "built-in complaint call";

/// The first caller number; call `i` (from 0, across rounds) calls from this plus `i`.
const FIRST_CALLER: u32 = 99_000_001;

/// How long the in-process assistant may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the in-process assistant may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Linux reports process times in `USER_HZ` ticks, fixed at 100 per second for user space.
const USER_HZ: f64 = 100.0;

/// Options of `ivr bench calls`.
#[derive(Debug, Args)]
pub struct CallBenchArgs {
    /// Robot callers on the line at the same time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrent: u32,
    /// How many times to run the concurrent calls, one round after another.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    /// Call this assistant (grpc://HOST:PORT) instead of starting one in this process.
    #[arg(long)]
    pub target: Option<String>,
    /// The call script (English); the built-in complaint call when left out.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// How long each expect or wait may take, in seconds.
    #[arg(long, default_value_t = 40.0)]
    pub timeout: f64,
}

/// Runs the benchmark: prints the table and the failed calls; fails when any call failed.
pub fn calls(store: &ModelStore, args: &CallBenchArgs) -> anyhow::Result<()> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        bail!(
            "--timeout {}: expected seconds, more than 0 and at most 3600",
            args.timeout
        );
    }
    let target: Option<Target> = args
        .target
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let (script, origin) = match &args.script {
        Some(path) => (Script::load(path)?, path.display().to_string()),
        None => (
            Script::parse(BUILTIN_SCRIPT, BUILTIN_ORIGIN)?,
            BUILTIN_ORIGIN.to_owned(),
        ),
    };
    // No render cache: each robot's audio is synthesized once, here, before any call.
    let speaker = Speaker::new(robot::caller_voices());
    let prepared = Arc::new(robot::prepare(
        &script,
        SampleRate::HZ_8000,
        Locale::En,
        &speaker,
    )?);

    let (target, server) = match target {
        Some(target) => (target, None),
        None => {
            let server = InProcess::start(store)?;
            (server.target(), Some(server))
        }
    };
    let against = match &server {
        Some(_) => format!("the assistant in this process ({target})"),
        None => format!("{target} (CPU: the robots only)"),
    };

    let robots = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("robot")
        .enable_all()
        .build()
        .context("starting the robots' runtime")?;
    let mut options = CallOptions::new(target);
    options.locale = Some(Locale::En);
    options.timeout = Duration::from_secs_f64(args.timeout);

    let cpu_before = CpuTimes::now();
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for round in 0..args.rounds {
        let first = round * args.concurrent;
        outcomes.extend(robots.block_on(run_round(
            &prepared,
            &options,
            round + 1,
            first..first + args.concurrent,
        )));
    }
    let wall = started.elapsed();
    let cpu = CpuTimes::now()
        .zip(cpu_before)
        .map(|(after, before)| after.since(&before));
    drop(robots);
    if let Some(server) = server {
        server.stop()?;
    }

    let result = BenchResult {
        concurrent: args.concurrent,
        outcomes,
        wall,
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    println!(
        "Calls: {origin} against {against}; {} at once, {} round(s), 8000 Hz, no audio check\n",
        args.concurrent, args.rounds
    );
    print!("{}", result.table());
    println!("\n{}", result.footer());
    let failed = result.failures();
    if !failed.is_empty() {
        println!("\nfailed calls:\n{failed}");
        bail!(
            "{} of {} calls failed",
            result.failed(),
            result.outcomes.len()
        );
    }
    Ok(())
}

/// Runs one round: a robot per caller number, all at once; outcomes in caller order.
async fn run_round(
    prepared: &Arc<PreparedScript>,
    options: &CallOptions,
    round: u32,
    calls: std::ops::Range<u32>,
) -> Vec<CallOutcome> {
    let mut tasks = Vec::new();
    for i in calls {
        let caller = caller_number(i);
        let mut options = options.clone();
        options.caller = caller.clone();
        let prepared = Arc::clone(prepared);
        let task = tokio::spawn(async move { robot::run_call(&prepared, &options).await });
        tasks.push((caller, task));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for (caller, task) in tasks {
        outcomes.push(match task.await {
            Ok(report) => CallOutcome {
                round,
                caller,
                call_id: report.call_id,
                turns: report.turns,
                failure: report.failure.map(|f| f.to_string()),
            },
            Err(e) => CallOutcome {
                round,
                caller,
                call_id: String::new(),
                turns: Vec::new(),
                failure: Some(format!("the robot stopped: {e}")),
            },
        });
    }
    outcomes
}

/// The caller number of call `i` (from 0): `99000001`, `99000002`, …
pub(crate) fn caller_number(i: u32) -> String {
    FIRST_CALLER.saturating_add(i).to_string()
}

/// The assistant running in this process, on its own runtime, with its data in a temporary
/// directory.
pub(crate) struct InProcess {
    // Dropped in this order: the server (and the stores it holds) before its data directory.
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    grpc: SocketAddr,
    data: TempDir,
}

impl InProcess {
    /// Starts the assistant as `ivr serve` does and waits until it accepts connections.
    pub(crate) fn start(store: &ModelStore) -> anyhow::Result<InProcess> {
        let data = TempDir::new("ivr-bench-calls")?;
        let grpc = free_loopback_port()?;
        let args = ServeArgs {
            grpc,
            http: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            model_en: "tiny.en".into(),
            model_mn: "base".into(),
            flow: None,
            grammars: None,
            gateway: crate::gateway::GatewayArgs {
                no_sip: true,
                ..Default::default()
            },
        };
        let shared = crate::serve::shared(data.path(), store, &args)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("assistant")
            .enable_all()
            .build()
            .context("starting the assistant's runtime")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(crate::serve::serve(shared, grpc, args.http, None, async {
            let _ = stopped.await;
        }));
        let mut server = InProcess {
            runtime,
            stop,
            task,
            grpc,
            data,
        };
        server.wait_until_listening()?;
        Ok(server)
    }

    fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.task.is_finished() {
                // The server ended before listening: its error says why.
                return match self.runtime.block_on(&mut self.task) {
                    Ok(Ok(())) => bail!("the assistant stopped before it listened"),
                    Ok(Err(e)) => Err(e.context("starting the assistant")),
                    Err(e) => bail!("the assistant failed to start: {e}"),
                };
            }
            if TcpStream::connect_timeout(&self.grpc, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the assistant did not listen on {} within {} s",
                    self.grpc,
                    START_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn target(&self) -> Target {
        Target::Grpc {
            authority: self.grpc.to_string(),
        }
    }

    /// Where the assistant's gRPC listens.
    pub(crate) fn grpc(&self) -> SocketAddr {
        self.grpc
    }

    /// The assistant's runtime (to run more servers beside it, such as the phone gateway).
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Stops the assistant and waits for it (calls are over by now); removes its data.
    pub(crate) fn stop(self) -> anyhow::Result<()> {
        let InProcess {
            runtime,
            stop,
            task,
            data,
            ..
        } = self;
        let _ = stop.send(());
        let ended = runtime.block_on(async { tokio::time::timeout(STOP_TIMEOUT, task).await });
        drop(runtime);
        drop(data);
        match ended {
            Ok(Ok(result)) => result.context("the assistant"),
            Ok(Err(e)) => bail!("the assistant failed: {e}"),
            Err(_) => bail!(
                "the assistant did not stop within {} s",
                STOP_TIMEOUT.as_secs()
            ),
        }
    }
}

/// A loopback address with a port no one listens on now. The port is released before the
/// server binds it; another process taking it in between makes the start fail, not misroute.
pub(crate) fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("finding a free loopback port for the assistant")?;
    Ok(listener.local_addr()?)
}

/// What one robot call came to.
#[derive(Debug, Clone, PartialEq)]
struct CallOutcome {
    /// The round it ran in, from 1.
    round: u32,
    /// The caller number it called from.
    caller: String,
    /// Its call id (empty when the robot never placed it).
    call_id: String,
    /// The turns the assistant reported.
    turns: Vec<TurnLatency>,
    /// Why it failed, when it did.
    failure: Option<String>,
}

/// Process CPU time in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuTimes {
    /// User time of this process, all threads.
    pub(crate) user: f64,
    /// System time of this process, all threads.
    pub(crate) system: f64,
    /// User + system time of child processes that were waited for.
    pub(crate) children: f64,
}

impl CpuTimes {
    /// This process's times; `None` where `/proc/self/stat` cannot be read.
    pub(crate) fn now() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        CpuTimes::parse(&stat)
    }

    /// Parses `/proc/PID/stat`: fields 14 to 17 (utime, stime, cutime, cstime) in `USER_HZ`
    /// ticks. The command name (field 2) is in parentheses and may hold spaces or parentheses,
    /// so fields are counted from the last `)`.
    fn parse(stat: &str) -> Option<CpuTimes> {
        let (_, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: field 3 (state) is index 0, so field k is index k - 3.
        let tick = |field: usize| -> Option<f64> {
            let ticks: u64 = fields.get(field - 3)?.parse().ok()?;
            Some(ticks as f64 / USER_HZ)
        };
        Some(CpuTimes {
            user: tick(14)?,
            system: tick(15)?,
            children: tick(16)? + tick(17)?,
        })
    }

    /// The time spent since `before`.
    pub(crate) fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: (self.user - before.user).max(0.0),
            system: (self.system - before.system).max(0.0),
            children: (self.children - before.children).max(0.0),
        }
    }

    /// User + system.
    pub(crate) fn process(&self) -> f64 {
        self.user + self.system
    }
}

/// p50, p95 and maximum of a set of milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spread {
    pub(crate) p50: u32,
    pub(crate) p95: u32,
    pub(crate) max: u32,
}

impl Spread {
    /// The spread of `values` (sorted in place); `None` when there are none.
    pub(crate) fn of(values: &mut [u32]) -> Option<Spread> {
        values.sort_unstable();
        Some(Spread {
            p50: nearest_rank(values, 50)?,
            p95: nearest_rank(values, 95)?,
            max: *values.last()?,
        })
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {} / {}", self.p50, self.p95, self.max)
    }
}

/// The nearest-rank `percent` percentile of sorted values; `None` when there are none.
fn nearest_rank(sorted: &[u32], percent: usize) -> Option<u32> {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Everything one run measured.
#[derive(Debug, Clone)]
struct BenchResult {
    concurrent: u32,
    outcomes: Vec<CallOutcome>,
    /// From the first call placed to the last call ended.
    wall: Duration,
    /// CPU over the same span; `None` where it cannot be read.
    cpu: Option<CpuTimes>,
    /// The cores this process may run on.
    cores: usize,
}

impl BenchResult {
    fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.failure.is_some()).count()
    }

    fn spread(&self, field: fn(&TurnLatency) -> u32) -> String {
        let mut values: Vec<u32> = self
            .outcomes
            .iter()
            .flat_map(|o| o.turns.iter().map(field))
            .collect();
        Spread::of(&mut values).map_or_else(|| "-".to_owned(), |s| s.to_string())
    }

    /// The markdown table: a header, its rule and one row.
    fn table(&self) -> String {
        let turns: usize = self.outcomes.iter().map(|o| o.turns.len()).sum();
        let (one_core, all_cores) = match self.cpu {
            Some(cpu) if !self.wall.is_zero() => {
                let share = cpu.process() / self.wall.as_secs_f64() * 100.0;
                (
                    format!("{share:.0}"),
                    format!("{:.0}", share / self.cores as f64),
                )
            }
            _ => ("n/a".to_owned(), "n/a".to_owned()),
        };
        format!(
            "| concurrent calls | passed | failed | turns | first audio ms p50 / p95 / max \
             | transcript ms p50 / p95 / max | CPU % of one core | CPU % of {cores} cores |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | {concurrent} | {passed} | {failed} | {turns} | {first_audio} | {transcript} \
             | {one_core} | {all_cores} |\n",
            cores = self.cores,
            concurrent = self.concurrent,
            passed = self.outcomes.len() - self.failed(),
            failed = self.failed(),
            first_audio = self.spread(|t| t.first_audio_ms),
            transcript = self.spread(|t| t.transcript_ms),
        )
    }

    /// The wall and CPU times behind the CPU columns.
    fn footer(&self) -> String {
        let wall = self.wall.as_secs_f64();
        match self.cpu {
            Some(cpu) => format!(
                "wall {wall:.1} s; CPU {:.1} s (user {:.1} s, system {:.1} s); child processes \
                 {:.1} s (not in the table)",
                cpu.process(),
                cpu.user,
                cpu.system,
                cpu.children
            ),
            None => format!("wall {wall:.1} s; CPU n/a (no /proc/self/stat)"),
        }
    }

    /// One line per failed call: round, caller number, call id and the failure.
    fn failures(&self) -> String {
        let mut out = String::new();
        for o in self.outcomes.iter() {
            if let Some(failure) = &o.failure {
                let id = if o.call_id.is_empty() {
                    String::new()
                } else {
                    format!(", {}", o.call_id)
                };
                let _ = writeln!(
                    out,
                    "- round {}, caller {}{id}: {failure}",
                    o.round, o.caller
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(first_audio_ms: u32, transcript_ms: u32) -> TurnLatency {
        TurnLatency {
            first_audio_ms,
            transcript_ms,
            ..TurnLatency::default()
        }
    }

    fn outcome(caller: &str, turns: Vec<TurnLatency>, failure: Option<&str>) -> CallOutcome {
        CallOutcome {
            round: 1,
            caller: caller.into(),
            call_id: format!("robot-{caller}"),
            turns,
            failure: failure.map(str::to_owned),
        }
    }

    #[test]
    fn the_builtin_script_parses() {
        let script = Script::parse(BUILTIN_SCRIPT, BUILTIN_ORIGIN).expect("it parses");
        assert!(script.steps.len() > 10);
    }

    #[test]
    fn caller_numbers_are_distinct_across_rounds() {
        assert_eq!(caller_number(0), "99000001");
        assert_eq!(caller_number(7), "99000008");
        let numbers: std::collections::HashSet<String> = (0..64).map(caller_number).collect();
        assert_eq!(numbers.len(), 64);
    }

    #[test]
    fn spread_takes_nearest_rank_p50_p95_and_max() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(
            Spread::of(&mut v),
            Some(Spread {
                p50: 50,
                p95: 95,
                max: 100
            })
        );
        assert_eq!(
            Spread::of(&mut [7]).map(|s| s.to_string()),
            Some("7 / 7 / 7".into())
        );
        assert_eq!(Spread::of(&mut []), None);
    }

    #[test]
    fn proc_stat_times_are_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (ivr (bench) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    250 31 7 3 20 0 9 0 100 1000 200";
        let cpu = CpuTimes::parse(stat).expect("parsed");
        assert_eq!(
            cpu,
            CpuTimes {
                user: 2.5,
                system: 0.31,
                children: 0.1
            }
        );
        assert_eq!(CpuTimes::parse("4242 (ivr) S 1 2"), None);
        assert_eq!(CpuTimes::parse("no parenthesis"), None);
    }

    #[test]
    fn this_process_has_readable_cpu_times_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(CpuTimes::now().is_some());
        }
    }

    #[test]
    fn table_counts_calls_and_turns_and_spreads_every_turn() {
        let result = BenchResult {
            concurrent: 2,
            outcomes: vec![
                outcome("99000001", vec![turn(400, 300), turn(600, 500)], None),
                outcome(
                    "99000002",
                    vec![turn(900, 800)],
                    Some("script:3: no prompt"),
                ),
            ],
            wall: Duration::from_secs(10),
            cpu: Some(CpuTimes {
                user: 4.0,
                system: 1.0,
                children: 0.5,
            }),
            cores: 2,
        };
        let table = result.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].contains("CPU % of 2 cores"), "{table}");
        assert_eq!(
            lines[2],
            "| 2 | 1 | 1 | 3 | 600 / 900 / 900 | 500 / 800 / 800 | 50 | 25 |"
        );
        assert_eq!(
            result.failures(),
            "- round 1, caller 99000002, robot-99000002: script:3: no prompt\n"
        );
        assert!(result.footer().contains("CPU 5.0 s"), "{}", result.footer());
    }

    #[test]
    fn table_without_turns_or_cpu_says_so() {
        let result = BenchResult {
            concurrent: 1,
            outcomes: vec![outcome("99000001", Vec::new(), Some("refused"))],
            wall: Duration::from_secs(1),
            cpu: None,
            cores: 4,
        };
        let table = result.table();
        assert!(
            table.ends_with("| 1 | 0 | 1 | 0 | - | - | n/a | n/a |\n"),
            "{table}"
        );
        assert!(result.footer().contains("CPU n/a"));
    }

    #[test]
    fn temp_dir_is_removed_when_dropped() {
        let dir = TempDir::new("ivr-bench-calls-test").expect("created");
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("f"), b"x").expect("written");
        drop(dir);
        assert!(!path.exists());
    }
}
