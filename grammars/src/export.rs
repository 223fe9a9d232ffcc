//! What the recogniser gets from the active grammars: hint phrases and GBNF grammars.
//!
//! Owns [`hints`] (phrases to bias Whisper's initial prompt) and [`gbnf`] / [`compile_gbnf`]
//! (a grammar for whisper.cpp's grammar-constrained sampling, as GBNF text in the
//! llama.cpp/whisper.cpp syntax and as compiled rules mirroring whisper.cpp's
//! `whisper_grammar_element`). No IO, no clock.
//!
//! The GBNF accepts text the way Whisper writes it: every word may be preceded by a space
//! (Whisper's tokens start with one; the space is optional so the first word may lack it),
//! letters in either case, a digit either as the digit or spelled out in the grammar's language
//! ("2" or "two"), and one optional final punctuation mark. Apostrophes and other punctuation
//! inside words are not produced (words are normalised as in matching). `$GARBAGE` becomes any
//! run of characters other than `.`, `!` and `?`; `$VOID` a NUL character, which Whisper never
//! writes. Tags are dropped. DTMF grammars have no GBNF: [`gbnf`] of one accepts nothing but
//! a NUL character.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::ast::Mode;
use crate::grammar::{Grammar, Node};

/// At most this many hints are returned by [`hints`].
pub const HINT_LIMIT: usize = 48;

/// The phrases of the voice grammars, deduplicated (ignoring case), at most [`HINT_LIMIT`]:
/// first the first phrase of every meaning of every grammar, in the grammar's order (authors
/// write the usual word first; so each choice is hinted),
/// then the other phrases, shortest first. DTMF grammars and empty phrases contribute nothing.
pub fn hints(grammars: &[&Grammar]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut first: Vec<String> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    for g in grammars.iter().filter(|g| g.mode() == Mode::Voice) {
        let mut values = std::collections::HashSet::new();
        for p in g.phrases().iter().filter(|p| !p.surface.trim().is_empty()) {
            let phrase = p.surface.trim();
            if !seen.insert(phrase.to_lowercase()) {
                continue;
            }
            if values.insert(p.value.to_string()) {
                first.push(phrase.to_string());
            } else {
                rest.push(phrase.to_string());
            }
        }
    }
    first.sort_by_key(|p| p.chars().count());
    rest.sort_by_key(|p| p.chars().count());
    first.extend(rest);
    first.truncate(HINT_LIMIT);
    first
}

/// One element of a compiled GBNF rule, as whisper.cpp's `whisper_grammar_element` (the
/// discriminants are whisper.cpp's `whisper_gretype` values, see [`GrammarElement::raw`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrammarElement {
    /// End of a rule definition.
    End,
    /// Start of an alternative definition of the rule.
    Alternate,
    /// A reference to another rule, by index.
    RuleRef(u32),
    /// A character, or the start of a character class.
    Char(char),
    /// The start of an inverse character class (`[^a]`).
    CharNot(char),
    /// With the preceding `Char`/`CharAlt`, an inclusive range (`[a-z]`).
    CharRangeUpper(char),
    /// Another character of the class started by the preceding `Char`/`CharNot`.
    CharAlt(char),
}

impl GrammarElement {
    /// `(type, value)` as whisper.cpp's `whisper_grammar_element`: END 0, ALT 1, RULE_REF 2,
    /// CHAR 3, CHAR_NOT 4, CHAR_RNG_UPPER 5, CHAR_ALT 6; value a rule index or code point.
    pub fn raw(self) -> (u32, u32) {
        match self {
            GrammarElement::End => (0, 0),
            GrammarElement::Alternate => (1, 0),
            GrammarElement::RuleRef(r) => (2, r),
            GrammarElement::Char(c) => (3, u32::from(c)),
            GrammarElement::CharNot(c) => (4, u32::from(c)),
            GrammarElement::CharRangeUpper(c) => (5, u32::from(c)),
            GrammarElement::CharAlt(c) => (6, u32::from(c)),
        }
    }
}

