//! Mongolian (Cyrillic): cardinals in their two forms, ordinals, dates, money, days, key
//! presses, and the Mongolian reading of numbers found in free text.
//!
//! # The two forms of a numeral
//!
//! A Mongolian numeral has a free (final) form, used when the number stands alone ("гурав",
//! "арав", "зуу", "мянга"), and a bound (attributive) form ending in -н, used when it modifies
//! what follows ("гурван хоног", "арван мянган төгрөг"). Inside a compound number:
//!
//! - units, tens and hundreds that are followed by another part of the number are bound:
//!   25 = "хорин тав", 345 = "гурван зуун дөчин тав", 300 000 = "гурван зуун мянга";
//! - a multiplier of a scale word is bound: "гурван мянга", "таван сая";
//! - the scale word мянга itself stays free when more of the number follows:
//!   2026 = "хоёр мянга хорин зургаа", 12 345 = "арван хоёр мянга гурван зуун дөчин тав"
//!   (the way years are read aloud: "хоёр мянга хорин дөрвөн он"); сая, тэрбум and их наяд have
//!   one form only;
//! - the final part is bound only before a noun: "хорин тав" but "хорин таван төгрөг",
//!   "мянга" but "мянган төгрөг", "хоёр мянган он".
//!
//! Choices, each open to a native speaker's review:
//!
//! - "нэг" is left out before зуу and мянга when it is the first word of the number
//!   (100 = "зуу", 125 = "зуун хорин тав", 1000 = "мянга", 1990 = "мянга есөн зуун ер"), and
//!   kept inside one (2100 = "хоёр мянга нэг зуу") and always before сая, тэрбум, их наяд
//!   ("нэг сая": a bare "сая" also means "just now"). (unverified; native check needed)
//! - Bound 1 after a ten is "нэгэн" ("арван нэгэн мянга", "хорин нэгэн хоног"); elsewhere it
//!   is "нэг" ("нэг хоног"). (unverified; native check needed)
//! - Above 999 тэрбум the scale is их наяд (10¹²), and its multiplier may itself run into the
//!   millions: `u64::MAX` is "арван найман сая … их наяд …". (unverified; native check needed)
//!
//! Everything here is a pure function of its arguments.

use super::{Date, NumTok, Tok, TokKind};

/// Which form a numeral takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// Standing alone: "гурав", "хорь", "зуу", "мянга".
    Free,
    /// Modifying what follows: "гурван", "хорин", "зуун", "мянган".
    Bound,
}

/// 0–9, free and bound. 1 and 2 have one form ("нэг хоног", "хоёр хоног").
/// Bound 3–9 follow HOTLINE.md's U-marked list (гурван, таван, …). (unverified; native check
/// needed)
const UNITS: [(&str, &str); 10] = [
    ("тэг", "тэг"),
    ("нэг", "нэг"),
    ("хоёр", "хоёр"),
    ("гурав", "гурван"),
    ("дөрөв", "дөрвөн"),
    ("тав", "таван"),
    ("зургаа", "зургаан"),
    ("долоо", "долоон"),
    ("найм", "найман"),
    ("ес", "есөн"),
];

/// Bound 1 right after a ten ("арван нэгэн"). (unverified; native check needed)
const ONE_AFTER_TEN: &str = "нэгэн";

/// 10, 20, … 90 (index = tens digit), free and bound.
const TENS: [(&str, &str); 10] = [
    ("", ""),
    ("арав", "арван"),
    ("хорь", "хорин"),
    ("гуч", "гучин"),
    ("дөч", "дөчин"),
    ("тавь", "тавин"),
    ("жар", "жаран"),
    ("дал", "далан"),
    ("ная", "наян"),
    ("ер", "ерэн"),
];

/// 100, free and bound.
const HUNDRED: (&str, &str) = ("зуу", "зуун");

/// Scale words with their size, largest first: (size, free, bound, keeps a leading "нэг").
const SCALES: [(u64, &str, &str, bool); 4] = [
    // (unverified; native check needed): их наяд as 10^12.
    (1_000_000_000_000, "их наяд", "их наяд", true),
    (1_000_000_000, "тэрбум", "тэрбум", true),
    (1_000_000, "сая", "сая", true),
    (1_000, "мянга", "мянган", false),
];

