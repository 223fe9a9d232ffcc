//! Compiled grammars and matching of what the recogniser heard against them.
//!
//! Owns [`Grammar`] (a validated, compiled ABNF grammar), its semantic values ([`Semantic`]),
//! match results with a confidence ([`MatchResult`]) and the accept/confirm/reject decision
//! ([`Thresholds`], [`Decision`]). No IO apart from [`Grammar::load`]; no clock, no threads.
//!
//! Driving it: build a grammar once (`Grammar::load(path)` or `Grammar::parse(text, origin)`),
//! then for each transcript call [`Grammar::recognize`] (or [`recognize_all`] over the active
//! grammars) with the recogniser's confidence in [0, 1]; take the first result and
//! [`MatchResult::decide`] whether to act, confirm or reprompt.
//!
//! Matching, in order:
//! 1. the transcript is normalised for the grammar's language ([`crate::lang::normalize`]);
//! 2. exact parse of the whole word sequence against the root rule (backtracking over the
//!    grammar, `$GARBAGE` absorbing any run of words), first with every word, then with filler
//!    words removed; the value comes from the tags of the derivation with the highest weight;
//! 3. tolerant match: the finite language of the grammar is enumerated once at compile time
//!    (repeats without a maximum are expanded to at most [`UNBOUNDED_REPEAT_EXTRA`] more than
//!    their minimum, no repeat beyond [`MAX_PHRASE_WORDS`] iterations, phrases of at most
//!    [`MAX_PHRASE_WORDS`] words, at most [`PHRASE_LIMIT`] phrases, first alternatives first;
//!    [`Grammar::phrases_complete`] says whether anything was cut), and a word-level edit
//!    distance is taken between the filler-free transcript and each phrase: a missing grammar
//!    word costs 1, an extra heard word 0.5, a substituted word 1.5 unless the words are close
//!    (a digit and its homophone costs 0.15; two words within 40 % character edit distance
//!    cost 1.5 times that ratio). `match_score = 1 - cost / worst_cost`, in [0, 1], where the worst cost misses
//!    every grammar word and (without `$GARBAGE` in the phrase) adds every heard word. With
//!    `$GARBAGE` (keyword spotting) the score is squared, as partial spots are weak evidence.
//!
//! `confidence = recogniser_confidence × match_score` (an exact parse scores 1).
//!
//! Semantics: each rule has a value. Tags assign it (`out = "x"`, `out.slot = "x"`,
//! `out.slot = $rule`); a rule that assigns nothing is worth the value of the latest rule it
//! referenced, or, if it referenced none, the words it matched, joined by spaces. `$rule` in
//! a tag is the value of the latest match of that rule within the current rule.
//!
//! Limits keep matching bounded on any input: see [`MAX_RULES`], [`MAX_REFERENCE_DEPTH`],
//! [`crate::MAX_NESTING`] and [`crate::MAX_REPEAT`]; an exact parse keeps at most 512 partial
//! derivations per step, so very ambiguous grammars over long input may miss a parse.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::ast::{Expansion, GrammarFile, Mode, Scope, TagValue};
use crate::error::{Error, Position, Result};
use crate::lang::{self, Lang};

/// At most this many phrases are enumerated per grammar for tolerant matching.
pub const PHRASE_LIMIT: usize = 4096;
/// A repeat without maximum (`<m->`) is enumerated up to `m + UNBOUNDED_REPEAT_EXTRA` times.
pub const UNBOUNDED_REPEAT_EXTRA: u32 = 2;
/// Enumerated phrases stop growing at this many words (longer ones are useless as hints).
pub const MAX_PHRASE_WORDS: usize = 32;
/// The most rules a grammar may define.
pub const MAX_RULES: usize = 1000;
/// The longest chain of rule references (`$a` using `$b` using `$c` ...) accepted.
pub const MAX_REFERENCE_DEPTH: usize = 16;
/// At most this many partial derivations are kept at each step of an exact parse.
const PARSE_LIMIT: usize = 512;

const COST_DELETE: f32 = 1.0;
const COST_INSERT: f32 = 0.5;
const COST_SUBSTITUTE: f32 = COST_DELETE + COST_INSERT;
const COST_HOMOPHONE: f32 = 0.15;
const NEAR_MISS_RATIO: f32 = 0.4;

/// The meaning of a match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Semantic {
    /// A plain value: a tag's literal, or the words a rule matched.
    Text(String),
    /// Named slots, from `out.slot = ...` tags.
    Slots(BTreeMap<String, Semantic>),
}

impl Semantic {
    /// The text of a plain value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Semantic::Text(t) => Some(t),
            Semantic::Slots(_) => None,
        }
    }

    /// A slot of a structured value.
    pub fn slot(&self, name: &str) -> Option<&Semantic> {
        match self {
            Semantic::Slots(slots) => slots.get(name),
            Semantic::Text(_) => None,
        }
    }
}

impl fmt::Display for Semantic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Semantic::Text(t) => f.write_str(t),
            Semantic::Slots(slots) => {
                f.write_str("{")?;
                for (i, (k, v)) in slots.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// One interpretation of what the caller said or keyed.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchResult {
    /// The meaning.
    pub value: Semantic,
    /// For an exact parse, the normalised words that matched; for a tolerant match, the words
    /// of the grammar phrase the transcript was closest to.
    pub words: Vec<String>,
    /// How well the words fit the grammar, in [0, 1]; 1 for an exact parse.
    pub match_score: f32,
    /// The recogniser's confidence times `match_score`, in [0, 1].
    pub confidence: f32,
    /// The origin of the grammar that matched (its path, usually).
    pub grammar: String,
}

