//! The hotline phrase set: what callers say at the hotline's prompts.
//!
//! Used to score the recogniser end to end (tests, `ivr bench stt`): digit strings that must be
//! heard exactly, phrases scored by word error rate, and single isolated words, the hard case
//! for a small model without a grammar. The set lives in `speech/testdata/phrases.tsv`.

/// What kind of utterance a phrase is, which decides how it is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PhraseKind {
    /// A digit string: every digit must be heard, in order.
    Digits,
    /// A sentence or a service name: scored by word error rate.
    Phrase,
    /// One isolated word.
    Word,
}

/// One phrase of the set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phrase {
    /// Stable id (`d01`, `p07`, `w03`).
    pub id: &'static str,
    /// How it is scored.
    pub kind: PhraseKind,
    /// The words.
    pub text: &'static str,
}

const PHRASES_TSV: &str = include_str!("../testdata/phrases.tsv");

/// The hotline phrase set.
pub fn hotline_phrases() -> Vec<Phrase> {
    PHRASES_TSV
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            let id = f.next()?;
            let kind = match f.next()? {
                "digits" => PhraseKind::Digits,
                "phrase" => PhraseKind::Phrase,
                "word" => PhraseKind::Word,
                _ => return None,
            };
            Some(Phrase {
                id,
                kind,
                text: f.next()?.trim(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_is_complete() {
        let p = hotline_phrases();
        assert!(p.len() >= 30, "{}", p.len());
        assert!(p.iter().filter(|p| p.kind == PhraseKind::Digits).count() >= 5);
        let mut ids: Vec<_> = p.iter().map(|p| p.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), p.len(), "ids are unique");
    }
}