/// A grammar for whisper.cpp: its text and its compiled rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gbnf {
    /// GBNF text, one rule per line, `root` first.
    pub text: String,
    /// Rule names, by index.
    pub names: Vec<String>,
    /// Compiled rules, by index; each ends with [`GrammarElement::End`].
    pub rules: Vec<Vec<GrammarElement>>,
    /// The index of the start rule (`root`).
    pub start: usize,
}

/// The GBNF text of a grammar (see [`compile_gbnf`]).
pub fn gbnf(grammar: &Grammar) -> String {
    compile_gbnf(grammar).text
}

/// Compiles a grammar's root rule to GBNF.
pub fn compile_gbnf(grammar: &Grammar) -> Gbnf {
    let mut b = Builder {
        grammar,
        rules: Vec::new(),
        by_rule: HashMap::new(),
        digits: HashMap::new(),
        space: None,
        garbage: None,
    };
    let root = b.new_rule("root".to_string());
    if grammar.mode() == Mode::Voice {
        let body = b.rule_ref(grammar.root_index());
        let space = b.space();
        let punct = b.add_rule(
            "punct".to_string(),
            vec![
                vec![Item::Class {
                    negated: false,
                    chars: vec!['.', '!', '?', ','],
                }],
                vec![],
            ],
        );
        // Whisper may end with a space-separated mark too.
        b.rules[root].1 = vec![vec![Item::Ref(body), Item::Ref(space), Item::Ref(punct)]];
    } else {
        b.rules[root].1 = vec![vec![Item::Char('\0')]];
    }
    let names: Vec<String> = b.rules.iter().map(|r| r.0.clone()).collect();
    let mut text = String::new();
    let mut rules = Vec::with_capacity(b.rules.len());
    for (name, alts) in &b.rules {
        let _ = write!(text, "{name} ::=");
        let mut elems = Vec::new();
        for (i, alt) in alts.iter().enumerate() {
            if i > 0 {
                text.push_str(" |");
                elems.push(GrammarElement::Alternate);
            }
            write_alt(&mut text, alt, &names);
            for item in alt {
                item.compile(&mut elems);
            }
        }
        text.push('\n');
        elems.push(GrammarElement::End);
        rules.push(elems);
    }
    Gbnf {
        text,
        names,
        rules,
        start: root,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Char(char),
    /// A letter in either case: lower, upper.
    Either(char, char),
    Class {
        negated: bool,
        chars: Vec<char>,
    },
    Ref(usize),
}

impl Item {
    fn compile(&self, out: &mut Vec<GrammarElement>) {
        match self {
            Item::Char(c) => out.push(GrammarElement::Char(*c)),
            Item::Either(a, b) => {
                out.extend([GrammarElement::Char(*a), GrammarElement::CharAlt(*b)])
            }
            Item::Class { negated, chars } => {
                for (i, c) in chars.iter().enumerate() {
                    out.push(match (i, negated) {
                        (0, true) => GrammarElement::CharNot(*c),
                        (0, false) => GrammarElement::Char(*c),
                        _ => GrammarElement::CharAlt(*c),
                    });
                }
            }
            Item::Ref(r) => out.push(GrammarElement::RuleRef(
                u32::try_from(*r).unwrap_or(u32::MAX),
            )),
        }
    }
}

/// Writes `c` as whisper.cpp's GBNF parser reads it inside a literal or a class (it knows the
/// escapes `\\`, `\"`, `\[`, `\]`, `\n` and `\xHH`; classes here never hold `-` or `^`).
fn escape(c: char, out: &mut String) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        ']' => out.push_str("\\]"),
        '[' => out.push_str("\\["),
        '\n' => out.push_str("\\n"),
        '\0' => out.push_str("\\x00"),
        c => out.push(c),
    }
}

