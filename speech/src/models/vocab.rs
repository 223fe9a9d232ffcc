//! Whisper's vocabulary: CTranslate2's `vocabulary.txt` back to the raw byte tokens
//! whisper.cpp stores.
//!
//! CTranslate2 writes one token per line in GPT-2's "bytes to unicode" alphabet (every byte is
//! shown as a printable character; the space is `Ġ`, U+0120). whisper.cpp wants the raw bytes
//! of the ordinary tokens only, those before `<|endoftext|>`; it synthesises the special tokens
//! (`<|startoftranscript|>`, languages, timestamps) itself from the vocabulary size. Pure
//! computation over a string; the caller reads the file.

use std::path::Path;

use crate::{Error, Result};

/// The first special token; everything before it is an ordinary byte-level token.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// A parsed `vocabulary.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocabulary {
    /// The ordinary tokens as raw bytes, in id order (ids `0..ordinary.len()`).
    pub ordinary: Vec<Vec<u8>>,
    /// All tokens in the file, special ones included.
    pub total: usize,
}

impl Vocabulary {
    /// Parses the text of a `vocabulary.txt` (`path` names the file in errors).
    ///
    /// One token per line (`\n`, an optional `\r` before it is dropped, a final newline is
    /// optional). Empty lines are tokens too: the multilingual vocabulary has an empty token
    /// at id 50256.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::BadModel {
            path: path.to_path_buf(),
            reason,
        };
        let body = text.strip_suffix('\n').unwrap_or(text);
        if body.is_empty() {
            return Err(bad("the vocabulary is empty".into()));
        }
        let mut ordinary = Vec::new();
        let mut eot = None;
        let mut total = 0;
        for (id, line) in body.split('\n').enumerate() {
            let token = line.strip_suffix('\r').unwrap_or(line);
            total += 1;
            if eot.is_some() {
                continue;
            }
            if token == END_OF_TEXT {
                eot = Some(id);
                continue;
            }
            ordinary.push(decode_token(token).ok_or_else(|| {
                bad(format!(
                    "token {id} ({token:?}) has a character outside GPT-2's byte alphabet"
                ))
            })?);
        }
        if eot.is_none() {
            return Err(bad(format!("no {END_OF_TEXT} token in the vocabulary")));
        }
        Ok(Self { ordinary, total })
    }
}

/// Decodes one token from GPT-2's printable byte alphabet; `None` if a character is not in it.
pub fn decode_token(token: &str) -> Option<Vec<u8>> {
    token.chars().map(unicode_to_byte).collect()
}

/// The inverse of GPT-2's `bytes_to_unicode`: printable Latin-1 characters stand for
/// themselves; the other 68 bytes (controls, space, DEL, NBSP, soft hyphen …) were moved, in
/// byte order, to U+0100 onwards.
pub fn unicode_to_byte(c: char) -> Option<u8> {
    let cp = u32::from(c);
    if is_printable_byte(cp) {
        return u8::try_from(cp).ok();
    }
    let offset = cp.checked_sub(256)?;
    // The n-th non-printable byte maps to 256 + n.
    (0u32..256)
        .filter(|&b| !is_printable_byte(b))
        .nth(usize::try_from(offset).ok()?)
        .and_then(|b| u8::try_from(b).ok())
}

/// The bytes GPT-2 keeps as themselves: `!`..=`~`, `¡`..=`¬`, `®`..=`ÿ`.
fn is_printable_byte(b: u32) -> bool {
    (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vocabulary> {
        Vocabulary::parse(text, Path::new("vocabulary.txt"))
    }

    #[test]
    fn space_and_newline_are_decoded_from_their_stand_ins() {
        assert_eq!(unicode_to_byte('Ġ'), Some(b' '));
        assert_eq!(unicode_to_byte('Ċ'), Some(b'\n'));
        assert_eq!(unicode_to_byte('Ā'), Some(0));
        assert_eq!(unicode_to_byte('a'), Some(b'a'));
        assert_eq!(unicode_to_byte('é'), Some(0xe9));
        // U+00AD (soft hyphen) is moved; U+0143 is the last stand-in (byte 0xAD).
        assert_eq!(unicode_to_byte('\u{ad}'), None);
        assert_eq!(unicode_to_byte('\u{143}'), Some(0xad));
        assert_eq!(unicode_to_byte('\u{144}'), None);
        assert_eq!(unicode_to_byte('€'), None);
    }

    #[test]
    fn every_byte_has_exactly_one_character() {
        let mut seen = [false; 256];
        for cp in 0u32..0x200 {
            if let Some(b) = char::from_u32(cp).and_then(unicode_to_byte) {
                assert!(!seen[usize::from(b)], "byte {b} twice");
                seen[usize::from(b)] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn multibyte_utf8_tokens_come_back_as_their_bytes() {
        // "é" in UTF-8 is C3 A9, which GPT-2 shows as "Ã©".
        assert_eq!(decode_token("Ã©").unwrap(), vec![0xc3, 0xa9]);
        assert_eq!(decode_token("Ġthe").unwrap(), b" the".to_vec());
    }

    #[test]
    fn only_tokens_before_end_of_text_are_ordinary() {
        let v = parse("!\nĠa\n\n<|endoftext|>\n<|startoftranscript|>\n").unwrap();
        assert_eq!(v.ordinary, vec![b"!".to_vec(), b" a".to_vec(), Vec::new()]);
        assert_eq!(v.total, 5);
    }

    #[test]
    fn missing_final_newline_and_crlf_are_accepted() {
        let v = parse("a\r\nb\r\n<|endoftext|>").unwrap();
        assert_eq!(v.ordinary, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(v.total, 3);
    }

    #[test]
    fn vocabulary_without_end_of_text_is_refused() {
        let err = parse("a\nb\n").unwrap_err();
        assert!(err.to_string().contains("endoftext"), "{err}");
    }

    #[test]
    fn token_outside_the_alphabet_is_refused_with_its_id() {
        let err = parse("a\nb c\n<|endoftext|>\n").unwrap_err();
        assert!(matches!(err, Error::BadModel { .. }));
        assert!(err.to_string().contains("token 1"), "{err}");
    }

    #[test]
    fn empty_vocabulary_is_refused() {
        assert!(parse("").is_err());
        assert!(parse("\n").is_err());
    }
}
