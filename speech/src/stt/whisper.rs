//! Whisper (whisper.cpp through whisper-rs) as a [`Transcriber`].
//!
//! One model is loaded once and shared; a small pool of decoding states lets several calls
//! transcribe at once (each state holds its own KV caches, tens of MB for tiny/base). Waiting
//! for a state is fair by [`Priority`]: a background job (a recorded complaint) never takes a
//! freed state while an interactive request (a menu answer) is waiting.
//!
//! ## What it does to stay fast and honest on short phone utterances
//!
//! - **Trimmed encoder window** ([`WindowPolicy::Trimmed`]): Whisper always encodes a 30 s
//!   window (1500 frames of 20 ms) whatever the audio length; whisper.cpp's `audio_ctx` cuts
//!   that to the audio plus a margin, with a floor, which is most of the speed-up on 1–3 s
//!   answers. A too-tight window makes the decoder loop ("added, added, added…"), so
//! - **the output is checked** and a suspicious trimmed result (looping, empty, too many tokens
//!   for the audio, very low log-probability) is decoded again with the full window;
//! - **tokens are capped** in proportion to the audio length, so a loop cannot run for seconds;
//! - **silence never becomes words**: a VAD gate skips Whisper when there is no speech; a high
//!   no-speech probability with unlikely tokens, or a known silence hallucination ("you",
//!   "Thank you.") said with low confidence, gives [`Outcome::NothingHeard`];
//! - **no carried context**, greedy decoding at temperature 0 with whisper.cpp's own
//!   temperature fallback disabled (the window fallback above replaces it), no timestamps.
//!
//! Audio shorter than one second is padded with silence: whisper.cpp refuses shorter input.

// Transcription timings are measured here, around the blocking whisper.cpp call.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperGrammarElement,
    WhisperGrammarElementType, WhisperState,
};

use super::text::{is_looping, is_silence_hallucination};
use super::{
    DecodingGrammar, GrammarElement, NothingHeard, Outcome, Priority, SttLanguage, SttRequest,
    SttTimings, Transcriber, Transcript,
};
use crate::{Error, Pcm, Result, SampleRate};

/// Encoder frames in Whisper's full 30 s window.
pub const FULL_AUDIO_CTX: u32 = 1500;
/// Encoder frames per second of audio (one frame per 20 ms).
const FRAMES_PER_SECOND: f64 = 50.0;

/// How much of Whisper's 30 s window to encode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WindowPolicy {
    /// Always the full 30 s window (slow on short audio, the reference for accuracy).
    Full,
    /// The audio plus `margin`, at least `floor` frames, rounded up to a multiple of 64; a
    /// suspicious result is decoded again with the full window.
    Trimmed {
        /// Minimum encoder frames (20 ms each).
        floor: u32,
        /// Audio added beyond the utterance's length.
        margin: Duration,
    },
}

impl Default for WindowPolicy {
    fn default() -> Self {
        WindowPolicy::Trimmed {
            floor: 512,
            margin: Duration::from_millis(2000),
        }
    }
}

impl WindowPolicy {
    /// The encoder context for audio of `duration`.
    pub fn audio_ctx(&self, duration: Duration) -> u32 {
        match *self {
            WindowPolicy::Full => FULL_AUDIO_CTX,
            WindowPolicy::Trimmed { floor, margin } => {
                let frames = ((duration + margin).as_secs_f64() * FRAMES_PER_SECOND).ceil() as u32;
                let rounded = frames.div_ceil(64) * 64;
                rounded.max(floor).min(FULL_AUDIO_CTX)
            }
        }
    }
}

/// Settings of a [`WhisperTranscriber`].
#[derive(Clone, Debug)]
pub struct WhisperConfig {
    /// CPU threads per transcription.
    pub threads: usize,
    /// Decoding states (concurrent transcriptions).
    pub pool_size: usize,
    /// Encoder window policy.
    pub window: WindowPolicy,
    /// No-speech probability above which low-likelihood output counts as nothing heard
    /// (OpenAI's default 0.6).
    pub no_speech_threshold: f32,
    /// Average token log-probability below which output is unlikely (OpenAI's default -1.0).
    pub logprob_threshold: f32,
    /// Skip Whisper when the voice activity detector finds less speech than `min_speech`.
    pub vad_gate: bool,
    /// Minimum detected speech for the VAD gate.
    pub min_speech: Duration,
    /// Use whisper.cpp's flash attention kernels.
    pub flash_attn: bool,
}