impl MatchResult {
    /// What to do with this result under `thresholds`.
    pub fn decide(&self, thresholds: &Thresholds) -> Decision {
        thresholds.decide(self.confidence)
    }
}

/// What the dialog should do with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// Confident enough: act on it.
    Accept,
    /// Plausible: ask the caller to confirm ("Did you say complaint?").
    Confirm,
    /// Too weak: treat as no match.
    Reject,
}

/// Confidence thresholds for [`Decision`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Below this (and not below `reject_below`) a match is confirmed. Default 0.8.
    pub confirm_below: f32,
    /// Below this a match is rejected. Default 0.45.
    pub reject_below: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            confirm_below: 0.8,
            reject_below: 0.45,
        }
    }
}

impl Thresholds {
    /// The decision for a confidence in [0, 1] (NaN rejects).
    pub fn decide(&self, confidence: f32) -> Decision {
        if confidence.is_nan() || confidence < self.reject_below {
            Decision::Reject
        } else if confidence < self.confirm_below {
            Decision::Confirm
        } else {
            Decision::Accept
        }
    }
}

/// Options of [`Grammar::recognize`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchOptions {
    /// The most results returned. Default 3.
    pub n_best: usize,
    /// Tolerant matches scoring below this are dropped. Default 0.5.
    pub min_score: f32,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            n_best: 3,
            min_score: 0.5,
        }
    }
}

/// One word of an enumerated phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhraseWord {
    /// A normalised word (a key in DTMF grammars).
    Word(String),
    /// `$GARBAGE`: any run of words.
    Garbage,
}

/// One sentence of a grammar's language, with its meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Phrase {
    /// The normalised words.
    pub words: Vec<PhraseWord>,
    /// The tokens as written in the grammar, joined by spaces (no `$GARBAGE`).
    pub surface: String,
    /// The meaning.
    pub value: Semantic,
    /// The product of the weights of the alternatives taken.
    pub weight: f32,
}

/// A validated, compiled grammar.
#[derive(Debug, Clone)]
pub struct Grammar {
    origin: String,
    file: GrammarFile,
    lang: Lang,
    root: usize,
    rules: Vec<Node>,
    phrases: Vec<Phrase>,
    complete: bool,
}

/// A compiled expansion: rule references resolved, tokens normalised.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Words { surface: String, words: Vec<String> },
    Ref(usize),
    Null,
    Void,
    Garbage,
    Seq(Vec<Node>),
    Alt(Vec<(f32, Node)>),
    Repeat(Box<Node>, u32, Option<u32>),
    Tag(Vec<(Option<String>, Value)>),
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Literal(String),
    Rule(usize),
}

/// The semantic state of one rule while it is being matched.
#[derive(Debug, Clone, Default)]
struct Frame {
    out: Option<Semantic>,
    latest: Vec<(usize, Semantic)>,
}

impl Frame {
    fn apply(&mut self, assignments: &[(Option<String>, Value)]) {
        for (slot, value) in assignments {
            let v = match value {
                Value::Literal(s) => Semantic::Text(s.clone()),
                Value::Rule(r) => match self.latest.iter().rev().find(|(i, _)| i == r) {
                    Some((_, v)) => v.clone(),
                    // The rule did not match on this path (it was optional): nothing to assign.
                    None => continue,
                },
            };
            match slot {
                None => self.out = Some(v),
                Some(name) => {
                    if !matches!(self.out, Some(Semantic::Slots(_))) {
                        self.out = Some(Semantic::Slots(BTreeMap::new()));
                    }
                    if let Some(Semantic::Slots(slots)) = &mut self.out {
                        slots.insert(name.clone(), v);
                    }
                }
            }
        }
    }

    fn record(&mut self, rule: usize, value: Semantic) {
        self.latest.retain(|(r, _)| *r != rule);
        self.latest.push((rule, value));
    }

    /// The rule's value: what its tags assigned, else (as in SISR) the value of the latest
    /// rule it referenced, else the words it matched.
    fn value(mut self, words: &[String]) -> Semantic {
        match (self.out, self.latest.pop()) {
            (Some(out), _) => out,
            (None, Some((_, latest))) => latest,
            (None, None) => Semantic::Text(words.join(" ")),
        }
    }
}

impl Grammar {
    /// Parses and compiles ABNF text; `origin` names it in errors and results.
    pub fn parse(src: &str, origin: &str) -> Result<Grammar> {
        let file = crate::parse::parse(src, origin)?;
        Grammar::compile(file, origin)
    }

    /// Reads and compiles a grammar file.
    pub fn load(path: &Path) -> Result<Grammar> {
        let src = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Grammar::parse(&src, &path.display().to_string())
    }

