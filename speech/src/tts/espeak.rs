//! espeak-ng, run as the separate `espeak-ng` program: every language Flite cannot speak.
//!
//! espeak-ng is GPL-3; it is only ever executed, never linked, which keeps this crate
//! MIT OR Apache-2.0 and keeps its crashes out of our process.
//!
//! One program call per run of text: `espeak-ng -v VOICE -s WPM --stdout`, the text on stdin
//! (so nothing in it is taken for an option; no `-m`, so `<` and `&` are read as text).
//! Speeds are 175 words per minute (espeak-ng's own default), 145 for
//! [`SpeechRate::Slow`] and 120 for [`SpeechRate::Slower`]. Output is 22 050 Hz; with
//! `--stdout` espeak-ng streams, so its WAV header declares a length of about 2 GiB; the
//! header is corrected to the bytes actually received before decoding.
//!
//! Default voices: `en-us` for English; for Mongolian `mn` when the installed espeak-ng has
//! it (asked once with `espeak-ng --voices=mn`), otherwise `kk`, Kazakh, which reads Cyrillic
//! with a Turkic phonology: the documented stand-in until recorded prompt packs exist.
//! An unknown voice is refused by espeak-ng itself and reported as [`Error::UnknownVoice`];
//! note that espeak-ng resolves an unknown dialect by its language prefix (`en-zz` speaks
//! `en`, `no-such-voice` speaks Norwegian), and that is not an error.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{
    assemble, decode_wav, run_program, shorten, stderr_summary, Segment, SpeakOptions, SpeechRate,
    Synthesizer,
};
use crate::audio::Pcm;
use crate::{Error, Locale, Result};

/// espeak-ng through its command-line program.
#[derive(Debug)]
pub struct EspeakSynthesizer {
    program: PathBuf,
    /// Whether the program has a Mongolian voice, once it has answered.
    has_mongolian: Mutex<Option<bool>>,
}

impl EspeakSynthesizer {
    /// The engine name.
    pub const ENGINE: &'static str = "espeak-ng";
    /// The voice used when none is named: American English.
    pub const DEFAULT_VOICE: &'static str = "en-us";
    /// The stand-in for Mongolian while espeak-ng has no `mn` voice.
    pub const MONGOLIAN_FALLBACK: &'static str = "kk";

    /// espeak-ng from `PATH` (`espeak-ng`).
    pub fn new() -> Self {
        Self::with_program("espeak-ng")
    }

    /// espeak-ng at `program` (a path, or a name looked up in `PATH`).
    pub fn with_program(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            has_mongolian: Mutex::new(None),
        }
    }

    /// The voice for `locale`: `en-us`, and `mn` or (without it) `kk`.
    pub fn voice_for(&self, locale: Locale) -> String {
        match locale {
            Locale::En => Self::DEFAULT_VOICE.to_owned(),
            Locale::Mn if self.has_mongolian() => "mn".to_owned(),
            Locale::Mn => Self::MONGOLIAN_FALLBACK.to_owned(),
        }
    }

    /// Asks `espeak-ng --voices=mn` once whether a Mongolian voice is installed. A program
    /// that cannot be run answers "no" and is asked again next time.
    fn has_mongolian(&self) -> bool {
        // A poisoned lock only means another thread panicked while holding it; the cached
        // answer is a plain bool and still valid.
        let mut cached = self.has_mongolian.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(answer) = *cached {
            return answer;
        }
        match run_program(&self.program, &[OsStr::new("--voices=mn")], None) {
            Ok(output) if output.status.success() => {
                let answer = lists_language(&String::from_utf8_lossy(&output.stdout), "mn");
                *cached = Some(answer);
                answer
            }
            Ok(output) => {
                tracing::warn!(reason = %stderr_summary(&output), "espeak-ng --voices failed");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "espeak-ng --voices failed");
                false
            }
        }
    }

    /// Speaks one clean, non-empty run of text at espeak-ng's own rate.
    fn render(&self, text: &str, voice: &str, rate: SpeechRate) -> Result<Pcm> {
        // A voice name is a language code or a voice file path with an optional `+variant`;
        // one that looks like an option or holds spaces would change the command line.
        if voice.is_empty() || voice.starts_with('-') || voice.chars().any(char::is_whitespace) {
            return Err(unknown_voice(voice));
        }
        let wpm = match rate {
            SpeechRate::Normal => "175",
            SpeechRate::Slow => "145",
            SpeechRate::Slower => "120",
        };
        let args = [
            OsStr::new("-v"),
            OsStr::new(voice),
            OsStr::new("-s"),
            OsStr::new(wpm),
            OsStr::new("--stdout"),
        ];
        let output = run_program(&self.program, &args, Some(text.as_bytes()))?;
        let failed = |reason: String| Error::Synthesis {
            engine: Self::ENGINE,
            text: shorten(text),
            reason,
        };
        if !output.status.success() {
            if String::from_utf8_lossy(&output.stderr).contains("voice does not exist") {
                return Err(unknown_voice(voice));
            }
            return Err(failed(stderr_summary(&output)));
        }
        let mut wav = output.stdout;
        fix_streamed_header(&mut wav);
        decode_wav(&wav).map_err(|e| failed(e.to_string()))
    }
}