impl Default for WhisperConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            threads: cores.min(4),
            pool_size: 2,
            window: WindowPolicy::default(),
            no_speech_threshold: 0.6,
            logprob_threshold: -1.0,
            vad_gate: true,
            min_speech: Duration::from_millis(120),
            flash_attn: true,
        }
    }
}

/// Whisper over whisper.cpp: the model loaded once, a pool of decoding states.
pub struct WhisperTranscriber {
    ctx: Arc<WhisperContext>,
    pool: StatePool,
    config: WhisperConfig,
    model_path: PathBuf,
    multilingual: bool,
    eot: i32,
}

impl std::fmt::Debug for WhisperTranscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperTranscriber")
            .field("model", &self.model_path)
            .field("multilingual", &self.multilingual)
            .field("config", &self.config)
            .finish()
    }
}

impl WhisperTranscriber {
    /// Loads a ggml model file. A missing or malformed file is an error, never a crash.
    pub fn load(path: &Path, config: WhisperConfig) -> Result<Self> {
        check_ggml_header(path)?;
        whisper_rs::install_logging_hooks();
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        params.flash_attn(config.flash_attn);
        let path_str = path.to_str().ok_or_else(|| Error::BadModel {
            path: path.to_path_buf(),
            reason: "path is not valid UTF-8".into(),
        })?;
        let ctx =
            WhisperContext::new_with_params(path_str, params).map_err(|e| Error::BadModel {
                path: path.to_path_buf(),
                reason: format!("whisper.cpp could not load it ({e})"),
            })?;
        let multilingual = ctx.is_multilingual();
        let eot = ctx.token_eot();
        let ctx = Arc::new(ctx);
        let pool = StatePool::new(config.pool_size.max(1));
        tracing::info!(model = %path.display(), multilingual, "whisper model loaded");
        Ok(Self {
            ctx,
            pool,
            config,
            model_path: path.to_path_buf(),
            multilingual,
            eot,
        })
    }

    /// True for multilingual models (needed for Mongolian and language detection).
    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// The settings.
    pub fn config(&self) -> &WhisperConfig {
        &self.config
    }

    fn has_speech(&self, audio: &Pcm) -> Result<bool> {
        crate::listen::contains_speech(audio, self.config.min_speech)
    }

    fn decode(
        &self,
        state: &mut WhisperState,
        samples: &[f32],
        audio_len: Duration,
        audio_ctx: u32,
        request: &SttRequest,
    ) -> Result<Attempt> {
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.config.threads as i32);
        params.set_translate(false);
        params.set_no_context(true);
        params.set_no_timestamps(true);
        params.set_single_segment(audio_len <= Duration::from_secs(30));
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        params.set_no_speech_thold(self.config.no_speech_threshold);
        params.set_logprob_thold(self.config.logprob_threshold);
        params.set_audio_ctx(audio_ctx as i32);
        params.set_max_tokens(max_tokens(audio_len));
        params.set_language(Some(request.language.code()));
        let prompt = request.hints.join(", ");
        if !prompt.is_empty() {
            params.set_initial_prompt(&prompt);
        }
        let grammar: Option<Vec<WhisperGrammarElement>> = request.grammar.as_ref().map(compile);
        if let (Some(g), Some(elements)) = (request.grammar.as_ref(), grammar.as_ref()) {
            params.set_grammar(Some(elements));
            params.set_start_rule(g.start());
            params.set_grammar_penalty(g.penalty());
        }

        state
            .full(params, samples)
            .map_err(|e| Error::Transcribe(format!("whisper.cpp: {e}")))?;

