//! Built-in DTMF grammars and the hotline's case numbers.
//!
//! Owns the keypad built-ins the dialogs use where writing an ABNF grammar would be clumsy
//! (one key from a set, a digit string with length bounds and a terminator, yes/no, a number,
//! a case number) and the case-number format: [`CASE_NUMBER_LEN`] digits, the last a Damm check
//! digit (H. M. Damm, 2004; catches every single-digit error and every adjacent
//! transposition). No IO, no clock: a DTMF collector elsewhere gathers keys and inter-digit
//! timeouts and calls [`Builtin::handle_keys`] with the keys so far after each key.

use std::fmt;

use crate::grammar::Semantic;

/// Digits in a case number, check digit included.
pub const CASE_NUMBER_LEN: usize = 10;

/// The standard Damm table: a totally anti-symmetric quasigroup of order 10.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// The Damm check digit of a digit string; `None` if it holds a non-digit.
pub fn damm_check_digit(digits: &str) -> Option<u8> {
    digits.chars().try_fold(0u8, |interim, c| {
        let d = c.to_digit(10)?;
        Some(DAMM[usize::from(interim)][d as usize])
    })
}

/// Whether a digit string ends in its correct Damm check digit (an empty string does not).
pub fn damm_valid(digits: &str) -> bool {
    !digits.is_empty() && damm_check_digit(digits) == Some(0)
}

/// Why keyed digits are not a case number; each deserves a different answer to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CaseNumberError {
    /// Too few or too many digits ("a case number has ten digits").
    #[error("a case number has {CASE_NUMBER_LEN} digits, got {got}")]
    WrongLength {
        /// How many digits were given.
        got: usize,
    },
    /// Something other than a digit.
    #[error("a case number has only digits")]
    NotDigits,
    /// Ten digits, but the check digit is wrong: a mistyped digit or two swapped digits.
    #[error("the check digit does not match; a digit is probably mistyped")]
    BadCheckDigit,
}

/// A valid case number: [`CASE_NUMBER_LEN`] digits with a correct Damm check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaseNumber(String);

impl CaseNumber {
    /// Validates keyed digits.
    pub fn parse(digits: &str) -> Result<CaseNumber, CaseNumberError> {
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(CaseNumberError::NotDigits);
        }
        if digits.len() != CASE_NUMBER_LEN {
            return Err(CaseNumberError::WrongLength { got: digits.len() });
        }
        if !damm_valid(digits) {
            return Err(CaseNumberError::BadCheckDigit);
        }
        Ok(CaseNumber(digits.to_string()))
    }

    /// The case number for a serial number (the first nine digits, zero-padded), with its
    /// check digit appended; `None` above 999 999 999.
    pub fn from_serial(serial: u32) -> Option<CaseNumber> {
        if serial > 999_999_999 {
            return None;
        }
        let body = format!("{serial:09}");
        let check = damm_check_digit(&body)?;
        Some(CaseNumber(format!("{body}{check}")))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A built-in keypad grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Builtin {
    /// One key from a set; the value is the key.
    Key {
        /// The keys accepted.
        keys: Vec<char>,
    },
    /// A digit string of `min..=max` digits, ended by `terminator` (if any) or by reaching
    /// `max`; the value is the digits.
    Digits {
        /// Least number of digits.
        min: usize,
        /// Most number of digits.
        max: usize,
        /// The key that ends the string early, usually `#`.
        terminator: Option<char>,
    },
    /// `1` yes, `2` no; the value is `yes` or `no`.
    YesNo,
    /// A number of up to `max_len` digits ended by `#`; the value has no leading zeros.
    Number {
        /// Most number of digits.
        max_len: usize,
    },
    /// A case number: [`CASE_NUMBER_LEN`] digits, optionally ended by `#`.
    CaseNumber,
}

/// The outcome of keys against a [`Builtin`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtmfMatch {
    /// The keys are complete and valid.
    Complete {
        /// The meaning.
        value: Semantic,
    },
    /// A valid prefix: wait for more keys (or the inter-digit timeout).
    NeedMore,
    /// The keys cannot become a match.
    Invalid(DtmfReject),
}

/// Why keys were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtmfReject {
    /// A key that is not accepted here.
    KeyNotAllowed(char),
    /// The terminator came before the least number of digits.
    TooShort,
    /// More digits than allowed.
    TooLong,
    /// Not a case number, and why.
    CaseNumber(CaseNumberError),
}

impl Builtin {
    /// Yes/no on the keypad.
    pub fn yes_no() -> Builtin {
        Builtin::YesNo
    }