    /// Loads every `*.abnf` file of a directory (say `grammars/en/`), in file-name order.
    pub fn load_dir(dir: &Path) -> Result<Vec<Grammar>> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "abnf") {
                paths.push(path);
            }
        }
        paths.sort();
        paths.iter().map(|p| Grammar::load(p)).collect()
    }

    /// Validates and compiles a parsed grammar. The root is the declared `root`, else the
    /// first public rule, else the first rule; a grammar without `language` is English.
    pub fn compile(file: GrammarFile, origin: &str) -> Result<Grammar> {
        let lang = match &file.language {
            None => Lang::En,
            Some((tag, at)) => Lang::from_tag(tag).ok_or_else(|| Error::Unsupported {
                at: at.clone(),
                what: format!("language `{tag}` (supported: en, mn)"),
            })?,
        };
        if file.rules.is_empty() {
            return Err(Error::NoRules {
                at: Position {
                    origin: origin.to_string(),
                    line: 1,
                    column: 1,
                },
            });
        }
        if let Some(rule) = file.rules.get(MAX_RULES) {
            return Err(Error::Unsupported {
                at: rule.at.clone(),
                what: format!("more than {MAX_RULES} rules"),
            });
        }
        let mut names: Vec<&str> = Vec::new();
        for rule in &file.rules {
            if names.contains(&rule.name.as_str()) {
                return Err(Error::DuplicateRule {
                    at: rule.at.clone(),
                    name: rule.name.clone(),
                });
            }
            names.push(&rule.name);
        }
        let index = |name: &str, at: &Position| {
            names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| Error::UndefinedRule {
                    at: at.clone(),
                    name: name.to_string(),
                })
        };
        let mut rules = Vec::with_capacity(file.rules.len());
        for rule in &file.rules {
            rules.push(compile_node(&rule.body, file.mode, lang, &index)?);
        }
        let root = match &file.root {
            Some((name, at)) => index(name, at)?,
            None => file
                .rules
                .iter()
                .position(|r| r.scope == Scope::Public)
                .unwrap_or(0),
        };
        // Recursion check: depth-first search over rule references.
        let mut state = vec![0u8; rules.len()]; // 0 unvisited, 1 on stack, 2 done
        for start in 0..rules.len() {
            if let Some(r) = find_cycle(start, &rules, &mut state) {
                let rule = &file.rules[r];
                return Err(Error::RecursiveRule {
                    at: rule.at.clone(),
                    name: rule.name.clone(),
                });
            }
        }
        let mut depths = vec![None; rules.len()];
        for r in 0..rules.len() {
            if reference_depth(r, &rules, &mut depths) > MAX_REFERENCE_DEPTH {
                return Err(Error::Unsupported {
                    at: file.rules[r].at.clone(),
                    what: format!("rule references nested deeper than {MAX_REFERENCE_DEPTH}"),
                });
            }
        }
        let mut g = Grammar {
            origin: origin.to_string(),
            file,
            lang,
            root,
            rules,
            phrases: Vec::new(),
            complete: true,
        };
        let mut truncated = false;
        let enumerated = g.enumerate(&g.rules[g.root], &mut truncated);
        g.phrases = enumerated
            .into_iter()
            .map(|p| {
                let words: Vec<String> = p.words.iter().filter_map(word_text).collect();
                Phrase {
                    value: p.frame.value(&words),
                    words: p.words,
                    surface: p.surface.join(" "),
                    weight: p.weight,
                }
            })
            .collect();
        g.complete = !truncated;
        Ok(g)
    }

    /// Where the grammar came from, as given to `parse` or `load`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The language words are normalised for (English when undeclared).
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// Voice or DTMF.
    pub fn mode(&self) -> Mode {
        self.file.mode
    }

    /// The name of the root rule, without `$`.
    pub fn root_name(&self) -> &str {
        &self.file.rules[self.root].name
    }

    /// The syntax tree it was compiled from.
    pub fn syntax(&self) -> &GrammarFile {
        &self.file
    }

    /// The enumerated phrases of the root rule (see the module docs for the bounds).
    pub fn phrases(&self) -> &[Phrase] {
        &self.phrases
    }

    /// Whether [`Grammar::phrases`] holds the whole language (false when it was cut at
    /// [`PHRASE_LIMIT`] or has unbounded repeats).
    pub fn phrases_complete(&self) -> bool {
        self.complete
    }

    pub(crate) fn root_index(&self) -> usize {
        self.root
    }

    pub(crate) fn nodes(&self) -> &[Node] {
        &self.rules
    }

    /// Splits input into the grammar's words: normalised text for voice grammars, one word per
    /// key for DTMF grammars (whitespace ignored; `None` if a character is not a key).
    pub fn words_of(&self, heard: &str) -> Option<Vec<String>> {
        match self.file.mode {
            Mode::Voice => Some(lang::normalize(self.lang, heard)),
            Mode::Dtmf => heard
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| is_dtmf_key(c).then(|| c.to_ascii_uppercase().to_string()))
                .collect(),
        }
    }

    /// Exact parse of already-normalised words against the root rule: the value and score 1, or
    /// `None` when the grammar does not cover the words.
    pub fn parse_words(&self, words: &[String]) -> Option<Semantic> {
        let ends = self.derive(&self.rules[self.root], words, 0, Frame::default());
        ends.into_iter()
            .filter(|(end, _, _)| *end == words.len())
            .fold(None::<(f32, Frame)>, |best, (_, frame, w)| match best {
                Some((bw, _)) if bw >= w => best,
                _ => Some((w, frame)),
            })
            .map(|(_, frame)| frame.value(words))
    }

    /// Interprets what the caller said (or keyed, for DTMF grammars), best first. Empty when
    /// nothing fits. `recogniser_confidence` is clamped to [0, 1] (NaN counts as 0).
    pub fn recognize(
        &self,
        heard: &str,
        recogniser_confidence: f32,
        options: &MatchOptions,
    ) -> Vec<MatchResult> {
        let conf = if recogniser_confidence.is_nan() {
            0.0
        } else {
            recogniser_confidence.clamp(0.0, 1.0)
        };
        let Some(words) = self.words_of(heard) else {
            return Vec::new();
        };
        if words.is_empty() || options.n_best == 0 {
            return Vec::new();
        }
        let result = |value: Semantic, words: Vec<String>, score: f32| MatchResult {
            value,
            words,
            match_score: score,
            confidence: conf * score,
            grammar: self.origin.clone(),
        };
        let mut out: Vec<MatchResult> = Vec::new();
        if let Some(value) = self.parse_words(&words) {
            out.push(result(value, words.clone(), 1.0));
        }
        if self.file.mode == Mode::Dtmf {
            return out;
        }
        let content = lang::strip_fillers(self.lang, &words);
        if out.is_empty() && !content.is_empty() {
            if let Some(value) = self.parse_words(&content) {
                out.push(result(value, content.clone(), 1.0));
            }
        }
        if content.is_empty() {
            return out;
        }
        let mut scored: Vec<(f32, f32, usize)> = self
            .phrases
            .iter()
            .enumerate()
            .filter(|(_, p)| p.words.iter().any(|w| matches!(w, PhraseWord::Word(_))))
            .map(|(i, p)| (phrase_score(self.lang, &content, &p.words), p.weight, i))
            .filter(|(s, _, _)| *s >= options.min_score)
            .collect();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(b.1.total_cmp(&a.1))
                .then(a.2.cmp(&b.2))
        });
        for (score, _, i) in scored {
            if out.len() >= options.n_best {
                break;
            }
            let phrase = &self.phrases[i];
            if out.iter().any(|r| r.value == phrase.value) {
                continue;
            }
            let words = phrase.words.iter().filter_map(word_text).collect();
            out.push(result(phrase.value.clone(), words, score));
        }
        out.truncate(options.n_best);
        out
    }

    /// All ways `node` can match `words` from `pos`: end position, frame, weight.
    fn derive(
        &self,
        node: &Node,
        words: &[String],
        pos: usize,
        frame: Frame,
    ) -> Vec<(usize, Frame, f32)> {
        match node {
            Node::Words { words: ws, .. } => {
                if words.len() >= pos + ws.len() && words[pos..pos + ws.len()] == ws[..] {
                    vec![(pos + ws.len(), frame, 1.0)]
                } else {
                    Vec::new()
                }
            }
            Node::Ref(r) => {
                let mut out = Vec::new();
                for (end, sub, w) in self.derive(&self.rules[*r], words, pos, Frame::default()) {
                    let mut f = frame.clone();
                    f.record(*r, sub.value(&words[pos..end]));
                    out.push((end, f, w));
                }
                out
            }
            Node::Null => vec![(pos, frame, 1.0)],
            Node::Void => Vec::new(),
            Node::Garbage => (pos..=words.len())
                .map(|end| (end, frame.clone(), 1.0))
                .collect(),
            Node::Seq(items) => {
                let mut states = vec![(pos, frame, 1.0)];
                for item in items {
                    let mut next = Vec::new();
                    for (p, f, w) in states {
                        for (e, f2, w2) in self.derive(item, words, p, f) {
                            next.push((e, f2, w * w2));
                        }
                    }
                    next.truncate(PARSE_LIMIT);
                    states = next;
                    if states.is_empty() {
                        break;
                    }
                }
                states
            }
            Node::Alt(alts) => {
                let mut out = Vec::new();
                for (weight, alt) in alts {
                    for (e, f, w) in self.derive(alt, words, pos, frame.clone()) {
                        out.push((e, f, w * weight));
                    }
                }
                out.truncate(PARSE_LIMIT);
                out
            }
            Node::Repeat(item, min, max) => {
                let mut out = Vec::new();
                let mut current = vec![(pos, frame, 1.0f32)];
                let limit = max
                    .unwrap_or(u32::MAX)
                    .min(min.saturating_add(u32::try_from(words.len()).unwrap_or(u32::MAX)));
                let mut count = 0u32;
                loop {
                    if count >= *min {
                        out.extend(current.iter().cloned());
                    }
                    if count >= limit || current.is_empty() {
                        break;
                    }
                    let mut next = Vec::new();
                    for (p, f, w) in current {
                        for (e, f2, w2) in self.derive(item, words, p, f) {
                            // Past the minimum, an iteration must consume words, or it loops.
                            if count < *min || e > p {
                                next.push((e, f2, w * w2));
                            }
                        }
                    }
                    next.truncate(PARSE_LIMIT);
                    current = next;
                    count += 1;
                }
                out.truncate(PARSE_LIMIT);
                out
            }
            Node::Tag(assignments) => {
                let mut f = frame;
                f.apply(assignments);
                vec![(pos, f, 1.0)]
            }
        }
    }

    /// The phrases `node` generates, at most [`PHRASE_LIMIT`]; sets `truncated` when cut.
    fn enumerate(&self, node: &Node, truncated: &mut bool) -> Vec<Partial> {
        self.enumerate_from(node, vec![Partial::default()], truncated)
    }

    fn enumerate_from(
        &self,
        node: &Node,
        prefixes: Vec<Partial>,
        truncated: &mut bool,
    ) -> Vec<Partial> {
        let cap = |mut v: Vec<Partial>, truncated: &mut bool| {
            if v.len() > PHRASE_LIMIT {
                v.truncate(PHRASE_LIMIT);
                *truncated = true;
            }
            v
        };
        match node {
            Node::Words { surface, words } => prefixes
                .into_iter()
                .map(|mut p| {
                    p.words.extend(words.iter().cloned().map(PhraseWord::Word));
                    p.surface.push(surface.clone());
                    p
                })
                .collect(),
            Node::Ref(r) => {
                let subs = self.enumerate(&self.rules[*r], truncated);
                let mut out = Vec::new();
                for p in &prefixes {
                    for s in &subs {
                        let mut q = p.clone();
                        let sub_words: Vec<String> = s.words.iter().filter_map(word_text).collect();
                        q.frame.record(*r, s.frame.clone().value(&sub_words));
                        q.words.extend(s.words.iter().cloned());
                        q.surface.extend(s.surface.iter().cloned());
                        q.weight *= s.weight;
                        out.push(q);
                        if out.len() > PHRASE_LIMIT {
                            return cap(out, truncated);
                        }
                    }
                }
                out
            }
            Node::Null => prefixes,
            Node::Void => Vec::new(),
            Node::Garbage => prefixes
                .into_iter()
                .map(|mut p| {
                    p.words.push(PhraseWord::Garbage);
                    p
                })
                .collect(),
            Node::Seq(items) => {
                let mut states = prefixes;
                for item in items {
                    states = self.enumerate_from(item, states, truncated);
                }
                states
            }
            Node::Alt(alts) => {
                let mut out = Vec::new();
                for (weight, alt) in alts {
                    if out.len() >= PHRASE_LIMIT {
                        *truncated = true;
                        break;
                    }
                    let mut branch = self.enumerate_from(alt, prefixes.clone(), truncated);
                    for b in &mut branch {
                        b.weight *= weight;
                    }
                    out.extend(branch);
                }
                cap(out, truncated)
            }
            Node::Repeat(item, min, max) => {
                let limit = match max {
                    Some(m) => *m,
                    None => {
                        *truncated = true;
                        min.saturating_add(UNBOUNDED_REPEAT_EXTRA)
                    }
                };
                // More iterations than a phrase has words only repeat an item that matched
                // nothing, or make phrases too long to keep.
                let words_bound = u32::try_from(MAX_PHRASE_WORDS).unwrap_or(u32::MAX);
                if limit > words_bound {
                    *truncated = true;
                }
                let limit = limit.min(words_bound);
                let mut out = Vec::new();
                let mut current = prefixes;
                for count in 0..=limit {
                    if count >= *min {
                        out.extend(current.iter().cloned());
                        if out.len() > PHRASE_LIMIT {
                            return cap(out, truncated);
                        }
                    }
                    if count == limit {
                        break;
                    }
                    current = self.enumerate_from(item, current, truncated);
                    let before = current.len();
                    current.retain(|p| p.words.len() <= MAX_PHRASE_WORDS);
                    if current.len() < before {
                        *truncated = true;
                    }
                    if current.is_empty() {
                        break;
                    }
                }
                cap(out, truncated)
            }
            Node::Tag(assignments) => prefixes
                .into_iter()
                .map(|mut p| {
                    p.frame.apply(assignments);
                    p
                })
                .collect(),
        }
    }
}

