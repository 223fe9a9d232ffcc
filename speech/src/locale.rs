//! The languages the hotline speaks.

use std::str::FromStr;

use crate::Error;

/// A language of the hotline. Mongolian first: it is the hotline's main language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Locale {
    /// Mongolian (Cyrillic script), `mn`.
    Mn,
    /// English, `en`.
    En,
}

impl Locale {
    /// Every supported locale.
    pub const ALL: [Locale; 2] = [Locale::Mn, Locale::En];

    /// The BCP 47 / ISO 639-1 code (`mn`, `en`), which is also Whisper's language code.
    pub fn code(self) -> &'static str {
        match self {
            Locale::Mn => "mn",
            Locale::En => "en",
        }
    }
}

impl std::fmt::Display for Locale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Locale {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mn" | "mon" | "khk" | "mn-mn" => Ok(Locale::Mn),
            "en" | "eng" | "en-us" | "en-gb" => Ok(Locale::En),
            other => Err(Error::InvalidArgument(format!(
                "unknown locale {other:?} (expected mn or en)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes() {
        assert_eq!("en".parse::<Locale>().unwrap(), Locale::En);
        assert_eq!("MN".parse::<Locale>().unwrap(), Locale::Mn);
        assert!("fr".parse::<Locale>().is_err());
        assert_eq!(Locale::Mn.to_string(), "mn");
    }
}
