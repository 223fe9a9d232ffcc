//! Comparing transcripts: normalisation and word error rate.
//!
//! Used to score the recogniser (tests, `ivr bench stt`) and to spot degenerate output. The
//! normalisation is deliberately simple and symmetric: lowercase, punctuation removed, English
//! digit words mapped to digits and every digit run split into single digits, so "four seven",
//! "4 7", "47" and "4-7" all compare equal. Meaning-level matching belongs to the grammars.

/// Normalises a transcript into comparable words.
pub fn normalize_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let lowered = text.to_lowercase();
    for raw in lowered.split(|c: char| c.is_whitespace() || c == '-' || c == ',' || c == '/') {
        let word: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '\'')
            .collect();
        let word = word.trim_matches('\'');
        if word.is_empty() {
            continue;
        }
        if let Some(d) = digit_word(word) {
            words.push(d.to_string());
        } else if word.chars().all(|c| c.is_ascii_digit()) {
            words.extend(word.chars().map(|c| c.to_string()));
        } else {
            words.push(word.to_string());
        }
    }
    words
}

fn digit_word(word: &str) -> Option<u8> {
    Some(match word {
        "zero" | "oh" => 0,
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        _ => return None,
    })
}

/// Word-level edit counts of a hypothesis against a reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WordErrors {
    /// Substitutions + deletions + insertions.
    pub errors: usize,
    /// Words in the reference.
    pub reference_words: usize,
}

impl WordErrors {
    /// Errors over reference words (0 for an empty reference with an empty hypothesis).
    pub fn rate(&self) -> f64 {
        if self.reference_words == 0 {
            return if self.errors == 0 { 0.0 } else { 1.0 };
        }
        self.errors as f64 / self.reference_words as f64
    }
}

impl std::ops::Add for WordErrors {
    type Output = WordErrors;

    fn add(self, other: WordErrors) -> WordErrors {
        WordErrors {
            errors: self.errors + other.errors,
            reference_words: self.reference_words + other.reference_words,
        }
    }
}

impl std::iter::Sum for WordErrors {
    fn sum<I: Iterator<Item = WordErrors>>(iter: I) -> Self {
        iter.fold(WordErrors::default(), |a, b| a + b)
    }
}

/// Word errors of `hypothesis` against `reference`, after [`normalize_words`].
pub fn word_error_rate(reference: &str, hypothesis: &str) -> WordErrors {
    let r = normalize_words(reference);
    let h = normalize_words(hypothesis);
    WordErrors {
        errors: edit_distance(&r, &h),
        reference_words: r.len(),
    }
}

fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// True when the text repeats itself in a way speech does not: the same word or the same
/// short phrase three or more times in a row ("added, added, added"), or the whole text being
/// a run of three or more words said twice over ("8 8 1 2 0 4 7 8 8 1 2 0 4 7"): the
/// signatures of a decoder loop on a too-short window.
pub(crate) fn is_looping(text: &str) -> bool {
    let words = normalize_words(text);
    let half = words.len() / 2;
    if words.len() >= 6 && words.len().is_multiple_of(2) && words[..half] == words[half..] {
        return true;
    }
    // A digit said three times is a legitimate number ("five five five"); a run of several
    // digits said three times over is a loop.
    for n in 1..=6 {
        if words.len() < n * 3 {
            break;
        }
        for start in 0..=(words.len() - n * 3) {
            let unit = &words[start..start + n];
            if n == 1 && unit[0].chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            if (1..3).all(|k| &words[start + k * n..start + (k + 1) * n] == unit) {
                return true;
            }
        }
    }
    false
}

/// Texts Whisper is known to produce from silence or noise (trained on subtitles).
pub(crate) fn is_silence_hallucination(text: &str) -> bool {
    let t: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    matches!(
        t.as_str(),
        "" | "you"
            | "thank you"
            | "thanks"
            | "thank you very much"
            | "thanks for watching"
            | "thank you for watching"
            | "bye"
            | "so"
            | "the"
            | "uh"
            | "um"
            | "hmm"
            | "music"
            | "applause"
            | "silence"
            | "blank audio"
    ) || text.trim().starts_with('[')
        || text.trim().starts_with('(')
        || text.trim().starts_with('*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_compare_equal_in_any_form() {
        let a = normalize_words("Four, seven, one-zero.");
        assert_eq!(a, vec!["4", "7", "1", "0"]);
        assert_eq!(normalize_words("4710"), a);
        assert_eq!(normalize_words("4 7 1 0"), a);
    }

    #[test]
    fn wer_counts_substitutions_insertions_deletions() {
        let e = word_error_rate("I want to file a complaint", "I want to file complaint");
        assert_eq!(e.errors, 1);
        assert_eq!(e.reference_words, 6);
        assert_eq!(word_error_rate("operator", "Operator.").errors, 0);
        assert_eq!(word_error_rate("repeat", "Ah, vermin, please").errors, 3);
        let total: WordErrors = [word_error_rate("a b", "a"), word_error_rate("c", "c")]
            .into_iter()
            .sum();
        assert_eq!((total.errors, total.reference_words), (1, 3));
    }

    #[test]
    fn loops_are_spotted_but_digit_runs_are_not() {
        assert!(is_looping("added, added, added, added"));
        assert!(is_looping("I want to I want to I want to"));
        assert!(!is_looping("five five five one two"));
        assert!(is_looping("8 8 1 2 0 4 7 8 8 1 2 0 4 7"));
        assert!(is_looping("9 0 6 1 9 0 6 1 9 0 6 1 9 0 6"));
        assert!(!is_looping("status status"));
        assert!(!is_looping("I want to file a complaint"));
    }

    #[test]
    fn silence_hallucinations_are_known() {
        assert!(is_silence_hallucination(" Thank you."));
        assert!(is_silence_hallucination("you"));
        assert!(is_silence_hallucination("[BLANK_AUDIO]"));
        assert!(!is_silence_hallucination("operator"));
    }
}
