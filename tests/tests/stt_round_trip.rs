//! Text-to-speech → Whisper round trips on the hotline phrase set, spoken by caller voices that
//! differ from the assistant's (Flite `rms` and `awb`; the assistant speaks with `slt`), at
//! 16 kHz and after the 8 kHz G.711 µ-law telephone path, through Whisper tiny.en with the
//! production settings (trimmed window, VAD gate, output checks).
//!
//! Digit strings must be heard exactly; phrases within 10 % word error rate; isolated words
//! are the hard case: without help they are only reported, with a menu grammar they must be
//! heard. Silence and line noise must give "nothing heard".

use std::time::Duration;

use ivr_tests::whisper;
use speech::audio::{g711::Law, resample::resample};
use speech::corpus::{hotline_phrases, PhraseKind};
use speech::stt::{
    normalize_words, word_error_rate, DecodingGrammar, Outcome, SttLanguage, SttRequest,
    Transcriber, WordErrors,
};
use speech::tts::{FliteSynthesizer, SpeakOptions, Synthesizer};
use speech::{verbalize, Locale, Pcm, SampleRate};

const CALLER_VOICES: [&str; 2] = ["rms", "awb"];

fn speaker() -> FliteSynthesizer {
    FliteSynthesizer::new()
}

/// A phrase spoken by `voice`, either wideband or through the telephone path, at 16 kHz.
fn spoken(speaker: &FliteSynthesizer, voice: &str, text: &str, telephone: bool) -> Pcm {
    let rate = if telephone {
        SampleRate::HZ_8000
    } else {
        SampleRate::HZ_16000
    };
    let opts = SpeakOptions {
        voice: Some(voice.to_string()),
        output_rate: rate,
        ..SpeakOptions::default()
    };
    let audio = speaker
        .synthesize(&verbalize::expand(Locale::En, text), &opts)
        .expect("synthesis");
    let audio = if telephone {
        Law::Mu.round_trip(&audio)
    } else {
        audio
    };
    resample(&audio, SampleRate::HZ_16000).expect("resample")
}

struct Score {
    digit_failures: Vec<String>,
    phrase_errors: WordErrors,
    word_hits: usize,
    words: usize,
    report: Vec<String>,
}

fn run_set(telephone: bool) -> Score {
    let stt = whisper("tiny.en");
    let speaker = speaker();
    let mut score = Score {
        digit_failures: Vec::new(),
        phrase_errors: WordErrors::default(),
        word_hits: 0,
        words: 0,
        report: Vec::new(),
    };
    for voice in CALLER_VOICES {
        for p in hotline_phrases() {
            let audio = spoken(&speaker, voice, p.text, telephone);
            // Digit strings are said where the hotline asks for a number, and the dialog
            // listens for them with the digit request there; everything else is free speech.
            let request = match p.kind {
                PhraseKind::Digits => SttRequest::digits(SttLanguage::En),
                _ => SttRequest::default(),
            };
            let heard = stt.transcribe(&audio, &request).expect("transcribe");
            let e = word_error_rate(p.text, &heard.text);
            score.report.push(format!(
                "{voice} {} {:?} -> {:?} ({} errors, {} ms)",
                p.id,
                p.text,
                heard.text,
                e.errors,
                heard.timings.processing.as_millis()
            ));
            match p.kind {
                PhraseKind::Digits => {
                    let want: Vec<String> = normalize_words(p.text);
                    let got: Vec<String> = normalize_words(&heard.text)
                        .into_iter()
                        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
                        .collect();
                    if want != got {
                        score.digit_failures.push(format!(
                            "{voice} {}: {:?} heard as {:?}",
                            p.id, p.text, heard.text
                        ));
                    }
                }
                PhraseKind::Phrase => score.phrase_errors = score.phrase_errors + e,
                PhraseKind::Word => {
                    score.words += 1;
                    if e.errors == 0 {
                        score.word_hits += 1;
                    }
                }
            }
        }
    }
    score
}

