//! Numbers, digit strings, dates and money into words, per locale, before synthesis.
//!
//! A synthesizer must never guess how to read "1234567890" or "10,000₮": as a count, a year, a
//! code read digit by digit, or an amount of money. This module decides, and hands the
//! synthesizers (or the recorded number clips of a prompt pack) words and pauses only.
//!
//! It owns the number grammar of each locale: English in `en.rs`, Mongolian in `mn.rs` (with
//! the free and bound forms of Mongolian numerals, documented there). It does no IO, reads no
//! clock and starts no threads: every function here is a pure function of its arguments.
//!
//! How to use it:
//!
//! - known values: [`cardinal`], [`cardinal_before_noun`], [`ordinal`], [`date`], [`tugrik`],
//!   [`days`], [`press_key`] give a string;
//! - codes: [`digits`], [`case_number`] (3-3-4) and [`phone_number`] (4-4, `+976`) give
//!   [`Segment`]s, digit by digit, with a [`GROUP_PAUSE`] between groups;
//! - free text, such as a service's fee or a filled-in prompt: [`expand`] finds the numbers and
//!   reads each for its context; [`expand_to_string`] does the same for a text-only channel.
//!
//! ```
//! use speech::{verbalize, Locale, tts::Segment};
//!
//! assert_eq!(verbalize::tugrik(Locale::Mn, 10_000), "арван мянган төгрөг");
//! assert_eq!(
//!     verbalize::expand_to_string(Locale::En, "Your number is 4710395823."),
//!     "Your number is four seven one, zero three nine, five eight two three."
//! );
//! let segments = verbalize::case_number(Locale::En, "4710395823")?;
//! assert_eq!(segments[1], Segment::Pause(verbalize::GROUP_PAUSE));
//! # Ok::<(), speech::Error>(())
//! ```
//!
//! Digits within a group are separated by spaces only; the structure a listener needs is the
//! pause between groups, and the caller's [`SpeechRate`](crate::tts::SpeechRate) slows the
//! whole reading. Digits are read "zero" (English) and "тэг" (Mongolian), never "oh".
//!
//! Mongolian forms that no native speaker has checked yet are marked
//! "(unverified; native check needed)" where they are defined.

mod en;
mod mn;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::tts::Segment;
use crate::{Error, Locale, Result};

/// The silence between two groups of a code read digit by digit ("471 · 039 · 5823").
pub const GROUP_PAUSE: Duration = Duration::from_millis(400);

/// A calendar date (proleptic Gregorian), validated on construction.
///
/// Fields are public for matching and display; [`date`] validates again, so a `Date` built
/// by hand with a bad day is rejected there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    /// The year, `1 ..= 9999`.
    pub year: i32,
    /// The month, `1 ..= 12`.
    pub month: u8,
    /// The day of the month, `1 ..=` that month's length (29 February in leap years only).
    pub day: u8,
}

impl Date {
    /// A date, or [`Error::InvalidArgument`] if there is no such day (30 February, month 13,
    /// year 0).
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self> {
        let d = Date { year, month, day };
        d.validate()?;
        Ok(d)
    }

    /// Checks that this day exists.
    pub fn validate(&self) -> Result<()> {
        if !(1..=9999).contains(&self.year) {
            return Err(Error::InvalidArgument(format!(
                "year {} is outside 1..=9999",
                self.year
            )));
        }
        if !(1..=12).contains(&self.month) {
            return Err(Error::InvalidArgument(format!(
                "month {} is outside 1..=12",
                self.month
            )));
        }
        let last = days_in_month(self.year, self.month);
        if !(1..=last).contains(&self.day) {
            return Err(Error::InvalidArgument(format!(
                "day {} does not exist in {:04}-{:02} (it has {last} days)",
                self.day, self.year, self.month
            )));
        }
        Ok(())
    }
}

impl FromStr for Date {
    type Err = Error;

    /// Parses `YYYY-MM-DD`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument(format!("{s:?} is not a date written YYYY-MM-DD"));
        let b = s.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(k, c)| k == 4 || k == 7 || c.is_ascii_digit());
        if !shaped {
            return Err(bad());
        }
        let year = s[0..4].parse().map_err(|_| bad())?;
        let month = s[5..7].parse().map_err(|_| bad())?;
        let day = s[8..10].parse().map_err(|_| bad())?;
        Date::new(year, month, day)
    }
}

impl fmt::Display for Date {
    /// `YYYY-MM-DD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// `n` standing alone: "twelve thousand three hundred forty-five" (American, no "and");
/// "арван хоёр мянга гурван зуун дөчин тав".
pub fn cardinal(locale: Locale, n: u64) -> String {
    match locale {
        Locale::En => en::cardinal(n),
        Locale::Mn => mn::cardinal(n),
    }
}

/// `n` before a noun it counts. Mongolian uses the bound form ("гучин хоног", "арван мянган
/// төгрөг"); English has no such form and reads it as [`cardinal`].
pub fn cardinal_before_noun(locale: Locale, n: u64) -> String {
    match locale {
        Locale::En => en::cardinal(n),
        Locale::Mn => mn::cardinal_before_noun(n),
    }
}

/// The ordinal of `n`: "twenty-seventh"; "арван нэгдүгээр" (as in "арван нэгдүгээр сар").
pub fn ordinal(locale: Locale, n: u64) -> String {
    match locale {
        Locale::En => en::ordinal(n),
        Locale::Mn => mn::ordinal(n),
    }
}

/// A digit string read digit by digit, in groups of the given sizes with a [`GROUP_PAUSE`]
/// between groups: one [`Segment::Text`] per group, digits separated by spaces.
///
/// Groups are taken in order; a zero size is skipped, a size larger than what is left takes
/// the rest, and digits left after the last size form one more group (so `&[]` is one group).
/// `s` must be non-empty ASCII digits; leading zeros are read ("007" → "zero zero seven").
pub fn digits(locale: Locale, s: &str, groups: &[usize]) -> Result<Vec<Segment>> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidArgument(format!(
            "{s:?} is not a string of digits"
        )));
    }
    let word = |b: u8| match locale {
        Locale::En => en::digit(b - b'0'),
        Locale::Mn => mn::digit(b - b'0'),
    };
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    let mut sizes = groups.iter().copied().filter(|&g| g > 0);
    while at < bytes.len() {
        let size = sizes
            .next()
            .unwrap_or(bytes.len() - at)
            .min(bytes.len() - at);
        if at > 0 {
            out.push(Segment::Pause(GROUP_PAUSE));
        }
        let group: Vec<&str> = bytes[at..at + size].iter().map(|&b| word(b)).collect();
        out.push(Segment::Text(group.join(" ")));
        at += size;
    }
    Ok(out)
}

