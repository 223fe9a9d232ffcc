//! Reading a flow file and checking it against its prompts and grammars.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::Deserialize;
use time::{UtcOffset, Weekday};
use toml::Spanned;

use super::error::{line_col, FlowError, Problem};
use super::prompts::{Prompts, LOCALES};
use super::{
    Action, DigitsKind, Flow, GrammarSet, Hours, Kind, Modes, Settings, State, StateId, Target,
    ENGINE_GRAMMARS, ENGINE_PROMPTS, GLOBAL_KEYS,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    flow: Spanned<FlowDef>,
    #[serde(default)]
    state: BTreeMap<Spanned<String>, Spanned<StateDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowDef {
    start: Option<Spanned<String>>,
    main: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
    emergency: Option<Spanned<String>>,
    operator: Option<Spanned<String>>,
    #[allow(dead_code)] // read by `prompts_path` before the full parse
    prompts: Option<Spanned<String>>,
    operator_target: Option<Spanned<String>>,
    hours: Option<Spanned<String>>,
    days: Option<Spanned<String>>,
    utc_offset: Option<Spanned<String>>,
    no_input: Option<Spanned<f64>>,
    inter_digit: Option<Spanned<f64>>,
    warn_grace: Option<Spanned<f64>>,
    more_time: Option<Spanned<f64>>,
    max_retries: Option<Spanned<i64>>,
    confirm_below: Option<Spanned<f64>>,
    reject_below: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateDef {
    kind: Spanned<String>,
    #[serde(default)]
    say: Vec<Spanned<String>>,
    grammar: Option<Spanned<String>>,
    #[serde(default)]
    on: BTreeMap<Spanned<String>, Spanned<String>>,
    next: Option<Spanned<String>>,
    slot: Option<Spanned<String>>,
    input: Option<Spanned<String>>,
    no_input: Option<Spanned<f64>>,
    warn: Option<Spanned<bool>>,
    barge_in: Option<Spanned<bool>>,
    requires: Option<Spanned<String>>,
    otherwise: Option<Spanned<String>>,
    resumable: Option<Spanned<bool>>,
    max: Option<Spanned<f64>>,
    end_silence: Option<Spanned<f64>>,
    end_key: Option<Spanned<String>>,
    digits: Option<Spanned<String>>,
    invalid: Option<Spanned<String>>,
    action: Option<Spanned<String>>,
    after: Option<Spanned<String>>,
}

/// Collects problems with positions in one source file.
struct Report<'a> {
    src: &'a str,
    origin: &'a str,
    problems: Vec<Problem>,
}

impl Report<'_> {
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        let (line, column) = line_col(self.src, offset);
        self.problems.push(Problem {
            origin: self.origin.to_string(),
            line,
            column,
            message: message.into(),
        });
    }

    fn file(&mut self, origin: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            origin: origin.to_string(),
            line: 0,
            column: 0,
            message: message.into(),
        });
    }
}

/// The `prompts` path of a flow file, read before the full check (it names a second file).
pub(super) fn prompts_path(src: &str, origin: &str) -> Result<String, FlowError> {
    let mut report = Report {
        src,
        origin,
        problems: Vec::new(),
    };
    let table: toml::Table = match toml::from_str(src) {
        Ok(t) => t,
        Err(e) => {
            report.at(e.span().map_or(0, |s| s.start), e.message().trim());
            return Err(FlowError {
                problems: report.problems,
            });
        }
    };
    match table
        .get("flow")
        .and_then(|f| f.get("prompts"))
        .and_then(|p| p.as_str())
    {
        Some(p) => Ok(p.to_string()),
        None => {
            report.at(
                flow_header(src),
                "the [flow] table must name its `prompts` file",
            );
            Err(FlowError {
                problems: report.problems,
            })
        }
    }
}

/// The offset of the `[flow]` header line (0 when there is none).
fn flow_header(src: &str) -> usize {
    let mut offset = 0;
    for line in src.split_inclusive('\n') {
        if line.trim_start().starts_with("[flow]") {
            return offset + (line.len() - line.trim_start().len());
        }
        offset += line.len();
    }
    0
}

fn seconds(report: &mut Report<'_>, value: &Spanned<f64>, what: &str) -> Option<Duration> {
    let v = *value.get_ref();
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Some(Duration::from_secs_f64(v))
    } else {
        report.at(
            value.span().start,
            format!("{what} must be a number of seconds above 0 and at most 3600, not {v}"),
        );
        None
    }
}

