//! Grammars for whisper.cpp's grammar-constrained sampling.
//!
//! whisper.cpp takes a grammar as compiled rules (the GBNF form of llama.cpp): each rule is a
//! flat list of [`GrammarElement`]s, alternatives separated by [`GrammarElement::Alternate`]
//! and the rule closed by [`GrammarElement::End`]. The `grammars` crate compiles SRGS menu
//! grammars into this form; [`DecodingGrammar::phrases`] builds the common case directly (one
//! of a list of phrases, any letter case, optional leading space and final punctuation).
//!
//! Pure data: no IO.

use crate::{Error, Result};

/// One element of a compiled grammar rule (mirrors `whisper_grammar_element`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrammarElement {
    /// End of the rule.
    End,
    /// Start of another alternative of the rule.
    Alternate,
    /// The rule with this index.
    RuleRef(u32),
    /// This character.
    Char(char),
    /// Any character but this one (further ones follow as `CharAlt`).
    CharNot(char),
    /// Makes the preceding `Char` an inclusive range up to this one.
    CharRangeUpper(char),
    /// Adds an alternative character to the preceding `Char`/`CharNot`.
    CharAlt(char),
}

/// A compiled grammar: rules, the start rule and how hard to enforce it.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodingGrammar {
    rules: Vec<Vec<GrammarElement>>,
    start: usize,
    penalty: f32,
    gbnf: String,
}

impl DecodingGrammar {
    /// A grammar from compiled rules. Every rule must end with `End`, rule references must
    /// point at existing rules, and `start` must exist.
    pub fn new(rules: Vec<Vec<GrammarElement>>, start: usize, gbnf: String) -> Result<Self> {
        if start >= rules.len() {
            return Err(Error::InvalidArgument(format!(
                "grammar start rule {start} of {}",
                rules.len()
            )));
        }
        for (i, rule) in rules.iter().enumerate() {
            if rule.last() != Some(&GrammarElement::End) {
                return Err(Error::InvalidArgument(format!(
                    "grammar rule {i} does not end with End"
                )));
            }
            if rule[..rule.len() - 1].contains(&GrammarElement::End) {
                return Err(Error::InvalidArgument(format!(
                    "grammar rule {i} has End before its last element"
                )));
            }
            for e in rule {
                if let GrammarElement::RuleRef(r) = e {
                    if *r as usize >= rules.len() {
                        return Err(Error::InvalidArgument(format!(
                            "grammar rule {i} refers to missing rule {r}"
                        )));
                    }
                }
            }
        }
        Ok(Self {
            rules,
            start,
            penalty: 100.0,
            gbnf,
        })
    }

    /// A grammar accepting exactly one of `phrases` (letters in any case), optionally preceded
    /// by a space and followed by one of `. , ! ?`.
    pub fn phrases<S: AsRef<str>>(phrases: &[S]) -> Result<Self> {
        use GrammarElement::*;
        let phrases: Vec<&str> = phrases
            .iter()
            .map(|p| p.as_ref().trim())
            .filter(|p| !p.is_empty())
            .collect();
        if phrases.is_empty() {
            return Err(Error::InvalidArgument(
                "a phrase grammar needs at least one phrase".into(),
            ));
        }
        let root = vec![RuleRef(1), RuleRef(2), RuleRef(3), End];
        let space = vec![Char(' '), Alternate, End];
        let mut choice = Vec::new();
        for (i, phrase) in phrases.iter().enumerate() {
            if i > 0 {
                choice.push(Alternate);
            }
            for c in phrase.chars() {
                choice.push(Char(c));
                let (lower, upper) = (
                    c.to_lowercase().next().unwrap_or(c),
                    c.to_uppercase().next().unwrap_or(c),
                );
                for other in [lower, upper] {
                    if other != c {
                        choice.push(CharAlt(other));
                    }
                }
            }
        }
        choice.push(End);
        let punct = vec![
            Char('.'),
            CharAlt(','),
            CharAlt('!'),
            CharAlt('?'),
            Alternate,
            End,
        ];
        let alternatives: Vec<String> = phrases
            .iter()
            .map(|p| format!("\"{}\"", p.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        let gbnf = format!(
            "root ::= \" \"? ({}) [.,!?]?\n# letters match in either case",
            alternatives.join(" | ")
        );
        Self::new(vec![root, space, choice, punct], 0, gbnf)
    }

    /// A grammar accepting a string of digits, as callers key or say a reference or phone
    /// number: digits optionally separated by a space, a hyphen, a comma or a full stop, with
    /// an optional leading space and final punctuation.
    pub fn digits() -> Self {
        use GrammarElement::*;
        // 0 root ::= sp digit more end
        // 1 sp   ::= " " | ε
        // 2 digit ::= [0-9]
        // 3 more ::= sep sp digit more | ε
        // 4 end  ::= [.?!] | ε
        // 5 sep  ::= [,.-] | ε
        let rules = vec![
            vec![RuleRef(1), RuleRef(2), RuleRef(3), RuleRef(4), End],
            vec![Char(' '), Alternate, End],
            vec![Char('0'), CharRangeUpper('9'), End],
            vec![
                RuleRef(5),
                RuleRef(1),
                RuleRef(2),
                RuleRef(3),
                Alternate,
                End,
            ],
            vec![Char('.'), CharAlt('?'), CharAlt('!'), Alternate, End],
            vec![Char(','), CharAlt('.'), CharAlt('-'), Alternate, End],
        ];
        let gbnf = "root ::= \" \"? [0-9] ([,.-]? \" \"? [0-9])* [.?!]?".to_string();
        // Invariant: the rules above are closed and every reference exists.
        Self::new(rules, 0, gbnf).expect("the digit grammar is well formed")
    }

    /// Sets how strongly off-grammar tokens are penalised (whisper.cpp's default: 100).
    pub fn with_penalty(mut self, penalty: f32) -> Self {
        self.penalty = penalty;
        self
    }

    /// The rules.
    pub fn rules(&self) -> &[Vec<GrammarElement>] {
        &self.rules
    }

    /// The start rule's index.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The penalty for tokens outside the grammar.
    pub fn penalty(&self) -> f32 {
        self.penalty
    }

    /// The GBNF text form, for debugging.
    pub fn gbnf(&self) -> &str {
        &self.gbnf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrase_grammar_is_well_formed() {
        let g = DecodingGrammar::phrases(&["operator", "repeat"]).unwrap();
        assert_eq!(g.rules().len(), 4);
        assert!(g
            .rules()
            .iter()
            .all(|r| r.last() == Some(&GrammarElement::End)));
        assert!(g.gbnf().contains("\"operator\" | \"repeat\""));
        // 'o' may also be 'O'.
        assert_eq!(
            &g.rules()[2][..2],
            &[GrammarElement::Char('o'), GrammarElement::CharAlt('O')]
        );
    }

    #[test]
    fn digit_grammar_is_well_formed() {
        let g = DecodingGrammar::digits();
        assert_eq!(g.rules().len(), 6);
        assert!(g.gbnf().contains("[0-9]"));
    }

    #[test]
    fn malformed_grammars_are_refused() {
        assert!(DecodingGrammar::phrases::<&str>(&[]).is_err());
        assert!(DecodingGrammar::new(
            vec![vec![GrammarElement::RuleRef(3), GrammarElement::End]],
            0,
            String::new()
        )
        .is_err());
        assert!(
            DecodingGrammar::new(vec![vec![GrammarElement::Char('a')]], 0, String::new()).is_err()
        );
        assert!(DecodingGrammar::new(vec![vec![GrammarElement::End]], 1, String::new()).is_err());
    }
}
