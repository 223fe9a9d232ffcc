//! Search of service names by a spoken or typed query.
//!
//! Both the names and the query become word lists: lower case, punctuation dropped, number
//! words as digits ([`grammars::lang::normalize`]), filler phrases and function words removed.
//! Each query word is matched to its most similar name word (exact, a small edit distance, or
//! one a prefix of the other, for Mongolian case endings and English plurals). The score mixes
//! how much of the query was found (weight 0.7) with how much of the name was said (0.3).
//! Pure: no IO, no clock.

use grammars::lang::{normalize, strip_fillers};
use grammars::Lang;

use super::{Service, ServiceId};

/// The least share of the query's words that must be found in a name.
const MIN_RECALL: f32 = 0.5;
/// The least score a result must reach.
const MIN_SCORE: f32 = 0.4;
/// Weight of the query's coverage in the score; the name's coverage takes the rest.
const RECALL_WEIGHT: f32 = 0.7;
/// Similarity of two words when one is a prefix of the other.
const PREFIX_SIMILARITY: f32 = 0.85;
/// Shortest word matched other than exactly.
const MIN_FUZZY_CHARS: usize = 4;

/// Words that carry no meaning in a query for a service, beyond the fillers of
/// [`strip_fillers`].
const EN_STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "and",
    "or",
    "for",
    "to",
    "my",
    "me",
    "i",
    "im",
    "get",
    "getting",
    "about",
    "how",
    "do",
    "does",
    "is",
    "are",
    "what",
    "where",
    "in",
    "on",
    "with",
    "want",
    "need",
    "information",
    "info",
    "service",
    "services",
    "apply",
    "help",
    "know",
    "tell",
    "like",
    "would",
    "our",
    "your",
    "can",
    "it",
    "this",
    "that",
    "some",
    "regarding",
];
const MN_STOPWORDS: &[&str] = &[
    "ба",
    "болон",
    "тухай",
    "мэдээлэл",
    "мэдмээр",
    "хэрэгтэй",
    "байна",
    "юм",
    "вэ",
    "бэ",
    "уу",
    "үү",
    "яаж",
    "хаана",
    "надад",
    "миний",
    "авмаар",
    "авъя",
    "тэгээд",
    "нь",
    "энэ",
    "талаар",
];

/// The searchable words of every service, in both languages.
#[derive(Debug, Clone)]
pub(super) struct Index {
    entries: Vec<(ServiceId, Vec<String>, Vec<String>)>,
}

impl Index {
    /// Indexes the names of these services.
    pub(super) fn new<'a>(services: impl Iterator<Item = &'a Service>) -> Index {
        Index {
            entries: services
                .map(|s| {
                    (
                        s.id,
                        words(Lang::En, &s.name.en),
                        words(Lang::Mn, &s.name.mn),
                    )
                })
                .collect(),
        }
    }

    /// The matching services, best first; ties in id order.
    pub(super) fn search(&self, lang: Lang, query: &str) -> Vec<(ServiceId, f32)> {
        let query = words(lang, query);
        if query.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<(ServiceId, f32)> = self
            .entries
            .iter()
            .filter_map(|(id, en, mn)| {
                let score = match_score(&query, en).max(match_score(&query, mn));
                (score >= MIN_SCORE).then_some((*id, score))
            })
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    }
}

/// The meaningful words of a text in this language.
fn words(lang: Lang, text: &str) -> Vec<String> {
    let stopwords = match lang {
        Lang::Mn => MN_STOPWORDS,
        _ => EN_STOPWORDS,
    };
    strip_fillers(lang, &normalize(lang, text))
        .into_iter()
        .filter(|w| !stopwords.contains(&w.as_str()))
        .collect()
}