        let mut text = String::new();
        let mut logprob_sum = 0.0f64;
        let mut tokens = 0usize;
        let mut no_speech = 0.0f32;
        for (i, segment) in state.as_iter().enumerate() {
            if i == 0 {
                no_speech = segment.no_speech_probability();
            }
            text.push_str(&segment.to_str_lossy().map_err(|e| {
                Error::Transcribe(format!("whisper.cpp returned unreadable text: {e}"))
            })?);
            for t in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(t) {
                    if token.token_id() >= self.eot {
                        continue; // special tokens: timestamps, language, end of text
                    }
                    logprob_sum += f64::from(token.token_data().plog);
                    tokens += 1;
                }
            }
        }
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let avg_logprob = if tokens == 0 {
            f64::NEG_INFINITY
        } else {
            logprob_sum / tokens as f64
        };
        let language = if request.language == SttLanguage::Auto {
            whisper_rs::get_lang_str(state.full_lang_id_from_state())
                .unwrap_or("auto")
                .to_string()
        } else {
            request.language.code().to_string()
        };
        Ok(Attempt {
            text,
            tokens,
            avg_logprob,
            no_speech,
            audio_ctx,
            language,
        })
    }

    fn suspicious(&self, a: &Attempt, audio_len: Duration) -> bool {
        a.text.is_empty()
            || is_looping(&a.text)
            || a.tokens as i32 >= max_tokens(audio_len)
            || a.avg_logprob < f64::from(self.config.logprob_threshold)
    }
}

impl Transcriber for WhisperTranscriber {
    fn transcribe(&self, audio: &Pcm, request: &SttRequest) -> Result<Transcript> {
        if audio.rate() != SampleRate::HZ_16000 {
            return Err(Error::InvalidArgument(format!(
                "Whisper takes 16 kHz audio, got {}: resample first",
                audio.rate()
            )));
        }
        if !self.multilingual && request.language != SttLanguage::En {
            return Err(Error::InvalidArgument(format!(
                "model {} is English-only; language {:?} needs a multilingual model such as base",
                self.model_path.display(),
                request.language.code()
            )));
        }
        let audio_len = audio.duration();
        if audio.is_empty() || (self.config.vad_gate && !self.has_speech(audio)?) {
            return Ok(Transcript::nothing(
                NothingHeard::NoSpeech,
                audio_len,
                request.language.code(),
            ));
        }

        // whisper.cpp refuses input shorter than 1 s; pad with silence (plus a little, so the
        // utterance does not end exactly at the edge of what the encoder sees).
        let mut samples = audio.samples().to_vec();
        let min_len = SampleRate::HZ_16000.samples_in(Duration::from_millis(1100));
        if samples.len() < min_len {
            samples.resize(min_len, 0.0);
        }

        let queued_at = Instant::now();
        let mut state = self.pool.checkout(&self.ctx, request.priority)?;
        let started = Instant::now();
        let queued = started - queued_at;

        let first_ctx = self.config.window.audio_ctx(audio_len);
        let mut attempt = self.decode(&mut state, &samples, audio_len, first_ctx, request)?;
        let mut attempts = 1;
        if first_ctx < FULL_AUDIO_CTX && self.suspicious(&attempt, audio_len) {
            tracing::debug!(
                text = %attempt.text, audio_ctx = first_ctx,
                "trimmed window looked wrong; decoding with the full window"
            );
            let retry = self.decode(&mut state, &samples, audio_len, FULL_AUDIO_CTX, request)?;
            attempts = 2;
            // Keep the retry unless it is no better (both empty or both looping).
            if !retry.text.is_empty() || attempt.text.is_empty() || is_looping(&attempt.text) {
                attempt = retry;
            }
        }
        let processing = started.elapsed();
        drop(state);

        let confidence = if attempt.tokens == 0 {
            0.0
        } else {
            attempt.avg_logprob.exp() as f32
        };
        let timings = SttTimings {
            audio: audio_len,
            processing,
            queued,
            audio_ctx: attempt.audio_ctx,
            attempts,
        };
        let nothing = |reason| Transcript {
            outcome: Outcome::NothingHeard(reason),
            text: String::new(),
            confidence: 0.0,
            no_speech_probability: attempt.no_speech,
            language: attempt.language.clone(),
            timings,
        };
        if attempt.no_speech > self.config.no_speech_threshold
            && attempt.avg_logprob < f64::from(self.config.logprob_threshold)
        {
            return Ok(nothing(NothingHeard::NoSpeechProbability));
        }
        if attempt.text.is_empty()
            || is_looping(&attempt.text)
            || (is_silence_hallucination(&attempt.text)
                && (attempt.no_speech > 0.3 || confidence < 0.5))
        {
            return Ok(nothing(NothingHeard::Hallucination));
        }
        Ok(Transcript {
            outcome: Outcome::Heard,
            text: attempt.text,
            confidence,
            no_speech_probability: attempt.no_speech,
            language: attempt.language,
            timings,
        })
    }
}

