//! The dialog engine: one call's conversation, sans-IO.
//!
//! An [`Engine`] runs a [`Flow`] for one call. The driver (the assistant, `ivr chat`, a test)
//! feeds it [`Input`]s, each with the current time, and carries out the [`Output`]s it
//! returns: play these prompts, listen with these grammars, record, store or look up a case,
//! transfer, hang up, wake me at this time. The engine reads no clock, opens no file and
//! starts no thread, so tests drive whole calls in simulated time.
//!
//! # The contract with the driver
//!
//! - Every [`Play`] carries a mark. The driver reports [`Input::PlaybackFinished`] when the
//!   caller has heard it to the end (true playout, not send time); listening time-outs start
//!   from the last mark of a turn.
//! - [`Output::Timer`] asks for an [`Input::Timeout`] at that time (a later timer replaces an
//!   earlier one). [`Input::SpeechStarted`] tells the engine the caller is talking, which holds
//!   the no-input timer until [`Input::Heard`] or [`Input::NothingHeard`] arrives.
//! - [`Output::StoreCase`] and [`Output::LookupCase`] are answered with
//!   [`Input::CaseStored`] and [`Input::CaseFound`]. The reference number is spoken only after
//!   `CaseStored(Ok(case))`, i.e. after the registry's commit is durable.
//! - [`Output::Record`] is answered with [`Input::Recorded`] (the transcript and where the
//!   audio was written) or [`Input::NothingHeard`].
//! - Keys arrive one at a time as [`Input::Keyed`]; keys typed ahead during a prompt are
//!   honoured.
//!
//! # What every state does
//!
//! Global commands work in every state that listens: `0` / "operator", `9` / "repeat",
//! `8` / "slower" (for the rest of the call, remembered for the caller), `*` / "back" (the
//! previous menu), "help" (the key map) and "more time". While a number is being keyed, digits
//! are the number and only `*` is a command. Emergency words anywhere lead to the flow's
//! emergency state; an emergency is never filed as a case. No-input and no-match are counted
//! per state: first a re-prompt, then the key map and the prompt, then the operator state —
//! never a silent hang-up. States with `warn = true` first ask "are you still there?" and let
//! the caller ask for more time (`#` or "more time").

mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grammars::dtmf::{Builtin, DtmfMatch};
use grammars::{recognize_all, Decision, Grammar, Lang, MatchOptions, Thresholds};
use time::OffsetDateTime;

use crate::directory::{read_out, Directory, ServiceId, Topic};
use crate::flow::{
    Action, DigitsKind, Flow, Kind, Modes, Part, StateId, Target, Value, Vars, GLOBAL_KEYS,
    MORE_TIME_KEY,
};
use crate::profiles::{Profile, ResumableSession};
use crate::registry::{Case, CaseNumber, CaseType, Channel, NewCase};

/// One transcript the recogniser offers, with its confidence in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// What was heard.
    pub text: String,
    /// How sure the recogniser is.
    pub confidence: f32,
}

impl Hypothesis {
    /// A hypothesis with this text and confidence.
    pub fn new(text: impl Into<String>, confidence: f32) -> Self {
        Hypothesis {
            text: text.into(),
            confidence,
        }
    }
}

/// What happened on the call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Input {
    /// The call is answered.
    CallStarted {
        /// The caller's number, if the network gave one.
        caller: Option<String>,
        /// The language the channel suggests (a web page's language), if any.
        locale: Option<Lang>,
        /// What is remembered about this caller.
        profile: Option<Profile>,
        /// A call of this caller that dropped mid-way and may be resumed.
        session: Option<ResumableSession>,
        /// Wall-clock time now (for opening hours and dates).
        wall: OffsetDateTime,
    },
    /// The caller started to speak.
    SpeechStarted,
    /// The caller said something: the recogniser's n-best, best first.
    Heard(Vec<Hypothesis>),
    /// The caller's turn ended with nothing recognisable (silence, noise).
    NothingHeard,
    /// A key.
    Keyed(char),
    /// A recording ended.
    Recorded {
        /// What was said, as transcribed (None when nothing could be transcribed).
        transcript: Option<String>,
        /// Where the audio was written.
        recording: Option<PathBuf>,
    },
    /// The caller has heard the prompt with this mark to its end.
    PlaybackFinished(u64),
    /// A timer asked for with [`Output::Timer`] is due.
    Timeout,
    /// The answer to [`Output::StoreCase`]: the stored case, or why it failed.
    CaseStored(Result<Case, String>),
    /// The answer to [`Output::LookupCase`].
    CaseFound(Result<Option<Case>, String>),
    /// The caller hung up.
    Hangup,
}

/// Something to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Play {
    /// Reported back with [`Input::PlaybackFinished`].
    pub mark: u64,
    /// The prompt id, for recorded prompt packs; `None` for generated sentences.
    pub prompt: Option<String>,
    /// What to say.
    pub parts: Vec<Part>,
    /// In which language.
    pub locale: Lang,
    /// At the slow rate.
    pub slow: bool,
    /// Whether the caller's speech or keys may interrupt it.
    pub barge_in: bool,
}

impl Play {
    /// The words as display text (what `ivr chat` prints).
    pub fn text(&self) -> String {
        self.parts.iter().map(|p| p.text(self.locale)).collect()
    }
}

/// What to listen for.
#[derive(Debug, Clone, PartialEq)]
pub struct Listen {
    /// Speech, keys or both.
    pub modes: Modes,
    /// The grammar names active (state grammar first, then `global`, `emergency`), in
    /// `locale`; a driver builds recogniser hints and decoding grammars from them.
    pub grammars: Vec<String>,
    /// The language expected.
    pub locale: Lang,
    /// A number is being keyed or spoken digit by digit.
    pub digits: Option<DigitsKind>,
    /// Free words are expected (a search, a name), not only grammar phrases.
    pub free_speech: bool,
    /// How long the caller may stay silent.
    pub no_input: Duration,
}

/// Record the caller (free speech).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Longest recording.
    pub max: Duration,
    /// Silence that ends it.
    pub end_silence: Duration,
    /// The key that ends it.
    pub end_key: char,
    /// The language spoken.
    pub locale: Lang,
}

/// How the meaning of an input was decided (for logs, events and metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct Understood {
    /// The state.
    pub state: String,
    /// What was heard or keyed.
    pub input: String,
    /// The meaning chosen (`None`: no match).
    pub value: Option<String>,
    /// Its confidence.
    pub confidence: f32,
    /// What the engine does with it.
    pub decision: &'static str,
}

