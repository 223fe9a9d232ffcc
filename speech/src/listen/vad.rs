//! Voice activity detection: is there a human voice in this 16 ms of 16 kHz audio?
//!
//! Owns one [`earshot`] detector per audio stream plus a buffer for the samples that do not
//! yet fill a whole frame. It does no IO, reads no clock and starts no threads: samples in,
//! decisions out, each tagged with its sample offset in the stream so the caller can place it
//! in time.
//!
//! # Why earshot
//!
//! `earshot` is a small recurrent network over log-mel features, written in pure Rust (no
//! ONNX Runtime, no C++ to build, ~95 KiB including its 40 KiB of weights, ~8 KiB of state per
//! stream), maintained, MIT OR Apache-2.0, and fast: its authors measure ~3,600× real time,
//! so one core runs the VAD for thousands of concurrent calls. It is trained to be robust to
//! environmental noise and works in any language, which matters for Mongolian callers. The
//! older energy/zero-crossing detectors fire on every door slam; WebRTC's GMM VAD needs C.
//!
//! # Units and framing
//!
//! Input is [`Pcm`] at exactly 16 kHz (resample telephone audio first; other rates are an
//! [`Error::InvalidArgument`]). Decisions come per frame of [`VAD_FRAME_SAMPLES`] = 256
//! samples = [`VAD_FRAME`] = 16 ms. A decision's [`VadDecision::offset`] counts samples since
//! the detector was created or [`Vad::reset`].
//!
//! # The energy gate
//!
//! The network normalises its input features, so it judges the *shape* of the spectrum, not
//! its loudness: faint hiss or crosstalk far below speech level can look voice-like to it.
//! A frame whose RMS level is below [`VadConfig::energy_floor_dbfs`] is therefore never speech,
//! whatever the score. The score is still computed for every frame so that the network's
//! recurrent state follows the audio without holes.
//!
//! # Digital silence and cold starts
//!
//! Measured on this network: after a second of exact digital silence (all-zero samples, as
//! a muted WebRTC track or a G.711 stream of silence codes delivers), white noise at
//! -40 dBFS was called speech for two whole seconds; and a detector with fresh, all-zero
//! state called the first 130-240 ms of -40..-20 dBFS noise speech. Neither happens once
//! the network has heard a faint noise floor. So frames quieter than -70 dBFS get
//! deterministic comfort noise at -70 dBFS mixed in before the network sees them, and a new
//! (or reset) detector first listens to one second of that comfort noise. Both are far
//! below the energy gate, so they never make a frame speech; the reported level is always
//! that of the caller's audio.
//!
//! ```
//! use speech::{Pcm, SampleRate};
//! use speech::listen::vad::{Vad, VadConfig};
//! # fn main() -> speech::Result<()> {
//! let mut vad = Vad::new(VadConfig::default())?;
//! let silence = Pcm::silence(SampleRate::HZ_16000, std::time::Duration::from_millis(100));
//! let decisions = vad.handle_pcm(&silence)?; // 6 whole frames; 64 samples wait for more
//! assert_eq!(decisions.len(), 6);
//! assert!(decisions.iter().all(|d| !d.is_speech));
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::audio::{Pcm, SampleRate};
use crate::{Error, Result};

/// Samples in one VAD frame (fixed by the network).
pub const VAD_FRAME_SAMPLES: usize = 256;

/// The rate the VAD takes.
pub const VAD_RATE: SampleRate = SampleRate::HZ_16000;

/// Duration of one VAD frame: 256 samples at 16 kHz.
pub const VAD_FRAME: Duration = Duration::from_millis(16);

/// The level reported for a frame of digital silence (a true RMS of zero), in dBFS.
pub const SILENCE_DBFS: f32 = -120.0;

/// How the VAD turns scores into decisions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VadConfig {
    /// A frame whose network score (0..=1) is at least this is speech. Default 0.5, the
    /// network authors' recommendation; raise it to be stricter.
    pub threshold: f32,
    /// Frames with an RMS level below this (dBFS, relative to a full-scale square wave) are
    /// never speech. Default -50 dBFS: far below speech on any telephone line, above the hiss of
    /// an idle channel.
    pub energy_floor_dbfs: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            energy_floor_dbfs: -50.0,
        }
    }
}