fn write_alt(text: &mut String, alt: &[Item], names: &[String]) {
    if alt.is_empty() {
        text.push_str(" \"\"");
        return;
    }
    let mut i = 0;
    while i < alt.len() {
        text.push(' ');
        match &alt[i] {
            Item::Char(_) => {
                text.push('"');
                while let Some(Item::Char(c)) = alt.get(i) {
                    escape(*c, text);
                    i += 1;
                }
                text.push('"');
                continue;
            }
            Item::Either(a, b) => {
                text.push('[');
                escape(*a, text);
                escape(*b, text);
                text.push(']');
            }
            Item::Class { negated, chars } => {
                text.push('[');
                if *negated {
                    text.push('^');
                }
                chars.iter().for_each(|c| escape(*c, text));
                text.push(']');
            }
            Item::Ref(r) => text.push_str(&names[*r]),
        }
        i += 1;
    }
}

type Alts = Vec<Vec<Item>>;

struct Builder<'a> {
    grammar: &'a Grammar,
    rules: Vec<(String, Alts)>,
    by_rule: HashMap<usize, usize>,
    digits: HashMap<String, usize>,
    space: Option<usize>,
    garbage: Option<usize>,
}

impl Builder<'_> {
    fn new_rule(&mut self, name: String) -> usize {
        self.rules.push((name, Vec::new()));
        self.rules.len() - 1
    }

    fn add_rule(&mut self, name: String, alts: Alts) -> usize {
        let i = self.new_rule(name);
        self.rules[i].1 = alts;
        i
    }

    fn space(&mut self) -> usize {
        if let Some(s) = self.space {
            return s;
        }
        let s = self.add_rule("sp".to_string(), vec![vec![Item::Char(' ')], vec![]]);
        self.space = Some(s);
        s
    }

    fn garbage(&mut self) -> usize {
        if let Some(g) = self.garbage {
            return g;
        }
        let g = self.new_rule("garbage".to_string());
        self.rules[g].1 = vec![
            vec![
                Item::Class {
                    negated: true,
                    chars: vec!['.', '!', '?'],
                },
                Item::Ref(g),
            ],
            vec![],
        ];
        self.garbage = Some(g);
        g
    }

    /// The GBNF rule of grammar rule `r`, compiled on first use.
    fn rule_ref(&mut self, r: usize) -> usize {
        if let Some(&i) = self.by_rule.get(&r) {
            return i;
        }
        let name = format!("r{r}-{}", sanitize(&self.grammar.syntax().rules[r].name));
        let i = self.new_rule(name);
        self.by_rule.insert(r, i);
        let alts = self.alts(&self.grammar.nodes()[r].clone(), i);
        self.rules[i].1 = alts;
        i
    }

    fn sub_rule(&mut self, parent: usize, alts: Alts) -> usize {
        let name = format!("{}-{}", self.rules[parent].0, self.rules.len());
        self.add_rule(name, alts)
    }

    /// `node` as a single sequence, wrapping it in a sub-rule when it has several alternatives.
    fn inline(&mut self, node: &Node, parent: usize) -> Vec<Item> {
        let mut alts = self.alts(node, parent);
        if alts.len() == 1 {
            alts.pop().unwrap_or_default()
        } else {
            vec![Item::Ref(self.sub_rule(parent, alts))]
        }
    }

    fn word(&mut self, word: &str) -> Vec<Item> {
        let mut chars = word.chars();
        if let (Some(d), None) = (chars.next(), chars.next()) {
            if let Some(digit) = d.to_digit(10) {
                let lang = self.grammar.lang();
                if let Some(&i) = self.digits.get(word) {
                    return vec![Item::Ref(i)];
                }
                let spelled = u8::try_from(digit)
                    .ok()
                    .and_then(|d| lang.digit_word(d))
                    .unwrap_or_default();
                let alts = vec![vec![Item::Char(d)], letters(spelled)];
                let i = self.add_rule(format!("digit-{d}"), alts);
                self.digits.insert(word.to_string(), i);
                return vec![Item::Ref(i)];
            }
        }
        letters(word)
    }

    fn alts(&mut self, node: &Node, parent: usize) -> Alts {
        match node {
            Node::Words { words, .. } => {
                let space = self.space();
                let mut seq = Vec::new();
                for w in words {
                    seq.push(Item::Ref(space));
                    seq.extend(self.word(w));
                }
                vec![seq]
            }
            Node::Ref(r) => vec![vec![Item::Ref(self.rule_ref(*r))]],
            Node::Null | Node::Tag(_) => vec![vec![]],
            Node::Void => vec![vec![Item::Char('\0')]],
            Node::Garbage => {
                let space = self.space();
                vec![vec![Item::Ref(space), Item::Ref(self.garbage())]]
            }
            Node::Seq(items) => vec![items.iter().flat_map(|i| self.inline(i, parent)).collect()],
            Node::Alt(alts) => alts
                .iter()
                .flat_map(|(_, a)| self.alts(a, parent))
                .collect(),
            Node::Repeat(item, min, max) => {
                let one = self.inline(item, parent);
                let mut seq: Vec<Item> = Vec::new();
                for _ in 0..*min {
                    seq.extend(one.iter().cloned());
                }
                match max {
                    None => {
                        let r = self.sub_rule(parent, Vec::new());
                        let mut again = one.clone();
                        again.push(Item::Ref(r));
                        self.rules[r].1 = vec![again, vec![]];
                        seq.push(Item::Ref(r));
                    }
                    Some(max) if max > min => {
                        // opt_k ::= one opt_{k-1} | ""; opt_1 ::= one | "".
                        let mut prev: Option<usize> = None;
                        for _ in *min..*max {
                            let mut alt = one.clone();
                            if let Some(p) = prev {
                                alt.push(Item::Ref(p));
                            }
                            prev = Some(self.sub_rule(parent, vec![alt, vec![]]));
                        }
                        if let Some(p) = prev {
                            seq.push(Item::Ref(p));
                        }
                    }
                    Some(_) => {}
                }
                vec![seq]
            }
        }
    }
}

