//! Languages of the hotline and normalisation of recognised text into words.
//!
//! Owns the per-language word lists: number words (mapped to digits so that "two", "2" and
//! "хоёр" are one word), filler words dropped before tolerant matching, and homophones of
//! digits ("to" for "2"). No IO, no clock. Call [`normalize`] on a transcript and on grammar
//! tokens alike, then compare the words.

use std::fmt;

/// A language a grammar is written in and callers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English.
    En,
    /// Mongolian, Cyrillic script.
    Mn,
}

impl Lang {
    /// The language of a BCP 47 tag such as `en`, `en-US`, `mn` or `mn-MN`; `None` for others.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "mn" | "khk" => Some(Lang::Mn),
            _ => None,
        }
    }

    /// The primary subtag: `en` or `mn`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Mn => "mn",
        }
    }

    /// The standalone word for a digit 0–9 (`None` above 9).
    pub fn digit_word(self, digit: u8) -> Option<&'static str> {
        let words = match self {
            Lang::En => &EN_DIGITS,
            Lang::Mn => &MN_DIGITS,
        };
        words.get(usize::from(digit)).copied()
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

const EN_DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const MN_DIGITS: [&str; 10] = [
    "тэг",
    "нэг",
    "хоёр",
    "гурав",
    "дөрөв",
    "тав",
    "зургаа",
    "долоо",
    "найм",
    "ес",
];
/// Mongolian accusative forms, as in "нэгийг дарна уу" ("press one").
const MN_DIGITS_ACC: [&str; 10] = [
    "тэгийг",
    "нэгийг",
    "хоёрыг",
    "гурвыг",
    "дөрвийг",
    "тавыг",
    "зургааг",
    "долоог",
    "наймыг",
    "есийг",
];

/// Filler words and phrases dropped before tolerant matching, longest first within a language.
const EN_FILLERS: &[&[&str]] = &[
    &["i", "would", "like", "to"],
    &["i", "would", "like"],
    &["i", "want", "to"],
    &["i", "want"],
    &["id", "like"],
    &["i", "need"],
    &["can", "you"],
    &["could", "you"],
    &["um"],
    &["umm"],
    &["uh"],
    &["uhm"],
    &["er"],
    &["erm"],
    &["ah"],
    &["hmm"],
    &["please"],
    &["okay"],
    &["ok"],
    &["so"],
    &["well"],
];
const MN_FILLERS: &[&[&str]] = &[
    &["хүсч", "байна"],
    &["хүсэж", "байна"],
    &["ээ"],
    &["ээээ"],
    &["аа"],
    &["өө"],
    &["эмм"],
    &["бол"],
    &["гуйя"],
    &["би"],
    &["за"],
];

/// Words a recogniser writes for a digit it heard, per language, as (word, digit).
const EN_HOMOPHONES: &[(&str, char)] = &[
    ("oh", '0'),
    ("won", '1'),
    ("to", '2'),
    ("too", '2'),
    ("tree", '3'),
    ("free", '3'),
    ("for", '4'),
    ("fore", '4'),
    ("sex", '6'),
    ("ate", '8'),
    ("nein", '9'),
];

/// Normalises text into words: lowercase, punctuation removed (hyphens and other marks split
/// words, apostrophes are dropped so "I'd" becomes "id"), number words replaced by digits, and
/// runs of digits ("123") split into one word per digit.
pub fn normalize(lang: Lang, text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let lowered = text.to_lowercase();
    for raw in lowered.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’')) {
        let word: String = raw.chars().filter(|c| c.is_alphanumeric()).collect();
        if word.is_empty() {
            continue;
        }
        if word.chars().all(|c| c.is_ascii_digit()) {
            words.extend(word.chars().map(String::from));
        } else if let Some(d) = digit_of_word(lang, &word) {
            words.push(d.to_string());
        } else {
            words.push(word);
        }
    }
    words
}