/// "N-ийг дарна уу": the accusative of each digit, as HOTLINE.md lists it.
const ACCUSATIVE: [&str; 10] = [
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

/// The currency, and the noun for a day (24 hours) as deadlines use it ("гучин хоног").
const TUGRIK: &str = "төгрөг";
const DAY: &str = "хоног";

/// The word for the `+` of an international phone number, as in arithmetic.
/// (unverified; native check needed)
pub(super) const PLUS: &str = "нэмэх";

/// The word for a decimal point in everyday speech ("хоёр цэг тав"); formal Mongolian says
/// "хоёр бүхэл аравны тав". (unverified; native check needed)
const POINT: &str = "цэг";

/// Words after which a number stays free although they are Cyrillic words: particles,
/// conjunctions, verbs and postpositions, not nouns it could count.
/// (unverified; native check needed)
const NOT_NOUNS: [&str; 13] = [
    "бол",
    "байна",
    "болно",
    "юм",
    "нь",
    "ба",
    "болон",
    "эсвэл",
    "хүртэл",
    "дахь",
    "дэх",
    "гаруй",
    "буюу",
];

/// The word for one digit, `0`–`9`, as read in codes ("тэг", "нэг", … "ес").
pub(super) fn digit(d: u8) -> &'static str {
    UNITS[usize::from(d % 10)].0
}

/// `n` standing alone: "арван хоёр мянга гурван зуун дөчин тав".
pub(super) fn cardinal(n: u64) -> String {
    words(n, Form::Free).join(" ")
}

/// `n` before a noun: "гучин", "арван мянган", "хоёр мянга хорин зургаан".
pub(super) fn cardinal_before_noun(n: u64) -> String {
    words(n, Form::Bound).join(" ")
}

/// The ordinal of `n`: "нэгдүгээр", "гуравдугаар", "арван хоёрдугаар".
///
/// The free form of the last word takes -дугаар after a back vowel and -дүгээр after a front
/// one. The forms for 1–12 (the months) are the standard ones.
pub(super) fn ordinal(n: u64) -> String {
    let mut out = cardinal(n);
    let suffix = if last_vowel_is_front(&out) {
        "дүгээр"
    } else {
        "дугаар"
    };
    out.push_str(suffix);
    out
}

/// "2026 оны 11 сарын 27": "хоёр мянга хорин зургаан оны арван нэгдүгээр сарын хорин долоон".
///
/// The day takes its bound form, as for an elided "өдөр" ("27-ны өдөр", "27-нд").
/// (unverified; native check needed: whether a date read alone ends "хорин долоо" or
/// "хорин долоон")
pub(super) fn date(d: Date) -> String {
    date_with_day(d, &cardinal_before_noun(u64::from(d.day)))
}

/// A date with its day already in words (bound, or with a case ending).
fn date_with_day(d: Date, day: &str) -> String {
    // A validated year is 1 ..= 9999, so it is never negative.
    let year = u64::try_from(d.year).unwrap_or_default();
    format!(
        "{} оны {} сарын {day}",
        cardinal_before_noun(year),
        ordinal(u64::from(d.month))
    )
}

/// "арван мянган төгрөг", "нэг төгрөг", "тэг төгрөг".
pub(super) fn tugrik(amount: u64) -> String {
    format!("{} {TUGRIK}", cardinal_before_noun(amount))
}

/// "гучин хоног", "нэг хоног".
pub(super) fn days(n: u64) -> String {
    format!("{} {DAY}", cardinal_before_noun(n))
}

/// "нэгийг дарна уу", "одтой товчийг дарна уу", "тортой товчийг дарна уу"; `None` for a key
/// phones lack.
pub(super) fn press_key(key: char) -> Option<String> {
    let object = match key {
        '0'..='9' => ACCUSATIVE[usize::from(key as u8 - b'0')],
        '*' => "одтой товчийг",
        '#' => "тортой товчийг",
        _ => return None,
    };
    Some(format!("{object} дарна уу"))
}

