//! `ivr chat`: the real dialog engine, directory and registry, in a terminal.
//!
//! The assistant's prompts are printed one a line, prefixed `assistant: `. Each typed line is
//! one turn of the caller:
//!
//! - a line made only of keypad characters (`0-9`, `*`, `#`, spaces) is keyed, key by key;
//! - an empty line is silence: the caller says nothing until the engine's next time-out;
//! - any other line is what the caller said (confidence 1.0; start it with `~0.6 ` to give
//!   the recogniser's confidence, e.g. `~0.6 complaint` to hear a confirmation);
//! - while the assistant records (a complaint), the line is the transcript of the recording;
//! - end of input hangs up.
//!
//! With `--echo` each input line is printed as `> LINE` (`>` alone for silence) before what
//! follows it, which makes the output a transcript that can be replayed: the golden
//! conversations under `ivr/tests/golden/` are such transcripts.
//!
//! Other effects are printed as `-- ` lines (transfer, hang-up, and with `--trace` what each
//! input was understood as). Time is simulated: nothing waits, so a session replays in
//! milliseconds and the same input always gives the same conversation (given `--at`).

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dialogs::backend::Backend;
use dialogs::directory::Directory;
use dialogs::engine::{Engine, Hypothesis, Input, Output};
use dialogs::flow::Flow;
use dialogs::profiles::CallerId;
use dialogs::registry::Deadlines;
use grammars::Lang;
use rand::rngs::{StdRng, SysRng};
use rand::SeedableRng;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Options of `ivr chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// The language the call starts in (skips the language menu): en or mn.
    #[arg(long)]
    pub lang: Option<String>,
    /// The caller's number (profiles, call-backs, resuming a dropped call).
    #[arg(long)]
    pub caller: Option<String>,
    /// A flow file instead of the built-in hotline.
    #[arg(long)]
    pub flow: Option<PathBuf>,
    /// Grammar directory (`DIR/<locale>/*.abnf`) instead of the built-in grammars.
    #[arg(long)]
    pub grammars: Option<PathBuf>,
    /// Wall-clock time of the call (RFC 3339, e.g. 2026-11-27T10:00:00+08:00); default now.
    #[arg(long)]
    pub at: Option<String>,
    /// Seed for case numbers (reproducible sessions); default: from the operating system.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also print what each input was understood as.
    #[arg(long)]
    pub trace: bool,
    /// Print each input line as `> LINE` before its answer (a replayable transcript).
    #[arg(long)]
    pub echo: bool,
}

/// Runs one call: reads caller turns from `input`, writes the conversation to `out`.
pub fn run(
    data: &Path,
    args: &ChatArgs,
    input: impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let flow = match &args.flow {
        Some(path) => Flow::load(path, args.grammars.as_deref())?,
        None => match &args.grammars {
            Some(dir) => Flow::builtin_with(dialogs::flow::GrammarSet::load(dir)?)?,
            None => Flow::builtin()?,
        },
    };
    let directory = Directory::builtin().context("the built-in service directory")?;
    let rng = match args.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::try_from_rng(&mut SysRng).context("no randomness for case numbers")?,
    };
    let backend = Backend::open(data, Deadlines::default(), rng)?;
    let locale = match args.lang.as_deref() {
        None => None,
        Some(tag) => Some(
            Lang::from_tag(tag).with_context(|| format!("--lang must be en or mn, not {tag:?}"))?,
        ),
    };
    let wall0 = match &args.at {
        Some(at) => OffsetDateTime::parse(at, &Rfc3339)
            .with_context(|| format!("--at {at:?} is not an RFC 3339 time"))?,
        None => OffsetDateTime::now_utc(),
    };
    let caller = match &args.caller {
        Some(raw) => Some(CallerId::parse(raw).with_context(|| "--caller is not a phone number")?),
        None => None,
    };

    let mut call = ChatCall {
        engine: Engine::new(Arc::new(flow), Arc::new(directory)),
        backend,
        caller,
        base: clock_origin(),
        now: clock_origin(),
        wall0,
        timer: None,
        trace: args.trace,
    };
    let (profile, session) = call.backend.call_started(call.caller.as_ref(), wall0);
    let started = Input::CallStarted {
        caller: call.caller.as_ref().map(|c| c.as_str().to_string()),
        locale,
        profile,
        session,
        wall: wall0,
    };
    call.feed(started, out)?;

    for line in input.lines() {
        if call.engine.ended() {
            break;
        }
        let line = line.context("reading the caller's input")?;
        if args.echo {
            match line.trim() {
                "" => writeln!(out, ">")?,
                typed => writeln!(out, "> {typed}")?,
            }
        }
        call.turn(line.trim(), out)?;
    }
    if !call.engine.ended() {
        call.feed(Input::Hangup, out)?;
        writeln!(out, "-- the caller hung up")?;
    }
    call.backend.flush();
    Ok(())
}

/// The simulated clock starts at a real instant (`Instant` has no other constructor); it only
/// moves forward by simulated amounts.
#[allow(clippy::disallowed_methods)]
fn clock_origin() -> Instant {
    Instant::now()
}

struct ChatCall {
    engine: Engine,
    backend: Backend,
    caller: Option<CallerId>,
    base: Instant,
    now: Instant,
    wall0: OffsetDateTime,
    timer: Option<Instant>,
    trace: bool,
}

/// Simulated time between two keys of one line.
const KEY_GAP: Duration = Duration::from_millis(300);
/// Simulated time a caller takes to answer.
const ANSWER_DELAY: Duration = Duration::from_secs(2);

impl ChatCall {
    fn wall(&self) -> OffsetDateTime {
        self.wall0 + self.now.saturating_duration_since(self.base)
    }

    fn turn(&mut self, line: &str, out: &mut impl Write) -> anyhow::Result<()> {
        if line.is_empty() {
            // Silence until the engine's next time-out.
            return match self.timer.take() {
                Some(at) => {
                    self.now = self.now.max(at);
                    self.feed(Input::Timeout, out)
                }
                None => self.feed(Input::NothingHeard, out),
            };
        }
        self.now += ANSWER_DELAY;
        let keypad = line
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#' || c == ' ');
        if keypad {
            for key in line.chars().filter(|c| !c.is_whitespace()) {
                if self.engine.ended() {
                    break;
                }
                self.feed(Input::Keyed(key), out)?;
                self.now += KEY_GAP;
            }
            return Ok(());
        }
        let (confidence, text) = match line.strip_prefix('~').and_then(|r| r.split_once(' ')) {
            Some((c, text)) => match c.parse::<f32>() {
                Ok(c) => (c, text.trim()),
                Err(_) => (1.0, line),
            },
            None => (1.0, line),
        };
        if self.engine.recording() {
            return self.feed(
                Input::Recorded {
                    transcript: Some(text.to_string()),
                    recording: None,
                },
                out,
            );
        }
        self.feed(Input::SpeechStarted, out)?;
        self.feed(Input::Heard(vec![Hypothesis::new(text, confidence)]), out)
    }

    /// Feeds an input and everything that follows from it (playback ends at once, stores and
    /// lookups are answered), printing what the caller would hear.
    fn feed(&mut self, first: Input, out: &mut impl Write) -> anyhow::Result<()> {
        let mut inputs = VecDeque::from([first]);
        while let Some(input) = inputs.pop_front() {
            let outputs = self.engine.handle(self.now, input);
            for output in outputs {
                match &output {
                    Output::Play(play) => {
                        writeln!(out, "assistant: {}", play.text())?;
                        inputs.push_back(Input::PlaybackFinished(play.mark));
                    }
                    Output::Timer(at) => self.timer = Some(*at),
                    Output::CancelTimer => self.timer = None,
                    Output::Transfer { target } => writeln!(out, "-- transfer to {target}")?,
                    Output::Hangup { .. } => writeln!(out, "-- the assistant hung up")?,
                    Output::Understood(u) if self.trace => writeln!(
                        out,
                        "-- {}: {:?} -> {} ({}, {:.2})",
                        u.state,
                        u.input,
                        u.value.as_deref().unwrap_or("-"),
                        u.decision,
                        u.confidence
                    )?,
                    Output::RequestCallback { .. } if self.trace => {
                        writeln!(out, "-- call-back requested")?
                    }
                    _ => {}
                }
                if let Some(answer) =
                    self.backend
                        .perform(self.caller.as_ref(), &output, self.wall())
                {
                    inputs.push_back(answer);
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}
