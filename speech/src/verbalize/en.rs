//! English: cardinals, ordinals, years, dates, money, days, key presses, and the English
//! reading of numbers found in free text.
//!
//! Style is American and without "and": 101 is "one hundred one", 12,345 is "twelve thousand
//! three hundred forty-five", compound tens are hyphenated ("forty-five"). Everything here is a
//! pure function of its arguments.

use super::{Date, NumTok, Tok, TokKind};

/// Words for 0–19.
const SMALL: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

/// Words for 20, 30, … 90 (index = tens digit).
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// Short-scale names with their size, largest first; `u64::MAX` is about 18.4 quintillion.
const SCALES: [(u64, &str); 6] = [
    (1_000_000_000_000_000_000, "quintillion"),
    (1_000_000_000_000_000, "quadrillion"),
    (1_000_000_000_000, "trillion"),
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
    (1_000, "thousand"),
];

/// Month names, January first.
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The name of the currency; invariant in English usage ("one tugrik", "ten thousand tugrik").
const TUGRIK: &str = "tugrik";

/// Words before a four-digit number that make it a year ("in 2026", "since 1990").
const YEAR_CUES: [&str; 9] = [
    "in", "since", "until", "till", "by", "from", "year", "before", "after",
];

/// The word for one digit, `0`–`9` ("zero", never "oh").
pub(super) fn digit(d: u8) -> &'static str {
    SMALL[usize::from(d % 10)]
}

/// The word for the `+` of an international phone number.
pub(super) const PLUS: &str = "plus";

/// The word for a decimal point ("two point five").
const POINT: &str = "point";

/// `n` in words.
pub(super) fn cardinal(n: u64) -> String {
    if n == 0 {
        return SMALL[0].to_owned();
    }
    let mut words: Vec<String> = Vec::new();
    let mut rest = n;
    for (size, name) in SCALES {
        let count = rest / size;
        rest %= size;
        if count > 0 {
            // `count` < 1000: `u64::MAX / 10^18` is 18 and every other scale is 1000× the next.
            words.push(below_thousand(count));
            words.push(name.to_owned());
        }
    }
    if rest > 0 {
        words.push(below_thousand(rest));
    }
    words.join(" ")
}

/// `1 ..= 999` in words.
fn below_thousand(n: u64) -> String {
    let hundreds = n / 100;
    let rest = n % 100;
    let mut words = Vec::new();
    if hundreds > 0 {
        words.push(format!("{} hundred", SMALL[hundreds as usize]));
    }
    if rest > 0 {
        words.push(below_hundred(rest));
    }
    words.join(" ")
}

/// `1 ..= 99` in words, tens and units hyphenated.
fn below_hundred(n: u64) -> String {
    let n = n as usize;
    if n < 20 {
        SMALL[n].to_owned()
    } else if n.is_multiple_of(10) {
        TENS[n / 10].to_owned()
    } else {
        format!("{}-{}", TENS[n / 10], SMALL[n % 10])
    }
}