/// A reference number read digit by digit: 10 digits in groups of 3-3-4; other lengths in
/// groups of 3 whose last group takes up to 4 (7 → 3-4, 8 → 3-3-2, up to 4 → one group).
///
/// Spaces, hyphens and dots between digits are ignored ("471-039-5823"); anything else is
/// [`Error::InvalidArgument`].
pub fn case_number(locale: Locale, s: &str) -> Result<Vec<Segment>> {
    let d = strip_separators(s)?;
    digits(locale, &d, &code_groups(d.len()))
}

/// A phone number read digit by digit: a Mongolian 8-digit number in groups of 4-4; a leading
/// `+976` (or `00976`) read first as "plus nine seven six" / "нэмэх ес долоо зургаа",
/// followed by a pause. Other international numbers are read "plus" then in groups of 3; other
/// lengths as [`case_number`] groups them.
///
/// Spaces, hyphens, dots and parentheses are ignored; anything else is
/// [`Error::InvalidArgument`].
pub fn phone_number(locale: Locale, s: &str) -> Result<Vec<Segment>> {
    let trimmed = s.trim();
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut d = strip_separators(rest)?;
    let international = plus || (d.len() > 4 && d.starts_with("00"));
    if international && !plus {
        d.drain(..2);
    }
    phone_segments(locale, international, &d)
}

/// A date: "November twenty-seventh, twenty twenty-six"; "хоёр мянга хорин зургаан оны арван
/// нэгдүгээр сарын хорин долоон". [`Error::InvalidArgument`] if there is no such day.
pub fn date(locale: Locale, d: Date) -> Result<String> {
    d.validate()?;
    Ok(date_words(locale, d))
}

/// An amount of tugrik: "ten thousand tugrik" (invariant in English: "one tugrik"), "арван
/// мянган төгрөг". Zero is "zero tugrik" / "тэг төгрөг": saying "free" is the caller's choice.
pub fn tugrik(locale: Locale, amount: u64) -> String {
    match locale {
        Locale::En => en::tugrik(amount),
        Locale::Mn => mn::tugrik(amount),
    }
}

/// A number of days, as deadlines are said: "thirty days", "one day"; "гучин хоног".
pub fn days(locale: Locale, n: u64) -> String {
    match locale {
        Locale::En => en::days(n),
        Locale::Mn => mn::days(n),
    }
}

/// The instruction to press a key: "press one", "press the hash key"; "нэгийг дарна уу",
/// "тортой товчийг дарна уу". Keys are `0`–`9`, `*` and `#`; anything else is
/// [`Error::InvalidArgument`].
pub fn press_key(locale: Locale, key: char) -> Result<String> {
    let said = match locale {
        Locale::En => en::press_key(key),
        Locale::Mn => mn::press_key(key),
    };
    said.ok_or_else(|| Error::InvalidArgument(format!("{key:?} is not a key on a phone keypad")))
}

/// Finds the numbers in `text` and reads each for its context; the rest of the text is kept
/// as written, punctuation included.
///
/// - money: "10,000 MNT", "10,000₮", "₮10,000", "10 000 төгрөг" → "ten thousand tugrik",
///   "арван мянган төгрөг";
/// - a Mongolian number before a noun takes the bound form: "30 хоног" → "гучин хоног",
///   "2026 оны" → "хоёр мянга хорин зургаан оны"; "11 сарын 27" reads the month as an ordinal;
/// - codes are read digit by digit with pauses: a run of 5 or more digits, or one with a
///   leading zero ("007"); 10 digits as 3-3-4, 8 as 4-4; a phone number written `+976 …` or
///   `9911-2233` (first digit 5–9) as [`phone_number`] reads it;
/// - dates: `2026-11-27`, and "November 27, 2026" in English; a year after "in", "since", …
///   in English is read as a year ("twenty twenty-six");
/// - "20 %", "50k", "1 M", "27th", "2.5", "65–69", and "11-11" (a name: "eleven eleven");
/// - any other number is a cardinal ("3" → "three").
///
/// The result is [`Segment::Text`] runs, with a [`Segment::Pause`] only between the groups of
/// a code. No ASCII digit is left in the text.
pub fn expand(locale: Locale, text: &str) -> Vec<Segment> {
    let toks = tokenize(text);
    let mut out = Builder::default();
    let mut i = 0;
    while i < toks.len() {
        let used = match &toks[i].kind {
            TokKind::Phone {
                international,
                digits,
            } => {
                // The tokenizer only makes phone tokens of digits, so this cannot fail; if it
                // did, reading the raw text is the safe fallback.
                match phone_segments(locale, *international, digits) {
                    Ok(segs) => out.extend(segs),
                    Err(_) => out.text(toks[i].raw),
                }
                1
            }
            TokKind::Digits(d) => {
                out.code(locale, d);
                1
            }
            TokKind::Num(n) if n.is_code() && !currency_follows(&toks, i + 1) => {
                out.code(locale, &n.digits);
                1
            }
            TokKind::Num(a) if a.is_plain() && a.digits.len() <= 2 => {
                // "11-11": two short numbers joined by a hyphen are a name, read as written.
                match (
                    toks.get(i + 1).map(|t| &t.kind),
                    toks.get(i + 2).map(|t| &t.kind),
                ) {
                    (Some(TokKind::Other("-")), Some(TokKind::Num(b)))
                        if b.is_plain() && b.digits.len() <= 2 =>
                    {
                        out.text(&cardinal(locale, a.value));
                        out.text(" ");
                        out.text(&cardinal(locale, b.value));
                        3
                    }
                    _ => out.hook(locale, &toks, i),
                }
            }
            _ => out.hook(locale, &toks, i),
        };
        i += used.max(1);
    }
    out.finish()
}

