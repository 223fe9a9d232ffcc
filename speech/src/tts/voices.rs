//! Which engine and voice speak each [`Locale`]: [`VoiceConfig`] says, [`Speaker`] does it.
//!
//! Defaults: English with Flite's `slt`; Mongolian with espeak-ng's `mn` where installed,
//! otherwise `kk` (Kazakh, the documented stand-in). Each locale can be configured to another
//! engine and voice; a choice without a voice takes the engine's default for that locale.
//!
//! No IO of its own: the engines it holds run their programs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{
    CachedSynthesizer, EspeakSynthesizer, FliteSynthesizer, RenderCache, Segment, SpeakOptions,
    SpeechRate, Synthesizer,
};
use crate::audio::{Pcm, SampleRate};
use crate::{Error, Locale, Result};

/// A synthesis engine, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Engine {
    /// CMU Flite (`flite`).
    #[serde(rename = "flite")]
    Flite,
    /// espeak-ng (`espeak-ng`).
    #[serde(rename = "espeak-ng", alias = "espeak")]
    Espeak,
}

impl Engine {
    /// The engine's name as in configuration and [`Synthesizer::engine`].
    pub fn name(self) -> &'static str {
        match self {
            Engine::Flite => FliteSynthesizer::ENGINE,
            Engine::Espeak => EspeakSynthesizer::ENGINE,
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Engine {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "flite" => Ok(Engine::Flite),
            "espeak-ng" | "espeak" => Ok(Engine::Espeak),
            other => Err(Error::InvalidArgument(format!(
                "unknown speech engine {other:?} (expected flite or espeak-ng)"
            ))),
        }
    }
}

/// The engine and voice for one locale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceChoice {
    /// Which engine speaks.
    pub engine: Engine,
    /// The engine's voice name; `None` takes the engine's default for the locale.
    #[serde(default)]
    pub voice: Option<String>,
}

impl VoiceChoice {
    /// `engine` with its default voice for the locale.
    pub fn engine_default(engine: Engine) -> Self {
        Self {
            engine,
            voice: None,
        }
    }
}

/// Engine and voice per locale. Deserializes from configuration such as
/// `{ "mn": { "engine": "espeak-ng", "voice": "kk" } }`; a locale left out keeps its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VoiceConfig {
    /// Mongolian; default espeak-ng with `mn`, or `kk` where espeak-ng has no `mn`.
    pub mn: VoiceChoice,
    /// English; default Flite `slt`.
    pub en: VoiceChoice,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            mn: VoiceChoice::engine_default(Engine::Espeak),
            en: VoiceChoice::engine_default(Engine::Flite),
        }
    }
}

impl VoiceConfig {
    /// The choice for `locale`.
    pub fn choice(&self, locale: Locale) -> &VoiceChoice {
        match locale {
            Locale::Mn => &self.mn,
            Locale::En => &self.en,
        }
    }

    /// Replaces the choice for `locale`.
    pub fn set(&mut self, locale: Locale, choice: VoiceChoice) {
        match locale {
            Locale::Mn => self.mn = choice,
            Locale::En => self.en = choice,
        }
    }
}

/// Speaks any locale with the engine and voice its [`VoiceConfig`] names.
pub struct Speaker {
    config: VoiceConfig,
    flite: Box<dyn Synthesizer>,
    espeak: Box<dyn Synthesizer>,
}

impl fmt::Debug for Speaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Speaker")
            .field("config", &self.config)
            .field("flite", &self.flite.engine())
            .field("espeak", &self.espeak.engine())
            .finish()
    }
}

impl Speaker {
    /// The installed `flite` and `espeak-ng` programs, found in `PATH`.
    pub fn new(config: VoiceConfig) -> Self {
        Self::with_engines(
            config,
            Box::new(FliteSynthesizer::new()),
            Box::new(EspeakSynthesizer::new()),
        )
    }

    /// A speaker whose engines keep what they render in the sled cache at `cache_dir`, so a
    /// prompt is synthesized once per text, voice, rate and output rate.
    pub fn cached(config: VoiceConfig, cache_dir: &std::path::Path) -> Result<Self> {
        let cache = RenderCache::open(cache_dir)?;
        Ok(Self::with_engines(
            config,
            Box::new(CachedSynthesizer::new(
                FliteSynthesizer::new(),
                cache.clone(),
            )),
            Box::new(CachedSynthesizer::new(EspeakSynthesizer::new(), cache)),
        ))
    }