/// The ordinal of `n` in words ("first", "twenty-seventh", "one hundredth").
pub(super) fn ordinal(n: u64) -> String {
    let words = cardinal(n);
    // The last word (after a space or hyphen) takes the ordinal ending.
    let cut = words.rfind([' ', '-']).map_or(0, |i| i + 1);
    let (head, last) = words.split_at(cut);
    let last = match last {
        "one" => "first".to_owned(),
        "two" => "second".to_owned(),
        "three" => "third".to_owned(),
        "five" => "fifth".to_owned(),
        "eight" => "eighth".to_owned(),
        "nine" => "ninth".to_owned(),
        "twelve" => "twelfth".to_owned(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    };
    format!("{head}{last}")
}

/// A year as it is said: "twenty twenty-six", "nineteen oh five", "nineteen hundred",
/// "two thousand five"; years below 1000 or from 10000 on as cardinals.
pub(super) fn year(y: u64) -> String {
    if !(1000..=9999).contains(&y) || y % 1000 < 10 {
        // 2000–2009 are "two thousand (five)"; so are 1000–1009, 3000–3009, …
        return cardinal(y);
    }
    let (high, low) = (y / 100, y % 100);
    match low {
        0 => format!("{} hundred", below_hundred(high)),
        1..=9 => format!("{} oh {}", below_hundred(high), SMALL[low as usize]),
        _ => format!("{} {}", below_hundred(high), below_hundred(low)),
    }
}

/// "November twenty-seventh, twenty twenty-six". `d` is already validated.
pub(super) fn date(d: Date) -> String {
    format!(
        "{} {}, {}",
        MONTHS[usize::from(d.month - 1)],
        ordinal(u64::from(d.day)),
        // A validated year is 1 ..= 9999, so the conversion cannot fail.
        year(u64::try_from(d.year).unwrap_or_default())
    )
}

/// "ten thousand tugrik", "one tugrik", "zero tugrik".
pub(super) fn tugrik(amount: u64) -> String {
    format!("{} {TUGRIK}", cardinal(amount))
}

/// "thirty days", "one day".
pub(super) fn days(n: u64) -> String {
    if n == 1 {
        "one day".to_owned()
    } else {
        format!("{} days", cardinal(n))
    }
}

/// "press one", "press the star key", "press the hash key"; `None` for a key phones lack.
pub(super) fn press_key(key: char) -> Option<String> {
    match key {
        '0'..='9' => Some(format!("press {}", digit(key as u8 - b'0'))),
        '*' => Some("press the star key".to_owned()),
        '#' => Some("press the hash key".to_owned()),
        _ => None,
    }
}

/// The month (1-based) a word names, full or abbreviated ("Nov", "November").
fn month_of(word: &str) -> Option<u8> {
    let lower = word.to_ascii_lowercase();
    if lower.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| {
            let m = m.to_ascii_lowercase();
            lower == m
                || (lower.len() == 3 && m.starts_with(&lower))
                || (lower == "sept" && m == "september")
        })
        // `position` < 12, so the month number fits a `u8`.
        .map(|i| i as u8 + 1)
}

/// A number's reading without context: cardinal, or "two point five".
fn plain(num: &NumTok<'_>) -> String {
    match num.frac {
        Some(frac) => {
            let mut s = cardinal(num.value);
            s.push(' ');
            s.push_str(POINT);
            for b in frac.bytes() {
                s.push(' ');
                s.push_str(digit(b - b'0'));
            }
            s
        }
        None => cardinal(num.value),
    }
}

