//! Case reference numbers: ten keyable digits, the last a Damm check digit.
//!
//! This module owns the [`CaseNumber`] newtype, its text form and the Damm check digit. It does
//! no IO and reads no clock; randomness comes only from the RNG the caller passes to
//! [`CaseNumber::random`] (the registry holds a seeded RNG, never a global one).
//!
//! A number is nine random digits, the first of them non-zero so that the number never starts
//! with a `0` a caller might drop, followed by the Damm check digit of those nine. Damm catches
//! every single-digit error and every adjacent transposition, which are the mistakes a caller
//! makes when keying or saying a number. Numbers are drawn at random, not counted up, so one
//! caller's number says nothing about another's; the registry retries on the rare collision.
//!
//! ```
//! use dialogs::registry::CaseNumber;
//!
//! let number: CaseNumber = "471 039 5826".parse().unwrap_or_else(|e| panic!("{e}"));
//! assert_eq!(number.to_string(), "4710395826");
//! assert_eq!(number.groups(), ["471", "039", "582", "6"]);
//! assert!("4710395824".parse::<CaseNumber>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngExt};

/// Number of digits in a case number, check digit included.
pub const CASE_NUMBER_DIGITS: usize = 10;

/// A case reference number: ten ASCII digits whose last digit is the Damm check digit of the
/// first nine.
///
/// Construct one with [`CaseNumber::random`] or by parsing text ([`FromStr`]); both guarantee
/// the check digit, so holding a `CaseNumber` means holding a well-formed number (it may still
/// be unknown to the registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaseNumber([u8; CASE_NUMBER_DIGITS]);

/// Why a text is not a case number. Each variant says what the caller got wrong so that the
/// dialog can tell them ("that number has nine digits, it needs ten").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaseNumberError {
    /// The text does not hold exactly ten digits (separators not counted).
    #[error("a case number has {CASE_NUMBER_DIGITS} digits, this one has {found}")]
    WrongLength {
        /// How many characters remained after dropping separators.
        found: usize,
    },
    /// The text holds something other than the digits 0-9, spaces and hyphens.
    #[error("a case number holds only digits")]
    NotDigits,
    /// Ten digits, but the check digit does not match: a digit was mistyped or misheard.
    #[error("the check digit does not match; a digit is wrong or two are swapped")]
    BadCheckDigit,
}

impl CaseNumber {
    /// Draws a fresh number: nine random digits (the first non-zero) and their check digit.
    ///
    /// Only the passed RNG is used. Callers must check the number is not already taken.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut digits = [0u8; CASE_NUMBER_DIGITS];
        digits[0] = rng.random_range(1..=9);
        for digit in &mut digits[1..CASE_NUMBER_DIGITS - 1] {
            *digit = rng.random_range(0..=9);
        }
        digits[CASE_NUMBER_DIGITS - 1] = damm_check_digit(&digits[..CASE_NUMBER_DIGITS - 1]);
        Self(digits)
    }

    /// The digits, each 0-9, check digit last.
    pub fn digits(&self) -> [u8; CASE_NUMBER_DIGITS] {
        self.0
    }

    /// The number in the groups it is read out in: 3-3-4, with the last group split so the
    /// check digit is spoken on its own ("471", "039", "582", "6").
    pub fn groups(&self) -> [String; 4] {
        let text = self.to_string();
        [
            text[0..3].to_owned(),
            text[3..6].to_owned(),
            text[6..9].to_owned(),
            text[9..10].to_owned(),
        ]
    }
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for digit in self.0 {
            write!(f, "{digit}")?;
        }
        Ok(())
    }
}

impl FromStr for CaseNumber {
    type Err = CaseNumberError;

    /// Parses ten digits; spaces and hyphens between them are ignored, since callers and
    /// transcripts group numbers ("471 039 5826").
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut found = 0usize;
        let mut digits = [0u8; CASE_NUMBER_DIGITS];
        let mut not_digits = false;
        for c in text.chars().filter(|c| !matches!(c, ' ' | '-')) {
            match c.to_digit(10) {
                Some(d) if c.is_ascii_digit() => {
                    if found < CASE_NUMBER_DIGITS {
                        // `to_digit(10)` yields 0..=9, which fits a u8.
                        digits[found] = d as u8;
                    }
                }
                _ => not_digits = true,
            }
            found += 1;
        }
        if not_digits {
            return Err(CaseNumberError::NotDigits);
        }
        if found != CASE_NUMBER_DIGITS {
            return Err(CaseNumberError::WrongLength { found });
        }
        if damm_check_digit(&digits) != 0 {
            return Err(CaseNumberError::BadCheckDigit);
        }
        Ok(Self(digits))
    }
}