/// [`expand`] as one string for a text-only channel (an SMS, a transcript, a TTS engine
/// without pause markup): each pause becomes ", ".
pub fn expand_to_string(locale: Locale, text: &str) -> String {
    to_text(&expand(locale, text))
}

/// Segments as one string: text as is, each pause as ", " (the comma a synthesizer pauses at).
pub fn to_text(segments: &[Segment]) -> String {
    let mut out = String::new();
    let mut pause = false;
    for seg in segments {
        match seg {
            Segment::Pause(_) => pause = !out.is_empty(),
            Segment::Text(t) => {
                if pause {
                    let kept = out.trim_end().len();
                    out.truncate(kept);
                    out.push_str(", ");
                    out.push_str(t.trim_start());
                    pause = false;
                } else {
                    out.push_str(t);
                }
            }
        }
    }
    out
}

// ---- shared by the locales ----

/// Days in a month of a year (Gregorian leap years).
pub(super) fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The date in words; `d` is already validated.
fn date_words(locale: Locale, d: Date) -> String {
    match locale {
        Locale::En => en::date(d),
        Locale::Mn => mn::date(d),
    }
}

/// Group sizes for a code of `len` digits: 3-3-4 for 10, else threes with a last group of up
/// to 4.
fn code_groups(len: usize) -> Vec<usize> {
    if len <= 4 {
        return vec![len];
    }
    let mut groups = vec![3; len / 3];
    match len % 3 {
        1 => {
            // len ≥ 5 and len % 3 == 1 means len ≥ 7: there are at least two threes.
            if let Some(last) = groups.last_mut() {
                *last = 4;
            }
        }
        2 => groups.push(2),
        _ => {}
    }
    groups
}

/// The digits of `s` without the separators people write in numbers.
fn strip_separators(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' | '\u{202f}' => {}
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{s:?} is not a number: {c:?}"
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(Error::InvalidArgument(format!("{s:?} has no digits")));
    }
    Ok(out)
}

/// Phone number segments from its digits (separators already removed).
fn phone_segments(locale: Locale, international: bool, d: &str) -> Result<Vec<Segment>> {
    let national_groups = |n: &str| {
        if n.len() == 8 {
            vec![4, 4]
        } else {
            code_groups(n.len())
        }
    };
    if !international {
        return digits(locale, d, &national_groups(d));
    }
    let plus = match locale {
        Locale::En => en::PLUS,
        Locale::Mn => mn::PLUS,
    };
    let groups = match d.strip_prefix("976").filter(|n| !n.is_empty()) {
        Some(national) => {
            let mut groups = vec![3];
            groups.extend(national_groups(national));
            groups
        }
        None => code_groups(d.len()),
    };
    let mut segs = digits(locale, d, &groups)?;
    if let Some(Segment::Text(first)) = segs.first_mut() {
        *first = format!("{plus} {first}");
    }
    Ok(segs)
}

// ---- free text ----

/// A piece of free text.
#[derive(Debug)]
struct Tok<'a> {
    kind: TokKind<'a>,
    /// The text it was made from.
    raw: &'a str,
}