/// Interprets a transcript against several active grammars (say the menu's and the global
/// commands), best first by confidence; on equal confidence the earlier grammar wins.
pub fn recognize_all(
    grammars: &[&Grammar],
    heard: &str,
    recogniser_confidence: f32,
    options: &MatchOptions,
) -> Vec<MatchResult> {
    let mut all: Vec<MatchResult> = grammars
        .iter()
        .flat_map(|g| g.recognize(heard, recogniser_confidence, options))
        .collect();
    all.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    all.truncate(options.n_best);
    all
}

#[derive(Debug, Clone)]
struct Partial {
    words: Vec<PhraseWord>,
    surface: Vec<String>,
    frame: Frame,
    weight: f32,
}

impl Default for Partial {
    fn default() -> Self {
        Partial {
            words: Vec::new(),
            surface: Vec::new(),
            frame: Frame::default(),
            weight: 1.0,
        }
    }
}

fn word_text(w: &PhraseWord) -> Option<String> {
    match w {
        PhraseWord::Word(s) => Some(s.clone()),
        PhraseWord::Garbage => None,
    }
}

/// Whether `c` is a DTMF key.
pub(crate) fn is_dtmf_key(c: char) -> bool {
    c.is_ascii_digit() || matches!(c.to_ascii_uppercase(), '*' | '#' | 'A'..='D')
}