impl Default for EspeakSynthesizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Synthesizer for EspeakSynthesizer {
    fn synthesize(&self, speech: &[Segment], opts: &SpeakOptions) -> Result<Pcm> {
        let voice = opts.voice.as_deref().unwrap_or(Self::DEFAULT_VOICE);
        assemble(Self::ENGINE, speech, opts.output_rate, |text| {
            self.render(text, voice, opts.rate)
        })
    }

    fn engine(&self) -> &'static str {
        Self::ENGINE
    }

    fn default_voice(&self, locale: Locale) -> Option<String> {
        Some(self.voice_for(locale))
    }
}

fn unknown_voice(voice: &str) -> Error {
    Error::UnknownVoice {
        locale: "any".into(),
        voice: voice.to_owned(),
    }
}

/// Whether an `espeak-ng --voices=LANG` listing has a voice for `language` (or a dialect of
/// it: `mn-xx`). The listing is a header line, then one voice per line whose second column
/// is the language.
fn lists_language(listing: &str, language: &str) -> bool {
    listing.lines().skip(1).any(|line| {
        line.split_whitespace().nth(1).is_some_and(|lang| {
            lang == language
                || lang
                    .strip_prefix(language)
                    .is_some_and(|rest| rest.starts_with('-'))
        })
    })
}

