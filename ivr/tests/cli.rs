//! The `ivr` command line as scripts and operators use it: real binary, real models (fetched
//! by `make test`), real voices.

use std::path::Path;
use std::process::{Command, Output};

fn ivr(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ivr"))
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("ivr runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn say_then_transcribe_telephone_audio() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("call.wav");
    let wav = wav.to_str().unwrap();
    let o = ivr(
        &[
            "say",
            "I want to file a complaint",
            "--voice",
            "rms",
            "--sample-rate",
            "8000",
            "-o",
            wav,
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ivr(&["transcribe", wav], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        speech::stt::normalize_words(&stdout(&o)),
        speech::stt::normalize_words("I want to file a complaint"),
        "{}",
        stdout(&o)
    );

    let o = ivr(&["transcribe", wav, "--json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON line");
    for key in [
        "text",
        "confidence",
        "no_speech_probability",
        "audio_ms",
        "processing_ms",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["input_rate"], 8000);
    assert!(v["confidence"].as_f64().unwrap() > 0.5, "{v}");
    let audio_ms = v["audio_ms"].as_u64().unwrap();
    assert!((1000..4000).contains(&audio_ms), "{v}");
}

#[test]
fn transcribing_something_that_is_not_a_wav_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.wav");
    std::fs::write(&bogus, "this is a text file, not audio").unwrap();
    let o = ivr(&["transcribe", bogus.to_str().unwrap()], dir.path());
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("notes.wav") && err.contains("not a usable WAV"),
        "{err}"
    );

    let missing = dir.path().join("missing.wav");
    let o = ivr(&["transcribe", missing.to_str().unwrap()], dir.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing.wav"), "{}", stderr(&o));
}

#[test]
fn unknown_models_are_named_with_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("x.wav");
    let o = ivr(&["say", "hello", "-o", wav.to_str().unwrap()], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ivr(
        &[
            "transcribe",
            wav.to_str().unwrap(),
            "--model",
            "no-such-model",
        ],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-model"), "{}", stderr(&o));
    assert!(stderr(&o).contains("ivr models fetch"), "{}", stderr(&o));
}

#[test]
fn models_list_shows_fetched_models_with_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let o = ivr(&["models", "list", "--verify"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("tiny.en\t"))
        .unwrap_or_else(|| panic!("tiny.en not listed: {out}"));
    assert!(line.contains("verified"), "{line}");
    let sha = line.split('\t').nth(2).unwrap();
    assert_eq!(sha.len(), 64, "{line}");
}

#[test]
fn say_speaks_mongolian_and_slower() {
    let dir = tempfile::tempdir().unwrap();
    let normal = dir.path().join("n.wav");
    let slower = dir.path().join("s.wav");
    let text = "Таны дугаар 4710395823";
    for (path, rate) in [(&normal, "normal"), (&slower, "slower")] {
        let o = ivr(
            &[
                "say",
                text,
                "--lang",
                "mn",
                "--rate",
                rate,
                "-o",
                path.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let n = speech::audio::wav::read(&normal).unwrap().duration();
    let s = speech::audio::wav::read(&slower).unwrap().duration();
    assert!(
        n.as_secs_f64() > 3.0,
        "ten digits and words take time: {n:?}"
    );
    assert!(
        s.as_secs_f64() > n.as_secs_f64() * 1.2,
        "slower {s:?} vs normal {n:?}"
    );
}

#[test]
fn demo_speaks_and_hears_the_greeting() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("greeting.wav");
    let o = ivr(&["demo", "--out", out.to_str().unwrap()], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let heard = text
        .lines()
        .find_map(|l| l.strip_prefix("whisper heard:"))
        .unwrap_or_else(|| panic!("no transcript in {text}"));
    let e = speech::stt::word_error_rate(ivr::cli::GREETING_EN, heard);
    assert!(e.rate() < 0.2, "greeting heard as {heard:?}");
    assert!(out.exists());
}

fn ivr_with_input(args: &[&str], data: &Path, input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ivr starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("input written");
    child.wait_with_output().expect("ivr ends")
}

#[test]
fn chat_prints_prompts_and_hangs_up_at_end_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let o = ivr_with_input(
        &["chat", "--lang", "en", "--at", "2026-11-27T10:00:00+08:00"],
        dir.path(),
        "2\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("assistant: Hello."), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("assistant: After the tone")),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&"-- the caller hung up"));
    // The registry file exists in the data directory.
    assert!(dir.path().join("cases.sqlite").exists());
}

#[test]
fn chat_refuses_bad_options_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let o = ivr_with_input(&["chat", "--lang", "fr"], dir.path(), "");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--lang must be en or mn"),
        "{}",
        stderr(&o)
    );
    let o = ivr_with_input(&["chat", "--at", "yesterday"], dir.path(), "");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("RFC 3339"), "{}", stderr(&o));
}

#[test]
fn flow_check_accepts_the_hotline_and_lists_every_problem_of_a_broken_flow() {
    let dir = tempfile::tempdir().unwrap();
    let o = ivr(&["flow", "check"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok ("), "{}", stdout(&o));

    let flows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dialogs/flows");
    let src = std::fs::read_to_string(flows.join("hotline.toml")).unwrap();
    let broken = src
        .replace("next = \"language\"", "next = \"langage\"")
        .replace("say = [\"OPER\"]", "say = [\"OPERATOR\"]");
    std::fs::write(dir.path().join("hotline.toml"), broken).unwrap();
    std::fs::copy(flows.join("prompts.tsv"), dir.path().join("prompts.tsv")).unwrap();
    let file = dir.path().join("hotline.toml");
    let o = ivr(&["flow", "check", file.to_str().unwrap()], dir.path());
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("2 problems"), "{err}");
    assert!(
        err.contains("hotline.toml:29:8: unknown state `langage`"),
        "{err}"
    );
    assert!(err.contains("prompt OPERATOR is not in"), "{err}");
}