    /// Judges the keys collected so far (`#`/`*` included as keyed, whitespace ignored).
    /// Call it after each key; on [`DtmfMatch::NeedMore`] the collector keeps listening, and
    /// on its inter-digit timeout it may call [`Builtin::handle_timeout`].
    pub fn handle_keys(&self, keys: &str) -> DtmfMatch {
        let keys: Vec<char> = keys.chars().filter(|c| !c.is_whitespace()).collect();
        match self {
            Builtin::Key { keys: allowed } => match keys.as_slice() {
                [] => DtmfMatch::NeedMore,
                [k] if allowed.contains(k) => complete(k.to_string()),
                [k, ..] if !allowed.contains(k) => {
                    DtmfMatch::Invalid(DtmfReject::KeyNotAllowed(*k))
                }
                _ => DtmfMatch::Invalid(DtmfReject::TooLong),
            },
            Builtin::YesNo => match keys.as_slice() {
                [] => DtmfMatch::NeedMore,
                ['1'] => complete("yes".to_string()),
                ['2'] => complete("no".to_string()),
                [k] => DtmfMatch::Invalid(DtmfReject::KeyNotAllowed(*k)),
                _ => DtmfMatch::Invalid(DtmfReject::TooLong),
            },
            Builtin::Digits {
                min,
                max,
                terminator,
            } => digits(&keys, *min, *max, *terminator, false),
            Builtin::Number { max_len } => match digits(&keys, 1, *max_len, Some('#'), true) {
                DtmfMatch::Complete {
                    value: Semantic::Text(d),
                } => {
                    let trimmed = d.trim_start_matches('0');
                    complete(if trimmed.is_empty() {
                        "0".to_string()
                    } else {
                        trimmed.to_string()
                    })
                }
                other => other,
            },
            Builtin::CaseNumber => {
                match digits(&keys, CASE_NUMBER_LEN, CASE_NUMBER_LEN, Some('#'), false) {
                    DtmfMatch::Complete {
                        value: Semantic::Text(d),
                    } => match CaseNumber::parse(&d) {
                        Ok(n) => complete(n.0),
                        Err(e) => DtmfMatch::Invalid(DtmfReject::CaseNumber(e)),
                    },
                    DtmfMatch::Invalid(DtmfReject::TooShort) => {
                        let got = keys.iter().filter(|c| c.is_ascii_digit()).count();
                        DtmfMatch::Invalid(DtmfReject::CaseNumber(CaseNumberError::WrongLength {
                            got,
                        }))
                    }
                    other => other,
                }
            }
        }
    }

    /// Judges the keys when the caller stopped keying (inter-digit timeout): a digit string
    /// long enough is complete without its terminator; anything else that still needed keys is
    /// rejected as too short.
    pub fn handle_timeout(&self, keys: &str) -> DtmfMatch {
        match self.handle_keys(keys) {
            DtmfMatch::NeedMore => {
                let mut terminated: String = keys.chars().filter(|c| !c.is_whitespace()).collect();
                match self {
                    Builtin::Digits {
                        terminator: Some(t),
                        ..
                    } => terminated.push(*t),
                    Builtin::Number { .. } | Builtin::CaseNumber => terminated.push('#'),
                    Builtin::Digits {
                        terminator: None, ..
                    }
                    | Builtin::Key { .. }
                    | Builtin::YesNo => return DtmfMatch::Invalid(DtmfReject::TooShort),
                }
                match self.handle_keys(&terminated) {
                    DtmfMatch::NeedMore => DtmfMatch::Invalid(DtmfReject::TooShort),
                    other => other,
                }
            }
            other => other,
        }
    }
}

fn complete(text: String) -> DtmfMatch {
    DtmfMatch::Complete {
        value: Semantic::Text(text),
    }
}