/// Corrects the sizes in a streamed WAV header (RIFF and `data` chunk lengths written as
/// "unknown", larger than what follows) to the bytes actually present, whole frames only.
/// Anything that is not such a WAV is left alone for the decoder to refuse.
fn fix_streamed_header(wav: &mut [u8]) {
    if wav.len() < 12 || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return;
    }
    let riff_len = u32::try_from(wav.len() - 8).unwrap_or(u32::MAX);
    if u32::from_le_bytes([wav[4], wav[5], wav[6], wav[7]]) > riff_len {
        wav[4..8].copy_from_slice(&riff_len.to_le_bytes());
    }
    let mut block_align = 1usize;
    let mut at = 12;
    while let Some(header) = wav.get(at..).and_then(|rest| rest.get(..8)) {
        let id: [u8; 4] = [header[0], header[1], header[2], header[3]];
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let body = at + 8;
        if &id == b"fmt " {
            if let Some(align) = wav.get(body + 12..body + 14) {
                block_align = usize::from(u16::from_le_bytes([align[0], align[1]])).max(1);
            }
        } else if &id == b"data" {
            let present = wav.len() - body;
            if size as usize > present {
                let whole = present - present % block_align;
                let whole = u32::try_from(whole).unwrap_or(u32::MAX);
                wav[at + 4..at + 8].copy_from_slice(&whole.to_le_bytes());
            }
            return;
        }
        at = body
            .saturating_add(size as usize)
            .saturating_add(size as usize & 1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audio::SampleRate;

    const STREAMED: &[u8] = include_bytes!("../../testdata/tts/espeak-stdout-one.wav");

    fn opts(voice: Option<&str>, rate: SpeechRate) -> SpeakOptions {
        SpeakOptions {
            voice: voice.map(str::to_owned),
            rate,
            output_rate: SampleRate::HZ_16000,
        }
    }

    #[test]
    fn streamed_header_with_unknown_length_decodes() {
        // The vector is real `espeak-ng --stdout` output: sizes declared as 0x7ffff0xx.
        assert!(u32::from_le_bytes(STREAMED[40..44].try_into().unwrap()) > 0x7000_0000);
        let mut wav = STREAMED.to_vec();
        fix_streamed_header(&mut wav);
        let pcm = decode_wav(&wav).unwrap();
        assert_eq!(pcm.rate(), SampleRate::HZ_22050);
        assert_eq!(pcm.len(), (STREAMED.len() - 44) / 2);
        assert!(pcm.peak() > 0.1);
    }

    #[test]
    fn streamed_header_with_a_torn_last_frame_keeps_whole_frames() {
        let mut wav = STREAMED.to_vec();
        wav.push(0x7f);
        fix_streamed_header(&mut wav);
        assert_eq!(decode_wav(&wav).unwrap().len(), (STREAMED.len() - 44) / 2);
    }

    #[test]
    fn header_fix_leaves_garbage_alone() {
        for mut junk in [
            vec![],
            b"RIFF".to_vec(),
            b"RIFF\xff\xff\xff\xffWAVEdata".to_vec(),
        ] {
            fix_streamed_header(&mut junk);
            assert!(decode_wav(&junk).is_err());
        }
    }

    #[test]
    fn voice_listing_is_parsed_by_language_column() {
        let header =
            "Pty Language       Age/Gender VoiceName          File          Other Languages\n";
        assert!(!lists_language(header, "mn"));
        let kk = format!("{header} 5  kk              --/M      Kazakh             trk/kk\n");
        assert!(!lists_language(&kk, "mn"));
        assert!(!lists_language(&kk.replace("kk  ", "mni "), "mn"));
        let mn = format!("{header} 5  mn              --/M      Mongolian          alt/mn\n");
        assert!(lists_language(&mn, "mn"));
        assert!(lists_language(&mn.replace("mn  ", "mn-x"), "mn"));
    }

    #[test]
    fn mongolian_uses_kazakh_unless_a_mongolian_voice_is_installed() {
        let espeak = EspeakSynthesizer::new();
        let expected = if espeak.has_mongolian() { "mn" } else { "kk" };
        assert_eq!(espeak.voice_for(Locale::Mn), expected);
        assert_eq!(espeak.voice_for(Locale::En), "en-us");
    }

    #[test]
    fn speaks_audible_cyrillic_with_the_mongolian_voice() {
        let espeak = EspeakSynthesizer::new();
        let voice = espeak.voice_for(Locale::Mn);
        let audio = espeak
            .speak(
                "Сайн байна уу. Засгийн газрын төвд залгасанд баярлалаа.",
                &opts(Some(&voice), SpeechRate::Normal),
            )
            .unwrap();
        assert_eq!(audio.rate(), SampleRate::HZ_16000);
        let secs = audio.duration().as_secs_f32();
        assert!((1.5..6.0).contains(&secs), "{secs} s");
        assert!(audio.rms() > 0.02, "rms {}", audio.rms());
    }

    #[test]
    fn slower_rates_are_measurably_longer() {
        let espeak = EspeakSynthesizer::new();
        let text = "Thank you for calling the Government eleven eleven Centre.";
        let len = |rate| {
            espeak
                .speak(text, &opts(None, rate))
                .unwrap()
                .duration()
                .as_secs_f32()
        };
        let (normal, slow, slower) = (
            len(SpeechRate::Normal),
            len(SpeechRate::Slow),
            len(SpeechRate::Slower),
        );
        assert!((1.0..5.0).contains(&normal), "{normal} s");
        let (r1, r2) = (slow / normal, slower / normal);
        assert!((1.1..1.35).contains(&r1), "slow/normal = {r1}");
        assert!((1.3..1.65).contains(&r2), "slower/normal = {r2}");
    }

    #[test]
    fn pauses_add_exactly_their_silence() {
        let espeak = EspeakSynthesizer::new();
        let o = opts(None, SpeechRate::Normal);
        let one = espeak.speak("one two", &o).unwrap();
        let two = espeak.speak("three", &o).unwrap();
        let both = espeak
            .synthesize(
                &[
                    Segment::Text("one".into()),
                    Segment::Text("two".into()),
                    Segment::Pause(Duration::from_millis(400)),
                    Segment::Text("three".into()),
                ],
                &o,
            )
            .unwrap();
        assert_eq!(both.len(), one.len() + 6400 + two.len());
    }

    #[test]
    fn texts_that_look_like_options_or_markup_are_spoken() {
        let espeak = EspeakSynthesizer::new();
        for text in [
            "-v xx --help",
            "<speak>\"quoted\" & 'single'</speak>",
            "one\ntwo",
        ] {
            let audio = espeak.speak(text, &opts(None, SpeechRate::Normal)).unwrap();
            assert!(audio.duration() > Duration::from_millis(400), "{text:?}");
            assert!(audio.rms() > 0.02, "{text:?}");
        }
    }

    #[test]
    fn unknown_voice_is_an_error() {
        let espeak = EspeakSynthesizer::new();
        for voice in ["nosuchvoice", "-s", "en us"] {
            let err = espeak
                .speak("hello", &opts(Some(voice), SpeechRate::Normal))
                .map(|pcm| pcm.duration())
                .unwrap_err();
            assert!(
                matches!(err, Error::UnknownVoice { voice: ref v, .. } if v == voice),
                "{voice}: {err}"
            );
        }
    }

    #[test]
    fn missing_program_is_an_error_not_a_panic() {
        let espeak = EspeakSynthesizer::with_program("/nonexistent/espeak-ng");
        let err = espeak
            .speak("hello", &SpeakOptions::default())
            .map(|pcm| pcm.duration())
            .unwrap_err();
        assert!(matches!(err, Error::MissingProgram { .. }), "{err}");
        assert_eq!(espeak.voice_for(Locale::Mn), "kk");
    }
}