/// The words of `n` in the given form of its last part.
fn words(n: u64, form: Form) -> Vec<&'static str> {
    let mut out = Vec::new();
    if n == 0 {
        out.push(UNITS[0].0);
    } else {
        push_words(n, form, true, &mut out);
    }
    out
}

/// Appends the words of `n` (> 0); `first` says whether nothing of the number precedes it.
fn push_words(n: u64, form: Form, first: bool, out: &mut Vec<&'static str>) {
    let mut first = first;
    let mut rest = n;
    for (size, free, bound, keeps_one) in SCALES {
        let count = rest / size;
        rest %= size;
        if count == 0 {
            continue;
        }
        if !(count == 1 && first && !keeps_one) {
            // The multiplier modifies the scale word, so it is bound.
            push_words(count, Form::Bound, first, out);
        }
        out.push(if rest == 0 && form == Form::Bound {
            bound
        } else {
            free
        });
        first = false;
    }
    if rest > 0 {
        push_below_thousand(rest, form, first, out);
    }
}

/// Appends the words of `1 ..= 999`.
fn push_below_thousand(n: u64, form: Form, first: bool, out: &mut Vec<&'static str>) {
    let (hundreds, tens, units) = (
        (n / 100) as usize,
        (n / 10 % 10) as usize,
        (n % 10) as usize,
    );
    let bound_or = |more: bool| more || form == Form::Bound;
    if hundreds > 0 {
        if !(hundreds == 1 && first) {
            out.push(UNITS[hundreds].1);
        }
        out.push(if bound_or(tens + units > 0) {
            HUNDRED.1
        } else {
            HUNDRED.0
        });
    }
    if tens > 0 {
        out.push(if bound_or(units > 0) {
            TENS[tens].1
        } else {
            TENS[tens].0
        });
    }
    if units > 0 {
        out.push(match form {
            Form::Free => UNITS[units].0,
            Form::Bound if units == 1 && tens > 0 => ONE_AFTER_TEN,
            Form::Bound => UNITS[units].1,
        });
    }
}

/// Whether the last harmony-bearing vowel of `s` is a front one (э, ө, ү, е); и is neutral.
fn last_vowel_is_front(s: &str) -> bool {
    for c in s.chars().rev() {
        match c {
            'э' | 'ө' | 'ү' | 'е' => return true,
            'а' | 'о' | 'у' | 'я' | 'ё' | 'ю' => return false,
            _ => {}
        }
    }
    false
}

/// Whether a word is written in Cyrillic (and so is Mongolian text around the number).
fn is_cyrillic(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| ('\u{0400}'..='\u{04FF}').contains(&c))
}

/// Whether a number before `word` counts it, and so takes the bound form.
fn counts(word: &str) -> bool {
    is_cyrillic(word) && !NOT_NOUNS.contains(&word.to_lowercase().as_str())
}

/// `n` with a case ending written after a hyphen: "27-ны" → "хорин долооны",
/// "2026-нд" → "хоёр мянга хорин зургаанд", "5-д" → "тавд", "1-ийг" → "нэгийг".
///
/// An ending that starts with н joins the bound form, which already ends in н (where there is
/// none, 1 becomes нэгэн and other numbers drop the н); other endings join the free form; the
/// accusative of a single digit comes from the key-press table.
/// (unverified; native check needed: stems that drop a vowel, like арав → арвыг)
fn with_ending(n: u64, ending: &str) -> String {
    if n <= 9 && ["ийг", "ыг", "г"].contains(&ending) {
        return ACCUSATIVE[n as usize].to_owned();
    }
    let free = cardinal(n);
    if let Some(rest) = ending.strip_prefix('н') {
        let bound = cardinal_before_noun(n);
        if bound.ends_with('н') {
            return format!("{bound}{rest}");
        }
        // No -н form to carry the н: "1-нд" → "нэгэнд", "2-нд" → "хоёрд".
        return match free.strip_suffix("нэг") {
            Some(head) => format!("{head}{ONE_AFTER_TEN}{rest}"),
            None => format!("{free}{rest}"),
        };
    }
    format!("{free}{ending}")
}

