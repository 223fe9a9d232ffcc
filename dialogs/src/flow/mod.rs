//! Flows are data: the hotline's states, prompts and grammars, loaded and checked.
//!
//! A flow is a TOML file (format in `docs/flows.md`; the hotline's own is
//! `dialogs/flows/hotline.toml`) naming states, what each says, what it listens for and where
//! each answer leads, plus a prompts file ([`Prompts`]) and the grammar files of every locale
//! ([`GrammarSet`]). [`Flow::load`] and [`Flow::parse`] check everything before a call can use
//! it — unknown or unreachable states, prompts missing in a locale, grammars missing or unable
//! to produce a value a state expects, keys that collide with the global keys — and report
//! every problem with its file, line and column ([`FlowError`]); they never panic.
//!
//! [`Flow::builtin`] is the hotline compiled into the program.

mod error;
mod load;
pub mod prompts;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use grammars::{Grammar, Lang};
use time::{UtcOffset, Weekday};

pub use error::{FlowError, Problem};
pub use prompts::{Part, Prompt, Prompts, Template, Value, Vars};

/// The built-in flow, prompts and their origins.
const BUILTIN_FLOW: &str = include_str!("../../flows/hotline.toml");
const BUILTIN_FLOW_ORIGIN: &str = "dialogs/flows/hotline.toml (built in)";
const BUILTIN_PROMPTS: &str = include_str!("../../flows/prompts.tsv");
const BUILTIN_PROMPTS_ORIGIN: &str = "dialogs/flows/prompts.tsv (built in)";

/// The global keys and the command each means, in every state.
pub const GLOBAL_KEYS: [(char, &str); 4] = [
    ('0', "operator"),
    ('9', "repeat"),
    ('8', "slower"),
    ('*', "back"),
];

/// The key that asks for more time after a time-out warning.
pub const MORE_TIME_KEY: char = '#';

/// Prompts the engine itself speaks; every flow's prompts file must have them.
pub const ENGINE_PROMPTS: [&str; 13] = [
    "NOINPUT",
    "NOMATCH",
    "HELP_KEYS",
    "REPEAT",
    "SLOWER",
    "CONFIRM",
    "WAIT_WARN",
    "MORE_TIME",
    "ERROR",
    "RESUME",
    "INFO_OPTION",
    "INFO_MORE",
    "INFO_NOTFOUND",
];

/// Grammars the engine itself listens with, in every locale.
pub const ENGINE_GRAMMARS: [&str; 4] = ["global", "global_dtmf", "emergency", "yes_no"];

/// Index of a state in [`Flow::states`].
pub type StateId = usize;

/// Where a transition leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A state of the flow.
    State(StateId),
    /// The previous menu (`@back`).
    Back,
    /// The main menu (`@main`).
    Main,
    /// The operator state (`@operator`).
    Operator,
    /// End the call (`@hangup`).
    Hangup,
}

/// How the caller may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    /// Speech.
    pub voice: bool,
    /// Keys.
    pub dtmf: bool,
}

impl Modes {
    /// Both speech and keys.
    pub const BOTH: Modes = Modes {
        voice: true,
        dtmf: true,
    };
}

/// A number the caller keys (or says digit by digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitsKind {
    /// A case number with its check digit.
    CaseNumber,
    /// A phone number (6 to 15 digits, ended by `#`).
    Phone,
}

/// Something the engine asks its driver to do, or decides itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Store the case collected in the slots; results `ok`, `failed`.
    StoreCase,
    /// Look up the case number in slot `case_number`; results `found`, `not_found`, `failed`.
    LookupCase,
    /// Whether the operator queue is staffed now; results `open`, `closed`.
    CheckHours,
    /// Hand the call to the operator queue (ends the engine's part of the call).
    Transfer,
    /// Ask staff to call the caller back; result `ok`.
    RequestCallback,
}

impl Action {
    /// The results this action can have (the keys of its `on` table).
    pub fn results(self) -> &'static [&'static str] {
        match self {
            Action::StoreCase => &["ok", "failed"],
            Action::LookupCase => &["found", "not_found", "failed"],
            Action::CheckHours => &["open", "closed"],
            Action::Transfer => &[],
            Action::RequestCallback => &["ok"],
        }
    }
}