    /// Given engines (for example wrapped in a [`super::CachedSynthesizer`]): `flite` speaks
    /// for [`Engine::Flite`], `espeak` for [`Engine::Espeak`].
    pub fn with_engines(
        config: VoiceConfig,
        flite: Box<dyn Synthesizer>,
        espeak: Box<dyn Synthesizer>,
    ) -> Self {
        Self {
            config,
            flite,
            espeak,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// The engine and voice that speak `locale`; [`Error::UnknownVoice`] when the configured
    /// engine has no default voice for it and none is configured.
    pub fn voice_for(&self, locale: Locale) -> Result<(Engine, String)> {
        let choice = self.config.choice(locale);
        let voice = match &choice.voice {
            Some(voice) => voice.clone(),
            None => self
                .engine(choice.engine)
                .default_voice(locale)
                .ok_or_else(|| Error::UnknownVoice {
                    locale: locale.code().to_owned(),
                    voice: format!("({} default)", choice.engine),
                })?,
        };
        Ok((choice.engine, voice))
    }

    /// Speaks `speech` in `locale` at `rate`, returning audio at `output_rate`.
    pub fn speak(
        &self,
        locale: Locale,
        speech: &[Segment],
        rate: SpeechRate,
        output_rate: SampleRate,
    ) -> Result<Pcm> {
        let (engine, voice) = self.voice_for(locale)?;
        let opts = SpeakOptions {
            voice: Some(voice),
            rate,
            output_rate,
        };
        self.engine(engine)
            .synthesize(speech, &opts)
            .map_err(|e| match e {
                Error::UnknownVoice { voice, .. } => Error::UnknownVoice {
                    locale: locale.code().to_owned(),
                    voice,
                },
                other => other,
            })
    }

    fn engine(&self, engine: Engine) -> &dyn Synthesizer {
        match engine {
            Engine::Flite => self.flite.as_ref(),
            Engine::Espeak => self.espeak.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// Records what it was asked to speak; answers with a short tone.
    struct Recorder {
        name: &'static str,
        calls: Arc<Mutex<Vec<SpeakOptions>>>,
        default: Option<&'static str>,
    }

    impl Synthesizer for Recorder {
        fn synthesize(&self, _speech: &[Segment], opts: &SpeakOptions) -> Result<Pcm> {
            self.calls.lock().unwrap().push(opts.clone());
            if opts.voice.as_deref() == Some("broken") {
                return Err(Error::UnknownVoice {
                    locale: "any".into(),
                    voice: "broken".into(),
                });
            }
            Ok(Pcm::new(opts.output_rate, vec![0.5; 10]))
        }

        fn engine(&self) -> &'static str {
            self.name
        }

        fn default_voice(&self, locale: Locale) -> Option<String> {
            match locale {
                Locale::En => self.default.map(str::to_owned),
                Locale::Mn => None,
            }
        }
    }

    type Calls = Arc<Mutex<Vec<SpeakOptions>>>;

    fn doubles(config: VoiceConfig) -> (Speaker, Calls, Calls) {
        let (f, e) = (Calls::default(), Calls::default());
        let speaker = Speaker::with_engines(
            config,
            Box::new(Recorder {
                name: "flite",
                calls: Arc::clone(&f),
                default: Some("slt"),
            }),
            Box::new(Recorder {
                name: "espeak-ng",
                calls: Arc::clone(&e),
                default: Some("en-us"),
            }),
        );
        (speaker, f, e)
    }

    #[test]
    fn english_goes_to_flite_with_its_default_voice() {
        let (speaker, flite, espeak) = doubles(VoiceConfig::default());
        let audio = speaker
            .speak(
                Locale::En,
                &[Segment::Text("hello".into())],
                SpeechRate::Slow,
                SampleRate::HZ_8000,
            )
            .unwrap();
        assert_eq!(audio.rate(), SampleRate::HZ_8000);
        let calls = flite.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].voice.as_deref(), Some("slt"));
        assert_eq!(calls[0].rate, SpeechRate::Slow);
        assert!(espeak.lock().unwrap().is_empty());
    }

    #[test]
    fn configured_voice_overrides_and_errors_name_the_locale() {
        let mut config = VoiceConfig::default();
        config.set(
            Locale::Mn,
            VoiceChoice {
                engine: Engine::Espeak,
                voice: Some("broken".into()),
            },
        );
        let (speaker, _, espeak) = doubles(config);
        let err = speaker
            .speak(Locale::Mn, &[], SpeechRate::Normal, SampleRate::HZ_16000)
            .map(|pcm| pcm.duration())
            .unwrap_err();
        assert!(
            matches!(err, Error::UnknownVoice { ref locale, ref voice } if locale == "mn" && voice == "broken"),
            "{err}"
        );
        assert_eq!(espeak.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_engine_without_a_voice_for_the_locale_is_refused_before_speaking() {
        let mut config = VoiceConfig::default();
        config.set(Locale::Mn, VoiceChoice::engine_default(Engine::Flite));
        let (speaker, flite, _) = doubles(config);
        let err = speaker.voice_for(Locale::Mn).unwrap_err();
        assert!(matches!(err, Error::UnknownVoice { ref locale, .. } if locale == "mn"));
        assert!(flite.lock().unwrap().is_empty());
    }

    #[test]
    fn config_deserializes_with_defaults_for_missing_locales() {
        let config: VoiceConfig =
            serde_json::from_str(r#"{ "mn": { "engine": "espeak-ng", "voice": "kk" } }"#).unwrap();
        assert_eq!(config.mn.voice.as_deref(), Some("kk"));
        assert_eq!(config.en, VoiceChoice::engine_default(Engine::Flite));
        assert!(
            serde_json::from_str::<VoiceConfig>(r#"{ "en": { "engine": "festival" } }"#).is_err()
        );
        assert_eq!("espeak".parse::<Engine>().unwrap(), Engine::Espeak);
        assert!("festival".parse::<Engine>().is_err());
    }

    #[test]
    fn default_speaker_speaks_both_locales_with_the_installed_programs() {
        let speaker = Speaker::new(VoiceConfig::default());
        assert_eq!(
            speaker.voice_for(Locale::En).unwrap(),
            (Engine::Flite, "slt".into())
        );
        let (engine, voice) = speaker.voice_for(Locale::Mn).unwrap();
        assert_eq!(engine, Engine::Espeak);
        assert!(voice == "kk" || voice == "mn", "{voice}");
        for (locale, text) in [(Locale::En, "Goodbye."), (Locale::Mn, "Баяртай.")] {
            let audio = speaker
                .speak(
                    locale,
                    &[
                        Segment::Text(text.into()),
                        Segment::Pause(Duration::from_millis(100)),
                    ],
                    SpeechRate::Normal,
                    SampleRate::HZ_8000,
                )
                .unwrap();
            assert!(audio.duration() > Duration::from_millis(400), "{locale}");
            assert!(audio.rms() > 0.02, "{locale}");
        }
    }
}
