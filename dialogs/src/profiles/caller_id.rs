//! [`CallerId`]: a caller's phone number, normalised so that the same phone maps to the same
//! profile whatever form the network signalled it in, and redacted whenever it is printed.

use std::fmt;
use std::str::FromStr;

use super::{Error, Result};

/// Mongolia's country calling code.
const MONGOLIA: &str = "976";
/// Digits in a Mongolian national number.
const MONGOLIAN_NATIONAL_DIGITS: usize = 8;
/// The longest number E.164 allows, in digits (country code included).
const MAX_DIGITS: usize = 15;
/// The shortest international number accepted, in digits (country code included).
const MIN_INTERNATIONAL_DIGITS: usize = 7;

/// A caller's phone number in normal form: ASCII digits, optionally preceded by `+`.
///
/// [`CallerId::parse`] normalises what the network signals:
/// - visual separators (spaces, `-`, `.`, `(`, `)`) are dropped;
/// - the international prefix `00` becomes `+`;
/// - a Mongolian national number (8 digits) becomes `+976XXXXXXXX`, as does `976XXXXXXXX`
///   without the `+`;
/// - an international number (`+` then 7 to 15 digits) is kept; under `+976` it must have
///   exactly 8 national digits;
/// - any other run of 1 to 15 digits (a short code, an internal extension) is kept as is.
///
/// `Debug` and `Display` are redacted (`+976****1234`) so that numbers never reach logs;
/// [`CallerId::as_str`] gives the full value, for storage keys and call-backs only.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallerId(String);

impl CallerId {
    /// Normalises `raw` (see the type's documentation), or returns
    /// [`Error::InvalidCallerId`] if it is empty or not a phone number.
    pub fn parse(raw: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidCallerId { reason };
        let mut plus = false;
        let mut digits = String::with_capacity(raw.len());
        for (i, c) in raw.trim().chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => plus = true,
                ' ' | '-' | '.' | '(' | ')' => {}
                '+' => return Err(invalid("'+' is allowed only at the start")),
                _ => return Err(invalid("contains a character that is not part of a number")),
            }
        }
        if digits.is_empty() {
            return Err(invalid("no digits"));
        }
        if !plus {
            if let Some(rest) = digits.strip_prefix("00") {
                plus = true;
                digits = rest.to_owned();
            }
        }
        if digits.len() > MAX_DIGITS {
            return Err(invalid("longer than 15 digits"));
        }
        if plus {
            if digits.len() < MIN_INTERNATIONAL_DIGITS {
                return Err(invalid("international number too short"));
            }
            if let Some(national) = digits.strip_prefix(MONGOLIA) {
                if national.len() != MONGOLIAN_NATIONAL_DIGITS {
                    return Err(invalid("a Mongolian number has 8 digits after +976"));
                }
            }
            return Ok(Self(format!("+{digits}")));
        }
        let is_mongolian_without_plus = digits.len() == MONGOLIA.len() + MONGOLIAN_NATIONAL_DIGITS
            && digits.starts_with(MONGOLIA);
        if is_mongolian_without_plus {
            return Ok(Self(format!("+{digits}")));
        }
        if digits.len() == MONGOLIAN_NATIONAL_DIGITS {
            return Ok(Self(format!("+{MONGOLIA}{digits}")));
        }
        Ok(Self(digits))
    }

    /// The full, unredacted number in normal form. Use it for storage keys and call-backs;
    /// never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the country code (up to 3 digits after `+`) and the last few
    /// digits replaced by `*`: `+97699112233` shows as `+976****2233`. Short numbers show fewer
    /// digits, and a number of 4 digits or fewer shows none.
    fn redacted(&self) -> String {
        let s = self.0.as_str();
        let (head, digits) = match s.strip_prefix('+') {
            Some(rest) => {
                let country = rest.len().saturating_sub(4).min(3);
                (&s[..1 + country], &rest[country..])
            }
            None => ("", s),
        };
        let shown = match digits.len() {
            0..=4 => 0,
            5..=7 => 2,
            _ => 4,
        };
        let masked = digits.len() - shown;
        format!("{head}{}{}", "*".repeat(masked), &digits[masked..])
    }
}

impl FromStr for CallerId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallerId({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(raw: &str) -> String {
        match CallerId::parse(raw) {
            Ok(id) => id.as_str().to_owned(),
            Err(e) => panic!("{raw:?} rejected: {e}"),
        }
    }

    #[test]
    fn mongolian_numbers_in_any_form_normalise_to_plus_976() {
        for raw in [
            "99112233",
            "9911 2233",
            "9911-2233",
            "+97699112233",
            "+976 9911 2233",
            "97699112233",
            "0097699112233",
            " (976) 9911-2233 ",
        ] {
            assert_eq!(normal(raw), "+97699112233", "{raw:?}");
        }
    }

    #[test]
    fn foreign_and_short_numbers_are_kept() {
        assert_eq!(normal("+44 20 7946 0958"), "+442079460958");
        assert_eq!(normal("0044 20 7946 0958"), "+442079460958");
        assert_eq!(normal("1111"), "1111");
        assert_eq!(normal("7011223"), "7011223");
    }

    #[test]
    fn empty_and_garbage_are_rejected() {
        for raw in [
            "",
            "   ",
            "+",
            "anonymous",
            "sip:99112233@example.mn",
            "9911+2233",
            "++97699112233",
            "+976991122",
            "+9769911223344",
            "+12345",
            "1234567890123456",
            "99１12233",
        ] {
            assert!(
                matches!(CallerId::parse(raw), Err(Error::InvalidCallerId { .. })),
                "{raw:?} accepted"
            );
        }
    }

    #[test]
    fn display_and_debug_never_show_the_full_number() {
        let id = CallerId::parse("99111234").expect("valid number");
        assert_eq!(id.to_string(), "+976****1234");
        assert_eq!(format!("{id:?}"), "CallerId(+976****1234)");
        assert_eq!(id.as_str(), "+97699111234");

        let foreign = CallerId::parse("+442079460958").expect("valid number");
        assert_eq!(foreign.to_string(), "+442*****0958");
        let short = CallerId::parse("1111").expect("valid number");
        assert_eq!(short.to_string(), "****");
        let extension = CallerId::parse("70112").expect("valid number");
        assert_eq!(extension.to_string(), "***12");
    }

    #[test]
    fn error_message_does_not_echo_the_number() {
        let err = CallerId::parse("99112233x").expect_err("garbage");
        assert!(!err.to_string().contains("9911"), "{err}");
    }
}
