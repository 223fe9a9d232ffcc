//! What the assistant says, as audio: a [`Play`] of the dialog engine through the verbalizer
//! and the cached speaker, at the call's sample rate.

use dialogs::engine::Play;
use dialogs::flow::Part;
use grammars::Lang;
use speech::tts::{Segment, Speaker, SpeechRate};
use speech::{verbalize, Locale, Pcm, SampleRate};

/// The speech locale of a dialog language.
pub fn locale(lang: Lang) -> Locale {
    match lang {
        Lang::En => Locale::En,
        Lang::Mn => Locale::Mn,
    }
}

/// The segments to synthesize for a play: text through the verbalizer (numbers, amounts,
/// "press 2"), codes digit by digit in groups with pauses, dates in words.
pub fn segments(play: &Play) -> Vec<Segment> {
    let loc = locale(play.locale);
    let mut out = Vec::new();
    for part in &play.parts {
        match part {
            Part::Digits { digits, groups } => match verbalize::digits(loc, digits, groups) {
                Ok(segs) => out.extend(segs),
                Err(_) => out.extend(verbalize::expand(loc, &part.text(play.locale))),
            },
            Part::Date(d) => {
                let date = verbalize::Date::new(d.year(), u8::from(d.month()), d.day())
                    .and_then(|date| verbalize::date(loc, date));
                match date {
                    Ok(words) => out.push(Segment::Text(words)),
                    Err(_) => out.extend(verbalize::expand(loc, &part.text(play.locale))),
                }
            }
            other => out.extend(verbalize::expand(loc, &other.text(play.locale))),
        }
    }
    out
}

/// Speaks a play at `rate` Hz (blocking: call it from a blocking thread).
pub fn render(speaker: &Speaker, play: &Play, rate: SampleRate) -> speech::Result<Pcm> {
    let speed = if play.slow {
        SpeechRate::Slower
    } else {
        SpeechRate::Normal
    };
    speaker.speak(locale(play.locale), &segments(play), speed, rate)
}

/// Little-endian PCM16 bytes of `pcm`.
pub fn pcm16_bytes(pcm: &Pcm) -> Vec<u8> {
    pcm.to_i16().iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_digit_by_digit_and_text_is_verbalized() {
        let play = Play {
            mark: 1,
            prompt: Some("CMP_DONE".into()),
            parts: vec![
                Part::Text("Your number is ".into()),
                Part::Digits {
                    digits: "4710395826".into(),
                    groups: vec![3, 3, 4],
                },
                Part::Text(". Within 30 days.".into()),
            ],
            locale: Lang::En,
            slow: false,
            barge_in: true,
        };
        let segs = segments(&play);
        let text = verbalize::to_text(&segs);
        assert!(text.contains("four seven one"), "{text}");
        assert!(text.contains("thirty"), "{text}");
        assert!(segs.iter().any(|s| matches!(s, Segment::Pause(_))));
    }
}