fn check(score: &Score, label: &str) {
    for line in &score.report {
        eprintln!("[{label}] {line}");
    }
    eprintln!(
        "[{label}] phrase WER {:.1} % ({} errors / {} words); isolated words {}/{}; digit failures {}",
        score.phrase_errors.rate() * 100.0,
        score.phrase_errors.errors,
        score.phrase_errors.reference_words,
        score.word_hits,
        score.words,
        score.digit_failures.len()
    );
    assert!(
        score.digit_failures.is_empty(),
        "[{label}] digit strings must be heard exactly: {:#?}",
        score.digit_failures
    );
    assert!(
        score.phrase_errors.rate() <= 0.10,
        "[{label}] phrase WER {:.1} % is above 10 %",
        score.phrase_errors.rate() * 100.0
    );
}

#[test]
fn caller_voices_are_understood_at_16_khz() {
    check(&run_set(false), "16 kHz");
}

#[test]
fn caller_voices_are_understood_through_8_khz_mu_law() {
    check(&run_set(true), "8 kHz µ-law");
}

#[test]
fn isolated_menu_words_are_heard_with_a_grammar() {
    let stt = whisper("tiny.en");
    let speaker = speaker();
    let menu = [
        "operator",
        "repeat",
        "complaint",
        "English",
        "help",
        "yes",
        "no",
        "status",
    ];
    let request = SttRequest {
        hints: menu.iter().map(|s| s.to_string()).collect(),
        grammar: Some(DecodingGrammar::phrases(&menu).expect("grammar")),
        ..SttRequest::default()
    };
    let mut misses = Vec::new();
    for voice in CALLER_VOICES {
        for word in menu {
            let audio = spoken(&speaker, voice, word, true);
            let heard = stt.transcribe(&audio, &request).expect("transcribe");
            eprintln!(
                "{voice} {word:?} -> {:?} (confidence {:.2})",
                heard.text, heard.confidence
            );
            if word_error_rate(word, &heard.text).errors != 0 {
                misses.push(format!("{voice}: {word} heard as {:?}", heard.text));
            }
        }
    }
    // 16 words through the telephone path: allow one miss.
    assert!(
        misses.len() <= 1,
        "menu words misheard with a grammar: {misses:#?}"
    );
}

fn noise(seconds: f32, level: f32, seed: u32) -> Pcm {
    let mut x = seed;
    let samples = (0..(16_000.0 * seconds) as usize)
        .map(|_| {
            // xorshift: deterministic white noise.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * level
        })
        .collect();
    Pcm::new(SampleRate::HZ_16000, samples)
}

#[test]
fn silence_and_line_noise_are_nothing_heard() {
    let stt = whisper("tiny.en");
    let hum: Vec<f32> = (0..32_000)
        .map(|i| (2.0 * std::f32::consts::PI * 50.0 * i as f32 / 16_000.0).sin() * 0.05)
        .collect();
    let line =
        Law::Mu.round_trip(&resample(&noise(2.0, 0.01, 7), SampleRate::HZ_8000).expect("resample"));
    let cases = [
        (
            "digital silence",
            Pcm::silence(SampleRate::HZ_16000, Duration::from_secs(2)),
        ),
        ("white noise -40 dBFS", noise(2.0, 0.017, 1)),
        ("white noise -20 dBFS", noise(2.0, 0.17, 2)),
        ("50 Hz hum", Pcm::new(SampleRate::HZ_16000, hum)),
        (
            "µ-law line hiss",
            resample(&line, SampleRate::HZ_16000).expect("resample"),
        ),
        ("empty", Pcm::new(SampleRate::HZ_16000, Vec::new())),
    ];
    for (name, audio) in cases {
        let heard = stt
            .transcribe(&audio, &SttRequest::default())
            .expect("transcribe");
        assert!(
            matches!(heard.outcome, Outcome::NothingHeard(_)),
            "{name} was heard as {:?}",
            heard.text
        );
        assert!(heard.text.is_empty());
    }
}

#[test]
fn wrong_rate_and_wrong_language_are_clear_errors() {
    let stt = whisper("tiny.en");
    let err = stt
        .transcribe(
            &Pcm::silence(SampleRate::HZ_8000, Duration::from_secs(1)),
            &SttRequest::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("16 kHz"), "{err}");
    let mn = SttRequest {
        language: speech::stt::SttLanguage::Mn,
        ..SttRequest::default()
    };
    let err = stt.transcribe(&noise(1.0, 0.1, 3), &mn).unwrap_err();
    assert!(err.to_string().contains("English-only"), "{err}");
}