fn digits(
    keys: &[char],
    min: usize,
    max: usize,
    terminator: Option<char>,
    need_terminator: bool,
) -> DtmfMatch {
    let mut collected = String::new();
    for (i, &k) in keys.iter().enumerate() {
        if Some(k) == terminator {
            if i + 1 != keys.len() {
                return DtmfMatch::Invalid(DtmfReject::TooLong);
            }
            return if collected.len() < min.max(1) {
                DtmfMatch::Invalid(DtmfReject::TooShort)
            } else {
                complete(collected)
            };
        }
        if !k.is_ascii_digit() {
            return DtmfMatch::Invalid(DtmfReject::KeyNotAllowed(k));
        }
        if collected.len() == max {
            return DtmfMatch::Invalid(DtmfReject::TooLong);
        }
        collected.push(k);
    }
    if collected.len() == max && !(need_terminator && terminator.is_some()) {
        complete(collected)
    } else {
        DtmfMatch::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &DtmfMatch) -> &str {
        match m {
            DtmfMatch::Complete {
                value: Semantic::Text(t),
            } => t,
            other => panic!("expected a complete match, got {other:?}"),
        }
    }

    #[test]
    fn damm_vectors() {
        assert_eq!(damm_check_digit("572"), Some(4));
        assert!(damm_valid("5724"));
        assert!(!damm_valid("5723"));
        assert!(!damm_valid("5274"), "adjacent transposition is caught");
        assert_eq!(damm_check_digit(""), Some(0));
        assert!(!damm_valid(""));
        assert_eq!(damm_check_digit("12a"), None);
        assert_eq!(damm_check_digit("11294"), Some(6));
        assert!(damm_valid("112946"));
    }

    #[test]
    fn every_single_digit_error_is_caught() {
        let n = CaseNumber::from_serial(123_456_789).expect("in range");
        let digits: Vec<char> = n.as_str().chars().collect();
        for i in 0..digits.len() {
            for d in '0'..='9' {
                if d == digits[i] {
                    continue;
                }
                let mut wrong = digits.clone();
                wrong[i] = d;
                let wrong: String = wrong.into_iter().collect();
                assert_eq!(
                    CaseNumber::parse(&wrong),
                    Err(CaseNumberError::BadCheckDigit),
                    "{wrong}"
                );
            }
        }
    }

    #[test]
    fn case_numbers_distinguish_length_and_check_digit() {
        let n = CaseNumber::from_serial(57_200).expect("in range");
        assert_eq!(n.as_str().len(), CASE_NUMBER_LEN);
        assert_eq!(CaseNumber::parse(n.as_str()), Ok(n.clone()));
        assert_eq!(
            CaseNumber::parse("5724"),
            Err(CaseNumberError::WrongLength { got: 4 })
        );
        assert_eq!(
            CaseNumber::parse("12345678901"),
            Err(CaseNumberError::WrongLength { got: 11 })
        );
        assert_eq!(
            CaseNumber::parse("000005720x"),
            Err(CaseNumberError::NotDigits)
        );
        assert_eq!(CaseNumber::from_serial(1_000_000_000), None);
    }

    #[test]
    fn case_number_builtin_answers_each_mistake() {
        let b = Builtin::CaseNumber;
        let good = CaseNumber::from_serial(42).expect("in range");
        assert_eq!(text(&b.handle_keys(good.as_str())), good.as_str());
        assert_eq!(text(&b.handle_keys(&format!("{good}#"))), good.as_str());
        assert_eq!(b.handle_keys("12345"), DtmfMatch::NeedMore);
        assert_eq!(
            b.handle_keys("12345#"),
            DtmfMatch::Invalid(DtmfReject::CaseNumber(CaseNumberError::WrongLength {
                got: 5
            }))
        );
        let mut bad = good.as_str().to_string();
        bad.replace_range(9..10, if bad.ends_with('0') { "1" } else { "0" });
        assert_eq!(
            b.handle_keys(&bad),
            DtmfMatch::Invalid(DtmfReject::CaseNumber(CaseNumberError::BadCheckDigit))
        );
        assert_eq!(
            b.handle_timeout("123"),
            DtmfMatch::Invalid(DtmfReject::CaseNumber(CaseNumberError::WrongLength {
                got: 3
            }))
        );
    }

    #[test]
    fn digit_strings_honour_bounds_and_terminator() {
        let b = Builtin::Digits {
            min: 2,
            max: 4,
            terminator: Some('#'),
        };
        assert_eq!(b.handle_keys("1"), DtmfMatch::NeedMore);
        assert_eq!(
            b.handle_keys("1#"),
            DtmfMatch::Invalid(DtmfReject::TooShort)
        );
        assert_eq!(text(&b.handle_keys("12#")), "12");
        assert_eq!(text(&b.handle_keys("1234")), "1234");
        assert_eq!(
            b.handle_keys("12345"),
            DtmfMatch::Invalid(DtmfReject::TooLong)
        );
        assert_eq!(
            b.handle_keys("1*"),
            DtmfMatch::Invalid(DtmfReject::KeyNotAllowed('*'))
        );
        assert_eq!(text(&b.handle_timeout("123")), "123");
        assert_eq!(
            b.handle_timeout("1"),
            DtmfMatch::Invalid(DtmfReject::TooShort)
        );
    }

    #[test]
    fn single_key_yes_no_and_number() {
        let menu = Builtin::Key {
            keys: vec!['1', '2', '3', '0'],
        };
        assert_eq!(text(&menu.handle_keys("3")), "3");
        assert_eq!(
            menu.handle_keys("7"),
            DtmfMatch::Invalid(DtmfReject::KeyNotAllowed('7'))
        );
        assert_eq!(menu.handle_keys(""), DtmfMatch::NeedMore);
        assert_eq!(text(&Builtin::yes_no().handle_keys("1")), "yes");
        assert_eq!(text(&Builtin::yes_no().handle_keys("2")), "no");
        assert_eq!(
            Builtin::yes_no().handle_keys("3"),
            DtmfMatch::Invalid(DtmfReject::KeyNotAllowed('3'))
        );
        let n = Builtin::Number { max_len: 6 };
        assert_eq!(n.handle_keys("0042"), DtmfMatch::NeedMore);
        assert_eq!(text(&n.handle_keys("0042#")), "42");
        assert_eq!(text(&n.handle_keys("000#")), "0");
        assert_eq!(n.handle_keys("#"), DtmfMatch::Invalid(DtmfReject::TooShort));
    }
}