fn compile_node(
    e: &Expansion,
    mode: Mode,
    lang: Lang,
    index: &dyn Fn(&str, &Position) -> Result<usize>,
) -> Result<Node> {
    Ok(match e {
        Expansion::Token { text, at } => {
            let words = match mode {
                Mode::Voice => lang::normalize(lang, text),
                Mode::Dtmf => {
                    let mut keys = Vec::new();
                    for c in text.chars().filter(|c| !c.is_whitespace()) {
                        if !is_dtmf_key(c) {
                            return Err(Error::NotDtmfKey {
                                at: at.clone(),
                                token: text.clone(),
                            });
                        }
                        keys.push(c.to_ascii_uppercase().to_string());
                    }
                    keys
                }
            };
            Node::Words {
                surface: text.clone(),
                words,
            }
        }
        Expansion::RuleRef { name, at } => Node::Ref(index(name, at)?),
        Expansion::Null => Node::Null,
        Expansion::Void => Node::Void,
        Expansion::Garbage => Node::Garbage,
        Expansion::Sequence(items) => Node::Seq(
            items
                .iter()
                .map(|i| compile_node(i, mode, lang, index))
                .collect::<Result<_>>()?,
        ),
        Expansion::Alternatives(alts) => Node::Alt(
            alts.iter()
                .map(|a| Ok((a.weight, compile_node(&a.expansion, mode, lang, index)?)))
                .collect::<Result<_>>()?,
        ),
        Expansion::Repeat { item, min, max } => {
            Node::Repeat(Box::new(compile_node(item, mode, lang, index)?), *min, *max)
        }
        Expansion::Tag(assignments) => Node::Tag(
            assignments
                .iter()
                .map(|a| {
                    let value = match &a.value {
                        TagValue::Literal(s) => Value::Literal(s.clone()),
                        TagValue::Rule { name, at } => Value::Rule(index(name, at)?),
                    };
                    Ok((a.slot.clone(), value))
                })
                .collect::<Result<_>>()?,
        ),
    })
}