/// What a piece of free text is.
#[derive(Debug)]
enum TokKind<'a> {
    /// A number: "3", "10,000", "10 000", "2.5".
    Num(NumTok<'a>),
    /// A digit string too long for `u64`: only readable digit by digit.
    Digits(String),
    /// A phone number: "+976 9911 2233" (international) or "9911-2233".
    Phone { international: bool, digits: String },
    /// A date written `YYYY-MM-DD` (valid).
    IsoDate(Date),
    /// Letters.
    Word(&'a str),
    /// Whitespace.
    Space(&'a str),
    /// Any other single character.
    Other(&'a str),
}

/// A number as written in text.
#[derive(Debug)]
struct NumTok<'a> {
    /// Its digits before any decimal point, without group separators.
    digits: String,
    /// Their value.
    value: u64,
    /// Whether it was written with group separators ("10,000").
    grouped: bool,
    /// The digits after a decimal point.
    frac: Option<&'a str>,
}

impl NumTok<'_> {
    /// An integer written without separators or leading zeros: "27", "2026".
    fn is_plain(&self) -> bool {
        !self.grouped && self.frac.is_none() && !self.leading_zero()
    }

    fn leading_zero(&self) -> bool {
        self.digits.len() > 1 && self.digits.starts_with('0')
    }

    /// Whether it reads digit by digit: a run of 5+ digits, or one with a leading zero.
    fn is_code(&self) -> bool {
        !self.grouped && self.frac.is_none() && (self.digits.len() >= 5 || self.leading_zero())
    }
}

/// Splits free text into tokens.
fn tokenize(text: &str) -> Vec<Tok<'_>> {
    let b = text.as_bytes();
    let digit_at = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
    let mut toks = Vec::new();
    let mut p = 0;
    while let Some(c) = text[p..].chars().next() {
        let start = p;
        let kind = if c == '+' && digit_at(p + 1) && !alnum_before(text, p) {
            match scan_international(b, p + 1) {
                Some((end, digits)) => {
                    p = end;
                    TokKind::Phone {
                        international: true,
                        digits,
                    }
                }
                None => {
                    p += 1;
                    TokKind::Other("+")
                }
            }
        } else if c.is_ascii_digit() {
            if let Some(d) = scan_iso_date(text, p) {
                p += 10;
                TokKind::IsoDate(d)
            } else if let Some(digits) = scan_local_phone(b, p) {
                p += 9;
                TokKind::Phone {
                    international: false,
                    digits,
                }
            } else {
                let (end, kind) = scan_number(text, p);
                p = end;
                kind
            }
        } else if c.is_alphabetic() {
            p += text[p..]
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(text.len() - p);
            TokKind::Word(&text[start..p])
        } else if c.is_whitespace() {
            p += text[p..]
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(text.len() - p);
            TokKind::Space(&text[start..p])
        } else {
            p += c.len_utf8();
            TokKind::Other(&text[start..p])
        };
        toks.push(Tok {
            kind,
            raw: &text[start..p],
        });
    }
    toks
}

/// Whether the character before byte `p` is a letter or digit.
fn alnum_before(text: &str, p: usize) -> bool {
    text[..p]
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric)
}

/// Digits of "+976 9911-2233" from just after the `+`: digits with single spaces or hyphens
/// between them; at least 7 digits, else not a phone number.
fn scan_international(b: &[u8], from: usize) -> Option<(usize, String)> {
    let mut digits = String::new();
    let mut p = from;
    let mut end = from;
    while p < b.len() {
        if b[p].is_ascii_digit() {
            digits.push(char::from(b[p]));
            p += 1;
            end = p;
        } else if (b[p] == b' ' || b[p] == b'-') && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
            p += 1;
        } else {
            break;
        }
    }
    (digits.len() >= 7).then_some((end, digits))
}

/// A valid `YYYY-MM-DD` at `p`, not inside a longer digit run.
fn scan_iso_date(text: &str, p: usize) -> Option<Date> {
    let b = text.as_bytes();
    let bounded =
        (p == 0 || !b[p - 1].is_ascii_digit()) && !b.get(p + 10).is_some_and(u8::is_ascii_digit);
    if !bounded || b.len() < p + 10 {
        return None;
    }
    text.get(p..p + 10)?.parse().ok()
}

/// A Mongolian phone number written "9911-2233" or "9911 2233" at `p`: 4 + 4 digits, the
/// first 5–9 (so "2024-2025" stays a range of years), not inside a longer digit run.
fn scan_local_phone(b: &[u8], p: usize) -> Option<String> {
    let digits_in =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shaped = (p == 0 || !b[p - 1].is_ascii_digit())
        && (b'5'..=b'9').contains(&b[p])
        && digits_in(p..p + 4)
        && matches!(b.get(p + 4), Some(b'-' | b' '))
        && digits_in(p + 5..p + 9)
        && !b.get(p + 9).is_some_and(u8::is_ascii_digit);
    shaped.then(|| {
        let mut d = String::from_utf8_lossy(&b[p..p + 4]).into_owned();
        d.push_str(&String::from_utf8_lossy(&b[p + 5..p + 9]));
        d
    })
}

/// A number at `p`: digits, groups of exactly three after a separator (",", " ", no-break or
/// thin space) when the first run has 1–3 digits, and a decimal part after ".".
fn scan_number(text: &str, p: usize) -> (usize, TokKind<'_>) {
    let b = text.as_bytes();
    let run_end = |from: usize| {
        let mut q = from;
        while b.get(q).is_some_and(u8::is_ascii_digit) {
            q += 1;
        }
        q
    };
    let mut q = run_end(p);
    let mut digits = text[p..q].to_owned();
    let mut grouped = false;
    if q - p <= 3 {
        let mut sep_used: Option<&str> = None;
        loop {
            let rest = &text[q..];
            let Some(sep) = [",", " ", "\u{a0}", "\u{202f}"]
                .into_iter()
                .find(|s| rest.starts_with(s) && sep_used.is_none_or(|u| u == *s))
            else {
                break;
            };
            let g = q + sep.len();
            if run_end(g) != g + 3 {
                break;
            }
            digits.push_str(&text[g..g + 3]);
            sep_used = Some(sep);
            grouped = true;
            q = g + 3;
        }
    }
    let mut frac = None;
    if b.get(q) == Some(&b'.') && b.get(q + 1).is_some_and(u8::is_ascii_digit) {
        let f_end = run_end(q + 1);
        frac = Some(&text[q + 1..f_end]);
        q = f_end;
    }
    let kind = match digits.parse::<u64>() {
        Ok(value) => TokKind::Num(NumTok {
            digits,
            value,
            grouped,
            frac,
        }),
        // Too long for u64: a code. Its decimal part, if any, stays for the next token.
        Err(_) => {
            let end = p + text[p..q].find('.').unwrap_or(q - p);
            return (
                end,
                TokKind::Digits(text[p..end].replace(|c: char| !c.is_ascii_digit(), "")),
            );
        }
    };
    (q, kind)
}

