//! What the assistant listens for: the recogniser request for a dialog [`Listen`] (hints from
//! the active grammars, a decoding grammar for menus, digits for numbers) and the early end of
//! a turn whose words already complete the menu.

use dialogs::engine::Listen;
use dialogs::flow::Flow;
use grammars::{recognize_all, Decision, Grammar, Lang, MatchOptions, Thresholds};
use speech::stt::{DecodingGrammar, Priority, SttLanguage, SttRequest};

/// Confidence at or above which a speculative transcript that completes the menu grammar ends
/// the turn without waiting out the end silence.
pub const EARLY_END_CONFIDENCE: f32 = 0.9;

/// The speech-to-text language of a dialog language.
pub fn language(lang: Lang) -> SttLanguage {
    match lang {
        Lang::En => SttLanguage::En,
        Lang::Mn => SttLanguage::Mn,
    }
}

/// The voice grammars a listen turn is matched against (state grammar first, then the global
/// commands; the emergency grammar is left out of hints and decoding: it takes any words).
pub fn voice_grammars<'a>(flow: &'a Flow, listen: &Listen) -> Vec<&'a Grammar> {
    listen
        .grammars
        .iter()
        .filter(|name| name.as_str() != "emergency")
        .filter_map(|name| flow.grammars.get(listen.locale, name))
        .filter_map(|pair| pair.voice.as_ref())
        .collect()
}

/// Utterances longer than this (pads included) are sentences ("I want to make a complaint"):
/// they are decoded with hints only, because a grammar of menu phrases would force a
/// sentence into the nearest phrase. Shorter ones are the one or two words a menu expects.
pub const GRAMMAR_MAX_AUDIO: std::time::Duration = std::time::Duration::from_millis(1800);

/// The recogniser request for a turn of `audio_len`. Short menu answers decode against the
/// menu's phrases (whisper.cpp grammar sampling) so that a small model still hears "two",
/// "complaint", "operator"; numbers decode as digits; sentences and free speech (a search, a
/// name, a complaint) get hints only, and the tolerant grammar matching finds the meaning.
pub fn request(
    flow: &Flow,
    listen: Option<&Listen>,
    recording: bool,
    audio_len: std::time::Duration,
) -> SttRequest {
    let Some(listen) = listen else {
        return SttRequest::default();
    };
    let lang = language(listen.locale);
    if recording {
        return SttRequest {
            language: lang,
            priority: Priority::Background,
            ..SttRequest::default()
        };
    }
    if listen.digits.is_some() {
        return SttRequest::digits(lang);
    }
    let grammars = voice_grammars(flow, listen);
    let hints = grammars::hints(&grammars);
    let grammar = if listen.free_speech
        || audio_len > GRAMMAR_MAX_AUDIO
        || grammars.iter().any(|g| !g.phrases_complete())
    {
        None
    } else {
        let phrases: Vec<&str> = grammars
            .iter()
            .flat_map(|g| g.phrases())
            .map(|p| p.surface.trim())
            .filter(|p| !p.is_empty())
            .collect();
        DecodingGrammar::phrases(&phrases).ok()
    };
    SttRequest {
        language: lang,
        hints,
        grammar,
        priority: Priority::Interactive,
    }
}

/// Whether `text` (heard with `confidence`) already completes the turn's menu: an accepted
/// meaning at [`EARLY_END_CONFIDENCE`] or more. Free speech and numbers never end early.
pub fn completes_menu(flow: &Flow, listen: &Listen, text: &str, confidence: f32) -> bool {
    if listen.free_speech || listen.digits.is_some() {
        return false;
    }
    let grammars = voice_grammars(flow, listen);
    let thresholds = Thresholds {
        confirm_below: EARLY_END_CONFIDENCE,
        reject_below: flow.settings.reject_below,
    };
    recognize_all(&grammars, text, confidence, &MatchOptions::default())
        .first()
        .is_some_and(|r| r.decide(&thresholds) == Decision::Accept)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dialogs::flow::Modes;

    use super::*;

    fn menu(grammars: &[&str], free_speech: bool) -> Listen {
        Listen {
            modes: Modes::BOTH,
            grammars: grammars.iter().map(|g| g.to_string()).collect(),
            locale: Lang::En,
            digits: None,
            free_speech,
            no_input: Duration::from_secs(8),
        }
    }

    #[test]
    fn menus_decode_against_their_phrases_and_free_speech_does_not() {
        let flow = Flow::builtin().expect("flow");
        let main = menu(&["main_menu", "global", "emergency"], false);
        let short = Duration::from_millis(900);
        let sentence = Duration::from_millis(2500);
        let r = request(&flow, Some(&main), false, short);
        assert!(r.grammar.is_some());
        assert!(r.hints.iter().any(|h| h == "operator"));
        assert_eq!(r.priority, Priority::Interactive);
        let r = request(&flow, Some(&main), false, sentence);
        assert!(
            r.grammar.is_none(),
            "a sentence is not forced into a menu phrase"
        );
        let info = menu(&["info_topics", "global", "emergency"], true);
        assert!(request(&flow, Some(&info), false, short).grammar.is_none());
        let r = request(&flow, Some(&menu(&["global"], false)), true, sentence);
        assert_eq!(r.priority, Priority::Background);
    }

    #[test]
    fn a_clear_menu_answer_ends_the_turn_early() {
        let flow = Flow::builtin().expect("flow");
        let m = menu(&["main_menu", "global", "emergency"], false);
        assert!(completes_menu(&flow, &m, "complaint", 0.95));
        assert!(!completes_menu(&flow, &m, "complaint", 0.5));
        assert!(!completes_menu(&flow, &m, "I would like to", 0.95));
        assert!(!completes_menu(
            &flow,
            &menu(&["info_topics"], true),
            "tax",
            0.95
        ));
    }
}