/// The Damm check digit of `digits` (each 0-9). Run over a number that already ends in its
/// check digit, the result is 0. The table lives with the keypad grammars, which check what
/// callers key before it ever reaches the registry.
pub fn damm_check_digit(digits: &[u8]) -> u8 {
    let text: String = digits.iter().map(|d| char::from(b'0' + d % 10)).collect();
    // Invariant: every character above is an ASCII digit, so the grammar's check succeeds.
    grammars::dtmf::damm_check_digit(&text).expect("ASCII digits only")
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn digits_of(text: &str) -> Vec<u8> {
        text.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn damm_matches_published_vectors() {
        assert_eq!(damm_check_digit(&digits_of("572")), 4);
        assert_eq!(damm_check_digit(&digits_of("5724")), 0);
        assert_eq!(damm_check_digit(&digits_of("112946")), 0);
        assert_eq!(damm_check_digit(&digits_of("11294")), 6);
        assert_eq!(damm_check_digit(&[]), 0);
    }

    #[test]
    fn random_numbers_parse_back_and_start_non_zero() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let number = CaseNumber::random(&mut rng);
            let text = number.to_string();
            assert_eq!(text.len(), CASE_NUMBER_DIGITS);
            assert_ne!(&text[..1], "0");
            assert_eq!(text.parse::<CaseNumber>(), Ok(number));
        }
    }

    #[test]
    fn every_single_digit_error_is_rejected() {
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..300 {
            let good = CaseNumber::random(&mut rng).digits();
            for position in 0..CASE_NUMBER_DIGITS {
                for wrong in 0..10u8 {
                    if wrong == good[position] {
                        continue;
                    }
                    let mut bad = good;
                    bad[position] = wrong;
                    let text: String = bad.iter().map(|d| char::from(b'0' + d)).collect();
                    assert_eq!(
                        text.parse::<CaseNumber>(),
                        Err(CaseNumberError::BadCheckDigit),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_adjacent_transposition_is_rejected() {
        let mut rng = StdRng::seed_from_u64(13);
        let mut checked = 0;
        for _ in 0..1000 {
            let good = CaseNumber::random(&mut rng).digits();
            for position in 0..CASE_NUMBER_DIGITS - 1 {
                if good[position] == good[position + 1] {
                    continue;
                }
                let mut bad = good;
                bad.swap(position, position + 1);
                let text: String = bad.iter().map(|d| char::from(b'0' + d)).collect();
                assert_eq!(
                    text.parse::<CaseNumber>(),
                    Err(CaseNumberError::BadCheckDigit),
                    "{text}"
                );
                checked += 1;
            }
        }
        assert!(checked > 5000);
    }

    #[test]
    fn same_seed_gives_same_numbers_different_seeds_differ() {
        let a: Vec<_> = {
            let mut rng = StdRng::seed_from_u64(1);
            (0..5).map(|_| CaseNumber::random(&mut rng)).collect()
        };
        let b: Vec<_> = {
            let mut rng = StdRng::seed_from_u64(1);
            (0..5).map(|_| CaseNumber::random(&mut rng)).collect()
        };
        let c: Vec<_> = {
            let mut rng = StdRng::seed_from_u64(2);
            (0..5).map(|_| CaseNumber::random(&mut rng)).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        assert_eq!(
            "572".parse::<CaseNumber>(),
            Err(CaseNumberError::WrongLength { found: 3 })
        );
        assert_eq!(
            "47103958231".parse::<CaseNumber>(),
            Err(CaseNumberError::WrongLength { found: 11 })
        );
        assert_eq!(
            "".parse::<CaseNumber>(),
            Err(CaseNumberError::WrongLength { found: 0 })
        );
        assert_eq!(
            "47103958x3".parse::<CaseNumber>(),
            Err(CaseNumberError::NotDigits)
        );
        // Non-ASCII digits are not keyable digits.
        assert_eq!(
            "٤٧١٠٣٩٥٨٢٣".parse::<CaseNumber>(),
            Err(CaseNumberError::NotDigits)
        );
        assert_eq!(
            "4710395824".parse::<CaseNumber>(),
            Err(CaseNumberError::BadCheckDigit)
        );
    }

    #[test]
    fn separators_are_ignored_and_groups_are_three_three_three_one() {
        let number: CaseNumber = "471-039 5826".parse().expect("valid number");
        assert_eq!(number.to_string(), "4710395826");
        assert_eq!(number.groups(), ["471", "039", "582", "6"]);
    }
}