/// What a state does.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Say its prompts, then go to `next`.
    Say,
    /// Say its prompts and listen with its grammar; the value leads through `on`, or is put
    /// in `slot` and leads to `next`.
    Menu,
    /// Record the caller's free speech after a tone (the transcript goes in `slot`).
    Record {
        /// Longest recording.
        max: Duration,
        /// Silence that ends the recording.
        end_silence: Duration,
        /// The key that ends it.
        end_key: char,
    },
    /// Collect a number by keypad (or spoken digits) into `slot`.
    Digits {
        /// What number.
        kind: DigitsKind,
        /// Prompt said when the number is not valid.
        invalid: Option<String>,
    },
    /// One free answer (a name) into `slot`; the state's grammar means "skip".
    Free,
    /// Do something; its result leads through `on`.
    Action(Action),
    /// The service directory: topics (grammar), spoken search, service menus and read-outs.
    Directory {
        /// The grammar of the choice after a service was read (`next`, `topics`, `main`).
        after: String,
    },
}

/// One state of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Its name.
    pub name: String,
    /// What it does.
    pub kind: Kind,
    /// Prompt ids said on entry, in order.
    pub say: Vec<String>,
    /// The grammar name (`main_menu` → `<locale>/main_menu.abnf` and `main_menu_dtmf.abnf`).
    pub grammar: Option<String>,
    /// Where each value or result leads.
    pub on: BTreeMap<String, Target>,
    /// Where the state leads when `on` does not say.
    pub next: Option<Target>,
    /// The slot that receives the answer.
    pub slot: Option<String>,
    /// How the caller may answer.
    pub modes: Modes,
    /// Seconds of silence before no-input, overriding the flow's.
    pub no_input: Option<Duration>,
    /// Whether a silent caller is first warned and may ask for more time.
    pub warn: bool,
    /// Whether the caller may interrupt the prompts.
    pub barge_in: bool,
    /// Entered only when this fact is known (`caller`): else `otherwise`.
    pub requires: Option<String>,
    /// Where to go when `requires` is not met.
    pub otherwise: Option<Target>,
    /// Whether a call that drops here is saved for resuming.
    pub resumable: bool,
    /// The line of the flow file that defines it.
    pub line: usize,
}

/// Operator-queue opening hours (local time of `offset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    /// Opening, minutes after midnight.
    pub open: u16,
    /// Closing, minutes after midnight.
    pub close: u16,
    /// Days it is open.
    pub days: Vec<Weekday>,
    /// The local time zone.
    pub offset: UtcOffset,
}

impl Hours {
    /// Whether the queue is open at `now`.
    pub fn is_open(&self, now: time::OffsetDateTime) -> bool {
        let local = now.to_offset(self.offset);
        let minutes = u16::from(local.hour()) * 60 + u16::from(local.minute());
        self.days.contains(&local.weekday()) && minutes >= self.open && minutes < self.close
    }
}

/// Flow-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where a call starts.
    pub start: StateId,
    /// The main menu (`@main`).
    pub main: StateId,
    /// The language menu, skipped when the caller's language is remembered.
    pub language: Option<StateId>,
    /// Where emergency words lead.
    pub emergency: StateId,
    /// The operator state (`@operator`, key 0, escalation).
    pub operator: StateId,
    /// The transfer target for the operator queue (a SIP URI).
    pub operator_target: String,
    /// When the operator queue is staffed.
    pub hours: Hours,
    /// Silence after a prompt before no-input.
    pub no_input: Duration,
    /// Longest pause between keys of a number.
    pub inter_digit: Duration,
    /// After a time-out warning, how long before no-input.
    pub warn_grace: Duration,
    /// How much longer "more time" waits.
    pub more_time: Duration,
    /// No-inputs (and, separately, no-matches) tolerated before the operator.
    pub max_retries: u32,
    /// Confidence below which a choice is confirmed.
    pub confirm_below: f32,
    /// Confidence below which a choice is not taken at all.
    pub reject_below: f32,
}

/// The two grammars (spoken and keyed) of one name in one locale.
#[derive(Debug, Clone, Default)]
pub struct GrammarPair {
    /// `<name>.abnf`.
    pub voice: Option<Grammar>,
    /// `<name>_dtmf.abnf`.
    pub dtmf: Option<Grammar>,
}

/// Grammars by locale and name (the file name without `.abnf` and `_dtmf`).
#[derive(Debug, Clone, Default)]
pub struct GrammarSet {
    by_name: BTreeMap<(LangKey, String), GrammarPair>,
}

/// `Lang` as an ordered map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct LangKey(u8);

impl From<Lang> for LangKey {
    fn from(l: Lang) -> Self {
        LangKey(match l {
            Lang::Mn => 0,
            Lang::En => 1,
        })
    }
}

impl GrammarSet {
    /// The grammars compiled into the program.
    pub fn builtin() -> Result<GrammarSet, FlowError> {
        let all = grammars::builtin().map_err(|e| FlowError {
            problems: vec![grammar_problem(&e)],
        })?;
        let mut set = GrammarSet::default();
        for (lang, name, grammar) in all {
            set.insert(lang, &name, grammar);
        }
        Ok(set)
    }