/// How well a query matches a name, in [0, 1]; 0 when too little of the query is found.
fn match_score(query: &[String], name: &[String]) -> f32 {
    if query.is_empty() || name.is_empty() {
        return 0.0;
    }
    let best = |word: &String, among: &[String]| {
        among
            .iter()
            .map(|other| similarity(word, other))
            .fold(0.0_f32, f32::max)
    };
    let recall = query.iter().map(|q| best(q, name)).sum::<f32>() / query.len() as f32;
    if recall < MIN_RECALL {
        return 0.0;
    }
    let precision = name.iter().map(|n| best(n, query)).sum::<f32>() / name.len() as f32;
    RECALL_WEIGHT * recall + (1.0 - RECALL_WEIGHT) * precision
}

/// How similar two normalized words are, in [0, 1].
fn similarity(a: &str, b: &str) -> f32 {
    if a == b {
        return 1.0;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (shorter, longer) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if shorter.len() < MIN_FUZZY_CHARS {
        return 0.0;
    }
    let allowed = if longer.len() <= 7 { 1 } else { 2 };
    let distance = levenshtein(&a, &b);
    let by_edits = if distance <= allowed {
        1.0 - distance as f32 / longer.len() as f32
    } else {
        0.0
    };
    let by_prefix = if longer.starts_with(shorter) {
        PREFIX_SIMILARITY
    } else {
        0.0
    };
    by_edits.max(by_prefix)
}

/// The edit distance (insertions, deletions, substitutions) between two words.
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::Directory;
    use super::*;

    fn top(lang: Lang, query: &str) -> Vec<u32> {
        Directory::builtin()
            .expect("the built-in catalog parses")
            .search(lang, query)
            .into_iter()
            .take(3)
            .map(|(id, _)| id.0)
            .collect()
    }

    #[test]
    fn english_queries_find_the_birth_certificate() {
        for query in [
            "birth certificate",
            "I need a birth certificate",
            "Certificate, BIRTH!",
            "um I would like to get my birth certifcate please",
        ] {
            let found = top(Lang::En, query);
            assert!(
                found.first().is_some_and(|id| [3, 4].contains(id)),
                "{query:?} -> {found:?}"
            );
            assert!(
                found.contains(&3) && found.contains(&4),
                "{query:?} -> {found:?}"
            );
        }
    }

    #[test]
    fn mongolian_queries_find_their_service() {
        let found = top(Lang::Mn, "төрсний гэрчилгээ");
        assert!(
            found.starts_with(&[4]) || found.starts_with(&[3]),
            "{found:?}"
        );
        assert!(found.contains(&3) && found.contains(&4), "{found:?}");
        // A typo and a missing case ending.
        assert_eq!(top(Lang::Mn, "тэтгэврын лавлага").first(), Some(&20));
        assert_eq!(
            top(Lang::Mn, "би гадаад паспорт авмаар байна").first(),
            Some(&16)
        );
    }

    #[test]
    fn typos_and_word_order_are_tolerated() {
        assert_eq!(top(Lang::En, "pasport travel foreign").first(), Some(&16));
        assert_eq!(top(Lang::En, "lost ID card").first(), Some(&14));
        assert_eq!(top(Lang::En, "pension reference").first(), Some(&20));
    }

    #[test]
    fn unrelated_or_empty_queries_find_nothing() {
        assert!(top(Lang::En, "weather forecast tomorrow").is_empty());
        assert!(top(Lang::En, "um please").is_empty());
        assert!(top(Lang::Mn, "").is_empty());
    }

    #[test]
    fn scores_are_sorted_and_bounded() {
        let directory = Directory::builtin().expect("the built-in catalog parses");
        let hits = directory.search(Lang::En, "marriage certificate");
        assert!(hits.len() >= 2);
        assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
        assert!(hits.iter().all(|(_, s)| *s > 0.0 && *s <= 1.0));
    }

    #[test]
    fn edit_distance_counts_each_operation() {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(levenshtein(&chars("kitten"), &chars("sitting")), 3);
        assert_eq!(levenshtein(&chars(""), &chars("abc")), 3);
        assert_eq!(levenshtein(&chars("лавлага"), &chars("лавлагаа")), 1);
        assert_eq!(similarity("id", "is"), 0.0);
        assert!((similarity("гэрчилгээг", "гэрчилгээ") - 0.9).abs() < 1e-6);
    }
}