fn refs(node: &Node, out: &mut Vec<usize>) {
    match node {
        Node::Ref(r) => out.push(*r),
        Node::Seq(items) => items.iter().for_each(|i| refs(i, out)),
        Node::Alt(alts) => alts.iter().for_each(|(_, a)| refs(a, out)),
        Node::Repeat(item, _, _) => refs(item, out),
        Node::Words { .. } | Node::Null | Node::Void | Node::Garbage | Node::Tag(_) => {}
    }
}

/// How many rules deep references from `r` go (1 for a rule without references). Only called
/// on grammars without cycles.
fn reference_depth(r: usize, rules: &[Node], memo: &mut [Option<usize>]) -> usize {
    if let Some(d) = memo[r] {
        return d;
    }
    let mut next = Vec::new();
    refs(&rules[r], &mut next);
    let d = 1 + next
        .into_iter()
        .map(|n| reference_depth(n, rules, memo))
        .max()
        .unwrap_or(0);
    memo[r] = Some(d);
    d
}

/// A rule on a reference cycle reachable from `r`, if any.
fn find_cycle(r: usize, rules: &[Node], state: &mut [u8]) -> Option<usize> {
    match state[r] {
        1 => return Some(r),
        2 => return None,
        _ => {}
    }
    state[r] = 1;
    let mut next = Vec::new();
    refs(&rules[r], &mut next);
    for n in next {
        if let Some(c) = find_cycle(n, rules, state) {
            return Some(c);
        }
    }
    state[r] = 2;
    None
}