/// The most tokens a decode may produce for audio of `len`: fast speech is about 4 words
/// (≈ 6 tokens) a second; anything far beyond is a loop.
fn max_tokens(len: Duration) -> i32 {
    (len.as_secs_f64() * 8.0).ceil() as i32 + 12
}

struct Attempt {
    text: String,
    tokens: usize,
    avg_logprob: f64,
    no_speech: f32,
    audio_ctx: u32,
    language: String,
}

fn compile(grammar: &DecodingGrammar) -> Vec<WhisperGrammarElement> {
    use WhisperGrammarElementType as T;
    let mut out = Vec::new();
    for rule in grammar.rules() {
        for e in rule {
            let (t, v) = match *e {
                GrammarElement::End => (T::End, 0),
                GrammarElement::Alternate => (T::Alternate, 0),
                GrammarElement::RuleRef(r) => (T::RuleReference, r),
                GrammarElement::Char(c) => (T::Character, c as u32),
                GrammarElement::CharNot(c) => (T::NotCharacter, c as u32),
                GrammarElement::CharRangeUpper(c) => (T::CharacterRangeUpper, c as u32),
                GrammarElement::CharAlt(c) => (T::CharacterAlternate, c as u32),
            };
            out.push(WhisperGrammarElement::new(t, v));
        }
    }
    out
}

/// Refuses files that are not whisper.cpp ggml models before whisper.cpp sees them.
fn check_ggml_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let bad = |reason: String| Error::BadModel {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            bad("no such file (fetch it with `ivr models fetch NAME`)".into())
        } else {
            Error::io(path, e)
        }
    })?;
    let mut header = [0u8; 48];
    file.read_exact(&mut header)
        .map_err(|_| bad("too short to be a ggml model".into()))?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if magic != 0x6767_6d6c {
        return Err(bad(format!(
            "not a whisper.cpp ggml file (magic {magic:#010x}, expected 0x67676d6c)"
        )));
    }
    let hp = |i: usize| {
        i32::from_le_bytes([
            header[4 + i * 4],
            header[5 + i * 4],
            header[6 + i * 4],
            header[7 + i * 4],
        ])
    };
    let (n_vocab, n_audio_ctx, n_mels) = (hp(0), hp(1), hp(9));
    if !(1000..=100_000).contains(&n_vocab) || n_audio_ctx != 1500 || !(80..=128).contains(&n_mels)
    {
        return Err(bad(format!(
            "implausible hyper-parameters (n_vocab {n_vocab}, n_audio_ctx {n_audio_ctx}, n_mels {n_mels})"
        )));
    }
    Ok(())
}

/// Decoding states shared by all calls; created lazily up to `size`.
struct StatePool {
    inner: Mutex<PoolInner>,
    freed: Condvar,
    size: usize,
}

struct PoolInner {
    idle: Vec<WhisperState>,
    created: usize,
    interactive_waiting: usize,
}

impl StatePool {
    fn new(size: usize) -> Self {
        Self {
            inner: Mutex::new(PoolInner {
                idle: Vec::new(),
                created: 0,
                interactive_waiting: 0,
            }),
            freed: Condvar::new(),
            size,
        }
    }