fn parse_hours(
    report: &mut Report<'_>,
    hours_def: &Spanned<String>,
    days_def: &Spanned<String>,
    offset_def: &Spanned<String>,
) -> Hours {
    let mut hours = Hours {
        open: 8 * 60,
        close: 20 * 60,
        days: vec![
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ],
        offset: UtcOffset::UTC,
    };
    let clock = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    match hours_def
        .get_ref()
        .split_once('-')
        .and_then(|(a, b)| Some((clock(a)?, clock(b)?)))
    {
        Some((open, close)) if open < close => {
            hours.open = open;
            hours.close = close;
        }
        _ => report.at(
            hours_def.span().start,
            format!(
                "hours must read like \"08:00-20:00\" (opening before closing), not {:?}",
                hours_def.get_ref()
            ),
        ),
    }
    let day = |d: &str| -> Option<Weekday> {
        Some(match d.trim().to_ascii_lowercase().as_str() {
            "mon" => Weekday::Monday,
            "tue" => Weekday::Tuesday,
            "wed" => Weekday::Wednesday,
            "thu" => Weekday::Thursday,
            "fri" => Weekday::Friday,
            "sat" => Weekday::Saturday,
            "sun" => Weekday::Sunday,
            _ => return None,
        })
    };
    let mut days = Vec::new();
    let mut ok = true;
    for part in days_def.get_ref().split(',') {
        match part.split_once('-') {
            Some((a, b)) => match (day(a), day(b)) {
                (Some(mut d), Some(end)) => {
                    days.push(d);
                    while d != end {
                        d = d.next();
                        days.push(d);
                    }
                }
                _ => ok = false,
            },
            None => match day(part) {
                Some(d) => days.push(d),
                None => ok = false,
            },
        }
    }
    if ok && !days.is_empty() {
        hours.days = days;
    } else {
        report.at(
            days_def.span().start,
            format!(
                "days must read like \"mon-fri\" or \"mon,wed,sat\", not {:?}",
                days_def.get_ref()
            ),
        );
    }
    let offset = offset_def.get_ref().trim();
    let parsed = (|| {
        let sign = match offset.chars().next()? {
            '+' => 1i8,
            '-' => -1,
            _ => return None,
        };
        let (h, m) = offset[1..].split_once(':')?;
        let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
        UtcOffset::from_hms(sign * h, sign * m, 0).ok()
    })();
    match parsed {
        Some(o) => hours.offset = o,
        None => report.at(
            offset_def.span().start,
            format!("utc_offset must read like \"+08:00\", not {offset:?}"),
        ),
    }
    hours
}