/// Match score in [0, 1] of heard words against a phrase (see the module docs).
fn phrase_score(lang: Lang, heard: &[String], phrase: &[PhraseWord]) -> f32 {
    let n = heard.len();
    let m = phrase.len();
    let phrase_words = phrase
        .iter()
        .filter(|w| matches!(w, PhraseWord::Word(_)))
        .count();
    // With `$GARBAGE` any heard word may be absorbed for free, so only the grammar's own words
    // can be missed.
    let worst = if phrase_words < m {
        phrase_words as f32 * COST_DELETE
    } else {
        phrase_words as f32 * COST_DELETE + n as f32 * COST_INSERT
    };
    if worst == 0.0 {
        return 1.0;
    }
    // d[i][j]: cost of aligning heard[..i] with phrase[..j]; rolling rows.
    let mut prev = vec![0.0f32; m + 1];
    for j in 1..=m {
        prev[j] = prev[j - 1]
            + match &phrase[j - 1] {
                PhraseWord::Word(_) => COST_DELETE,
                PhraseWord::Garbage => 0.0,
            };
    }
    let mut row = vec![0.0f32; m + 1];
    for i in 1..=n {
        row[0] = prev[0] + COST_INSERT;
        for j in 1..=m {
            row[j] = match &phrase[j - 1] {
                PhraseWord::Garbage => row[j - 1].min(prev[j]),
                PhraseWord::Word(p) => (prev[j] + COST_INSERT)
                    .min(row[j - 1] + COST_DELETE)
                    .min(prev[j - 1] + substitution_cost(lang, &heard[i - 1], p)),
            };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    let score = (1.0 - prev[m] / worst).clamp(0.0, 1.0);
    if phrase_words < m {
        // Keyword spotting is loose (a common word of a phrase is easily found in any
        // sentence), so a partial spot scores much lower than a partial whole-phrase match.
        score * score
    } else {
        score
    }
}

fn substitution_cost(lang: Lang, heard: &str, expected: &str) -> f32 {
    if heard == expected {
        return 0.0;
    }
    if lang::is_digit_homophone(lang, heard, expected) {
        return COST_HOMOPHONE;
    }
    let is_number = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if is_number(heard) || is_number(expected) {
        return COST_SUBSTITUTE;
    }
    let a: Vec<char> = heard.chars().collect();
    let b: Vec<char> = expected.chars().collect();
    let ratio = levenshtein(&a, &b) as f32 / a.len().max(b.len()) as f32;
    if ratio <= NEAR_MISS_RATIO {
        COST_SUBSTITUTE * ratio
    } else {
        COST_SUBSTITUTE
    }
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            row[j + 1] = (prev[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev[j] + usize::from(ca != cb));
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE_TYPE: &str = r#"#ABNF 1.0 UTF-8;
language en;
root $case_type;
public $case_type = $kind [please];
$kind = (complaint | "a complaint" | one) {out = "complaint"}
      | (suggestion | request | two) {out = "suggestion"}
      | (petition | three) {out = "petition"}
      | (thanks | "thank you" | four) {out = "thanks"};
"#;

    fn grammar(src: &str) -> Grammar {
        Grammar::parse(src, "test.abnf").expect("test grammar compiles")
    }

    fn best(g: &Grammar, heard: &str) -> Option<MatchResult> {
        g.recognize(heard, 1.0, &MatchOptions::default())
            .into_iter()
            .next()
    }

    fn text(v: &Semantic) -> &str {
        v.as_text().expect("plain value")
    }

    #[test]
    fn exact_parse_returns_tag_value_and_words() {
        let g = grammar(CASE_TYPE);
        let r = best(&g, "A complaint, please.").expect("match");
        assert_eq!(text(&r.value), "complaint");
        assert_eq!(r.words, vec!["a", "complaint", "please"]);
        assert_eq!(r.match_score, 1.0);
        assert_eq!(text(&best(&g, "Two").expect("match").value), "suggestion");
        assert_eq!(text(&best(&g, "2").expect("match").value), "suggestion");
    }

    #[test]
    fn near_misses_match_tolerantly_with_lower_score() {
        let g = grammar(CASE_TYPE);
        let r = best(&g, "complain").expect("near miss matches");
        assert_eq!(text(&r.value), "complaint");
        assert!(
            r.match_score > 0.8 && r.match_score < 1.0,
            "score {}",
            r.match_score
        );
        let r = best(&g, "to").expect("homophone of two matches");
        assert_eq!(text(&r.value), "suggestion");
        assert!(r.match_score > 0.85, "score {}", r.match_score);
        let r = best(&g, "um I want to make a petition").expect("match inside a sentence");
        assert_eq!(text(&r.value), "petition");
    }

    #[test]
    fn unrelated_words_do_not_match() {
        let g = grammar(CASE_TYPE);
        assert!(best(&g, "banana").is_none());
        assert!(best(&g, "").is_none());
        assert!(best(&g, "um please").is_none());
    }

    #[test]
    fn operator_misspelling_matches() {
        let g = grammar("#ABNF 1.0;\nlanguage en;\npublic $g = operator {out=\"operator\"} | repeat {out=\"repeat\"};");
        let r = best(&g, "Operater.").expect("near miss");
        assert_eq!(text(&r.value), "operator");
        let d = r.decide(&Thresholds::default());
        assert_eq!(d, Decision::Accept, "score {}", r.match_score);
    }

    #[test]
    fn confidence_combines_recogniser_and_match() {
        let g = grammar(CASE_TYPE);
        let r = g.recognize("complain", 0.5, &MatchOptions::default());
        assert!((r[0].confidence - 0.5 * r[0].match_score).abs() < 1e-6);
        let r = g.recognize("petition", f32::NAN, &MatchOptions::default());
        assert_eq!(r[0].confidence, 0.0);
        assert_eq!(r[0].decide(&Thresholds::default()), Decision::Reject);
    }

    #[test]
    fn thresholds_decide_accept_confirm_reject() {
        let t = Thresholds {
            confirm_below: 0.8,
            reject_below: 0.4,
        };
        assert_eq!(t.decide(0.9), Decision::Accept);
        assert_eq!(t.decide(0.8), Decision::Accept);
        assert_eq!(t.decide(0.5), Decision::Confirm);
        assert_eq!(t.decide(0.1), Decision::Reject);
        assert_eq!(t.decide(f32::NAN), Decision::Reject);
    }

    #[test]
    fn n_best_lists_distinct_values() {
        let g = grammar(
            "#ABNF 1.0;\n$g = station {out=\"a\"} | nation {out=\"b\"} | ration {out=\"c\"};",
        );
        let r = g.recognize(
            "elation",
            1.0,
            &MatchOptions {
                n_best: 2,
                min_score: 0.1,
            },
        );
        assert_eq!(r.len(), 2);
        assert_ne!(r[0].value, r[1].value);
        assert!(r[0].match_score >= r[1].match_score);
    }

    #[test]
    fn slots_take_values_of_referenced_rules() {
        let g = grammar(
            "#ABNF 1.0;\nroot $req;\n$req = $kind about $topic {out.kind = $kind; out.topic = rules.topic};\n\
             $kind = complaint {out = \"complaint\"} | thanks {out = \"thanks\"};\n$topic = tax | \"birth certificate\";",
        );
        let r = best(&g, "Complaint about birth certificate").expect("match");
        assert_eq!(
            r.value.slot("kind"),
            Some(&Semantic::Text("complaint".into()))
        );
        assert_eq!(
            r.value.slot("topic"),
            Some(&Semantic::Text("birth certificate".into()))
        );
    }

    #[test]
    fn weights_choose_between_ambiguous_parses() {
        let g = grammar("#ABNF 1.0;\n$g = /1/ help {out=\"help\"} | /3/ help {out=\"emergency\"};");
        assert_eq!(text(&best(&g, "help").expect("match").value), "emergency");
    }

    #[test]
    fn garbage_spots_keywords_inside_speech() {
        let g =
            grammar("#ABNF 1.0;\n$e = $GARBAGE (ambulance | fire) $GARBAGE {out = \"emergency\"};");
        let r = best(&g, "my house is on fire now").expect("spotted");
        assert_eq!(r.match_score, 1.0);
        assert_eq!(text(&r.value), "emergency");
        assert!(best(&g, "my house").is_none());
    }

    #[test]
    fn repeats_and_optionals_parse() {
        let g = grammar("#ABNF 1.0;\n$g = [the] (ha)<2-3> $NULL;");
        assert!(g.parse_words(&["ha".into(), "ha".into()]).is_some());
        assert!(g
            .parse_words(&["the".into(), "ha".into(), "ha".into(), "ha".into()])
            .is_some());
        assert!(g.parse_words(&["ha".into()]).is_none());
        assert!(g.parse_words(&vec!["ha".to_string(); 4]).is_none());
        let open = grammar("#ABNF 1.0;\n$g = 1<1->;");
        assert!(open.parse_words(&vec!["1".to_string(); 12]).is_some());
        assert!(!open.phrases_complete());
    }

    #[test]
    fn void_never_matches() {
        let g = grammar("#ABNF 1.0;\n$g = yes | $VOID no;");
        assert!(best(&g, "yes").is_some());
        assert!(g.parse_words(&["no".into()]).is_none());
        assert_eq!(g.phrases().len(), 1);
    }

    #[test]
    fn mongolian_words_and_fillers() {
        let g = grammar("#ABNF 1.0 UTF-8;\nlanguage mn;\n$g = гомдол {out=\"complaint\"} | (өргөдөл | гурав) {out=\"petition\"};");
        assert_eq!(
            text(&best(&g, "Ээ, гомдол.").expect("match").value),
            "complaint"
        );
        assert_eq!(text(&best(&g, "3").expect("match").value), "petition");
        assert_eq!(text(&best(&g, "гурвыг").expect("match").value), "petition");
    }

    #[test]
    fn dtmf_grammars_match_keys_exactly() {
        let g = grammar("#ABNF 1.0;\nmode dtmf;\n$k = 1 {out=\"info\"} | 0 {out=\"operator\"} | \"*\" 9 {out=\"x\"};");
        assert_eq!(text(&best(&g, "1").expect("match").value), "info");
        assert_eq!(text(&best(&g, "*9").expect("match").value), "x");
        assert!(best(&g, "2").is_none());
        assert!(best(&g, "x").is_none());
    }

    #[test]
    fn invalid_grammars_are_errors_with_positions() {
        let err = |src: &str| {
            Grammar::parse(src, "g.abnf")
                .expect_err("invalid")
                .to_string()
        };
        assert_eq!(err("#ABNF 1.0;\n$a = $b;"), "g.abnf:2:6: undefined rule $b");
        assert_eq!(
            err("#ABNF 1.0;\n$a = x;\n$a = y;"),
            "g.abnf:3:1: rule $a is already defined"
        );
        assert_eq!(
            err("#ABNF 1.0;\n$a = x $b;\n$b = [$a];"),
            "g.abnf:2:1: rule $a is recursive"
        );
        assert_eq!(
            err("#ABNF 1.0;\nroot $z;\n$a = x;"),
            "g.abnf:2:6: undefined rule $z"
        );
        assert_eq!(
            err("#ABNF 1.0;\nmode dtmf;\n$a = 1 | x;"),
            "g.abnf:3:10: \"x\" is not a DTMF key"
        );
        assert_eq!(
            err("#ABNF 1.0;\nlanguage fr;"),
            "g.abnf:2:10: unsupported: language `fr` (supported: en, mn)"
        );
        assert_eq!(
            err("#ABNF 1.0;\n$a = x {out.k = $q};"),
            "g.abnf:2:17: undefined rule $q"
        );
        assert_eq!(
            err("#ABNF 1.0;\n"),
            "g.abnf:1:1: the grammar defines no rule"
        );
    }

    #[test]
    fn large_grammars_are_bounded_not_exhausting() {
        let g = grammar("#ABNF 1.0;\n$g = (0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9)<200>;");
        assert!(!g.phrases_complete());
        assert!(g.phrases().len() <= PHRASE_LIMIT);
        assert!(g.parse_words(&vec!["7".to_string(); 200]).is_some());
        let empty_loop = grammar("#ABNF 1.0;\n$g = [x]<255> y;");
        assert!(empty_loop.parse_words(&["y".to_string()]).is_some());
        let mut chain = String::from("#ABNF 1.0;\n");
        for i in 0..20 {
            chain.push_str(&format!("$r{i} = $r{} x;\n", i + 1));
        }
        chain.push_str("$r20 = x;\n");
        let err = Grammar::parse(&chain, "c").expect_err("too deep");
        assert_eq!(
            err.to_string(),
            "c:2:1: unsupported: rule references nested deeper than 16"
        );
    }

    #[test]
    fn recognize_all_prefers_the_better_grammar() {
        let menu = grammar(CASE_TYPE);
        let global =
            grammar("#ABNF 1.0;\n$g = operator {out=\"operator\"} | repeat {out=\"repeat\"};");
        let r = recognize_all(
            &[&menu, &global],
            "operator please",
            0.9,
            &MatchOptions::default(),
        );
        assert_eq!(text(&r[0].value), "operator");
        assert_eq!(r[0].grammar, "test.abnf");
        assert_eq!(r[0].confidence, 0.9);
    }
}