impl VadConfig {
    /// Checks that the threshold is within `0..=1` and the floor is a finite level at or
    /// below full scale.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(Error::InvalidArgument(format!(
                "VAD threshold {} is outside 0..=1",
                self.threshold
            )));
        }
        if !self.energy_floor_dbfs.is_finite() || self.energy_floor_dbfs > 0.0 {
            return Err(Error::InvalidArgument(format!(
                "VAD energy floor {} dBFS must be a finite level at or below 0 dBFS",
                self.energy_floor_dbfs
            )));
        }
        Ok(())
    }
}

/// The verdict on one 16 ms frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VadDecision {
    /// Index of the frame's first sample since the detector was created or reset.
    pub offset: u64,
    /// The network's voice score, 0 (no voice) to 1 (voice).
    pub score: f32,
    /// The frame's RMS level in dBFS ([`SILENCE_DBFS`] for digital silence).
    pub level_dbfs: f32,
    /// The decision: score at or above the threshold and level at or above the energy floor.
    pub is_speech: bool,
}

/// A streaming voice activity detector for one audio stream at 16 kHz.
pub struct Vad {
    config: VadConfig,
    // Boxed: the detector keeps ~8 KiB of state inline.
    detector: Box<earshot::Detector>,
    /// Samples received that do not yet fill a frame (always fewer than a frame).
    pending: Vec<f32>,
    /// Offset of the first sample of `pending` (= of the next frame).
    next_offset: u64,
    /// Comfort noise for the network (see "Digital silence" in the module docs).
    noise: ComfortNoise,
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad")
            .field("config", &self.config)
            .field("pending", &self.pending.len())
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

impl Vad {
    /// A detector with `config` (validated).
    pub fn new(config: VadConfig) -> Result<Self> {
        config.validate()?;
        let mut vad = Self {
            config,
            detector: earshot::Detector::default_boxed(),
            pending: Vec::with_capacity(VAD_FRAME_SAMPLES),
            next_offset: 0,
            noise: ComfortNoise::new(),
        };
        vad.warm_up();
        Ok(vad)
    }

    /// The configuration in use.
    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    /// Feeds audio of any length and returns a decision for every frame it completes, in
    /// order. Samples left over wait for the next call.
    ///
    /// Refuses audio that is not at 16 kHz: resample it first.
    pub fn handle_pcm(&mut self, pcm: &Pcm) -> Result<Vec<VadDecision>> {
        check_rate(pcm)?;
        let mut out = Vec::with_capacity((self.pending.len() + pcm.len()) / VAD_FRAME_SAMPLES);
        let mut rest = pcm.samples();
        if !self.pending.is_empty() {
            let take = (VAD_FRAME_SAMPLES - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() < VAD_FRAME_SAMPLES {
                return Ok(out);
            }
            let frame = std::mem::take(&mut self.pending);
            out.push(self.classify(&frame));
            self.pending = frame;
            self.pending.clear();
        }
        let mut chunks = rest.chunks_exact(VAD_FRAME_SAMPLES);
        for frame in &mut chunks {
            out.push(self.classify(frame));
        }
        self.pending.extend_from_slice(chunks.remainder());
        Ok(out)
    }

    /// Classifies exactly one frame of [`VAD_FRAME_SAMPLES`] samples at 16 kHz, for callers
    /// that do their own framing.
    ///
    /// Refuses a frame of another length, and refuses while samples from
    /// [`Vad::handle_pcm`] are still waiting (the two would interleave the stream out of
    /// order).
    pub fn handle_frame(&mut self, frame: &[f32]) -> Result<VadDecision> {
        if frame.len() != VAD_FRAME_SAMPLES {
            return Err(Error::InvalidArgument(format!(
                "a VAD frame is {VAD_FRAME_SAMPLES} samples, got {}",
                frame.len()
            )));
        }
        if !self.pending.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{} samples from handle_pcm are still waiting; feed whole frames only or \
                 reset first",
                self.pending.len()
            )));
        }
        Ok(self.classify(frame))
    }

    /// Samples waiting for a frame to fill.
    pub fn pending_samples(&self) -> usize {
        self.pending.len()
    }

    /// Forgets the stream: network state, waiting samples, offsets. Use between unrelated
    /// recordings.
    pub fn reset(&mut self) {
        self.detector.reset();
        self.pending.clear();
        self.next_offset = 0;
        self.noise = ComfortNoise::new();
        self.warm_up();
    }

    /// Lets the network settle on a quiet line, so that its first real frames are judged
    /// from a listening state rather than from all-zero memory.
    fn warm_up(&mut self) {
        let frames = VAD_RATE.samples_in(WARM_UP) / VAD_FRAME_SAMPLES;
        for _ in 0..frames {
            let mut quiet = [0.0f32; VAD_FRAME_SAMPLES];
            self.noise.add_to(&mut quiet);
            self.detector.predict_f32(&quiet);
        }
    }

    fn classify(&mut self, frame: &[f32]) -> VadDecision {
        debug_assert_eq!(frame.len(), VAD_FRAME_SAMPLES);
        // Sanitise: earshot wants finite samples within [-1, 1] (it debug-asserts so).
        let mut clean = [0.0f32; VAD_FRAME_SAMPLES];
        for (c, &s) in clean.iter_mut().zip(frame) {
            *c = if s.is_finite() {
                s.clamp(-1.0, 1.0)
            } else {
                0.0
            };
        }
        let level_dbfs = level_dbfs(&clean);
        if level_dbfs < NETWORK_FLOOR_DBFS {
            self.noise.add_to(&mut clean);
        }
        let score = self.detector.predict_f32(&clean).clamp(0.0, 1.0);
        let decision = VadDecision {
            offset: self.next_offset,
            score,
            level_dbfs,
            is_speech: score >= self.config.threshold
                && level_dbfs >= self.config.energy_floor_dbfs,
        };
        self.next_offset += VAD_FRAME_SAMPLES as u64;
        decision
    }
}