/// An effect for the driver.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Say this.
    Play(Play),
    /// Listen (after the prompts before it).
    Listen(Listen),
    /// Record free speech (after the prompts before it and a tone).
    Record(Record),
    /// Store this case durably; answer with [`Input::CaseStored`].
    StoreCase(NewCase),
    /// Find this case; answer with [`Input::CaseFound`].
    LookupCase(CaseNumber),
    /// Hand the call to this target (after the prompts before it).
    Transfer {
        /// A SIP URI.
        target: String,
    },
    /// Staff should call this number back.
    RequestCallback {
        /// The number.
        number: String,
        /// The caller's language.
        locale: Lang,
    },
    /// Remember this caller's preferences.
    SaveProfile(Profile),
    /// Keep this half-finished call for resuming.
    SaveSession(ResumableSession),
    /// Drop the kept session (the case was filed, or the caller started over).
    ClearSession,
    /// Send [`Input::Timeout`] at this time.
    Timer(Instant),
    /// Stop any timer.
    CancelTimer,
    /// What an input meant.
    Understood(Understood),
    /// End the call (after the prompts before it).
    Hangup {
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    NoInput,
    Warn,
    InterDigit,
}

/// What the engine waits for.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Before `CallStarted`.
    NotStarted,
    /// Saying a `say` state's prompts; then follow the target.
    Saying(Target),
    /// Saying an action state's prompts; then run it.
    BeforeAction,
    /// Listening in the current state.
    Listening,
    /// Recording.
    Recording,
    /// "Did you say X?"
    Confirming { value: String },
    /// Waiting for the driver's answer to a store or a lookup.
    Awaiting(Action),
    /// "Your last call was cut off. Continue?"
    Resuming(ResumableSession),
    /// The call left the engine (transferred or hung up).
    Ended,
}

#[derive(Debug, Clone, PartialEq)]
enum DirPhase {
    Topics,
    Page {
        topic: Topic,
        page: usize,
    },
    Reading {
        list: Vec<ServiceId>,
        index: usize,
        from: Option<(Topic, usize)>,
    },
}

/// What to say again on "repeat".
#[derive(Debug, Clone, PartialEq)]
struct Said {
    prompt: Option<String>,
    parts: Vec<Part>,
}

#[derive(Debug)]
struct Call {
    locale: Lang,
    slow: bool,
    keypad_only: bool,
    caller: Option<String>,
    profile: Profile,
    skip_language: bool,
    wall0: OffsetDateTime,
    t0: Option<Instant>,
    state: StateId,
    history: Vec<StateId>,
    slots: BTreeMap<String, String>,
    vars: Vars,
    no_input: u32,
    no_match: u32,
    keys: String,
    said: Vec<Said>,
    next_mark: u64,
    pending_mark: Option<u64>,
    timer: Option<(Instant, TimerKind)>,
    warned: bool,
    /// A number was complete without its `#`: a `#` typed right after it is swallowed.
    swallow_hash: bool,
    /// A resumable session was saved and not yet cleared.
    session_saved: bool,
    dir: DirPhase,
}

/// One call's dialog. See the module documentation for the driver's contract.
#[derive(Debug)]
pub struct Engine {
    flow: Arc<Flow>,
    directory: Arc<Directory>,
    mode: Mode,
    call: Call,
    out: Vec<Output>,
    now: Option<Instant>,
}

/// Search scores at or above this read the service directly.
const SEARCH_ACCEPT: f32 = 0.6;

impl Engine {
    /// An engine for one call of `flow`, with `directory` behind the information menu.
    pub fn new(flow: Arc<Flow>, directory: Arc<Directory>) -> Engine {
        let start = flow.settings.start;
        Engine {
            flow,
            directory,
            mode: Mode::NotStarted,
            call: Call {
                locale: Lang::Mn,
                slow: false,
                keypad_only: false,
                caller: None,
                profile: Profile::default(),
                skip_language: false,
                wall0: OffsetDateTime::UNIX_EPOCH,
                t0: None,
                state: start,
                history: Vec::new(),
                slots: BTreeMap::new(),
                vars: Vars::new(),
                no_input: 0,
                no_match: 0,
                keys: String::new(),
                said: Vec::new(),
                next_mark: 1,
                pending_mark: None,
                timer: None,
                warned: false,
                swallow_hash: false,
                session_saved: false,
                dir: DirPhase::Topics,
            },
            out: Vec::new(),
            now: None,
        }
    }

    /// The flow this engine runs.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The current state's name.
    pub fn state_name(&self) -> &str {
        &self.flow.states[self.call.state].name
    }

    /// The call's language now.
    pub fn locale(&self) -> Lang {
        self.call.locale
    }

    /// Whether prompts are spoken slowly.
    pub fn slow(&self) -> bool {
        self.call.slow
    }

    /// Whether the engine's part of the call is over (hung up or transferred).
    pub fn ended(&self) -> bool {
        self.mode == Mode::Ended
    }

    /// Whether the engine is recording free speech (the driver answers with
    /// [`Input::Recorded`]).
    pub fn recording(&self) -> bool {
        self.mode == Mode::Recording
    }

    /// Whether `key` would be ignored now: the `#` typed right after a number that was
    /// already complete. A driver does not let such a key interrupt the answer.
    pub fn ignores_key(&self, key: char) -> bool {
        self.call.swallow_hash && key == '#'
    }

    /// What the caller has given so far (slot name → value).
    pub fn slots(&self) -> &BTreeMap<String, String> {
        &self.call.slots
    }

