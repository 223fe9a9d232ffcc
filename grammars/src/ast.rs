//! The typed syntax tree of an SRGS ABNF grammar, as the parser produces it.
//!
//! Plain data: no IO, no behaviour beyond construction. [`crate::Grammar`] validates and
//! compiles it; most callers never look at it.

use crate::error::Position;

/// A parsed grammar file.
#[derive(Debug, Clone, PartialEq)]
pub struct GrammarFile {
    /// The ABNF version from the header (`1.0`).
    pub version: String,
    /// The character encoding from the header, if given (`UTF-8`).
    pub encoding: Option<String>,
    /// The `language` declaration, if any (`en`, `mn-MN`), and where it was declared.
    pub language: Option<(String, Position)>,
    /// The `mode` declaration (`voice` when absent).
    pub mode: Mode,
    /// The `root` declaration, if any: rule name without `$`, and where it was declared.
    pub root: Option<(String, Position)>,
    /// The rules in source order.
    pub rules: Vec<Rule>,
}

/// What a grammar listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Spoken words, as transcribed by the recogniser.
    #[default]
    Voice,
    /// Telephone keys (`0`-`9`, `*`, `#`, `A`-`D`).
    Dtmf,
}

/// Whether a rule can be referenced from outside its grammar (kept for fidelity; this crate
/// has no cross-grammar references) or be a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// `public $rule = ...;`
    Public,
    /// `private $rule = ...;` or no scope keyword.
    Private,
}

/// One rule definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The name without `$`.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
    /// What it matches.
    pub body: Expansion,
    /// Where the definition starts.
    pub at: Position,
}

/// A rule expansion.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expansion {
    /// A token as written: a bare word (`operator`) or a quoted one (`"birth certificate"`,
    /// which may hold several words).
    Token {
        /// The text between the quotes, or the bare word.
        text: String,
        /// Where the token is.
        at: Position,
    },
    /// `$name`: a reference to a rule of the same grammar.
    RuleRef {
        /// The name without `$`.
        name: String,
        /// Where the reference is.
        at: Position,
    },
    /// `$NULL`: matches nothing, always succeeds.
    Null,
    /// `$VOID`: never matches.
    Void,
    /// `$GARBAGE`: any run of words (possibly empty).
    Garbage,
    /// Items in order.
    Sequence(Vec<Expansion>),
    /// `a | b | c`, each with its weight.
    Alternatives(Vec<Alternative>),
    /// `item<m-n>`, `item<m->`, `item<n>` or `[item]` (`<0-1>`).
    Repeat {
        /// What is repeated.
        item: Box<Expansion>,
        /// The least number of times.
        min: u32,
        /// The most, `None` for unbounded.
        max: Option<u32>,
    },
    /// `{ ... }`: semantic assignments run when the match passes this point.
    Tag(Vec<Assignment>),
}

/// One alternative of an [`Expansion::Alternatives`].
#[derive(Debug, Clone, PartialEq)]
pub struct Alternative {
    /// `/2.0/` before it; 1.0 when absent.
    pub weight: f32,
    /// What it matches.
    pub expansion: Expansion,
}

/// One statement of a tag: `out = v;` (slot `None`) or `out.slot = v;`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The slot of `out` assigned, or `None` for `out` itself.
    pub slot: Option<String>,
    /// The value assigned.
    pub value: TagValue,
}

/// The right-hand side of an [`Assignment`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TagValue {
    /// A string or number literal.
    Literal(String),
    /// `$name` or `rules.name`: the value of the latest match of that rule in this rule.
    Rule {
        /// The name without `$`.
        name: String,
        /// Where the reference is.
        at: Position,
    },
}