pub(super) fn parse(
    src: &str,
    origin: &str,
    prompts: Prompts,
    grammars: GrammarSet,
) -> Result<Flow, FlowError> {
    let mut report = Report {
        src,
        origin,
        problems: Vec::new(),
    };
    let file: FileDef = match toml::from_str(src) {
        Ok(f) => f,
        Err(e) => {
            report.at(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_string(),
            );
            return Err(FlowError {
                problems: report.problems,
            });
        }
    };

    // Names first, so that targets can be resolved in any order.
    let names: BTreeMap<String, StateId> = file
        .state
        .keys()
        .enumerate()
        .map(|(i, k)| (k.get_ref().clone(), i))
        .collect();
    if names.is_empty() {
        report.file(origin, "the flow has no [state.NAME] tables");
    }
    let resolve = |report: &mut Report<'_>, t: &Spanned<String>| -> Option<Target> {
        let name = t.get_ref().as_str();
        match name {
            "@back" => Some(Target::Back),
            "@main" => Some(Target::Main),
            "@operator" => Some(Target::Operator),
            "@hangup" => Some(Target::Hangup),
            _ => match names.get(name) {
                Some(&id) => Some(Target::State(id)),
                None => {
                    let hint = if name.starts_with('@') {
                        " (special targets are @back, @main, @operator and @hangup)".to_string()
                    } else {
                        String::new()
                    };
                    report.at(t.span().start, format!("unknown state `{name}`{hint}"));
                    None
                }
            },
        }
    };
    let resolve_state = |report: &mut Report<'_>, t: &Spanned<String>, what: &str| match names
        .get(t.get_ref().as_str())
    {
        Some(&id) => id,
        None => {
            report.at(
                t.span().start,
                format!("{what} names unknown state `{}`", t.get_ref()),
            );
            usize::MAX
        }
    };

    let def = file.flow.get_ref();
    let header = file.flow.span().start;
    let required = |report: &mut Report<'_>, value: &Option<Spanned<String>>, key: &str| {
        if value.is_none() {
            report.at(header, format!("the [flow] table needs `{key}`"));
        }
        value.clone()
    };
    let states_of = |report: &mut Report<'_>, value: &Option<Spanned<String>>, key: &str| {
        required(report, value, key)
            .map(|v| resolve_state(report, &v, key))
            .unwrap_or(usize::MAX)
    };
    let start = states_of(&mut report, &def.start, "start");
    let main = states_of(&mut report, &def.main, "main");
    let emergency = states_of(&mut report, &def.emergency, "emergency");
    let operator = states_of(&mut report, &def.operator, "operator");
    let language = def
        .language
        .as_ref()
        .map(|l| resolve_state(&mut report, l, "language"));
    let operator_target = required(&mut report, &def.operator_target, "operator_target");
    let hours = match (
        required(&mut report, &def.hours, "hours"),
        required(&mut report, &def.days, "days"),
        required(&mut report, &def.utc_offset, "utc_offset"),
    ) {
        (Some(h), Some(d), Some(o)) => parse_hours(&mut report, &h, &d, &o),
        _ => Hours {
            open: 0,
            close: 0,
            days: Vec::new(),
            offset: UtcOffset::UTC,
        },
    };
    let secs = |report: &mut Report<'_>, v: &Option<Spanned<f64>>, what: &str, default: f64| {
        v.as_ref()
            .and_then(|v| seconds(report, v, what))
            .unwrap_or(Duration::from_secs_f64(default))
    };
    let no_input = secs(&mut report, &def.no_input, "no_input", 8.0);
    let inter_digit = secs(&mut report, &def.inter_digit, "inter_digit", 5.0);
    let warn_grace = secs(&mut report, &def.warn_grace, "warn_grace", 8.0);
    let more_time = secs(&mut report, &def.more_time, "more_time", 30.0);
    let max_retries = match &def.max_retries {
        Some(v) if (1..=5).contains(v.get_ref()) => *v.get_ref() as u32,
        Some(v) => {
            report.at(
                v.span().start,
                format!("max_retries must be 1 to 5, not {}", v.get_ref()),
            );
            2
        }
        None => 2,
    };
    let fraction = |report: &mut Report<'_>, v: &Option<Spanned<f64>>, what: &str, d: f32| match v {
        Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref() as f32,
        Some(v) => {
            report.at(
                v.span().start,
                format!("{what} must be between 0 and 1, not {}", v.get_ref()),
            );
            d
        }
        None => d,
    };
    let confirm_below = fraction(&mut report, &def.confirm_below, "confirm_below", 0.8);
    let reject_below = fraction(&mut report, &def.reject_below, "reject_below", 0.45);
    if reject_below > confirm_below {
        report.at(
            def.reject_below.as_ref().map_or(header, |r| r.span().start),
            "reject_below must not be above confirm_below",
        );
    }
    if let Some(target) = &operator_target {
        if target.get_ref().trim().is_empty() {
            report.at(
                target.span().start,
                "operator_target must name where operator calls go (a SIP URI)",
            );
        }
    }

    // Engine prompts and grammars.
    for id in ENGINE_PROMPTS {
        if prompts.get(id).is_none() {
            report.file(
                prompts.origin(),
                format!("prompt {id} is missing (the engine speaks it)"),
            );
        }
    }
    for lang in LOCALES {
        for name in ENGINE_GRAMMARS {
            let (base, dtmf) = match name.strip_suffix("_dtmf") {
                Some(b) => (b, true),
                None => (name, false),
            };
            let pair = grammars.get(lang, base);
            let present = pair.is_some_and(|p| {
                if dtmf {
                    p.dtmf.is_some()
                } else {
                    p.voice.is_some()
                }
            });
            if !present {
                report.file(
                    origin,
                    format!(
                        "grammar {}/{name}.abnf is missing (the engine listens with it)",
                        lang.tag()
                    ),
                );
            }
        }
    }

    let mut states = Vec::with_capacity(file.state.len());
    for (name, spanned) in &file.state {
        let s = spanned.get_ref();
        let at = name.span().start;
        let line = line_col(src, at).0;
        let kind_name = s.kind.get_ref().as_str();

        let mut on = BTreeMap::new();
        for (k, v) in &s.on {
            if let Some(t) = resolve(&mut report, v) {
                on.insert(k.get_ref().clone(), t);
            }
        }
        let next = s.next.as_ref().and_then(|n| resolve(&mut report, n));
        let otherwise = s.otherwise.as_ref().and_then(|n| resolve(&mut report, n));
        for id in &s.say {
            if prompts.get(id.get_ref()).is_none() {
                report.at(
                    id.span().start,
                    format!("prompt {} is not in {}", id.get_ref(), prompts.origin()),
                );
            }
        }
        let modes = match s.input.as_ref().map(|i| i.get_ref().as_str()) {
            None | Some("both") => Modes::BOTH,
            Some("voice") => Modes {
                voice: true,
                dtmf: false,
            },
            Some("dtmf") => Modes {
                voice: false,
                dtmf: true,
            },
            Some(other) => {
                report.at(
                    s.input.as_ref().map_or(at, |i| i.span().start),
                    format!("input must be voice, dtmf or both, not `{other}`"),
                );
                Modes::BOTH
            }
        };

        // Which fields each kind takes.
        let allowed: &[&str] = match kind_name {
            "say" => &["next"],
            "menu" => &["grammar", "on", "next", "slot", "warn"],
            "record" => &["slot", "next", "max", "end_silence", "end_key"],
            "digits" => &["slot", "next", "digits", "invalid", "warn"],
            "free" => &["grammar", "slot", "next", "warn"],
            "action" => &["action", "on", "next"],
            "directory" => &["grammar", "after", "next"],
            _ => {
                report.at(
                    s.kind.span().start,
                    format!(
                        "unknown kind `{kind_name}` (say, menu, record, digits, free, action, directory)"
                    ),
                );
                continue;
            }
        };
        let present: [(&str, Option<usize>); 11] = [
            ("grammar", s.grammar.as_ref().map(|v| v.span().start)),
            ("on", s.on.keys().next().map(|k| k.span().start)),
            ("next", s.next.as_ref().map(|v| v.span().start)),
            ("slot", s.slot.as_ref().map(|v| v.span().start)),
            ("warn", s.warn.as_ref().map(|v| v.span().start)),
            ("max", s.max.as_ref().map(|v| v.span().start)),
            (
                "end_silence",
                s.end_silence.as_ref().map(|v| v.span().start),
            ),
            ("end_key", s.end_key.as_ref().map(|v| v.span().start)),
            ("digits", s.digits.as_ref().map(|v| v.span().start)),
            ("action", s.action.as_ref().map(|v| v.span().start)),
            ("after", s.after.as_ref().map(|v| v.span().start)),
        ];
        for (field, offset) in present {
            if let Some(offset) = offset {
                if !allowed.contains(&field) {
                    report.at(
                        offset,
                        format!("`{field}` does not apply to a {kind_name} state"),
                    );
                }
            }
        }
        if s.invalid.is_some() && kind_name != "digits" {
            report.at(
                s.invalid.as_ref().map_or(at, |v| v.span().start),
                format!("`invalid` does not apply to a {kind_name} state"),
            );
        }
        let need = |report: &mut Report<'_>, field: &str, ok: bool| {
            if !ok {
                let article = if kind_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                report.at(at, format!("{article} {kind_name} state needs `{field}`"));
            }
        };
        let kind = match kind_name {
            "say" => {
                need(&mut report, "next", s.next.is_some());
                Kind::Say
            }
            "menu" => {
                need(&mut report, "grammar", s.grammar.is_some());
                Kind::Menu
            }
            "record" => {
                need(&mut report, "next", s.next.is_some());
                let end_key = match s.end_key.as_ref() {
                    None => '#',
                    Some(k) => {
                        let mut chars = k.get_ref().chars();
                        match (chars.next(), chars.next()) {
                            (Some(c), None) if "0123456789*#".contains(c) => c,
                            _ => {
                                report.at(
                                    k.span().start,
                                    "end_key must be one keypad key (0-9, * or #)",
                                );
                                '#'
                            }
                        }
                    }
                };
                Kind::Record {
                    max: secs(&mut report, &s.max, "max", 180.0),
                    end_silence: secs(&mut report, &s.end_silence, "end_silence", 3.0),
                    end_key,
                }
            }
            "digits" => {
                need(&mut report, "digits", s.digits.is_some());
                need(&mut report, "slot", s.slot.is_some());
                need(&mut report, "next", s.next.is_some());
                let kind = match s.digits.as_ref().map(|d| d.get_ref().as_str()) {
                    Some("case_number") | None => DigitsKind::CaseNumber,
                    Some("phone") => DigitsKind::Phone,
                    Some(other) => {
                        report.at(
                            s.digits.as_ref().map_or(at, |d| d.span().start),
                            format!("digits must be case_number or phone, not `{other}`"),
                        );
                        DigitsKind::CaseNumber
                    }
                };
                if let Some(id) = &s.invalid {
                    if prompts.get(id.get_ref()).is_none() {
                        report.at(
                            id.span().start,
                            format!("prompt {} is not in {}", id.get_ref(), prompts.origin()),
                        );
                    }
                }
                Kind::Digits {
                    kind,
                    invalid: s.invalid.as_ref().map(|i| i.get_ref().clone()),
                }
            }
            "free" => {
                need(&mut report, "slot", s.slot.is_some());
                need(&mut report, "next", s.next.is_some());
                need(&mut report, "grammar", s.grammar.is_some());
                Kind::Free
            }
            "action" => {
                need(&mut report, "action", s.action.is_some());
                let action = match s.action.as_ref().map(|a| a.get_ref().as_str()) {
                    Some("store_case") => Action::StoreCase,
                    Some("lookup_case") => Action::LookupCase,
                    Some("check_hours") => Action::CheckHours,
                    Some("transfer") => Action::Transfer,
                    Some("request_callback") => Action::RequestCallback,
                    Some(other) => {
                        report.at(
                            s.action.as_ref().map_or(at, |a| a.span().start),
                            format!(
                                "unknown action `{other}` (store_case, lookup_case, check_hours, transfer, request_callback)"
                            ),
                        );
                        continue;
                    }
                    None => continue,
                };
                for k in s.on.keys() {
                    if !action.results().contains(&k.get_ref().as_str()) {
                        report.at(
                            k.span().start,
                            format!(
                                "action {} has no result `{}` (it has: {})",
                                s.action.as_ref().map_or("", |a| a.get_ref().as_str()),
                                k.get_ref(),
                                if action.results().is_empty() {
                                    "none, it ends the call".to_string()
                                } else {
                                    action.results().join(", ")
                                }
                            ),
                        );
                    }
                }
                if s.next.is_none() {
                    for r in action.results() {
                        if !s.on.keys().any(|k| k.get_ref() == r) {
                            report.at(
                                at,
                                format!("result `{r}` of this action leads nowhere: add it to `on` or give the state a `next`"),
                            );
                        }
                    }
                }
                if let (Action::Transfer, Some(n)) = (action, &s.next) {
                    report.at(n.span().start, "a transfer ends the call: it has no `next`");
                }
                Kind::Action(action)
            }
            "directory" => {
                need(&mut report, "grammar", s.grammar.is_some());
                need(&mut report, "after", s.after.is_some());
                Kind::Directory {
                    after: s
                        .after
                        .as_ref()
                        .map(|a| a.get_ref().clone())
                        .unwrap_or_default(),
                }
            }
            _ => unreachable!("kinds were checked above"),
        };

        // Grammars: present in every locale, in every mode the state listens in.
        let mut grammar_names: Vec<&Spanned<String>> = s.grammar.iter().collect();
        grammar_names.extend(s.after.iter());
        for g in &grammar_names {
            for lang in LOCALES {
                let pair = grammars.get(lang, g.get_ref());
                if modes.voice && pair.is_none_or(|p| p.voice.is_none()) {
                    report.at(
                        g.span().start,
                        format!("grammar {}/{}.abnf is missing", lang.tag(), g.get_ref()),
                    );
                }
                if modes.dtmf && pair.is_none_or(|p| p.dtmf.is_none()) {
                    report.at(
                        g.span().start,
                        format!(
                            "grammar {}/{}_dtmf.abnf is missing",
                            lang.tag(),
                            g.get_ref()
                        ),
                    );
                }
            }
        }

        // A menu's values and keys.
        if let (Kind::Menu, Some(g)) = (&kind, s.grammar.as_ref()) {
            let mut values = BTreeSet::new();
            let mut complete = true;
            for lang in LOCALES {
                let Some(pair) = grammars.get(lang, g.get_ref()) else {
                    continue;
                };
                for grammar in pair.voice.iter().chain(pair.dtmf.iter()) {
                    complete &= grammar.phrases_complete();
                    values.extend(grammar.phrases().iter().map(|p| p.value.to_string()));
                }
                if let Some(dtmf) = &pair.dtmf {
                    for phrase in dtmf.phrases() {
                        let key = phrase.surface.trim();
                        for (global, meaning) in GLOBAL_KEYS {
                            let value = phrase.value.to_string();
                            if key == global.to_string() && value != meaning {
                                report.at(
                                    g.span().start,
                                    format!(
                                        "key {global} of grammar {}/{}_dtmf.abnf means `{value}`, but {global} is the global key for {meaning}",
                                        lang.tag(),
                                        g.get_ref()
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            for k in s.on.keys() {
                if complete && !values.is_empty() && !values.contains(k.get_ref()) {
                    report.at(
                        k.span().start,
                        format!(
                            "grammar {} never gives `{}` (it gives: {})",
                            g.get_ref(),
                            k.get_ref(),
                            values.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
            if s.next.is_none() {
                for v in &values {
                    // A global meaning (operator) is handled by the engine anyway.
                    if !s.on.keys().any(|k| k.get_ref() == v)
                        && !GLOBAL_KEYS.iter().any(|(_, m)| m == v)
                    {
                        report.at(
                            at,
                            format!(
                                "value `{v}` of grammar {} leads nowhere: add it to `on` or give the state a `next`",
                                g.get_ref()
                            ),
                        );
                    }
                }
            }
        }

        let requires = match &s.requires {
            Some(r) if r.get_ref() == "caller" => {
                if s.otherwise.is_none() {
                    report.at(r.span().start, "`requires` needs an `otherwise` target");
                }
                Some(r.get_ref().clone())
            }
            Some(r) => {
                report.at(
                    r.span().start,
                    format!(
                        "requires must be `caller` (the only known fact), not `{}`",
                        r.get_ref()
                    ),
                );
                None
            }
            None => {
                if let Some(o) = &s.otherwise {
                    report.at(o.span().start, "`otherwise` applies only with `requires`");
                }
                None
            }
        };

        states.push(State {
            name: name.get_ref().clone(),
            kind,
            say: s.say.iter().map(|p| p.get_ref().clone()).collect(),
            grammar: s.grammar.as_ref().map(|g| g.get_ref().clone()),
            on,
            next,
            slot: s.slot.as_ref().map(|v| v.get_ref().clone()),
            modes,
            no_input: s
                .no_input
                .as_ref()
                .and_then(|v| seconds(&mut report, v, "no_input")),
            warn: s.warn.as_ref().is_some_and(|w| *w.get_ref()),
            barge_in: s.barge_in.as_ref().is_none_or(|b| *b.get_ref()),
            requires,
            otherwise,
            resumable: s.resumable.as_ref().is_some_and(|r| *r.get_ref()),
            line,
        });
    }

    // Every state must be reachable from the start or one of the states the engine enters
    // by itself.
    if !states.is_empty() && states.len() == file.state.len() {
        let mut seen = vec![false; states.len()];
        let mut queue: VecDeque<StateId> = [start, main, emergency, operator]
            .into_iter()
            .chain(language)
            .filter(|&id| id < states.len())
            .collect();
        while let Some(id) = queue.pop_front() {
            if std::mem::replace(&mut seen[id], true) {
                continue;
            }
            let st = &states[id];
            for t in st
                .on
                .values()
                .chain(st.next.iter())
                .chain(st.otherwise.iter())
            {
                if let Target::State(to) = t {
                    queue.push_back(*to);
                }
            }
        }
        for (id, st) in states.iter().enumerate() {
            if !seen[id] {
                let offset = file.state.keys().nth(id).map_or(0, |k| k.span().start);
                report.at(offset, format!("state `{}` is never reached", st.name));
            }
        }
    }

    if !report.problems.is_empty() {
        report
            .problems
            .sort_by(|a, b| (&a.origin, a.line, a.column).cmp(&(&b.origin, b.line, b.column)));
        return Err(FlowError {
            problems: report.problems,
        });
    }
    Ok(Flow {
        states,
        settings: Settings {
            start,
            main,
            language,
            emergency,
            operator,
            operator_target: operator_target
                .map(|t| t.get_ref().trim().to_string())
                .unwrap_or_default(),
            hours,
            no_input,
            inter_digit,
            warn_grace,
            more_time,
            max_retries,
            confirm_below,
            reject_below,
        },
        prompts,
        grammars,
        origin: origin.to_string(),
    })
}