/// The words with this language's fillers removed.
pub fn strip_fillers(lang: Lang, words: &[String]) -> Vec<String> {
    let fillers = match lang {
        Lang::En => EN_FILLERS,
        Lang::Mn => MN_FILLERS,
    };
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    'outer: while i < words.len() {
        for filler in fillers {
            let end = i + filler.len();
            if end <= words.len() && words[i..end].iter().zip(filler.iter()).all(|(w, f)| w == f) {
                i = end;
                continue 'outer;
            }
        }
        out.push(words[i].clone());
        i += 1;
    }
    out
}

/// Whether `heard` is a word a recogniser commonly writes for `digit` (a one-digit word).
pub fn is_digit_homophone(lang: Lang, heard: &str, digit: &str) -> bool {
    let mut chars = digit.chars();
    let (Some(d), None) = (chars.next(), chars.next()) else {
        return false;
    };
    match lang {
        Lang::En => EN_HOMOPHONES.iter().any(|&(w, hd)| w == heard && hd == d),
        Lang::Mn => false,
    }
}

fn digit_of_word(lang: Lang, word: &str) -> Option<char> {
    let lists: &[&[&str; 10]] = match lang {
        Lang::En => &[&EN_DIGITS],
        Lang::Mn => &[&MN_DIGITS, &MN_DIGITS_ACC],
    };
    lists.iter().find_map(|list| {
        list.iter()
            .position(|w| *w == word)
            .and_then(|i| char::from_digit(u32::try_from(i).ok()?, 10))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn english_number_words_become_digits() {
        assert_eq!(normalize(Lang::En, " Two."), w(&["2"]));
        assert_eq!(
            normalize(Lang::En, "press ZERO, then nine!"),
            w(&["press", "0", "then", "9"])
        );
    }

    #[test]
    fn mongolian_number_words_and_press_forms_become_digits() {
        assert_eq!(normalize(Lang::Mn, "Хоёр"), w(&["2"]));
        let all = "тэг нэг хоёр гурав дөрөв тав зургаа долоо найм ес";
        assert_eq!(normalize(Lang::Mn, all).concat(), "0123456789");
        assert_eq!(
            normalize(Lang::Mn, "Гурвыг дарна уу."),
            w(&["3", "дарна", "уу"])
        );
    }

    #[test]
    fn digit_runs_split_into_digits() {
        assert_eq!(
            normalize(Lang::En, "case 572-4"),
            w(&["case", "5", "7", "2", "4"])
        );
    }

    #[test]
    fn punctuation_and_case_are_removed() {
        assert_eq!(
            normalize(Lang::En, "I'd like... Operator?!"),
            w(&["id", "like", "operator"])
        );
        assert_eq!(
            normalize(Lang::Mn, "Ажилтан, ажилтан."),
            w(&["ажилтан", "ажилтан"])
        );
        assert!(normalize(Lang::En, " ... ").is_empty());
    }

    #[test]
    fn fillers_are_dropped_per_language() {
        let en = normalize(Lang::En, "Um, I want a complaint please");
        assert_eq!(strip_fillers(Lang::En, &en), w(&["a", "complaint"]));
        let mn = normalize(Lang::Mn, "ээ гомдол бол");
        assert_eq!(strip_fillers(Lang::Mn, &mn), w(&["гомдол"]));
        // Fillers of the other language stay.
        assert_eq!(strip_fillers(Lang::Mn, &w(&["please"])), w(&["please"]));
    }

    #[test]
    fn to_is_a_homophone_of_two_only() {
        assert!(is_digit_homophone(Lang::En, "to", "2"));
        assert!(!is_digit_homophone(Lang::En, "to", "3"));
        assert!(!is_digit_homophone(Lang::Mn, "to", "2"));
    }

    #[test]
    fn language_tags_parse() {
        assert_eq!(Lang::from_tag("en-US"), Some(Lang::En));
        assert_eq!(Lang::from_tag("mn"), Some(Lang::Mn));
        assert_eq!(Lang::from_tag("fr"), None);
        assert_eq!(Lang::Mn.digit_word(3), Some("гурав"));
        assert_eq!(Lang::En.digit_word(10), None);
    }
}