    /// Feeds one input at time `now`; returns the effects, in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Output> {
        self.now = Some(now);
        if self.call.t0.is_none() {
            self.call.t0 = Some(now);
        }
        match input {
            Input::CallStarted {
                caller,
                locale,
                profile,
                session,
                wall,
            } => self.start(caller, locale, profile, session, wall),
            _ if self.mode == Mode::NotStarted || self.mode == Mode::Ended => {
                if input == Input::Hangup {
                    self.mode = Mode::Ended;
                }
            }
            Input::Hangup => {
                self.mode = Mode::Ended;
                self.call.timer = None;
            }
            Input::PlaybackFinished(mark) => self.playback_finished(mark),
            Input::Timeout => self.timeout(now),
            Input::SpeechStarted => {
                if self
                    .call
                    .timer
                    .is_some_and(|(_, k)| k != TimerKind::InterDigit)
                {
                    self.call.timer = None;
                    self.out.push(Output::CancelTimer);
                }
            }
            Input::Heard(nbest) => {
                self.call.swallow_hash = false;
                self.heard(nbest)
            }
            Input::NothingHeard => self.nothing_heard(),
            Input::Keyed(key) => self.keyed(key),
            Input::Recorded {
                transcript,
                recording,
            } => self.recorded(transcript, recording),
            Input::CaseStored(result) => self.case_stored(result),
            Input::CaseFound(result) => self.case_found(result),
        }
        std::mem::take(&mut self.out)
    }

    // ---- time ----

    fn wall(&self) -> OffsetDateTime {
        let elapsed = match (self.now, self.call.t0) {
            (Some(now), Some(t0)) => now.saturating_duration_since(t0),
            _ => Duration::ZERO,
        };
        self.call.wall0 + elapsed
    }

    fn arm(&mut self, after: Duration, kind: TimerKind) {
        let Some(now) = self.now else {
            return;
        };
        let at = now + after;
        self.call.timer = Some((at, kind));
        self.out.push(Output::Timer(at));
    }

    fn disarm(&mut self) {
        if self.call.timer.take().is_some() {
            self.out.push(Output::CancelTimer);
        }
    }

    /// Starts the listening clock: now if nothing is playing, else when the last prompt ends.
    fn start_listening_clock(&mut self) {
        if self.call.pending_mark.is_some() {
            return;
        }
        let state = &self.flow.states[self.call.state];
        let no_input = state.no_input.unwrap_or(self.flow.settings.no_input);
        match (&self.mode, state.warn && !self.call.warned) {
            (Mode::Listening, true) => self.arm(no_input, TimerKind::Warn),
            // The warning was heard: the grace period runs from its end.
            (Mode::Listening, false) if state.warn => {
                self.arm(self.flow.settings.warn_grace, TimerKind::NoInput)
            }
            (Mode::Listening | Mode::Confirming { .. } | Mode::Resuming(_), _) => {
                self.arm(no_input, TimerKind::NoInput)
            }
            _ => {}
        }
    }

    fn playback_finished(&mut self, mark: u64) {
        if self.call.pending_mark != Some(mark) {
            return;
        }
        self.call.pending_mark = None;
        match self.mode.clone() {
            Mode::Saying(target) => self.go(target),
            Mode::BeforeAction => self.run_action(),
            Mode::Listening | Mode::Confirming { .. } | Mode::Resuming(_) => {
                self.start_listening_clock()
            }
            _ => {}
        }
    }

    fn timeout(&mut self, now: Instant) {
        let Some((at, kind)) = self.call.timer else {
            return;
        };
        if now < at {
            return;
        }
        self.call.timer = None;
        match kind {
            TimerKind::InterDigit => self.digits_timeout(),
            TimerKind::Warn => {
                self.call.warned = true;
                self.say_prompt("WAIT_WARN", true);
                // The grace period starts when the warning has been heard.
                self.start_listening_clock();
            }
            TimerKind::NoInput => self.nothing_heard(),
        }
    }

    // ---- speaking ----

    fn vars(&self) -> Vars {
        let mut vars = self.call.vars.clone();
        if let Some(phone) = self
            .call
            .slots
            .get("callback")
            .cloned()
            .or_else(|| self.call.caller.clone())
        {
            vars.insert("phone".into(), text::phone_value(&phone));
        }
        vars
    }

    fn emit_play(&mut self, prompt: Option<String>, parts: Vec<Part>, barge_in: bool) {
        let mark = self.call.next_mark;
        self.call.next_mark += 1;
        self.call.pending_mark = Some(mark);
        self.out.push(Output::Play(Play {
            mark,
            prompt,
            parts,
            locale: self.call.locale,
            slow: self.call.slow,
            barge_in,
        }));
    }

    /// Says a prompt by id (left out when one of its values is unknown). `remember` keeps it
    /// for "repeat".
    fn say_prompt_with(&mut self, id: &str, vars: &Vars, remember: bool, barge_in: bool) {
        let Some(prompt) = self.flow.prompts.get(id) else {
            return;
        };
        let Some(parts) = prompt.template(self.call.locale).fill(vars) else {
            return;
        };
        if remember {
            self.call.said.push(Said {
                prompt: Some(id.to_string()),
                parts: parts.clone(),
            });
        }
        self.emit_play(Some(id.to_string()), parts, barge_in);
    }

    fn say_prompt(&mut self, id: &str, barge_in: bool) {
        let vars = self.vars();
        self.say_prompt_with(id, &vars, false, barge_in);
    }

    fn say_text(&mut self, text: String, remember: bool) {
        let parts = vec![Part::Text(text)];
        if remember {
            self.call.said.push(Said {
                prompt: None,
                parts: parts.clone(),
            });
        }
        self.emit_play(None, parts, true);
    }

    /// Says the state's prompts again (repeat, slower, after an error).
    fn say_again(&mut self) {
        let said = self.call.said.clone();
        let barge_in = self.flow.states[self.call.state].barge_in;
        for s in said {
            self.emit_play(s.prompt, s.parts, barge_in);
        }
    }

    fn listen(&mut self) {
        let state = &self.flow.states[self.call.state];
        let mut grammars = Vec::new();
        let mut digits = None;
        let mut free_speech = false;
        match &state.kind {
            Kind::Menu | Kind::Free => grammars.extend(state.grammar.clone()),
            Kind::Digits { kind, .. } => digits = Some(*kind),
            Kind::Directory { after } => {
                if matches!(self.call.dir, DirPhase::Reading { .. }) {
                    grammars.push(after.clone());
                } else {
                    grammars.extend(state.grammar.clone());
                }
                free_speech = true;
            }
            _ => {}
        }
        if matches!(state.kind, Kind::Free) {
            free_speech = true;
        }
        if matches!(self.mode, Mode::Confirming { .. } | Mode::Resuming(_)) {
            grammars = vec!["yes_no".into()];
            digits = None;
            free_speech = false;
        }
        grammars.push("global".into());
        grammars.push("emergency".into());
        let mut modes = state.modes;
        if self.call.keypad_only {
            modes.voice = false;
            modes.dtmf = true;
        }
        let no_input = state.no_input.unwrap_or(self.flow.settings.no_input);
        self.out.push(Output::Listen(Listen {
            modes,
            grammars,
            locale: self.call.locale,
            digits,
            free_speech,
            no_input,
        }));
        self.start_listening_clock();
    }

    // ---- the call ----

    fn start(
        &mut self,
        caller: Option<String>,
        locale: Option<Lang>,
        profile: Option<Profile>,
        session: Option<ResumableSession>,
        wall: OffsetDateTime,
    ) {
        if self.mode != Mode::NotStarted {
            return;
        }
        self.call.wall0 = wall;
        self.call.caller = caller.filter(|c| c.chars().any(|c| c.is_ascii_digit()));
        let profile = profile.unwrap_or_default();
        let remembered = profile.locale.as_deref().and_then(Lang::from_tag);
        // The channel's language (a web page's, chosen by the caller there) wins over the one
        // remembered from an earlier call.
        self.call.locale = locale.or(remembered).unwrap_or(Lang::Mn);
        // A remembered language, or one the channel already knows (a web page's), needs no
        // language menu.
        self.call.skip_language = remembered.is_some() || locale.is_some();
        self.call.slow = profile.slow_speech;
        self.call.keypad_only = profile.keypad_only;
        self.call.profile = profile;
        match session.filter(|s| self.flow.state_named(&s.flow_state).is_some()) {
            Some(session) => {
                if let Some(l) = session.data.get("locale").and_then(|l| Lang::from_tag(l)) {
                    self.call.locale = l;
                }
                self.mode = Mode::Resuming(session);
                self.call.said.clear();
                let vars = self.vars();
                let start = &self.flow.states[self.flow.settings.start];
                if let (Kind::Say, Some(greeting)) = (&start.kind, start.say.first()) {
                    let greeting = greeting.clone();
                    self.say_prompt_with(&greeting, &vars, false, true);
                }
                self.say_prompt_with("RESUME", &vars, true, true);
                self.listen();
            }
            None => self.enter(self.flow.settings.start),
        }
    }

    fn go(&mut self, target: Target) {
        match target {
            Target::State(id) => self.enter(id),
            Target::Main => self.enter(self.flow.settings.main),
            Target::Operator => self.enter(self.flow.settings.operator),
            Target::Back => self.back(),
            Target::Hangup => {
                self.disarm();
                self.mode = Mode::Ended;
                self.out.push(Output::Hangup {
                    reason: "the caller is done".into(),
                });
            }
        }
    }

    /// Leaves the current state for `id`, remembering menus for "back".
    fn leave_to(&mut self, id: StateId) {
        let here = self.call.state;
        if here != id
            && matches!(
                self.flow.states[here].kind,
                Kind::Menu | Kind::Directory { .. } | Kind::Digits { .. }
            )
            && self.call.history.last() != Some(&here)
        {
            self.call.history.push(here);
        }
        self.enter(id);
    }

    fn follow(&mut self, target: Target) {
        match target {
            Target::State(id) => self.leave_to(id),
            other => {
                if let Target::Main | Target::Operator = other {
                    let here = self.call.state;
                    if matches!(
                        self.flow.states[here].kind,
                        Kind::Menu | Kind::Directory { .. } | Kind::Digits { .. }
                    ) && self.call.history.last() != Some(&here)
                    {
                        self.call.history.push(here);
                    }
                }
                self.go(other)
            }
        }
    }

    fn back(&mut self) {
        match self.call.history.pop() {
            Some(id) => self.enter(id),
            None if self.call.state != self.flow.settings.main && self.mode != Mode::NotStarted => {
                // Nothing before this step: the main menu is the way back.
                self.enter(self.flow.settings.main)
            }
            None => self.reprompt(None),
        }
    }

    fn enter(&mut self, id: StateId) {
        self.disarm();
        // Prompts of the state being left no longer hold this one up (they may have been
        // interrupted, and an interrupted prompt is never reported finished).
        self.call.pending_mark = None;
        let flow = Arc::clone(&self.flow);
        let state = &flow.states[id];
        if state.requires.as_deref() == Some("caller") && self.call.caller.is_none() {
            if let Some(t) = state.otherwise {
                return self.go(t);
            }
        }
        if Some(id) == flow.settings.language && self.call.skip_language {
            self.call.skip_language = false;
            if let Some(next) = state.next {
                return self.go(next);
            }
        }
        if Some(id) == flow.settings.language {
            self.call.skip_language = false;
        }
        if id == flow.settings.main {
            self.call.history.clear();
        }
        self.call.state = id;
        self.call.no_input = 0;
        self.call.no_match = 0;
        self.call.keys.clear();
        self.call.warned = false;
        self.call.said.clear();
        self.call.dir = DirPhase::Topics;
        if !state.resumable && std::mem::take(&mut self.call.session_saved) {
            self.out.push(Output::ClearSession);
        }
        if matches!(
            state.kind,
            Kind::Action(Action::StoreCase | Action::LookupCase)
        ) {
            // Done with what the menus led to: "back" from here means the main menu.
            self.call.history.clear();
        }
        if state.resumable {
            self.call.session_saved = true;
            let mut session = ResumableSession::new(state.name.clone());
            session.data = self.call.slots.clone();
            session
                .data
                .insert("locale".into(), self.call.locale.tag().into());
            self.out.push(Output::SaveSession(session));
        }
        let vars = self.vars();
        for id in &state.say {
            self.say_prompt_with(id, &vars, true, state.barge_in);
        }
        match &state.kind {
            Kind::Say => {
                self.mode = Mode::Saying(state.next.unwrap_or(Target::Hangup));
                if self.call.pending_mark.is_none() {
                    self.go(state.next.unwrap_or(Target::Hangup));
                }
            }
            Kind::Menu | Kind::Free | Kind::Digits { .. } | Kind::Directory { .. } => {
                self.mode = Mode::Listening;
                self.listen();
            }
            Kind::Record {
                max,
                end_silence,
                end_key,
            } => {
                self.mode = Mode::Recording;
                self.out.push(Output::Record(Record {
                    max: *max,
                    end_silence: *end_silence,
                    end_key: *end_key,
                    locale: self.call.locale,
                }));
            }
            Kind::Action(_) => {
                self.mode = Mode::BeforeAction;
                if self.call.pending_mark.is_none() {
                    self.run_action();
                }
            }
        }
    }

    fn result(&mut self, name: &str) {
        let state = &self.flow.states[self.call.state];
        let target = state.on.get(name).copied().or(state.next);
        match target {
            Some(t) => self.follow(t),
            None => self.go(Target::Operator),
        }
    }

    fn run_action(&mut self) {
        let Kind::Action(action) = self.flow.states[self.call.state].kind.clone() else {
            return;
        };
        match action {
            Action::StoreCase => {
                let new = self.new_case();
                self.mode = Mode::Awaiting(Action::StoreCase);
                self.out.push(Output::StoreCase(new));
            }
            Action::LookupCase => {
                let parsed = self
                    .call
                    .slots
                    .get("case_number")
                    .and_then(|n| n.parse::<CaseNumber>().ok());
                match parsed {
                    Some(number) => {
                        self.mode = Mode::Awaiting(Action::LookupCase);
                        self.out.push(Output::LookupCase(number));
                    }
                    None => self.result("not_found"),
                }
            }
            Action::CheckHours => {
                let open = self.flow.settings.hours.is_open(self.wall());
                self.result(if open { "open" } else { "closed" });
            }
            Action::Transfer => {
                self.disarm();
                self.mode = Mode::Ended;
                self.out.push(Output::Transfer {
                    target: self.flow.settings.operator_target.clone(),
                });
            }
            Action::RequestCallback => {
                let number = self
                    .call
                    .slots
                    .get("callback")
                    .cloned()
                    .or_else(|| self.call.caller.clone());
                if let Some(number) = number {
                    self.out.push(Output::RequestCallback {
                        number,
                        locale: self.call.locale,
                    });
                }
                self.result("ok");
            }
        }
    }

    fn new_case(&self) -> NewCase {
        let slots = &self.call.slots;
        let case_type = match slots.get("case_type").map(String::as_str) {
            Some("suggestion") => CaseType::Suggestion,
            Some("petition") => CaseType::Petition,
            Some("criticism") => CaseType::Criticism,
            Some("thanks") => CaseType::Thanks,
            _ => CaseType::Complaint,
        };
        let mut new = NewCase::new(case_type, self.call.locale.tag(), Channel::Phone);
        new.caller_number = self.call.caller.clone();
        new.callback_number = slots.get("callback").cloned();
        new.transcript = slots.get("transcript").cloned();
        new.recording_path = slots.get("recording").map(PathBuf::from);
        new.agency = slots.get("agency").cloned();
        new
    }

    fn case_stored(&mut self, result: Result<Case, String>) {
        if self.mode != Mode::Awaiting(Action::StoreCase) {
            return;
        }
        match result {
            Ok(case) => {
                self.out.push(Output::ClearSession);
                self.case_vars(&case);
                let days = (case.due_date - case.received_at.date()).whole_days();
                self.call.vars.insert("days".into(), Value::Number(days));
                self.result("ok");
            }
            Err(_) => self.result("failed"),
        }
    }

    fn case_found(&mut self, result: Result<Option<Case>, String>) {
        if self.mode != Mode::Awaiting(Action::LookupCase) {
            return;
        }
        match result {
            Ok(Some(case)) => {
                self.case_vars(&case);
                self.result("found");
            }
            Ok(None) => self.result("not_found"),
            Err(_) => self.result("failed"),
        }
    }

    fn case_vars(&mut self, case: &Case) {
        let l = self.call.locale;
        let vars = &mut self.call.vars;
        vars.insert(
            "number".into(),
            Value::Digits {
                digits: case
                    .number
                    .to_string()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect(),
                groups: vec![3, 3, 4],
            },
        );
        vars.insert(
            "type".into(),
            Value::Text(text::case_type(case.case_type, l).into()),
        );
        vars.insert(
            "status".into(),
            Value::Text(text::status(case.status, l).into()),
        );
        vars.insert("date".into(), Value::Date(case.received_at.date()));
        vars.insert("due".into(), Value::Date(case.due_date));
        vars.insert(
            "agency".into(),
            Value::Text(
                case.agency
                    .clone()
                    .unwrap_or_else(|| text::default_agency(l).to_string()),
            ),
        );
        match &case.answer {
            Some(a) => vars.insert("answer".into(), Value::Text(a.clone())),
            None => vars.remove("answer"),
        };
    }

    // ---- escalation ----

    /// Says `first` (NOINPUT, NOMATCH, or a state's own message), then the prompt again;
    /// the second time also the key map.
    fn reprompt(&mut self, first: Option<&str>) {
        let count = self.call.no_input.max(self.call.no_match);
        if let Some(id) = first {
            self.say_prompt(id, true);
        }
        if count >= 2 {
            self.say_prompt("HELP_KEYS", true);
        }
        self.call.keys.clear();
        match self.mode.clone() {
            Mode::Recording => {
                self.say_again();
                let state = &self.flow.states[self.call.state];
                if let Kind::Record {
                    max,
                    end_silence,
                    end_key,
                } = state.kind
                {
                    self.out.push(Output::Record(Record {
                        max,
                        end_silence,
                        end_key,
                        locale: self.call.locale,
                    }));
                }
            }
            Mode::Listening | Mode::Confirming { .. } | Mode::Resuming(_) => {
                if matches!(self.mode, Mode::Confirming { .. }) {
                    self.mode = Mode::Listening;
                }
                self.say_again();
                self.listen();
            }
            _ => self.say_again(),
        }
    }

    fn nothing_heard(&mut self) {
        match self.mode {
            Mode::Listening | Mode::Recording | Mode::Confirming { .. } => {}
            Mode::Resuming(_) => {
                // A silent caller starts the call afresh rather than resuming blindly.
                self.out.push(Output::ClearSession);
                return self.enter(self.flow.settings.start);
            }
            _ => return,
        }
        self.disarm();
        if !self.call.keys.is_empty()
            && matches!(self.flow.states[self.call.state].kind, Kind::Digits { .. })
        {
            return self.digits_timeout();
        }
        self.call.no_input += 1;
        self.note("", None, 0.0, "no input");
        if self.call.no_input > self.flow.settings.max_retries {
            return self.go(Target::Operator);
        }
        self.reprompt(Some("NOINPUT"));
    }

    fn no_match(&mut self, invalid: Option<String>) {
        self.call.no_match += 1;
        if self.call.no_match > self.flow.settings.max_retries {
            return self.go(Target::Operator);
        }
        let first = invalid.unwrap_or_else(|| "NOMATCH".to_string());
        self.reprompt(Some(&first));
    }

    fn note(&mut self, input: &str, value: Option<&str>, confidence: f32, decision: &'static str) {
        self.out.push(Output::Understood(Understood {
            state: self.flow.states[self.call.state].name.clone(),
            input: input.to_string(),
            value: value.map(str::to_string),
            confidence,
            decision,
        }));
    }

    // ---- global commands ----

    fn global(&mut self, command: &str) -> bool {
        match command {
            "operator" => {
                self.follow(Target::Operator);
            }
            "repeat" => {
                self.disarm();
                self.say_prompt("REPEAT", true);
                self.relisten_after_saying();
            }
            "slower" => {
                self.disarm();
                self.call.slow = true;
                self.call.profile.slow_speech = true;
                self.out
                    .push(Output::SaveProfile(self.call.profile.clone()));
                self.say_prompt("SLOWER", true);
                self.relisten_after_saying();
            }
            "back" => {
                if !self.directory_back() {
                    self.back();
                }
            }
            "help" => {
                self.disarm();
                self.say_prompt("HELP_KEYS", true);
                self.relisten_after_saying();
            }
            "more_time" => {
                self.disarm();
                self.say_prompt("MORE_TIME", true);
                self.call.warned = false;
                let more = self.flow.settings.more_time;
                if matches!(self.mode, Mode::Listening) {
                    self.arm(more, TimerKind::Warn);
                    // Counted from now: the short reply need not be waited for.
                    self.call.pending_mark = None;
                }
            }
            _ => return false,
        }
        true
    }

    fn relisten_after_saying(&mut self) {
        match self.mode.clone() {
            Mode::Listening | Mode::Confirming { .. } | Mode::Resuming(_) => {
                if matches!(self.mode, Mode::Confirming { .. }) {
                    self.mode = Mode::Listening;
                }
                self.call.keys.clear();
                self.say_again();
                self.listen();
            }
            Mode::Recording => self.reprompt(None),
            _ => self.say_again(),
        }
    }

    fn is_emergency(&self, text: &str, confidence: f32) -> bool {
        let Some(g) = self.voice_grammar("emergency") else {
            return false;
        };
        g.recognize(text, confidence, &MatchOptions::default())
            .first()
            .is_some_and(|r| {
                r.value.as_text() == Some("emergency")
                    && r.confidence >= self.flow.settings.reject_below
                    && r.match_score >= 0.99
            })
    }

    fn voice_grammar(&self, name: &str) -> Option<&Grammar> {
        self.flow
            .grammars
            .get(self.call.locale, name)
            .and_then(|p| p.voice.as_ref())
    }

    fn dtmf_grammar(&self, name: &str) -> Option<&Grammar> {
        self.flow
            .grammars
            .get(self.call.locale, name)
            .and_then(|p| p.dtmf.as_ref())
    }

    fn thresholds(&self) -> Thresholds {
        Thresholds {
            confirm_below: self.flow.settings.confirm_below,
            reject_below: self.flow.settings.reject_below,
        }
    }

    // ---- inputs ----

    fn heard(&mut self, nbest: Vec<Hypothesis>) {
        let Some(best) = nbest.first().cloned() else {
            return self.nothing_heard();
        };
        if best.text.trim().is_empty() {
            return self.nothing_heard();
        }
        if !matches!(
            self.mode,
            Mode::Listening | Mode::Confirming { .. } | Mode::Resuming(_) | Mode::Saying(_)
        ) {
            return;
        }
        self.disarm();
        if !matches!(self.mode, Mode::Saying(_)) {
            // Speech over a prompt that listens interrupts it.
            self.call.pending_mark = None;
        }
        if self.is_emergency(&best.text, best.confidence) {
            self.note(&best.text, Some("emergency"), best.confidence, "emergency");
            return self.emergency();
        }
        let state_grammar: Option<String> =
            match (&self.mode, &self.flow.states[self.call.state].kind) {
                (Mode::Confirming { .. } | Mode::Resuming(_), _) => Some("yes_no".into()),
                (Mode::Saying(_), _) => None,
                (_, Kind::Directory { after }) => {
                    Some(if matches!(self.call.dir, DirPhase::Reading { .. }) {
                        after.clone()
                    } else {
                        self.flow.states[self.call.state]
                            .grammar
                            .clone()
                            .unwrap_or_default()
                    })
                }
                (_, Kind::Digits { .. }) => None,
                _ => self.flow.states[self.call.state].grammar.clone(),
            };
        let global_origin = self.voice_grammar("global").map(|g| g.origin().to_string());
        let mut active: Vec<&Grammar> = Vec::new();
        if let Some(g) = state_grammar.as_deref().and_then(|n| self.voice_grammar(n)) {
            active.push(g);
        }
        if let Some(g) = self.voice_grammar("global") {
            active.push(g);
        }
        // The best reading over the whole n-best list.
        let mut best_match = None;
        for h in &nbest {
            for r in recognize_all(&active, &h.text, h.confidence, &MatchOptions::default()) {
                if best_match
                    .as_ref()
                    .is_none_or(|b: &grammars::MatchResult| r.confidence > b.confidence)
                {
                    best_match = Some(r);
                }
            }
        }
        let decision = best_match
            .as_ref()
            .map_or(Decision::Reject, |r| r.decide(&self.thresholds()));
        let is_global = best_match
            .as_ref()
            .is_some_and(|r| Some(&r.grammar) == global_origin.as_ref());
        let value = best_match
            .as_ref()
            .map(|r| r.value.to_string())
            .unwrap_or_default();
        let confidence = best_match.as_ref().map_or(0.0, |r| r.confidence);

        if let Mode::Saying(_) = self.mode {
            // Speech over a prompt that does not listen: only commands count.
            if is_global && decision == Decision::Accept {
                self.note(&best.text, Some(&value), confidence, "command");
                self.global(&value);
            }
            return;
        }

        // Free answers and searches take words that are not commands.
        let kind = self.flow.states[self.call.state].kind.clone();
        let plain_listen = self.mode == Mode::Listening;
        if plain_listen && !(is_global && decision == Decision::Accept) {
            match &kind {
                Kind::Free => {
                    if decision == Decision::Accept && value == "skip" {
                        self.note(&best.text, Some("skip"), confidence, "skip");
                        return self.free_answer(None);
                    }
                    self.note(&best.text, Some(&best.text), best.confidence, "free answer");
                    return self.free_answer(Some(best.text.trim().to_string()));
                }
                Kind::Digits { .. } => {
                    return self.spoken_digits(&best.text, best.confidence);
                }
                Kind::Directory { .. }
                    if decision != Decision::Accept
                        || best_match.as_ref().is_some_and(|r| r.match_score < 0.99) =>
                {
                    // Words that are not exactly a topic are first a service's name
                    // ("marriage registration" is not the registration topic).
                    let fallback = (decision == Decision::Accept && !is_global).then_some(value);
                    return self.directory_search(&best.text, best.confidence, fallback);
                }
                _ => {}
            }
        }

        match decision {
            Decision::Accept => {
                self.note(&best.text, Some(&value), confidence, "accept");
                self.apply(&value, is_global);
            }
            Decision::Confirm
                if !matches!(self.mode, Mode::Confirming { .. } | Mode::Resuming(_)) =>
            {
                self.note(&best.text, Some(&value), confidence, "confirm");
                let words = best_match.map(|r| r.words.join(" ")).unwrap_or_default();
                let mut vars = self.vars();
                vars.insert("choice".into(), Value::Text(words));
                self.mode = Mode::Confirming {
                    value: if is_global {
                        format!("global:{value}")
                    } else {
                        value
                    },
                };
                self.call.said.clear();
                self.say_prompt_with("CONFIRM", &vars, true, true);
                self.listen();
            }
            _ => {
                self.note(&best.text, None, confidence, "no match");
                self.no_match(None);
            }
        }
    }

    /// Acts on a meaning in the current mode.
    fn apply(&mut self, value: &str, is_global: bool) {
        match self.mode.clone() {
            Mode::Confirming { value: pending } => {
                if is_global {
                    self.global(value);
                    return;
                }
                if value == "yes" {
                    self.mode = Mode::Listening;
                    match pending.strip_prefix("global:") {
                        Some(command) => {
                            self.global(command);
                        }
                        None => self.apply(&pending, false),
                    }
                } else {
                    // Not what they meant: ask the question again.
                    self.mode = Mode::Listening;
                    self.call.said.clear();
                    let flow = Arc::clone(&self.flow);
                    let vars = self.vars();
                    for id in &flow.states[self.call.state].say {
                        self.say_prompt_with(id, &vars, true, true);
                    }
                    self.listen();
                }
            }
            Mode::Resuming(session) => {
                if is_global {
                    self.global(value);
                    return;
                }
                if value == "yes" {
                    self.call.slots = session.data.clone();
                    self.call.slots.remove("locale");
                    let id = self
                        .flow
                        .state_named(&session.flow_state)
                        .unwrap_or(self.flow.settings.start);
                    self.enter(id);
                } else {
                    self.out.push(Output::ClearSession);
                    self.enter(self.flow.settings.start);
                }
            }
            Mode::Listening => {
                if is_global {
                    self.global(value);
                    return;
                }
                let kind = self.flow.states[self.call.state].kind.clone();
                match kind {
                    Kind::Directory { .. } => self.directory_choice(value),
                    Kind::Free => self.free_answer(None),
                    _ => self.menu_value(value),
                }
            }
            _ => {
                if is_global {
                    self.global(value);
                }
            }
        }
    }

    fn menu_value(&mut self, value: &str) {
        let state = &self.flow.states[self.call.state];
        if let Some(target) = state.on.get(value).copied() {
            return self.follow(target);
        }
        if GLOBAL_KEYS.iter().any(|(_, m)| *m == value) {
            self.global(value);
            return;
        }
        let slot = state.slot.clone();
        let next = state.next;
        if let Some(slot) = slot {
            if slot == "locale" {
                if let Some(l) = Lang::from_tag(value) {
                    self.call.locale = l;
                    self.call.profile.locale = Some(l.tag().to_string());
                    self.out
                        .push(Output::SaveProfile(self.call.profile.clone()));
                }
            }
            self.call.slots.insert(slot, value.to_string());
        }
        match next {
            Some(t) => self.follow(t),
            None => self.no_match(None),
        }
    }

    fn free_answer(&mut self, answer: Option<String>) {
        let state = &self.flow.states[self.call.state];
        if let (Some(slot), Some(answer)) = (state.slot.clone(), answer) {
            self.call.slots.insert(slot, answer);
        }
        let next = state.next.unwrap_or(Target::Operator);
        self.follow(next);
    }

    fn keyed(&mut self, key: char) {
        if !"0123456789*#".contains(key) {
            return;
        }
        if std::mem::take(&mut self.call.swallow_hash) && key == '#' {
            return;
        }
        if !matches!(self.mode, Mode::Saying(_) | Mode::BeforeAction) {
            // A key over a prompt that listens interrupts it: it will not be reported heard.
            self.call.pending_mark = None;
        }
        match self.mode.clone() {
            Mode::Saying(_) => {
                // Keys over a prompt that does not listen: commands only.
                if let Some((_, command)) = GLOBAL_KEYS.iter().find(|(k, _)| *k == key) {
                    self.global(command);
                }
                return;
            }
            Mode::Recording => {
                // The driver ends the recording on its end key; only operator and back count.
                if key == '0' || key == '*' {
                    let command = if key == '0' { "operator" } else { "back" };
                    self.global(command);
                }
                return;
            }
            Mode::Listening | Mode::Confirming { .. } | Mode::Resuming(_) => {}
            _ => return,
        }
        self.disarm();
        let kind = self.flow.states[self.call.state].kind.clone();
        if let (Kind::Digits { kind, invalid }, Mode::Listening) = (&kind, &self.mode) {
            if key == '*' {
                self.note("*", Some("back"), 1.0, "command");
                self.call.keys.clear();
                if !self.directory_back() {
                    self.back();
                }
                return;
            }
            if key == MORE_TIME_KEY && self.call.keys.is_empty() && self.call.warned {
                self.global("more_time");
                return;
            }
            self.call.keys.push(key);
            let keys = self.call.keys.clone();
            return match builtin(*kind).handle_keys(&keys) {
                DtmfMatch::Complete { value } => {
                    self.note(&keys, Some(&value.to_string()), 1.0, "accept");
                    let terminated = keys.ends_with('#');
                    self.digits_done(value.to_string());
                    self.call.swallow_hash = !terminated;
                }
                DtmfMatch::NeedMore => {
                    self.arm(self.flow.settings.inter_digit, TimerKind::InterDigit)
                }
                _ => {
                    self.note(&keys, None, 1.0, "invalid");
                    self.no_match(invalid.clone());
                    // The caller was told at once; the `#` they were about to press is not
                    // a second attempt.
                    self.call.swallow_hash = !keys.ends_with('#');
                }
            };
        }
        if key == MORE_TIME_KEY && self.call.warned {
            self.global("more_time");
            return;
        }
        if let Some((_, command)) = GLOBAL_KEYS.iter().find(|(k, _)| *k == key) {
            self.note(&key.to_string(), Some(command), 1.0, "command");
            if let Mode::Confirming { .. } = self.mode {
                self.mode = Mode::Listening;
            }
            self.global(command);
            return;
        }
        let grammar = match (&self.mode, &kind) {
            (Mode::Confirming { .. } | Mode::Resuming(_), _) => Some("yes_no".to_string()),
            (_, Kind::Directory { after }) => match &self.call.dir {
                DirPhase::Reading { .. } => Some(after.clone()),
                DirPhase::Page { .. } => return self.page_key(key),
                DirPhase::Topics => self.flow.states[self.call.state].grammar.clone(),
            },
            _ => self.flow.states[self.call.state].grammar.clone(),
        };
        let value = grammar
            .as_deref()
            .and_then(|g| self.dtmf_grammar(g))
            .and_then(|g| {
                g.recognize(&key.to_string(), 1.0, &MatchOptions::default())
                    .into_iter()
                    .find(|r| r.match_score >= 0.99)
            })
            .map(|r| r.value.to_string());
        match value {
            Some(v) => {
                self.note(&key.to_string(), Some(&v), 1.0, "accept");
                self.apply(&v, false)
            }
            None => {
                self.note(&key.to_string(), None, 1.0, "no match");
                self.no_match(None)
            }
        }
    }

    fn spoken_digits(&mut self, text: &str, confidence: f32) {
        let words = grammars::lang::normalize(self.call.locale, text);
        let digits: String = words
            .iter()
            .filter(|w| w.len() == 1 && w.chars().all(|c| c.is_ascii_digit()))
            .map(String::as_str)
            .collect();
        let Kind::Digits { kind, invalid } = self.flow.states[self.call.state].kind.clone() else {
            return;
        };
        if digits.is_empty() {
            self.note(text, None, confidence, "no match");
            return self.no_match(None);
        }
        let keys = format!("{digits}#");
        match builtin(kind).handle_keys(&keys) {
            DtmfMatch::Complete { value } => {
                self.note(text, Some(&value.to_string()), confidence, "accept");
                self.digits_done(value.to_string())
            }
            _ => {
                self.note(text, None, confidence, "invalid");
                self.no_match(invalid)
            }
        }
    }

    fn digits_timeout(&mut self) {
        let Kind::Digits { kind, invalid } = self.flow.states[self.call.state].kind.clone() else {
            return;
        };
        let keys = std::mem::take(&mut self.call.keys);
        if keys.is_empty() {
            return self.nothing_heard();
        }
        match builtin(kind).handle_timeout(&keys) {
            DtmfMatch::Complete { value } => self.digits_done(value.to_string()),
            _ => {
                self.note(&keys, None, 1.0, "invalid");
                self.no_match(invalid)
            }
        }
    }

    fn digits_done(&mut self, value: String) {
        self.call.keys.clear();
        let state = &self.flow.states[self.call.state];
        if let Some(slot) = state.slot.clone() {
            self.call.slots.insert(slot, value);
        }
        let next = state.next.unwrap_or(Target::Operator);
        self.follow(next);
    }

    fn recorded(&mut self, transcript: Option<String>, recording: Option<PathBuf>) {
        if self.mode != Mode::Recording {
            return;
        }
        let text = transcript.unwrap_or_default().trim().to_string();
        if text.is_empty() && recording.is_none() {
            return self.nothing_heard();
        }
        if !text.is_empty() && self.is_emergency(&text, 1.0) {
            self.note(&text, Some("emergency"), 1.0, "emergency");
            return self.emergency();
        }
        let state = &self.flow.states[self.call.state];
        let slot = state.slot.clone().unwrap_or_else(|| "transcript".into());
        if !text.is_empty() {
            self.call.slots.insert(slot, text);
        }
        if let Some(path) = recording {
            self.call
                .slots
                .insert("recording".into(), path.display().to_string());
        }
        let next = state.next.unwrap_or(Target::Operator);
        self.follow(next);
    }

    fn emergency(&mut self) {
        // Whatever was being filed is dropped: an emergency is never a case.
        for key in ["transcript", "recording", "case_type", "agency"] {
            self.call.slots.remove(key);
        }
        self.out.push(Output::ClearSession);
        self.mode = Mode::Listening;
        self.enter(self.flow.settings.emergency);
    }

    // ---- the service directory ----

    fn directory_choice(&mut self, value: &str) {
        match self.call.dir.clone() {
            DirPhase::Topics => {
                let topic = match value {
                    "civil_registration" => Topic::CivilRegistration,
                    "social_insurance" => Topic::SocialInsurance,
                    "tax" => Topic::Tax,
                    "welfare" => Topic::Welfare,
                    "other" => Topic::Other,
                    _ => return self.no_match(None),
                };
                self.show_page(topic, 0);
            }
            DirPhase::Reading { list, index, from } => match value {
                "next" => {
                    if index + 1 < list.len() {
                        self.read_service(list, index + 1, from);
                    } else {
                        self.say_prompt("INFO_END", true);
                        self.show_topics();
                    }
                }
                "topics" => self.show_topics(),
                "main" => self.follow(Target::Main),
                _ => self.no_match(None),
            },
            DirPhase::Page { topic, page } => {
                if let Some(k) = value.chars().next().filter(|_| value.len() == 1) {
                    self.call.dir = DirPhase::Page { topic, page };
                    self.page_key(k);
                } else {
                    self.no_match(None);
                }
            }
        }
    }

    fn show_topics(&mut self) {
        self.disarm();
        self.call.dir = DirPhase::Topics;
        self.call.said.clear();
        self.call.no_match = 0;
        self.call.no_input = 0;
        let flow = Arc::clone(&self.flow);
        let vars = self.vars();
        for id in &flow.states[self.call.state].say {
            self.say_prompt_with(id, &vars, true, true);
        }
        self.listen();
    }

    fn show_page(&mut self, topic: Topic, page: usize) {
        self.disarm();
        let pages = self.directory.services_in(topic);
        let Some(p) = pages.get(page).cloned() else {
            self.say_prompt("INFO_NOTFOUND", true);
            return self.show_topics();
        };
        if p.services.len() == 1 && !p.has_next && page == 0 {
            return self.read_service(p.services.clone(), 0, None);
        }
        self.call.dir = DirPhase::Page { topic, page };
        self.call.said.clear();
        self.call.no_match = 0;
        self.call.no_input = 0;
        let l = self.call.locale;
        for (i, id) in p.services.iter().enumerate() {
            let Some(service) = self.directory.service(*id) else {
                continue;
            };
            let mut vars = Vars::new();
            vars.insert(
                "service".into(),
                Value::Text(service.name.get(l).to_string()),
            );
            vars.insert("key".into(), Value::Key(key_of(i)));
            self.say_prompt_with("INFO_OPTION", &vars, true, true);
        }
        if p.has_next {
            let mut vars = Vars::new();
            vars.insert("key".into(), Value::Key(key_of(p.services.len())));
            self.say_prompt_with("INFO_MORE", &vars, true, true);
        }
        self.listen();
    }

    fn page_key(&mut self, key: char) {
        let DirPhase::Page { topic, page } = self.call.dir.clone() else {
            return;
        };
        let pages = self.directory.services_in(topic);
        let Some(p) = pages.get(page) else {
            return self.show_topics();
        };
        let index = key.to_digit(10).map(|d| d as usize).filter(|d| *d >= 1);
        match index {
            Some(i) if i <= p.services.len() => {
                let list = p.services.clone();
                self.read_service(list, i - 1, Some((topic, page)));
            }
            Some(i) if p.has_next && i == p.services.len() + 1 => self.show_page(topic, page + 1),
            _ => self.no_match(None),
        }
    }

    fn read_service(&mut self, list: Vec<ServiceId>, index: usize, from: Option<(Topic, usize)>) {
        self.disarm();
        let Some(service) = list.get(index).and_then(|id| self.directory.service(*id)) else {
            self.say_prompt("INFO_NOTFOUND", true);
            return self.show_topics();
        };
        let sentences = read_out(service, self.call.locale);
        self.call.dir = DirPhase::Reading { list, index, from };
        self.call.said.clear();
        self.call.no_match = 0;
        self.call.no_input = 0;
        for s in sentences {
            self.say_text(s, true);
        }
        let vars = self.vars();
        self.say_prompt_with("INFO_AFTER", &vars, true, true);
        self.listen();
    }

    fn directory_search(&mut self, text: &str, confidence: f32, fallback: Option<String>) {
        let found: Vec<ServiceId> = self
            .directory
            .search(self.call.locale, text)
            .into_iter()
            .filter(|(_, score)| *score >= SEARCH_ACCEPT)
            .map(|(id, _)| id)
            .collect();
        if let DirPhase::Page { topic, page } = self.call.dir.clone() {
            // A spoken digit picks from the page.
            let words = grammars::lang::normalize(self.call.locale, text);
            if let [w] = words.as_slice() {
                if let Some(k) = w.chars().next().filter(|c| c.is_ascii_digit()) {
                    self.note(text, Some(w), confidence, "accept");
                    self.call.dir = DirPhase::Page { topic, page };
                    return self.page_key(k);
                }
            }
        }
        if found.is_empty() {
            if let Some(value) = fallback {
                self.note(text, Some(&value), confidence, "accept");
                return self.directory_choice(&value);
            }
            self.note(text, None, confidence, "no match");
            self.call.no_match += 1;
            if self.call.no_match > self.flow.settings.max_retries {
                return self.go(Target::Operator);
            }
            self.say_prompt("INFO_NOTFOUND", true);
            if self.call.no_match >= 2 {
                self.say_prompt("HELP_KEYS", true);
            }
            self.say_again();
            return self.listen();
        }
        let name = self
            .directory
            .service(found[0])
            .map(|s| s.name.get(self.call.locale).to_string())
            .unwrap_or_default();
        self.note(text, Some(&name), confidence, "search");
        self.read_service(found, 0, None);
    }

    /// "Back" inside the directory; false when the directory has nothing to go back to.
    fn directory_back(&mut self) -> bool {
        if !matches!(
            self.flow.states[self.call.state].kind,
            Kind::Directory { .. }
        ) || self.mode != Mode::Listening
        {
            return false;
        }
        match self.call.dir.clone() {
            DirPhase::Topics => false,
            DirPhase::Page { topic, page } if page > 0 => {
                self.show_page(topic, page - 1);
                true
            }
            DirPhase::Reading {
                from: Some((topic, page)),
                ..
            } => {
                self.show_page(topic, page);
                true
            }
            _ => {
                self.show_topics();
                true
            }
        }
    }
}

fn key_of(index: usize) -> char {
    char::from_digit(index as u32 + 1, 10).unwrap_or('9')
}

fn builtin(kind: DigitsKind) -> Builtin {
    match kind {
        DigitsKind::CaseNumber => Builtin::CaseNumber,
        DigitsKind::Phone => Builtin::Digits {
            min: 6,
            max: 15,
            terminator: Some('#'),
        },
    }
}

#[cfg(test)]
mod tests;
