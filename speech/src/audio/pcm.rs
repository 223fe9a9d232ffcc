//! Mono PCM audio with its sample rate carried in the value.

use std::time::Duration;

use crate::{Error, Result};

/// A sample rate in Hz. Never zero; never assumed: every [`Pcm`] carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SampleRate(u32);

impl SampleRate {
    /// Narrowband telephone audio (G.711).
    pub const HZ_8000: Self = Self(8_000);
    /// Wideband; what Whisper and the VAD take.
    pub const HZ_16000: Self = Self(16_000);
    /// A common TTS output rate.
    pub const HZ_22050: Self = Self(22_050);
    /// WebRTC/Opus full band.
    pub const HZ_48000: Self = Self(48_000);

    /// A rate from Hz; zero and absurd rates (over 384 kHz) are refused.
    pub fn new(hz: u32) -> Result<Self> {
        if hz == 0 || hz > 384_000 {
            return Err(Error::InvalidArgument(format!("sample rate {hz} Hz")));
        }
        Ok(Self(hz))
    }

    /// The rate in Hz.
    pub fn hz(self) -> u32 {
        self.0
    }

    /// How many samples `duration` spans at this rate (rounded to nearest).
    pub fn samples_in(self, duration: Duration) -> usize {
        (duration.as_secs_f64() * f64::from(self.0)).round() as usize
    }

    /// How long `samples` samples last at this rate.
    pub fn duration_of(self, samples: usize) -> Duration {
        Duration::from_secs_f64(samples as f64 / f64::from(self.0))
    }
}

impl std::fmt::Display for SampleRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} Hz", self.0)
    }
}

/// Mono audio: `f32` samples in `[-1.0, 1.0]` at an explicit [`SampleRate`].
///
/// Stereo sources are downmixed when read ([`crate::audio::wav`]); everything downstream of
/// the codecs is mono.
#[derive(Clone, Debug, PartialEq)]
pub struct Pcm {
    rate: SampleRate,
    samples: Vec<f32>,
}

impl Pcm {
    /// Audio from samples at `rate`.
    pub fn new(rate: SampleRate, samples: Vec<f32>) -> Self {
        Self { rate, samples }
    }

    /// `duration` of digital silence at `rate`.
    pub fn silence(rate: SampleRate, duration: Duration) -> Self {
        Self::new(rate, vec![0.0; rate.samples_in(duration)])
    }

    /// Audio from 16-bit linear PCM.
    pub fn from_i16(rate: SampleRate, samples: &[i16]) -> Self {
        Self::new(
            rate,
            samples.iter().map(|&s| f32::from(s) / 32768.0).collect(),
        )
    }

    /// The samples as 16-bit linear PCM (clipped, rounded).
    pub fn to_i16(&self) -> Vec<i16> {
        self.samples.iter().map(|&s| f32_to_i16(s)).collect()
    }

    /// The sample rate.
    pub fn rate(&self) -> SampleRate {
        self.rate
    }

    /// The samples.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// The samples, mutably (same rate).
    pub fn samples_mut(&mut self) -> &mut [f32] {
        &mut self.samples
    }

    /// Takes the samples out.
    pub fn into_samples(self) -> Vec<f32> {
        self.samples
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// How long the audio lasts.
    pub fn duration(&self) -> Duration {
        self.rate.duration_of(self.samples.len())
    }

    /// Appends `other`, which must have the same rate.
    pub fn append(&mut self, other: &Pcm) -> Result<()> {
        if other.rate != self.rate {
            return Err(Error::InvalidArgument(format!(
                "cannot append {} audio to {} audio",
                other.rate, self.rate
            )));
        }
        self.samples.extend_from_slice(&other.samples);
        Ok(())
    }

    /// Appends `duration` of silence.
    pub fn push_silence(&mut self, duration: Duration) {
        let n = self.rate.samples_in(duration);
        self.samples.resize(self.samples.len() + n, 0.0);
    }

    /// Multiplies every sample by `gain` (clipping at ±1).
    pub fn scale(&mut self, gain: f32) {
        for s in &mut self.samples {
            *s = (*s * gain).clamp(-1.0, 1.0);
        }
    }

    /// Root-mean-square level (0 for empty audio).
    pub fn rms(&self) -> f32 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let sum: f64 = self
            .samples
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum();
        (sum / self.samples.len() as f64).sqrt() as f32
    }

    /// Peak absolute sample value.
    pub fn peak(&self) -> f32 {
        self.samples.iter().fold(0.0f32, |m, &s| m.max(s.abs()))
    }

    /// Splits into consecutive frames of `frame` length; the last, shorter frame is
    /// zero-padded so every frame has the same length.
    pub fn frames(&self, frame: Duration) -> impl Iterator<Item = Pcm> + '_ {
        let n = self.rate.samples_in(frame).max(1);
        self.samples.chunks(n).map(move |c| {
            let mut v = c.to_vec();
            v.resize(n, 0.0);
            Pcm::new(self.rate, v)
        })
    }
}

/// Converts one `f32` sample to 16-bit PCM, clipping out-of-range values.
pub fn f32_to_i16(s: f32) -> i16 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_rejects_zero() {
        assert!(SampleRate::new(0).is_err());
        assert_eq!(SampleRate::new(8000).unwrap(), SampleRate::HZ_8000);
    }

    #[test]
    fn durations_and_counts_agree() {
        let r = SampleRate::HZ_8000;
        assert_eq!(r.samples_in(Duration::from_millis(20)), 160);
        assert_eq!(r.duration_of(160), Duration::from_millis(20));
        let p = Pcm::silence(SampleRate::HZ_16000, Duration::from_millis(250));
        assert_eq!(p.len(), 4000);
        assert_eq!(p.duration(), Duration::from_millis(250));
    }

    #[test]
    fn i16_round_trip_and_clipping() {
        let p = Pcm::from_i16(SampleRate::HZ_8000, &[0, 1000, -32768, 32767]);
        assert_eq!(p.to_i16(), vec![0, 1000, -32768, 32767]);
        let loud = Pcm::new(SampleRate::HZ_8000, vec![2.0, -2.0]);
        assert_eq!(loud.to_i16(), vec![32767, -32768]);
    }

    #[test]
    fn append_refuses_mixed_rates() {
        let mut a = Pcm::silence(SampleRate::HZ_8000, Duration::from_millis(10));
        let b = Pcm::silence(SampleRate::HZ_16000, Duration::from_millis(10));
        assert!(a.append(&b).is_err());
        let c = Pcm::silence(SampleRate::HZ_8000, Duration::from_millis(10));
        a.append(&c).unwrap();
        assert_eq!(a.len(), 160);
    }

    #[test]
    fn frames_pad_the_tail() {
        let p = Pcm::new(SampleRate::HZ_8000, vec![0.5; 250]);
        let frames: Vec<_> = p.frames(Duration::from_millis(20)).collect();
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.len() == 160));
        assert_eq!(frames[1].samples()[89], 0.5);
        assert_eq!(frames[1].samples()[90], 0.0);
    }
}