    fn checkout<'p>(&'p self, ctx: &WhisperContext, priority: Priority) -> Result<PooledState<'p>> {
        let lock_err = || Error::Transcribe("decoder pool poisoned by an earlier panic".into());
        let mut inner = self.inner.lock().map_err(|_| lock_err())?;
        if priority == Priority::Interactive {
            inner.interactive_waiting += 1;
        }
        loop {
            let may_take = priority == Priority::Interactive || inner.interactive_waiting == 0;
            if may_take {
                if let Some(state) = inner.idle.pop() {
                    if priority == Priority::Interactive {
                        inner.interactive_waiting -= 1;
                    }
                    return Ok(PooledState {
                        pool: self,
                        state: Some(state),
                    });
                }
                if inner.created < self.size {
                    inner.created += 1;
                    if priority == Priority::Interactive {
                        inner.interactive_waiting -= 1;
                    }
                    drop(inner);
                    return match ctx.create_state() {
                        Ok(state) => Ok(PooledState {
                            pool: self,
                            state: Some(state),
                        }),
                        Err(e) => {
                            if let Ok(mut inner) = self.inner.lock() {
                                inner.created -= 1;
                            }
                            self.freed.notify_all();
                            Err(Error::Transcribe(format!(
                                "could not create a decoder state: {e}"
                            )))
                        }
                    };
                }
            }
            inner = self.freed.wait(inner).map_err(|_| lock_err())?;
        }
    }
}

/// A checked-out state; returns to the pool when dropped.
struct PooledState<'p> {
    pool: &'p StatePool,
    state: Option<WhisperState>,
}

impl std::ops::Deref for PooledState<'_> {
    type Target = WhisperState;

    fn deref(&self) -> &WhisperState {
        // Invariant: `state` is Some until drop.
        self.state
            .as_ref()
            .expect("pooled state present until drop")
    }
}

impl std::ops::DerefMut for PooledState<'_> {
    fn deref_mut(&mut self) -> &mut WhisperState {
        // Invariant: `state` is Some until drop.
        self.state
            .as_mut()
            .expect("pooled state present until drop")
    }
}

impl Drop for PooledState<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            if let Ok(mut inner) = self.pool.inner.lock() {
                inner.idle.push(state);
            }
            self.pool.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_window_has_floor_margin_and_cap() {
        let w = WindowPolicy::Trimmed {
            floor: 512,
            margin: Duration::from_secs(2),
        };
        assert_eq!(w.audio_ctx(Duration::from_secs(1)), 512);
        // 8 s + 2 s = 500 frames → 512; 12 s + 2 s = 700 → 704.
        assert_eq!(w.audio_ctx(Duration::from_secs(8)), 512);
        assert_eq!(w.audio_ctx(Duration::from_secs(12)), 704);
        assert_eq!(w.audio_ctx(Duration::from_secs(40)), FULL_AUDIO_CTX);
        assert_eq!(
            WindowPolicy::Full.audio_ctx(Duration::from_secs(1)),
            FULL_AUDIO_CTX
        );
    }

    #[test]
    fn token_cap_grows_with_audio() {
        assert_eq!(max_tokens(Duration::from_secs(1)), 20);
        assert!(max_tokens(Duration::from_secs(8)) > 70);
    }

    #[test]
    fn missing_and_foreign_files_are_bad_models() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.bin");
        let err = WhisperTranscriber::load(&missing, WhisperConfig::default()).unwrap_err();
        assert!(err.to_string().contains("ivr models fetch"), "{err}");
        let junk = dir.path().join("junk.bin");
        std::fs::write(
            &junk,
            b"RIFF....WAVEfmt this is not a model at all, no sir, not one bit",
        )
        .unwrap();
        let err = WhisperTranscriber::load(&junk, WhisperConfig::default()).unwrap_err();
        assert!(
            err.to_string().contains("not a whisper.cpp ggml file"),
            "{err}"
        );
        let short = dir.path().join("short.bin");
        std::fs::write(&short, 0x6767_6d6cu32.to_le_bytes()).unwrap();
        let err = WhisperTranscriber::load(&short, WhisperConfig::default()).unwrap_err();
        assert!(err.to_string().contains("too short"), "{err}");
    }
}