/// Frames quieter than this get comfort noise at this level added before the network sees
/// them (their reported level and verdict are unaffected).
const NETWORK_FLOOR_DBFS: f32 = -70.0;

/// How much quiet line the network hears when created or reset.
const WARM_UP: Duration = Duration::from_secs(1);

/// Deterministic white noise at [`NETWORK_FLOOR_DBFS`] (xorshift32 with a fixed seed: the
/// same audio always gets the same decisions).
#[derive(Clone, Debug)]
struct ComfortNoise {
    state: u32,
}

impl ComfortNoise {
    fn new() -> Self {
        Self { state: 0x9E37_79B9 }
    }

    fn add_to(&mut self, frame: &mut [f32]) {
        // Uniform noise on [-1, 1) has an RMS of 1/sqrt(3).
        let gain = 10f32.powf(NETWORK_FLOOR_DBFS / 20.0) * 3f32.sqrt();
        for s in frame {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 17;
            self.state ^= self.state << 5;
            let uniform = self.state as f32 / u32::MAX as f32 * 2.0 - 1.0;
            *s = (*s + gain * uniform).clamp(-1.0, 1.0);
        }
    }
}

/// The fraction (0..=1) of whole 16 ms frames of `pcm` (16 kHz) that the default VAD calls
/// speech. A trailing partial frame is not judged; audio shorter than one frame gives 0.
pub fn speech_ratio(pcm: &Pcm) -> Result<f32> {
    let decisions = Vad::new(VadConfig::default())?.handle_pcm(pcm)?;
    if decisions.is_empty() {
        return Ok(0.0);
    }
    let speech = decisions.iter().filter(|d| d.is_speech).count();
    Ok(speech as f32 / decisions.len() as f32)
}

/// Longest gap between speech frames that [`contains_speech`] still counts as one stretch of
/// speech (the stops and quiet consonants inside a word).
pub const SPEECH_GAP_TOLERANCE: Duration = Duration::from_millis(48);

/// Whether `pcm` (16 kHz) holds at least `min_speech` of continuous speech by the default
/// VAD, gaps up to [`SPEECH_GAP_TOLERANCE`] included.
///
/// This is the gate in front of speech-to-text: silence, line noise and isolated clicks do
/// not pass it, so they never reach Whisper (which would hallucinate words from them).
/// Continuity is required, rather than a total, so that scattered false positives over a
/// long noisy recording cannot add up to "speech".
pub fn contains_speech(pcm: &Pcm, min_speech: Duration) -> Result<bool> {
    let decisions = Vad::new(VadConfig::default())?.handle_pcm(pcm)?;
    let frame = VAD_FRAME_SAMPLES as u64;
    let max_gap = VAD_RATE.samples_in(SPEECH_GAP_TOLERANCE) as u64;
    let needed = VAD_RATE.samples_in(min_speech) as u64;
    // Current stretch: [start, end) in samples.
    let mut stretch: Option<(u64, u64)> = None;
    for d in decisions.iter().filter(|d| d.is_speech) {
        let (start, _) = match stretch {
            Some((start, end)) if d.offset - end <= max_gap => (start, end),
            _ => (d.offset, d.offset),
        };
        let end = d.offset + frame;
        if end - start >= needed {
            return Ok(true);
        }
        stretch = Some((start, end));
    }
    Ok(needed == 0)
}