fn letters(word: &str) -> Vec<Item> {
    word.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) if u != c => Item::Either(c, u),
                _ => Item::Char(c),
            }
        })
        .collect()
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grammar(src: &str) -> Grammar {
        Grammar::parse(src, "t.abnf").expect("test grammar compiles")
    }

    /// Runs compiled rules the way whisper.cpp's grammar does, on a whole string.
    fn accepts(g: &Gbnf, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        ends(g, g.start, &chars, 0, 0).contains(&chars.len())
    }

    fn ends(g: &Gbnf, rule: usize, s: &[char], pos: usize, depth: usize) -> Vec<usize> {
        assert!(depth < 200, "runaway recursion");
        let mut out = Vec::new();
        let body = g.rules[rule]
            .strip_suffix(&[GrammarElement::End])
            .expect("rules end with End");
        for alt in body.split(|e| *e == GrammarElement::Alternate) {
            let mut states = vec![pos];
            let mut i = 0;
            while i < alt.len() {
                let mut next = Vec::new();
                match alt[i] {
                    GrammarElement::RuleRef(r) => {
                        for p in &states {
                            next.extend(ends(g, r as usize, s, *p, depth + 1));
                        }
                        i += 1;
                    }
                    GrammarElement::Char(_) | GrammarElement::CharNot(_) => {
                        let negated = matches!(alt[i], GrammarElement::CharNot(_));
                        let mut set = vec![alt[i].raw().1];
                        i += 1;
                        while let Some(GrammarElement::CharAlt(c)) = alt.get(i) {
                            set.push(u32::from(*c));
                            i += 1;
                        }
                        for p in &states {
                            if let Some(c) = s.get(*p) {
                                if set.contains(&u32::from(*c)) != negated {
                                    next.push(p + 1);
                                }
                            }
                        }
                    }
                    other => panic!("unexpected element {other:?}"),
                }
                next.sort_unstable();
                next.dedup();
                states = next;
            }
            out.extend(states);
        }
        out
    }

    #[test]
    fn gbnf_text_of_a_small_grammar() {
        let g = grammar("#ABNF 1.0;\nlanguage en;\n$yn = yes {out=\"yes\"} | no | 1;");
        assert_eq!(
            gbnf(&g),
            "root ::= r0-yn sp punct\n\
             r0-yn ::= sp [yY] [eE] [sS] | sp [nN] [oO] | sp digit-1\n\
             sp ::= \" \" | \"\"\n\
             digit-1 ::= \"1\" | [oO] [nN] [eE]\n\
             punct ::= [.!?,] | \"\"\n"
        );
    }

    #[test]
    fn compiled_rules_accept_whisper_style_text() {
        let g = compile_gbnf(&grammar(
            "#ABNF 1.0;\nlanguage en;\n$m = [the] operator | (file a complaint) | press 2 | ha<2-3> | la<1->;",
        ));
        for ok in [
            " Operator.",
            "operator",
            " The operator!",
            " File a complaint.",
            " press two",
            " Press 2.",
            " ha ha",
            " ha ha ha",
            " la la la la",
        ] {
            assert!(accepts(&g, ok), "{ok:?} should be accepted");
        }
        for bad in [
            " Operators",
            " the",
            " press three",
            " ha",
            " ha ha ha ha",
            "",
            " operator..",
        ] {
            assert!(!accepts(&g, bad), "{bad:?} should be rejected");
        }
        assert_eq!(g.rules[g.start].last(), Some(&GrammarElement::End));
        assert!(g
            .rules
            .iter()
            .all(|r| r.last() == Some(&GrammarElement::End)));
    }

    #[test]
    fn mongolian_letters_in_either_case_and_garbage() {
        let g = compile_gbnf(&grammar(
            "#ABNF 1.0 UTF-8;\nlanguage mn;\n$e = $GARBAGE яаралтай $GARBAGE | гурав;",
        ));
        assert!(accepts(&g, " Яаралтай."));
        assert!(accepts(&g, " маш яаралтай байна"));
        assert!(accepts(&g, " Гурав"));
        assert!(accepts(&g, " 3"));
        assert!(!accepts(&g, " тав"));
    }

    #[test]
    fn element_codes_match_whisper_cpp() {
        assert_eq!(GrammarElement::End.raw(), (0, 0));
        assert_eq!(GrammarElement::Alternate.raw(), (1, 0));
        assert_eq!(GrammarElement::RuleRef(7).raw(), (2, 7));
        assert_eq!(GrammarElement::Char('a').raw(), (3, 97));
        assert_eq!(GrammarElement::CharNot('.').raw(), (4, 46));
        assert_eq!(GrammarElement::CharRangeUpper('z').raw(), (5, 122));
        assert_eq!(GrammarElement::CharAlt('A').raw(), (6, 65));
    }

    #[test]
    fn hints_are_deduplicated_short_first_and_capped() {
        let a = grammar("#ABNF 1.0;\n$a = \"file a complaint\" | operator | Operator | help;");
        let b = grammar("#ABNF 1.0;\n$b = help | (x | y | z)<4>;");
        let dtmf = grammar("#ABNF 1.0;\nmode dtmf;\n$d = 1 | 2;");
        let h = hints(&[&a, &dtmf]);
        assert_eq!(h, vec!["help", "operator", "file a complaint"]);
        let many = hints(&[&a, &b]);
        assert_eq!(many.len(), HINT_LIMIT);
        assert_eq!(many[0], "help");
    }

    #[test]
    fn dtmf_grammars_have_an_unmatchable_gbnf() {
        let g = compile_gbnf(&grammar("#ABNF 1.0;\nmode dtmf;\n$d = 1 | 2;"));
        assert!(!accepts(&g, "1"));
        assert!(!accepts(&g, ""));
    }
}