/// Index of the previous token that is not whitespace.
fn prev_solid(toks: &[Tok<'_>], i: usize) -> Option<usize> {
    (0..i)
        .rev()
        .find(|&k| !matches!(toks[k].kind, TokKind::Space(_)))
}

/// Index of the next token that is not whitespace.
fn next_solid(toks: &[Tok<'_>], i: usize) -> Option<usize> {
    (i + 1..toks.len()).find(|&k| !matches!(toks[k].kind, TokKind::Space(_)))
}

/// `j`, or `j + 1` if token `j` is whitespace.
fn skip_one_space(toks: &[Tok<'_>], j: usize) -> usize {
    match toks.get(j).map(|t| &t.kind) {
        Some(TokKind::Space(_)) => j + 1,
        _ => j,
    }
}

/// Whether a currency follows at `j` (after at most one space): "₮", "MNT", "төгрөг…",
/// "tugrik…".
fn currency_follows(toks: &[Tok<'_>], j: usize) -> bool {
    match toks.get(skip_one_space(toks, j)).map(|t| &t.kind) {
        Some(TokKind::Other("₮")) => true,
        Some(TokKind::Word(w)) => {
            w.eq_ignore_ascii_case("MNT")
                || w.starts_with("төгрөг")
                || w.to_ascii_lowercase().starts_with("tugrik")
        }
        _ => false,
    }
}

/// The value of the number at `i` with a multiplier after it ("50k", "1 M", "1.5 M") and how
/// many tokens that covers; `None` for a fraction that does not come out whole, or overflow.
fn scaled_value(toks: &[Tok<'_>], i: usize, num: &NumTok<'_>) -> (Option<u64>, usize) {
    let word_at = |k: usize| match toks.get(k).map(|t| &t.kind) {
        Some(TokKind::Word(w)) => Some(*w),
        _ => None,
    };
    let (mult, used) = match (
        word_at(i + 1),
        toks.get(i + 1).map(|t| &t.kind),
        word_at(i + 2),
    ) {
        (Some("k" | "K"), _, _) => (1_000u64, 2),
        (Some("M"), _, _) => (1_000_000, 2),
        (_, Some(TokKind::Space(" ")), Some("M")) => (1_000_000, 3),
        _ => (1, 1),
    };
    let whole = num.value.checked_mul(mult);
    let value = match num.frac {
        None => whole,
        Some(f) => {
            // f has at least one digit; more than 19 cannot scale to a whole number here.
            let scale = u32::try_from(f.len())
                .ok()
                .and_then(|n| 10u64.checked_pow(n));
            let part = f.parse::<u64>().ok();
            match (whole, scale, part) {
                (Some(w), Some(s), Some(p)) if p.checked_mul(mult).is_some_and(|x| x % s == 0) => {
                    p.checked_mul(mult).and_then(|x| w.checked_add(x / s))
                }
                _ => None,
            }
        }
    };
    (value, used)
}

/// Collects segments, merging adjacent text.
#[derive(Default)]
struct Builder {
    out: Vec<Segment>,
    text: String,
}

impl Builder {
    fn text(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn pause(&mut self) {
        if !self.text.is_empty() {
            self.out.push(Segment::Text(std::mem::take(&mut self.text)));
        }
        self.out.push(Segment::Pause(GROUP_PAUSE));
    }

    fn extend(&mut self, segs: Vec<Segment>) {
        for seg in segs {
            match seg {
                Segment::Text(t) => self.text(&t),
                Segment::Pause(_) => self.pause(),
            }
        }
    }

    /// A digit string read as a code: 10 digits 3-3-4, 8 digits 4-4, others in threes.
    fn code(&mut self, locale: Locale, d: &str) {
        let groups = if d.len() == 8 {
            vec![4, 4]
        } else {
            code_groups(d.len())
        };
        // `d` is non-empty ASCII digits (the tokenizer made it), so this cannot fail.
        if let Ok(segs) = digits(locale, d, &groups) {
            self.extend(segs);
        }
    }

    /// The locale's reading of token `i`; the token as written when it has none.
    fn hook(&mut self, locale: Locale, toks: &[Tok<'_>], i: usize) -> usize {
        let read = match locale {
            Locale::En => en::expand_at(toks, i),
            Locale::Mn => mn::expand_at(toks, i),
        };
        match read {
            Some((s, used)) => {
                self.text(&s);
                used
            }
            None => {
                self.text(toks[i].raw);
                1
            }
        }
    }

    fn finish(mut self) -> Vec<Segment> {
        if !self.text.is_empty() {
            self.out.push(Segment::Text(self.text));
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Segment {
        Segment::Text(s.to_owned())
    }

    const P: Segment = Segment::Pause(GROUP_PAUSE);

    #[test]
    fn case_number_reads_ten_digits_three_three_four() {
        assert_eq!(
            case_number(Locale::En, "4710395823").unwrap(),
            vec![
                t("four seven one"),
                P,
                t("zero three nine"),
                P,
                t("five eight two three")
            ]
        );
        assert_eq!(
            case_number(Locale::Mn, "471-039-5823").unwrap(),
            vec![
                t("дөрөв долоо нэг"),
                P,
                t("тэг гурав ес"),
                P,
                t("тав найм хоёр гурав")
            ]
        );
    }

    #[test]
    fn case_number_groups_other_lengths_in_threes() {
        let sizes = |s: &str| -> Vec<usize> {
            case_number(Locale::En, s)
                .unwrap()
                .iter()
                .filter_map(|seg| match seg {
                    Segment::Text(t) => Some(t.split(' ').count()),
                    Segment::Pause(_) => None,
                })
                .collect()
        };
        assert_eq!(sizes("1234"), vec![4]);
        assert_eq!(sizes("12345"), vec![3, 2]);
        assert_eq!(sizes("123456"), vec![3, 3]);
        assert_eq!(sizes("1234567"), vec![3, 4]);
        assert_eq!(sizes("12345678"), vec![3, 3, 2]);
        assert_eq!(sizes("1234567890123"), vec![3, 3, 3, 4]);
    }

    #[test]
    fn digits_keep_leading_zeros_and_say_zero() {
        assert_eq!(
            digits(Locale::En, "007", &[]).unwrap(),
            vec![t("zero zero seven")]
        );
        assert_eq!(
            digits(Locale::Mn, "007", &[]).unwrap(),
            vec![t("тэг тэг долоо")]
        );
    }

    #[test]
    fn digits_apply_groups_in_order_and_keep_leftovers() {
        assert_eq!(
            digits(Locale::En, "12345", &[2, 0, 1]).unwrap(),
            vec![t("one two"), P, t("three"), P, t("four five")]
        );
        assert_eq!(digits(Locale::En, "12", &[5]).unwrap(), vec![t("one two")]);
    }

    #[test]
    fn digits_reject_anything_but_digits() {
        for bad in ["", "12a", "1 2", "-1", "١٢"] {
            assert!(
                matches!(digits(Locale::En, bad, &[]), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
        assert!(case_number(Locale::En, "47x0").is_err());
        assert!(case_number(Locale::En, " - ").is_err());
    }

    #[test]
    fn mongolian_phone_numbers_read_four_four() {
        assert_eq!(
            phone_number(Locale::En, "9911 2233").unwrap(),
            vec![t("nine nine one one"), P, t("two two three three")]
        );
        assert_eq!(
            phone_number(Locale::En, "+976 9911-2233").unwrap(),
            vec![
                t("plus nine seven six"),
                P,
                t("nine nine one one"),
                P,
                t("two two three three")
            ]
        );
        assert_eq!(
            phone_number(Locale::Mn, "00976 99112233").unwrap(),
            vec![
                t("нэмэх ес долоо зургаа"),
                P,
                t("ес ес нэг нэг"),
                P,
                t("хоёр хоёр гурав гурав")
            ]
        );
    }

    #[test]
    fn other_phone_numbers_are_grouped_in_threes() {
        assert_eq!(
            phone_number(Locale::En, "+44 20 7946 0018").unwrap(),
            vec![
                t("plus four four two"),
                P,
                t("zero seven nine"),
                P,
                t("four six zero"),
                P,
                t("zero one eight")
            ]
        );
        assert_eq!(
            phone_number(Locale::En, "103").unwrap(),
            vec![t("one zero three")]
        );
        assert!(phone_number(Locale::En, "+").is_err());
        assert!(phone_number(Locale::En, "call me").is_err());
    }

    #[test]
    fn dates_are_validated() {
        assert!(Date::new(2026, 2, 28).is_ok());
        assert!(matches!(
            Date::new(2026, 2, 29),
            Err(Error::InvalidArgument(_))
        ));
        assert!(Date::new(2024, 2, 29).is_ok());
        assert!(Date::new(2000, 2, 29).is_ok());
        assert!(Date::new(1900, 2, 29).is_err());
        assert!(Date::new(2026, 2, 30).is_err());
        assert!(Date::new(2026, 4, 31).is_err());
        assert!(Date::new(2026, 13, 1).is_err());
        assert!(Date::new(2026, 0, 1).is_err());
        assert!(Date::new(2026, 1, 0).is_err());
        assert!(Date::new(0, 1, 1).is_err());
        let by_hand = Date {
            year: 2026,
            month: 2,
            day: 30,
        };
        assert!(date(Locale::En, by_hand).is_err());
    }

    #[test]
    fn dates_parse_from_iso() {
        assert_eq!(
            "2026-11-27".parse::<Date>().unwrap(),
            Date::new(2026, 11, 27).unwrap()
        );
        assert_eq!(Date::new(2026, 1, 5).unwrap().to_string(), "2026-01-05");
        for bad in [
            "2026-02-30",
            "2026-1-05",
            "26-11-27",
            "2026/11/27",
            "2026-11-2٧",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates_in_words() {
        let d = Date::new(2026, 11, 27).unwrap();
        assert_eq!(
            date(Locale::En, d).unwrap(),
            "November twenty-seventh, twenty twenty-six"
        );
        assert_eq!(
            date(Locale::Mn, d).unwrap(),
            "хоёр мянга хорин зургаан оны арван нэгдүгээр сарын хорин долоон"
        );
        let d = Date::new(2000, 3, 1).unwrap();
        assert_eq!(date(Locale::En, d).unwrap(), "March first, two thousand");
        assert_eq!(
            date(Locale::Mn, d).unwrap(),
            "хоёр мянган оны гуравдугаар сарын нэг"
        );
        let leap = Date::new(2024, 2, 29).unwrap();
        assert_eq!(
            date(Locale::En, leap).unwrap(),
            "February twenty-ninth, twenty twenty-four"
        );
    }

    #[test]
    fn money_days_and_keys_per_locale() {
        assert_eq!(tugrik(Locale::En, 10_000), "ten thousand tugrik");
        assert_eq!(tugrik(Locale::En, 1), "one tugrik");
        assert_eq!(tugrik(Locale::En, 0), "zero tugrik");
        assert_eq!(tugrik(Locale::Mn, 10_000), "арван мянган төгрөг");
        assert_eq!(days(Locale::En, 30), "thirty days");
        assert_eq!(days(Locale::Mn, 30), "гучин хоног");
        assert_eq!(press_key(Locale::En, '1').unwrap(), "press one");
        assert_eq!(press_key(Locale::Mn, '2').unwrap(), "хоёрыг дарна уу");
        assert!(matches!(
            press_key(Locale::Mn, 'A'),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn cardinal_before_noun_differs_only_in_mongolian() {
        assert_eq!(
            cardinal_before_noun(Locale::En, 30),
            cardinal(Locale::En, 30)
        );
        assert_eq!(cardinal(Locale::Mn, 30), "гуч");
        assert_eq!(cardinal_before_noun(Locale::Mn, 30), "гучин");
        assert_eq!(ordinal(Locale::Mn, 11), "арван нэгдүгээр");
        assert_eq!(ordinal(Locale::En, 11), "eleventh");
    }

    #[test]
    fn expand_reads_money_in_every_spelling() {
        let en = [
            "Fee: 10,000 MNT",
            "Fee: 10,000₮",
            "Fee: ₮10,000",
            "Fee: MNT 10,000",
            "Fee: 10000 MNT",
            "Fee: 10 000₮",
        ];
        for text in en {
            assert_eq!(
                expand_to_string(Locale::En, text),
                "Fee: ten thousand tugrik",
                "{text:?}"
            );
        }
        let mn = [
            "Төлбөр: 10 000 төгрөг",
            "Төлбөр: 10,000₮",
            "Төлбөр: 10,000 MNT",
            "Төлбөр: ₮10 000",
        ];
        for text in mn {
            assert_eq!(
                expand_to_string(Locale::Mn, text),
                "Төлбөр: арван мянган төгрөг",
                "{text:?}"
            );
        }
        assert_eq!(
            expand_to_string(Locale::Mn, "10 000 төгрөгийн хураамжтай"),
            "арван мянган төгрөгийн хураамжтай"
        );
    }

    #[test]
    fn expand_reads_the_service_catalog_fees() {
        let cases = [
            ("10,000 (V)", "ten thousand (V)", "арван мянга (V)"),
            (
                "2,500 (V)",
                "two thousand five hundred (V)",
                "хоёр мянга таван зуу (V)",
            ),
            (
                "free (V-old, Bulgan)",
                "free (V-old, Bulgan)",
                "free (V-old, Bulgan)",
            ),
            ("—", "—", "—"),
            (
                "2,500 between soums/bags, 3,500 between aimag and capital (V-old, sukhbaatar.mn)",
                "two thousand five hundred between soums/bags, three thousand five hundred \
                 between aimag and capital (V-old, sukhbaatar.mn)",
                "хоёр мянга таван зуу between soums/bags, гурван мянга таван зуу between aimag \
                 and capital (V-old, sukhbaatar.mn)",
            ),
        ];
        for (text, en, mn) in cases {
            assert_eq!(expand_to_string(Locale::En, text), en);
            assert_eq!(expand_to_string(Locale::Mn, text), mn);
        }
    }

    #[test]
    fn expand_reads_catalog_notes() {
        assert_eq!(
            expand_to_string(
                Locale::En,
                "65–69: 50k; 70–79: 80k; 80–89: 150k; 90+: 250k (V, 2023)"
            ),
            "sixty-five to sixty-nine: fifty thousand; seventy to seventy-nine: eighty \
             thousand; eighty to eighty-nine: one hundred fifty thousand; ninety plus: two \
             hundred fifty thousand (V, two thousand twenty-three)"
        );
        assert_eq!(
            expand_to_string(Locale::En, "1 M per child for twins under 4"),
            "one million per child for twins under four"
        );
        assert_eq!(
            expand_to_string(
                Locale::En,
                "Up to 20 % of VAT paid; register receipts by the 8th"
            ),
            "Up to twenty percent of VAT paid; register receipts by the eighth"
        );
        assert_eq!(
            expand_to_string(Locale::En, "1 Jan – 15 Feb (V, ikon.mn)"),
            "first of January to fifteenth of February (V, ikon.mn)"
        );
        assert_eq!(
            expand_to_string(Locale::En, "Apply within 30 days after the birthday"),
            "Apply within thirty days after the birthday"
        );
    }

    #[test]
    fn expand_reads_mongolian_numbers_before_nouns_in_the_bound_form() {
        let cases = [
            (
                "Хуулийн дагуу 30 хоногт хариу өгнө.",
                "Хуулийн дагуу гучин хоногт хариу өгнө.",
            ),
            ("90 хоног", "ерэн хоног"),
            (
                "2026 оны 11 сарын 27",
                "хоёр мянга хорин зургаан оны арван нэгдүгээр сарын хорин долоон",
            ),
            (
                "2026 оны 11 сарын 27-нд өгсөн",
                "хоёр мянга хорин зургаан оны арван нэгдүгээр сарын хорин долоонд өгсөн",
            ),
            ("Татвар бол 3.", "Татвар бол гурав."),
            ("3 бол татвар", "гурав бол татвар"),
            ("1-ийг дарна уу", "нэгийг дарна уу"),
            ("3-р сар", "гуравдугаар сар"),
            ("20 хувь", "хорин хувь"),
            ("20%", "хорин хувь"),
            ("5 хүүхэд", "таван хүүхэд"),
            ("1 сая төгрөг", "нэг сая төгрөг"),
            ("2.5 хувь", "хоёр цэг таван хувь"),
            (
                "2026-11-02-нд өгсөн",
                "хоёр мянга хорин зургаан оны арван нэгдүгээр сарын хоёрд өгсөн",
            ),
            ("3 сарын 8-нд", "гуравдугаар сарын найманд"),
            ("13 сарын 5", "арван гурван сарын тав"),
        ];
        for (text, want) in cases {
            assert_eq!(expand_to_string(Locale::Mn, text), want, "{text:?}");
        }
    }

    #[test]
    fn expand_reads_codes_digit_by_digit_with_pauses() {
        assert_eq!(
            expand(Locale::En, "Your number is 4710395823. Press 9."),
            vec![
                t("Your number is four seven one"),
                P,
                t("zero three nine"),
                P,
                t("five eight two three. Press nine.")
            ]
        );
        assert_eq!(
            expand_to_string(Locale::Mn, "Таны дугаар: 4710395823."),
            "Таны дугаар: дөрөв долоо нэг, тэг гурав ес, тав найм хоёр гурав."
        );
        assert_eq!(
            expand_to_string(Locale::En, "Agent 007 and code 12345"),
            "Agent zero zero seven and code one two three, four five"
        );
        assert_eq!(
            expand_to_string(Locale::En, "ID 123456789012345678901234"),
            "ID one two three, four five six, seven eight nine, zero one two, three four \
             five, six seven eight, nine zero one, two three four"
        );
    }

    #[test]
    fn expand_reads_phone_numbers_four_four() {
        assert_eq!(
            expand_to_string(Locale::En, "We will call +976 9911-2233 back."),
            "We will call plus nine seven six, nine nine one one, two two three three back."
        );
        assert_eq!(
            expand_to_string(Locale::Mn, "Бид 99112233 руу залгана."),
            "Бид ес ес нэг нэг, хоёр хоёр гурав гурав руу залгана."
        );
        assert_eq!(
            expand_to_string(Locale::Mn, "утас 8811-2233"),
            "утас найм найм нэг нэг, хоёр хоёр гурав гурав"
        );
    }

    #[test]
    fn expand_reads_dates_and_years() {
        assert_eq!(
            expand_to_string(Locale::En, "Answer due by: November 27, 2026."),
            "Answer due by: November twenty-seventh, twenty twenty-six."
        );
        assert_eq!(
            expand_to_string(Locale::En, "Answer due by: 2026-11-27."),
            "Answer due by: November twenty-seventh, twenty twenty-six."
        );
        assert_eq!(
            expand_to_string(Locale::Mn, "Эцсийн хугацаа: 2026-11-27."),
            "Эцсийн хугацаа: хоёр мянга хорин зургаан оны арван нэгдүгээр сарын хорин долоон."
        );
        assert_eq!(
            expand_to_string(Locale::En, "(Jan 2025, V)"),
            "(January twenty twenty-five, V)"
        );
        assert_eq!(
            expand_to_string(Locale::En, "since 2022, in 2026"),
            "since twenty twenty-two, in twenty twenty-six"
        );
        assert_eq!(
            expand_to_string(Locale::En, "1,263 services"),
            "one thousand two hundred sixty-three services"
        );
    }

    #[test]
    fn expand_reads_the_centre_name_and_key_prompts() {
        assert_eq!(
            expand_to_string(
                Locale::En,
                "Thank you for calling the Government 11-11 Centre."
            ),
            "Thank you for calling the Government eleven eleven Centre."
        );
        assert_eq!(
            expand_to_string(Locale::Mn, "Засгийн газрын 11-11 төвд"),
            "Засгийн газрын арван нэг арван нэг төвд"
        );
        assert_eq!(
            expand_to_string(
                Locale::En,
                "For information about public services, press 1. To talk to a staff member, \
                 press 0."
            ),
            "For information about public services, press one. To talk to a staff member, \
             press zero."
        );
    }

    #[test]
    fn expand_leaves_text_without_numbers_alone() {
        let text = "Сайн байна уу. Hello, (V) — ok?";
        assert_eq!(expand(Locale::Mn, text), vec![t(text)]);
        assert_eq!(expand(Locale::En, ""), Vec::<Segment>::new());
    }

    #[test]
    fn expand_leaves_no_ascii_digit_behind() {
        let texts = [
            "1.2.3.4 and 10,00 and 1,2345 and 3. and .5 and 1e5 and 12:30 and 3/4",
            "+1 and +12 and ++976 99112233 and 9911-22334 and 0 and 00 and 1-",
            "99999999999999999999999.5 and 18446744073709551616 and ₮ 5 and 5 ₮",
            "1.999999999999999999999 M and 0.5k and 27-ны 2026-нд 1-ийг 3-р 10-т",
            "4710395823-ийг 11 сарын 40 13 сарын 5 2026 оны 2 сарын 30",
        ];
        for locale in Locale::ALL {
            for text in texts {
                let out = expand_to_string(locale, text);
                assert!(
                    !out.bytes().any(|b| b.is_ascii_digit()),
                    "{locale}: {text:?} → {out:?}"
                );
            }
        }
    }

    #[test]
    fn to_text_renders_pauses_as_commas() {
        assert_eq!(
            to_text(&[t("one two "), P, t(" three"), P]),
            "one two, three"
        );
        assert_eq!(to_text(&[P, t("one")]), "one");
    }
}