    /// Loads `<dir>/<locale>/*.abnf` for both locales; every file that fails is reported.
    pub fn load(dir: &Path) -> Result<GrammarSet, FlowError> {
        let mut set = GrammarSet::default();
        let mut problems = Vec::new();
        for lang in prompts::LOCALES {
            let sub = dir.join(lang.tag());
            let entries = match std::fs::read_dir(&sub) {
                Ok(e) => e,
                Err(e) => {
                    problems.push(Problem {
                        origin: sub.display().to_string(),
                        line: 0,
                        column: 0,
                        message: format!("cannot read the grammar directory: {e}"),
                    });
                    continue;
                }
            };
            let mut files: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "abnf"))
                .collect();
            files.sort();
            for path in files {
                match Grammar::load(&path) {
                    Ok(g) => {
                        let name = path
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        set.insert(lang, &name, g);
                    }
                    Err(e) => problems.push(grammar_problem(&e)),
                }
            }
        }
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(FlowError { problems })
        }
    }

    /// Adds a grammar under its file name (`x` or `x_dtmf`).
    pub fn insert(&mut self, lang: Lang, file_name: &str, grammar: Grammar) {
        let (name, dtmf) = match file_name.strip_suffix("_dtmf") {
            Some(base) => (base, true),
            None => (file_name, false),
        };
        let pair = self
            .by_name
            .entry((lang.into(), name.to_string()))
            .or_default();
        if dtmf {
            pair.dtmf = Some(grammar);
        } else {
            pair.voice = Some(grammar);
        }
    }

    /// The grammars called `name` in `lang`.
    pub fn get(&self, lang: Lang, name: &str) -> Option<&GrammarPair> {
        self.by_name.get(&(lang.into(), name.to_string()))
    }
}

fn grammar_problem(e: &grammars::Error) -> Problem {
    // grammars::Error displays as "origin:line:column: message" where it knows a position.
    Problem {
        origin: String::new(),
        line: 0,
        column: 0,
        message: e.to_string(),
    }
}

/// A loaded, checked flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Its states; [`StateId`]s index this.
    pub states: Vec<State>,
    /// Flow-wide settings.
    pub settings: Settings,
    /// Its prompts.
    pub prompts: Prompts,
    /// Its grammars.
    pub grammars: GrammarSet,
    /// The flow file it came from.
    pub origin: String,
}

impl Flow {
    /// The hotline flow, prompts and grammars compiled into the program.
    pub fn builtin() -> Result<Flow, FlowError> {
        Flow::builtin_with(GrammarSet::builtin()?)
    }

    /// The built-in hotline flow and prompts with other grammars (checked against them).
    pub fn builtin_with(grammars: GrammarSet) -> Result<Flow, FlowError> {
        let prompts = Prompts::parse(BUILTIN_PROMPTS, BUILTIN_PROMPTS_ORIGIN)
            .map_err(|problems| FlowError { problems })?;
        Flow::parse(BUILTIN_FLOW, BUILTIN_FLOW_ORIGIN, prompts, grammars)
    }

    /// Loads a flow file. Its `prompts` path is relative to the flow file; grammars come from
    /// `grammar_dir` (`<dir>/<locale>/*.abnf`), or the built-in set when `None`.
    pub fn load(path: &Path, grammar_dir: Option<&Path>) -> Result<Flow, FlowError> {
        let origin = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| FlowError {
            problems: vec![Problem {
                origin: origin.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read the flow: {e}"),
            }],
        })?;
        let prompts_path = load::prompts_path(&src, &origin)?;
        let prompts_path = path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(prompts_path);
        let prompts_origin = prompts_path.display().to_string();
        let prompts_src = std::fs::read_to_string(&prompts_path).map_err(|e| FlowError {
            problems: vec![Problem {
                origin: prompts_origin.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read the prompts: {e}"),
            }],
        })?;
        let grammars = match grammar_dir {
            Some(dir) => GrammarSet::load(dir)?,
            None => GrammarSet::builtin()?,
        };
        let prompts = Prompts::parse(&prompts_src, &prompts_origin)
            .map_err(|problems| FlowError { problems })?;
        Flow::parse(&src, &origin, prompts, grammars)
    }

    /// Checks a flow given as text, with its prompts and grammars.
    pub fn parse(
        src: &str,
        origin: &str,
        prompts: Prompts,
        grammars: GrammarSet,
    ) -> Result<Flow, FlowError> {
        load::parse(src, origin, prompts, grammars)
    }

    /// The state called `name`.
    pub fn state_named(&self, name: &str) -> Option<StateId> {
        self.states.iter().position(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests;