fn check_rate(pcm: &Pcm) -> Result<()> {
    if pcm.rate() != VAD_RATE {
        return Err(Error::InvalidArgument(format!(
            "the VAD takes {VAD_RATE} audio, got {}: resample it first",
            pcm.rate()
        )));
    }
    Ok(())
}

/// RMS level of `samples` in dBFS (full-scale square wave = 0 dBFS).
fn level_dbfs(samples: &[f32]) -> f32 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len().max(1) as f64).sqrt();
    if rms <= 0.0 {
        return SILENCE_DBFS;
    }
    ((20.0 * rms.log10()) as f32).max(SILENCE_DBFS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listen::test_audio::{flite_speech, sine, white_noise};

    #[test]
    fn real_speech_is_detected() {
        let speech = flite_speech();
        let ratio = speech_ratio(&speech).unwrap();
        assert!(ratio > 0.5, "speech ratio {ratio}");
        assert!(contains_speech(&speech, Duration::from_millis(300)).unwrap());
    }

    #[test]
    fn digital_silence_is_not_speech() {
        let silence = Pcm::silence(VAD_RATE, Duration::from_secs(2));
        assert_eq!(speech_ratio(&silence).unwrap(), 0.0);
        assert!(!contains_speech(&silence, Duration::from_millis(100)).unwrap());
    }

    #[test]
    fn white_noise_at_minus_40_dbfs_is_not_speech() {
        let noise = white_noise(Duration::from_secs(2), -40.0, 7);
        let decisions = Vad::new(VadConfig::default())
            .unwrap()
            .handle_pcm(&noise)
            .unwrap();
        // -40 dBFS is above the -50 dBFS gate: this is the network's own verdict.
        assert!(decisions
            .iter()
            .all(|d| d.level_dbfs > -41.0 && d.level_dbfs < -39.0));
        assert!(decisions.iter().all(|d| !d.is_speech));
        assert_eq!(speech_ratio(&noise).unwrap(), 0.0);
        assert!(!contains_speech(&noise, Duration::from_millis(100)).unwrap());
    }

    #[test]
    fn loud_noise_from_the_first_frame_is_not_speech() {
        // Regression: a detector with all-zero state called the first ~240 ms speech.
        for dbfs in [-40.0, -30.0, -20.0] {
            let noise = white_noise(Duration::from_secs(1), dbfs, 11);
            assert_eq!(speech_ratio(&noise).unwrap(), 0.0, "{dbfs} dBFS");
        }
    }

    #[test]
    fn noise_after_digital_silence_is_not_speech() {
        // Regression: after a second of all-zero samples the network called -40 dBFS noise
        // speech for as long as it lasted.
        for dbfs in [-40.0, -30.0] {
            let mut audio = Pcm::silence(VAD_RATE, Duration::from_secs(1));
            audio
                .append(&white_noise(Duration::from_secs(2), dbfs, 7))
                .unwrap();
            assert_eq!(speech_ratio(&audio).unwrap(), 0.0, "{dbfs} dBFS");
        }
    }

    #[test]
    fn speech_after_digital_silence_is_detected() {
        let mut audio = Pcm::silence(VAD_RATE, Duration::from_secs(1));
        audio.append(&flite_speech()).unwrap();
        let decisions = Vad::new(VadConfig::default())
            .unwrap()
            .handle_pcm(&audio)
            .unwrap();
        let onset = decisions.iter().find(|d| d.is_speech).map(|d| d.offset);
        let one_second = VAD_RATE.samples_in(Duration::from_secs(1)) as u64;
        assert!(onset.is_some_and(|o| o > one_second), "{onset:?}");
        assert!(contains_speech(&audio, Duration::from_millis(500)).unwrap());
    }

    #[test]
    fn mains_hum_is_not_speech() {
        let hum = sine(Duration::from_secs(2), 50.0, -20.0);
        assert!(speech_ratio(&hum).unwrap() < 0.05);
        assert!(!contains_speech(&hum, Duration::from_millis(100)).unwrap());
    }

    #[test]
    fn energy_gate_silences_quiet_speech() {
        // Speech attenuated by 40 dB (now -55..-75 dBFS) keeps enough of its spectral shape
        // for the network to recognise; only the gate stops it.
        let mut faint = flite_speech();
        faint.scale(10f32.powf(-40.0 / 20.0));
        let ungated = VadConfig {
            energy_floor_dbfs: -120.0,
            ..VadConfig::default()
        };
        let heard = Vad::new(ungated).unwrap().handle_pcm(&faint).unwrap();
        let gated = Vad::new(VadConfig::default())
            .unwrap()
            .handle_pcm(&faint)
            .unwrap();
        assert!(heard.iter().filter(|d| d.is_speech).count() > 10);
        assert!(gated.iter().all(|d| !d.is_speech));
        // Same scores either way: the gate only overrides the verdict.
        assert!(heard.iter().zip(&gated).all(|(a, b)| a.score == b.score));
    }

    #[test]
    fn decisions_carry_offsets_across_uneven_chunks() {
        let audio = flite_speech();
        let mut whole = Vad::new(VadConfig::default()).unwrap();
        let expected = whole.handle_pcm(&audio).unwrap();

        let mut pieces = Vad::new(VadConfig::default()).unwrap();
        let mut got = Vec::new();
        for chunk in audio.samples().chunks(100) {
            got.extend(
                pieces
                    .handle_pcm(&Pcm::new(VAD_RATE, chunk.to_vec()))
                    .unwrap(),
            );
        }
        assert_eq!(got, expected);
        assert_eq!(pieces.pending_samples(), audio.len() % VAD_FRAME_SAMPLES);
        for (i, d) in got.iter().enumerate() {
            assert_eq!(d.offset, (i * VAD_FRAME_SAMPLES) as u64);
        }
    }

    #[test]
    fn other_rates_are_refused_with_a_hint() {
        let mut vad = Vad::new(VadConfig::default()).unwrap();
        let narrow = Pcm::silence(SampleRate::HZ_8000, Duration::from_millis(20));
        let err = vad.handle_pcm(&narrow).unwrap_err().to_string();
        assert!(err.contains("resample"), "{err}");
        assert!(speech_ratio(&narrow).is_err());
        assert!(contains_speech(&narrow, Duration::ZERO).is_err());
    }

    #[test]
    fn bad_samples_do_not_panic() {
        let mut vad = Vad::new(VadConfig::default()).unwrap();
        let mut samples = vec![f32::NAN, f32::INFINITY, -7.0, 3.0];
        samples.resize(VAD_FRAME_SAMPLES, 0.0);
        let d = vad.handle_frame(&samples).unwrap();
        assert!((0.0..=1.0).contains(&d.score));
        // Judged as two full-scale samples (the out-of-range ones, clipped) and silence.
        let expected = 20.0 * (2.0f32 / VAD_FRAME_SAMPLES as f32).sqrt().log10();
        assert!((d.level_dbfs - expected).abs() < 0.01, "{}", d.level_dbfs);
    }

    #[test]
    fn handle_frame_refuses_wrong_length_and_interleaving() {
        let mut vad = Vad::new(VadConfig::default()).unwrap();
        assert!(vad.handle_frame(&[0.0; 100]).is_err());
        vad.handle_pcm(&Pcm::new(VAD_RATE, vec![0.0; 10])).unwrap();
        assert!(vad.handle_frame(&[0.0; VAD_FRAME_SAMPLES]).is_err());
        vad.reset();
        let d = vad.handle_frame(&[0.0; VAD_FRAME_SAMPLES]).unwrap();
        assert_eq!(d.offset, 0);
        assert_eq!(d.level_dbfs, SILENCE_DBFS);
    }

    #[test]
    fn config_is_validated() {
        for bad in [
            VadConfig {
                threshold: 1.5,
                ..VadConfig::default()
            },
            VadConfig {
                threshold: f32::NAN,
                ..VadConfig::default()
            },
            VadConfig {
                energy_floor_dbfs: 3.0,
                ..VadConfig::default()
            },
            VadConfig {
                energy_floor_dbfs: f32::NEG_INFINITY,
                ..VadConfig::default()
            },
        ] {
            assert!(Vad::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_audio_has_zero_ratio() {
        let tiny = Pcm::new(VAD_RATE, vec![0.1; 100]);
        assert_eq!(speech_ratio(&tiny).unwrap(), 0.0);
        assert!(contains_speech(&tiny, Duration::ZERO).unwrap());
    }
}