/// A decimal number: "хоёр цэг тав" (fraction read digit by digit, the last in `form`).
fn decimal(num: &NumTok<'_>, form: Form) -> String {
    let mut out = words(num.value, Form::Free).join(" ");
    out.push(' ');
    out.push_str(POINT);
    let last = num.frac.map_or(0, str::len);
    for (k, b) in num.frac.unwrap_or_default().bytes().enumerate() {
        let d = usize::from(b - b'0');
        out.push(' ');
        out.push_str(if k + 1 == last && form == Form::Bound {
            UNITS[d].1
        } else {
            UNITS[d].0
        });
    }
    out
}

/// Mongolian reading of the token at `i` in free text, with what it needs of its neighbours.
///
/// Returns the words and how many tokens they replace, or `None` to keep the token as written.
/// Digit strings and phone numbers are handled by the caller before this.
pub(super) fn expand_at(toks: &[Tok<'_>], i: usize) -> Option<(String, usize)> {
    match &toks[i].kind {
        TokKind::Other("₮") => currency_prefix(toks, i),
        TokKind::Word(w) if w.eq_ignore_ascii_case("MNT") => currency_prefix(toks, i),
        // A dash between two numbers is a range; it is kept as a spaced dash (a pause), since
        // the proper reading needs the ablative and хүртэл ("таваас ес хүртэл").
        TokKind::Other("-" | "–") => {
            let before = super::prev_solid(toks, i)?;
            let after = super::next_solid(toks, i)?;
            if !matches!(toks[before].kind, TokKind::Num(_))
                || !matches!(toks[after].kind, TokKind::Num(_))
            {
                return None;
            }
            let lead = if before + 1 == i { " " } else { "" };
            let trail = if after == i + 1 { " " } else { "" };
            Some((format!("{lead}–{trail}"), 1))
        }
        TokKind::Num(num) => Some(number_at(toks, i, num)),
        // "2026-11-27-нд": the ending belongs to the day.
        TokKind::IsoDate(d) => {
            let (day, used) = ending_or(toks, i, u64::from(d.day), Form::Bound);
            Some((date_with_day(*d, &day), used))
        }
        _ => None,
    }
}

/// "₮10,000" / "MNT 10,000" at `i` → "арван мянган төгрөг".
fn currency_prefix(toks: &[Tok<'_>], i: usize) -> Option<(String, usize)> {
    let j = super::skip_one_space(toks, i + 1);
    let TokKind::Num(num) = &toks.get(j)?.kind else {
        return None;
    };
    let (value, used) = super::scaled_value(toks, j, num);
    let words = match value {
        Some(v) => cardinal_before_noun(v),
        None => decimal(num, Form::Bound),
    };
    Some((format!("{words} {TUGRIK}"), j + used - i))
}

/// A number in free text, read for what follows it.
fn number_at(toks: &[Tok<'_>], i: usize, num: &NumTok<'_>) -> (String, usize) {
    let kind = |k: usize| toks.get(k).map(|t| &t.kind);
    if num.is_plain() {
        // "11 сарын 27": a month number before сар and a day.
        if let (
            Some(TokKind::Space(_)),
            Some(TokKind::Word(sar)),
            Some(TokKind::Space(gap)),
            Some(TokKind::Num(day)),
        ) = (kind(i + 1), kind(i + 2), kind(i + 3), kind(i + 4))
        {
            let month = u8::try_from(num.value).unwrap_or(0);
            if (1..=12).contains(&month)
                && sar.starts_with("сар")
                && day.is_plain()
                && (1..=u64::from(super::days_in_month(2024, month))).contains(&day.value)
            {
                let (day_words, used) = ending_or(toks, i + 4, day.value, Form::Bound);
                return (
                    format!("{} {sar}{gap}{day_words}", ordinal(num.value)),
                    4 + used,
                );
            }
        }
        // "3-р", "27-ны", "1-ийг": a hyphenated ending.
        let (words, used) = ending_or(toks, i, num.value, Form::Free);
        if used > 1 {
            return (words, used);
        }
        // "3 дугаар": a spelled-out ordinal ending.
        if let (Some(TokKind::Space(_)), Some(TokKind::Word(w))) = (kind(i + 1), kind(i + 2)) {
            if *w == "дугаар" || *w == "дүгээр" {
                return (ordinal(num.value), 3);
            }
        }
    }
    let (value, mut used) = super::scaled_value(toks, i, num);
    // A fraction is read as written ("хоёр цэг тэг") unless a multiplier made it whole.
    let value = value.filter(|_| used > 1 || num.frac.is_none());
    if value.is_none() {
        used = 1;
    }
    let read = |form: Form| match value {
        Some(v) => words(v, form).join(" "),
        None => decimal(num, form),
    };
    let j = super::skip_one_space(toks, i + used);
    match kind(j) {
        Some(TokKind::Other("₮")) => (format!("{} {TUGRIK}", read(Form::Bound)), j + 1 - i),
        Some(TokKind::Word(w)) if w.eq_ignore_ascii_case("MNT") || *w == "төг" => {
            (format!("{} {TUGRIK}", read(Form::Bound)), j + 1 - i)
        }
        Some(TokKind::Other("%")) => (format!("{} хувь", read(Form::Bound)), j + 1 - i),
        Some(TokKind::Word(w)) if counts(w) => (read(Form::Bound), used),
        _ => (read(Form::Free), used),
    }
}

/// `n` at token `i` with a hyphenated ending after it if there is one ("3-р" → ordinal,
/// "27-нд"), else `n` in `form`; and how many tokens that covers.
fn ending_or(toks: &[Tok<'_>], i: usize, n: u64, form: Form) -> (String, usize) {
    if let (Some(TokKind::Other("-")), Some(TokKind::Word(w))) = (
        toks.get(i + 1).map(|t| &t.kind),
        toks.get(i + 2).map(|t| &t.kind),
    ) {
        if is_cyrillic(w) {
            let read = match *w {
                "р" | "дугаар" | "дүгээр" => ordinal(n),
                ending => with_ending(n, ending),
            };
            return (read, 3);
        }
    }
    (words(n, form).join(" "), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_cardinals() {
        let cases: &[(u64, &str)] = &[
            (0, "тэг"),
            (1, "нэг"),
            (2, "хоёр"),
            (3, "гурав"),
            (9, "ес"),
            (10, "арав"),
            (11, "арван нэг"),
            (19, "арван ес"),
            (20, "хорь"),
            (21, "хорин нэг"),
            (25, "хорин тав"),
            (30, "гуч"),
            (99, "ерэн ес"),
            (100, "зуу"),
            (101, "зуун нэг"),
            (110, "зуун арав"),
            (125, "зуун хорин тав"),
            (200, "хоёр зуу"),
            (999, "есөн зуун ерэн ес"),
            (1000, "мянга"),
            (1001, "мянга нэг"),
            (1990, "мянга есөн зуун ер"),
            (2_026, "хоёр мянга хорин зургаа"),
            (2_100, "хоёр мянга нэг зуу"),
            (10_000, "арван мянга"),
            (12_345, "арван хоёр мянга гурван зуун дөчин тав"),
            (21_000, "хорин нэгэн мянга"),
            (100_000, "зуун мянга"),
            (300_000, "гурван зуун мянга"),
            (1_000_000, "нэг сая"),
            (1_001_000, "нэг сая нэг мянга"),
            (2_500_000, "хоёр сая таван зуун мянга"),
            (1_000_000_000, "нэг тэрбум"),
            (
                1_234_567_890,
                "нэг тэрбум хоёр зуун гучин дөрвөн сая таван зуун жаран долоон мянга найман \
                 зуун ер",
            ),
            (1_000_000_000_000, "нэг их наяд"),
            (
                u64::MAX,
                "арван найман сая дөрвөн зуун дөчин зургаан мянга долоон зуун дөчин дөрвөн их \
                 наяд далан гурван тэрбум долоон зуун есөн сая таван зуун тавин нэгэн мянга \
                 зургаан зуун арван тав",
            ),
        ];
        for &(n, want) in cases {
            assert_eq!(cardinal(n), want, "{n}");
        }
    }

    #[test]
    fn bound_cardinals_before_a_noun() {
        let cases: &[(u64, &str)] = &[
            (0, "тэг"),
            (1, "нэг"),
            (2, "хоёр"),
            (3, "гурван"),
            (4, "дөрвөн"),
            (5, "таван"),
            (6, "зургаан"),
            (7, "долоон"),
            (8, "найман"),
            (9, "есөн"),
            (10, "арван"),
            (11, "арван нэгэн"),
            (20, "хорин"),
            (30, "гучин"),
            (40, "дөчин"),
            (50, "тавин"),
            (60, "жаран"),
            (70, "далан"),
            (80, "наян"),
            (90, "ерэн"),
            (25, "хорин таван"),
            (100, "зуун"),
            (110, "зуун арван"),
            (1000, "мянган"),
            (2000, "хоёр мянган"),
            (2026, "хоёр мянга хорин зургаан"),
            (10_000, "арван мянган"),
            (1_000_000, "нэг сая"),
            (1_000_000_000, "нэг тэрбум"),
        ];
        for &(n, want) in cases {
            assert_eq!(cardinal_before_noun(n), want, "{n}");
        }
    }

    #[test]
    fn ordinals_follow_vowel_harmony() {
        let months = [
            "нэгдүгээр",
            "хоёрдугаар",
            "гуравдугаар",
            "дөрөвдүгээр",
            "тавдугаар",
            "зургаадугаар",
            "долоодугаар",
            "наймдугаар",
            "есдүгээр",
            "аравдугаар",
            "арван нэгдүгээр",
            "арван хоёрдугаар",
        ];
        for (m, want) in (1..=12).zip(months) {
            assert_eq!(ordinal(m), want, "{m}");
        }
    }

    #[test]
    fn money_and_days_use_the_bound_form() {
        assert_eq!(tugrik(10_000), "арван мянган төгрөг");
        assert_eq!(tugrik(2_500), "хоёр мянга таван зуун төгрөг");
        assert_eq!(tugrik(1), "нэг төгрөг");
        assert_eq!(tugrik(0), "тэг төгрөг");
        assert_eq!(days(30), "гучин хоног");
        assert_eq!(days(90), "ерэн хоног");
        assert_eq!(days(1), "нэг хоног");
    }

    #[test]
    fn keys_take_the_accusative() {
        assert_eq!(press_key('1').as_deref(), Some("нэгийг дарна уу"));
        assert_eq!(press_key('3').as_deref(), Some("гурвыг дарна уу"));
        assert_eq!(press_key('0').as_deref(), Some("тэгийг дарна уу"));
        assert_eq!(press_key('#').as_deref(), Some("тортой товчийг дарна уу"));
        assert_eq!(press_key('*').as_deref(), Some("одтой товчийг дарна уу"));
        assert_eq!(press_key('x'), None);
    }

    #[test]
    fn hyphenated_endings_join_the_right_form() {
        assert_eq!(with_ending(27, "ны"), "хорин долооны");
        assert_eq!(with_ending(2026, "нд"), "хоёр мянга хорин зургаанд");
        assert_eq!(with_ending(5, "д"), "тавд");
        assert_eq!(with_ending(8, "нд"), "найманд");
        assert_eq!(with_ending(1, "нд"), "нэгэнд");
        assert_eq!(with_ending(2, "нд"), "хоёрд");
        assert_eq!(with_ending(1, "ийг"), "нэгийг");
        assert_eq!(with_ending(9, "ийг"), "есийг");
    }

    #[test]
    fn only_cyrillic_nouns_make_a_number_bound() {
        assert!(counts("хоног"));
        assert!(counts("оны"));
        assert!(!counts("бол"));
        assert!(!counts("days"));
    }
}