/// English reading of the token at `i` in free text, with what it needs of its neighbours.
///
/// Returns the words and how many tokens they replace, or `None` to keep the token as written.
/// Digit strings and phone numbers are handled by the caller before this.
pub(super) fn expand_at(toks: &[Tok<'_>], i: usize) -> Option<(String, usize)> {
    match &toks[i].kind {
        TokKind::Word(w) => {
            if let Some(out) = month_day_year(toks, i) {
                return Some(out);
            }
            if w.eq_ignore_ascii_case("MNT") {
                return currency_prefix(toks, i);
            }
            None
        }
        TokKind::Other("₮") => currency_prefix(toks, i),
        // A dash between two numbers is a range: "65–69" → "sixty-five to sixty-nine".
        TokKind::Other("–" | "-") => {
            let before = super::prev_solid(toks, i)?;
            let after = super::next_solid(toks, i)?;
            if !matches!(toks[before].kind, TokKind::Num(_))
                && month_of_token(&toks[before]).is_none()
            {
                return None;
            }
            if !matches!(toks[after].kind, TokKind::Num(_)) {
                return None;
            }
            let lead = if before + 1 == i { " " } else { "" };
            let trail = if after == i + 1 { " " } else { "" };
            Some((format!("{lead}to{trail}"), 1))
        }
        TokKind::Num(num) => Some(number_at(toks, i, num)),
        TokKind::IsoDate(d) => Some((date(*d), 1)),
        _ => None,
    }
}

/// The month a word token names, if any.
fn month_of_token(tok: &Tok<'_>) -> Option<u8> {
    match tok.kind {
        TokKind::Word(w) => month_of(w),
        _ => None,
    }
}

/// "₮10,000" / "MNT 10,000" at `i` → "ten thousand tugrik".
fn currency_prefix(toks: &[Tok<'_>], i: usize) -> Option<(String, usize)> {
    let j = super::skip_one_space(toks, i + 1);
    let TokKind::Num(num) = &toks.get(j)?.kind else {
        return None;
    };
    let (value, used) = super::scaled_value(toks, j, num);
    let words = match value {
        Some(v) => cardinal(v),
        None => plain(num),
    };
    Some((format!("{words} {TUGRIK}"), j + used - i))
}

/// "November 27, 2026" / "Nov 27" at a month word.
fn month_day_year(toks: &[Tok<'_>], i: usize) -> Option<(String, usize)> {
    let month = month_of_token(&toks[i])?;
    let TokKind::Space(_) = toks.get(i + 1)?.kind else {
        return None;
    };
    let TokKind::Num(day) = &toks.get(i + 2)?.kind else {
        return None;
    };
    // "Jan 2025" → "January twenty twenty-five".
    if day.is_plain() && day.digits.len() == 4 {
        return Some((
            format!("{} {}", MONTHS[usize::from(month - 1)], year(day.value)),
            3,
        ));
    }
    if day.is_plain() && (1..=31).contains(&day.value) {
        let name = MONTHS[usize::from(month - 1)];
        // ", 2026" after the day makes it a full date.
        if let (Some(TokKind::Other(",")), Some(TokKind::Space(_)), Some(TokKind::Num(y))) = (
            toks.get(i + 3).map(|t| &t.kind),
            toks.get(i + 4).map(|t| &t.kind),
            toks.get(i + 5).map(|t| &t.kind),
        ) {
            if y.is_plain() && y.digits.len() == 4 {
                let d = Date {
                    year: i32::try_from(y.value).ok()?,
                    month,
                    day: u8::try_from(day.value).ok()?,
                };
                if d.validate().is_ok() {
                    return Some((date(d), 6));
                }
            }
        }
        let d = u8::try_from(day.value).ok()?;
        if d <= super::days_in_month(2024, month) {
            return Some((format!("{name} {}", ordinal(day.value)), 3));
        }
    }
    None
}

/// A number in free text, read for what follows and precedes it.
fn number_at(toks: &[Tok<'_>], i: usize, num: &NumTok<'_>) -> (String, usize) {
    // "27th", "1st": an attached ordinal ending.
    if num.is_plain() {
        if let Some(TokKind::Word(w)) = toks.get(i + 1).map(|t| &t.kind) {
            if ["st", "nd", "rd", "th"].contains(&w.to_ascii_lowercase().as_str()) {
                return (ordinal(num.value), 2);
            }
        }
        // "15 Feb" → "fifteenth of February".
        if (1..=31).contains(&num.value) {
            if let (Some(TokKind::Space(_)), Some(tok)) =
                (toks.get(i + 1).map(|t| &t.kind), toks.get(i + 2))
            {
                if let Some(m) = month_of_token(tok) {
                    return (
                        format!("{} of {}", ordinal(num.value), MONTHS[usize::from(m - 1)]),
                        3,
                    );
                }
            }
        }
        // "in 2026" → "in twenty twenty-six".
        if num.digits.len() == 4 && (1100..=2099).contains(&num.value) {
            if let Some(p) = super::prev_solid(toks, i) {
                if let TokKind::Word(w) = toks[p].kind {
                    if p + 2 == i && YEAR_CUES.contains(&w.to_ascii_lowercase().as_str()) {
                        return (year(num.value), 1);
                    }
                }
            }
        }
    }
    let (value, used) = super::scaled_value(toks, i, num);
    // A fraction is read as written ("two point zero") unless a multiplier made it whole.
    let value = value.filter(|_| used > 1 || num.frac.is_none());
    let mut words = match value {
        Some(v) => cardinal(v),
        None => plain(num),
    };
    let mut used = if value.is_some() { used } else { 1 };
    // What follows: a currency or a percent sign.
    let j = super::skip_one_space(toks, i + used);
    match toks.get(j).map(|t| &t.kind) {
        Some(TokKind::Other("₮")) => {
            words.push(' ');
            words.push_str(TUGRIK);
            used = j + 1 - i;
        }
        Some(TokKind::Word(w))
            if w.eq_ignore_ascii_case("MNT")
                || w.eq_ignore_ascii_case("tugrik")
                || w.eq_ignore_ascii_case("tugriks") =>
        {
            words.push(' ');
            words.push_str(TUGRIK);
            used = j + 1 - i;
        }
        Some(TokKind::Other("%")) => {
            words.push_str(" percent");
            used = j + 1 - i;
        }
        // "90+" → "ninety plus"; a "+" before digits belongs to a phone number instead.
        Some(TokKind::Other("+")) if j == i + used => {
            words.push_str(" plus");
            used += 1;
        }
        _ => {}
    }
    (words, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinals_follow_american_style_without_and() {
        let cases: &[(u64, &str)] = &[
            (0, "zero"),
            (1, "one"),
            (10, "ten"),
            (11, "eleven"),
            (19, "nineteen"),
            (20, "twenty"),
            (21, "twenty-one"),
            (99, "ninety-nine"),
            (100, "one hundred"),
            (101, "one hundred one"),
            (110, "one hundred ten"),
            (999, "nine hundred ninety-nine"),
            (1000, "one thousand"),
            (1001, "one thousand one"),
            (2_026, "two thousand twenty-six"),
            (10_000, "ten thousand"),
            (12_345, "twelve thousand three hundred forty-five"),
            (100_000, "one hundred thousand"),
            (1_000_000, "one million"),
            (1_000_001, "one million one"),
            (
                1_234_567_890,
                "one billion two hundred thirty-four million five hundred sixty-seven thousand \
                 eight hundred ninety",
            ),
            (
                u64::MAX,
                "eighteen quintillion four hundred forty-six quadrillion seven hundred \
                 forty-four trillion seventy-three billion seven hundred nine million five \
                 hundred fifty-one thousand six hundred fifteen",
            ),
        ];
        for &(n, want) in cases {
            assert_eq!(cardinal(n), want, "{n}");
        }
    }

    #[test]
    fn ordinals_change_only_the_last_word() {
        let cases: &[(u64, &str)] = &[
            (1, "first"),
            (2, "second"),
            (3, "third"),
            (4, "fourth"),
            (5, "fifth"),
            (8, "eighth"),
            (9, "ninth"),
            (11, "eleventh"),
            (12, "twelfth"),
            (20, "twentieth"),
            (21, "twenty-first"),
            (27, "twenty-seventh"),
            (30, "thirtieth"),
            (31, "thirty-first"),
            (100, "one hundredth"),
            (1_000_000, "one millionth"),
        ];
        for &(n, want) in cases {
            assert_eq!(ordinal(n), want, "{n}");
        }
    }

    #[test]
    fn years_are_read_in_pairs() {
        let cases: &[(u64, &str)] = &[
            (2026, "twenty twenty-six"),
            (2010, "twenty ten"),
            (2000, "two thousand"),
            (2005, "two thousand five"),
            (1999, "nineteen ninety-nine"),
            (1905, "nineteen oh five"),
            (1900, "nineteen hundred"),
            (1066, "ten sixty-six"),
            (999, "nine hundred ninety-nine"),
        ];
        for &(y, want) in cases {
            assert_eq!(year(y), want, "{y}");
        }
    }

    #[test]
    fn month_names_and_abbreviations_are_recognised() {
        assert_eq!(month_of("November"), Some(11));
        assert_eq!(month_of("nov"), Some(11));
        assert_eq!(month_of("Sept"), Some(9));
        assert_eq!(month_of("May"), Some(5));
        assert_eq!(month_of("Ma"), None);
        assert_eq!(month_of("Mayor"), None);
    }

    #[test]
    fn days_are_singular_only_for_one() {
        assert_eq!(days(1), "one day");
        assert_eq!(days(0), "zero days");
        assert_eq!(days(30), "thirty days");
    }

    #[test]
    fn keys_name_star_and_hash_like_the_prompts() {
        assert_eq!(press_key('0').as_deref(), Some("press zero"));
        assert_eq!(press_key('#').as_deref(), Some("press the hash key"));
        assert_eq!(press_key('*').as_deref(), Some("press the star key"));
        assert_eq!(press_key('A'), None);
    }
}
