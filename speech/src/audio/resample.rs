//! Sample-rate conversion between the hotline's rates: 8 kHz telephone audio, 16 kHz for
//! Whisper and the VAD, 22.05 kHz TTS output, 48 kHz WebRTC audio, and any other rate a WAV
//! file may bring.
//!
//! Owns the conversion only. Pure computation on the calling thread: no IO, no clock, no
//! threads. Built on rubato's synchronous FFT resampler: band-limited (its anti-aliasing
//! filter is a Blackman-Harris windowed sinc; tones above the lower Nyquist frequency come
//! out more than 60 dB down), flat within 0.5 dB up to 3.4 kHz at 8 kHz (the telephone
//! band), and cheap enough to run on every call.
//!
//! The resampler works in blocks whose length is a whole number of the rate pair's smallest
//! exact block (`rate / gcd(from, to)` samples on each side), at least 160 samples at the
//! lower rate, and even (rubato centres its filter on the middle of the block). Half a block
//! is the filter's delay and up to a block is buffered, so a stream lags by at most 30 ms
//! between 8, 16 and 48 kHz and 60 ms to or from 22.05 kHz ([`Resampler::latency`]). Rates
//! that share only a small common divisor (say 44 101 Hz → 16 kHz) need blocks of up to a
//! second: fine for files, too slow for a live call.
//!
//! # Time alignment
//!
//! The filters' start-up delay is compensated: output sample `k` is the signal at time
//! `k / to`, the same instant as input sample `k · from / to`. A clip of `n` samples at
//! `from` becomes `round(n · to / from)` samples at `to`.
//!
//! # Driving it
//!
//! Whole clips go through [`resample`]. A live stream goes through a [`Resampler`]: feed each
//! frame (any length, typically 10–20 ms) to [`Resampler::process`], which returns whatever
//! output is ready (possibly nothing, for the first frames); at the end of the stream call
//! [`Resampler::flush`] for the rest. The concatenated outputs equal `resample` of the
//! concatenated inputs. [`Resampler::latency`] says how far output lags input.
//!
//! ```
//! use std::time::Duration;
//! use speech::audio::{resample::{resample, Resampler}, Pcm, SampleRate};
//! # fn main() -> speech::Result<()> {
//! let call = Pcm::silence(SampleRate::HZ_8000, Duration::from_millis(100));
//! let wide = resample(&call, SampleRate::HZ_16000)?;
//! assert_eq!(wide.len(), 1600);
//!
//! let mut stream = Resampler::new(SampleRate::HZ_8000, SampleRate::HZ_16000)?;
//! let mut heard = Pcm::new(SampleRate::HZ_16000, Vec::new());
//! for frame in call.frames(Duration::from_millis(20)) {
//!     heard.append(&stream.process(&frame)?)?;
//! }
//! heard.append(&stream.flush()?)?;
//! assert_eq!(heard, wide);
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, WindowFunction};

use crate::audio::{Pcm, SampleRate};
use crate::{Error, Result};

/// Resamples a whole clip to `to`, time-aligned, to `round(len · to / from)` samples.
///
/// Same rate: a copy. Empty input gives empty output; a clip of a few samples is fine.
pub fn resample(pcm: &Pcm, to: SampleRate) -> Result<Pcm> {
    if pcm.rate() == to {
        return Ok(pcm.clone());
    }
    let mut resampler = Resampler::new(pcm.rate(), to)?;
    let mut out = resampler.process(pcm)?;
    out.append(&resampler.flush()?)?;
    Ok(out)
}

/// A streaming resampler for one direction of one call.
///
/// Frames of any length go in at the `from` rate; time-aligned audio comes out at the `to`
/// rate. After [`flush`](Self::flush) it is ready for a new stream.
pub struct Resampler {
    from: SampleRate,
    to: SampleRate,
    /// `None` when the rates are equal (frames pass through).
    engine: Option<Engine>,
}

/// The rubato resampler and the buffering around it.
struct Engine {
    inner: Box<dyn rubato::Resampler<f32>>,
    /// Input samples per rubato call (rubato is driven with a fixed input size).
    chunk_in: usize,
    /// Input not yet handed to rubato (always shorter than `chunk_in`).
    pending: Vec<f32>,
    /// Scratch for one rubato call's output.
    scratch: Vec<f32>,
    /// Start-up delay of the filter, in output samples.
    delay: usize,
    /// Output samples still to drop to compensate `delay`.
    to_trim: usize,
    /// Input samples taken in since the stream started.
    consumed: u64,
    /// Output samples handed out since the stream started.
    emitted: u64,
}

/// Smallest FFT block, in samples at the lower of the two rates: long enough for a flat
/// passband up to 3.4 kHz at 8 kHz (half of it is the filter's delay): 20 ms at 8 kHz.
const MIN_FFT_BLOCK: usize = 160;
/// Largest block, in samples on the faster side, before the minimum above gives way.
const MAX_FFT_BLOCK: usize = 1 << 19;

impl Resampler {
    /// A resampler from `from` to `to`. Any pair of valid rates works.
    pub fn new(from: SampleRate, to: SampleRate) -> Result<Self> {
        let engine = if from == to {
            None
        } else {
            Some(Engine::new(from, to)?)
        };
        Ok(Self { from, to, engine })
    }

    /// The input rate.
    pub fn from_rate(&self) -> SampleRate {
        self.from
    }

    /// The output rate.
    pub fn to_rate(&self) -> SampleRate {
        self.to
    }

    /// Takes in one frame at the input rate and returns the output that is ready, at the
    /// output rate (may be empty while the filter fills). A frame at another rate is an
    /// [`Error::InvalidArgument`].
    pub fn process(&mut self, frame: &Pcm) -> Result<Pcm> {
        if frame.rate() != self.from {
            return Err(Error::InvalidArgument(format!(
                "resampler from {} to {} was given a frame at {}",
                self.from,
                self.to,
                frame.rate()
            )));
        }
        let Some(engine) = &mut self.engine else {
            return Ok(frame.clone());
        };
        let mut out = Vec::with_capacity(estimate(frame.len(), self.from, self.to) + 1);
        engine.process(frame.samples(), &mut out)?;
        Ok(Pcm::new(self.to, out))
    }

    /// Ends the stream: returns the rest of the output, so that the whole stream came out as
    /// `round(n · to / from)` samples for `n` samples in, then resets for a new stream.
    pub fn flush(&mut self) -> Result<Pcm> {
        let Some(engine) = &mut self.engine else {
            return Ok(Pcm::new(self.to, Vec::new()));
        };
        let out = engine.flush(self.from, self.to)?;
        Ok(Pcm::new(self.to, out))
    }

    /// How far the output lags the input at most: once input up to time `t` has been given
    /// to [`process`](Self::process), the output returned so far reaches at least
    /// `t - latency()`. It is the filter's delay plus one block of buffering; zero when the
    /// rates are equal.
    pub fn latency(&self) -> Duration {
        match &self.engine {
            None => Duration::ZERO,
            Some(engine) => Duration::from_secs_f64(
                (engine.chunk_in - 1) as f64 / f64::from(self.from.hz())
                    + engine.delay as f64 / f64::from(self.to.hz()),
            ),
        }
    }
}

impl fmt::Debug for Resampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Resampler");
        s.field("from", &self.from).field("to", &self.to);
        if let Some(engine) = &self.engine {
            s.field("chunk_in", &engine.chunk_in)
                .field("delay", &engine.delay)
                .field("pending", &engine.pending.len());
        }
        s.finish()
    }
}

impl Engine {
    fn new(from: SampleRate, to: SampleRate) -> Result<Self> {
        let (from_hz, to_hz) = (from.hz() as usize, to.hz() as usize);
        let gcd = gcd(from_hz, to_hz);
        let (unit_in, unit_out) = (from_hz / gcd, to_hz / gcd);
        let mut units = MIN_FFT_BLOCK.div_ceil(unit_in.min(unit_out));
        // Extreme ratios (a few Hz to hundreds of kHz) would ask for huge blocks on the fast
        // side; there a single exact block is enough.
        units = units.min((MAX_FFT_BLOCK / unit_in.max(unit_out)).max(1));
        // rubato's filter is centred on the middle of the block: with an odd block that
        // falls between two samples, half a sample off the delay it reports.
        if units % 2 == 1 && (unit_in % 2 == 1 || unit_out % 2 == 1) {
            units += 1;
        }
        let block_in = units * unit_in;
        // One FFT block per call: fixed input and output sizes, no buffering inside rubato.
        let inner: Box<dyn rubato::Resampler<f32>> = Box::new(
            Fft::<f32>::new_custom(
                from_hz,
                to_hz,
                block_in,
                1,
                1,
                WindowFunction::BlackmanHarris2,
                FixedSync::Both,
            )
            .map_err(|e| Error::Resample(e.to_string()))?,
        );
        let chunk_in = inner.input_frames_max();
        let delay = inner.output_delay();
        Ok(Self {
            scratch: vec![0.0; inner.output_frames_max()],
            inner,
            chunk_in,
            pending: Vec::with_capacity(chunk_in),
            delay,
            to_trim: delay,
            consumed: 0,
            emitted: 0,
        })
    }

    fn process(&mut self, mut input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.consumed += input.len() as u64;
        if !self.pending.is_empty() {
            let take = (self.chunk_in - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < self.chunk_in {
                return Ok(());
            }
            let chunk = std::mem::take(&mut self.pending);
            let result = self.run_chunk(&chunk, out);
            self.pending = chunk;
            self.pending.clear();
            result?;
        }
        let mut blocks = input.chunks_exact(self.chunk_in);
        for block in &mut blocks {
            self.run_chunk(block, out)?;
        }
        self.pending.extend_from_slice(blocks.remainder());
        Ok(())
    }

    fn flush(&mut self, from: SampleRate, to: SampleRate) -> Result<Vec<f32>> {
        let expected = expected_len(self.consumed, from, to);
        let mut out = Vec::new();
        let result = self.drain(expected, &mut out);
        self.reset();
        result?;
        Ok(out)
    }

    /// Pushes the pending input, then silence, until `expected` output samples are out in
    /// total (counting what [`process`](Self::process) already returned).
    fn drain(&mut self, expected: u64, out: &mut Vec<f32>) -> Result<()> {
        if !self.pending.is_empty() && self.emitted < expected {
            let chunk = std::mem::take(&mut self.pending);
            let result = self.run_chunk(&chunk, out);
            self.pending = chunk;
            result?;
        }
        // Every call of a fixed-input resampler yields output; the bound only guards against
        // a resampler that stops producing, which would otherwise loop forever.
        let mut idle_calls = 0;
        while self.emitted < expected {
            let before = out.len();
            self.run_chunk(&[], out)?;
            if out.len() == before {
                idle_calls += 1;
                if idle_calls > self.delay / self.chunk_in.max(1) + 8 {
                    return Err(Error::Resample(
                        "the resampler stopped producing output".into(),
                    ));
                }
            }
        }
        // The last call may overshoot: drop the samples past the end of the stream.
        let excess = usize::try_from(self.emitted - expected).unwrap_or(usize::MAX);
        out.truncate(out.len().saturating_sub(excess));
        Ok(())
    }

    /// One rubato call on `chunk` (shorter than `chunk_in` means zero-padded), appending
    /// the output past the start-up delay to `out`.
    fn run_chunk(&mut self, chunk: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let input = InterleavedSlice::new(chunk, 1, chunk.len())
            .map_err(|e| Error::Resample(e.to_string()))?;
        let capacity = self.scratch.len();
        let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], 1, capacity)
            .map_err(|e| Error::Resample(e.to_string()))?;
        let indexing =
            (chunk.len() < self.chunk_in).then(|| Indexing::new().partial_len(chunk.len()));
        let (_, produced) = self
            .inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| Error::Resample(e.to_string()))?;
        let skip = self.to_trim.min(produced);
        self.to_trim -= skip;
        let fresh = &self.scratch[skip..produced];
        self.emitted += fresh.len() as u64;
        out.extend_from_slice(fresh);
        Ok(())
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.pending.clear();
        self.to_trim = self.delay;
        self.consumed = 0;
        self.emitted = 0;
    }
}

/// `round(n · to / from)`, exactly.
fn expected_len(n: u64, from: SampleRate, to: SampleRate) -> u64 {
    let (from, to) = (u128::from(from.hz()), u128::from(to.hz()));
    let len = (u128::from(n) * to + from / 2) / from;
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// A capacity hint for the output of `n` input samples.
fn estimate(n: usize, from: SampleRate, to: SampleRate) -> usize {
    usize::try_from(expected_len(n as u64, from, to)).unwrap_or(usize::MAX)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [SampleRate; 4] = [
        SampleRate::HZ_8000,
        SampleRate::HZ_16000,
        SampleRate::HZ_22050,
        SampleRate::HZ_48000,
    ];

    fn sine(rate: SampleRate, hz: f64, amplitude: f64, seconds: f64) -> Pcm {
        let n = (seconds * f64::from(rate.hz())).round() as usize;
        let samples = (0..n)
            .map(|i| {
                (amplitude
                    * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate.hz())).sin())
                    as f32
            })
            .collect();
        Pcm::new(rate, samples)
    }

    fn rate(hz: u32) -> SampleRate {
        SampleRate::new(hz).unwrap() // test rates are all valid
    }

    /// The middle of a clip, away from the edges where the filter sees the clip start.
    fn middle(pcm: &Pcm) -> &[f32] {
        let edge = pcm.rate().samples_in(Duration::from_millis(100));
        &pcm.samples()[edge..pcm.len() - edge]
    }

    /// Frequency from the interpolated positions of the first and last upward zero
    /// crossings.
    fn frequency(samples: &[f32], rate: SampleRate) -> f64 {
        let crossings: Vec<f64> = samples
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
            .map(|(i, w)| i as f64 + f64::from(w[0] / (w[0] - w[1])))
            .collect();
        assert!(crossings.len() > 2, "no tone to measure");
        let periods = (crossings.len() - 1) as f64;
        periods * f64::from(rate.hz()) / (crossings[crossings.len() - 1] - crossings[0])
    }

    fn rms(samples: &[f32]) -> f64 {
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
    }

    #[test]
    fn tones_keep_frequency_and_level_for_every_pair() {
        for from in RATES {
            for to in RATES {
                let nyquist = f64::from(from.hz().min(to.hz())) / 2.0;
                for hz in [300.0, 1000.0, 3000.0]
                    .into_iter()
                    .filter(|&f| f < 0.8 * nyquist)
                {
                    let input = sine(from, hz, 0.5, 1.0);
                    let output = resample(&input, to).unwrap();
                    assert_eq!(output.rate(), to);
                    let measured = frequency(middle(&output), to);
                    assert!(
                        (measured - hz).abs() < 0.01 * hz,
                        "{from}→{to} {hz} Hz: {measured:.2} Hz"
                    );
                    let gain_db = 20.0 * (rms(middle(&output)) / rms(middle(&input))).log10();
                    assert!(gain_db.abs() < 0.5, "{from}→{to} {hz} Hz: {gain_db:.2} dB");
                }
            }
        }
    }

    #[test]
    fn the_telephone_band_stays_flat_at_8_khz() {
        for (from, to) in [
            (8000, 16000),
            (16000, 8000),
            (48000, 8000),
            (8000, 48000),
            (22050, 8000),
        ] {
            let (from, to) = (rate(from), rate(to));
            for hz in [300.0, 3400.0] {
                let input = sine(from, hz, 0.5, 0.5);
                let output = resample(&input, to).unwrap();
                let gain_db = 20.0 * (rms(middle(&output)) / rms(middle(&input))).log10();
                assert!(gain_db.abs() < 0.5, "{from}→{to} {hz} Hz: {gain_db:.2} dB");
            }
        }
    }

    #[test]
    fn output_is_time_aligned_with_input() {
        for (from, to) in [
            (8000, 16000),
            (16000, 8000),
            (22050, 8000),
            (22050, 16000),
            (16000, 22050),
            (48000, 16000),
            (8000, 48000),
            (44101, 16000),
        ] {
            let (from, to) = (rate(from), rate(to));
            let output = resample(&sine(from, 440.0, 0.5, 0.5), to).unwrap();
            let ideal = sine(to, 440.0, 0.5, 0.5);
            assert_eq!(output.len(), ideal.len());
            let worst = middle(&output)
                .iter()
                .zip(middle(&ideal))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            // A one-sample shift at 48 kHz would already be an error of about 0.03.
            assert!(worst < 0.005, "{from}→{to}: off by up to {worst}");
        }
    }

    #[test]
    fn tones_above_the_new_nyquist_are_filtered_out() {
        for (from, to, hz) in [
            (48000, 8000, 6000.0),
            (16000, 8000, 5000.0),
            (22050, 16000, 9000.0),
        ] {
            let (from, to) = (rate(from), rate(to));
            let input = sine(from, hz, 0.5, 0.5);
            let output = resample(&input, to).unwrap();
            let attenuation_db = 20.0 * (rms(middle(&output)) / rms(middle(&input))).log10();
            assert!(
                attenuation_db < -60.0,
                "{from}→{to} {hz} Hz aliased at {attenuation_db:.1} dB"
            );
        }
    }

    #[test]
    fn output_length_is_the_rounded_ratio() {
        for from in RATES {
            for to in RATES {
                for n in [0usize, 1, 2, 3, 5, 159, 160, 161, 441, 1000, 12_345] {
                    let output = resample(&Pcm::new(from, vec![0.1; n]), to).unwrap();
                    let expected =
                        (n as f64 * f64::from(to.hz()) / f64::from(from.hz())).round() as usize;
                    assert_eq!(output.len(), expected, "{from}→{to}, {n} samples");
                }
            }
        }
    }

    #[test]
    fn same_rate_is_a_copy() {
        let input = sine(SampleRate::HZ_16000, 1000.0, 0.3, 0.1);
        assert_eq!(resample(&input, SampleRate::HZ_16000).unwrap(), input);
        let mut stream = Resampler::new(SampleRate::HZ_16000, SampleRate::HZ_16000).unwrap();
        assert_eq!(stream.process(&input).unwrap(), input);
        assert!(stream.flush().unwrap().is_empty());
        assert_eq!(stream.latency(), Duration::ZERO);
    }

    #[test]
    fn a_few_samples_survive_resampling() {
        let input = Pcm::new(SampleRate::HZ_8000, vec![0.5, 0.5, 0.5]);
        let output = resample(&input, SampleRate::HZ_48000).unwrap();
        assert_eq!(output.len(), 18);
        assert!(output.peak() > 0.2, "a short burst vanished: {output:?}");
    }

    fn stream_in_frames(from: SampleRate, to: SampleRate, input: &Pcm, sizes: &[usize]) -> Pcm {
        let mut stream = Resampler::new(from, to).unwrap();
        let mut out = Pcm::new(to, Vec::new());
        let mut rest = input.samples();
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (frame, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            out.append(&stream.process(&Pcm::new(from, frame.to_vec())).unwrap())
                .unwrap();
        }
        out.append(&stream.flush().unwrap()).unwrap();
        out
    }

    #[test]
    fn streaming_in_20_ms_frames_equals_one_shot() {
        for from in RATES {
            for to in RATES {
                let input = sine(from, 700.0, 0.5, 0.73);
                let frame = from.samples_in(Duration::from_millis(20));
                let streamed = stream_in_frames(from, to, &input, &[frame]);
                let whole = resample(&input, to).unwrap();
                assert_eq!(streamed.len(), whole.len(), "{from}→{to}");
                for (i, (a, b)) in streamed.samples().iter().zip(whole.samples()).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "{from}→{to} differs at {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn streaming_in_irregular_frames_equals_one_shot() {
        for (from, to) in [(8000, 22050), (48000, 8000), (44101, 16000)] {
            let (from, to) = (rate(from), rate(to));
            let input = sine(from, 440.0, 0.5, 0.5);
            let streamed = stream_in_frames(from, to, &input, &[1, 7, 333, 0, 80, 1500]);
            let whole = resample(&input, to).unwrap();
            assert_eq!(streamed.len(), whole.len());
            let worst = streamed
                .samples()
                .iter()
                .zip(whole.samples())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{from}→{to}: {worst}");
        }
    }

    #[test]
    fn output_lags_input_by_at_most_the_latency() {
        for (from, to) in [
            (8000, 16000),
            (48000, 8000),
            (22050, 16000),
            (16000, 48000),
            (44101, 16000),
        ] {
            let (from, to) = (rate(from), rate(to));
            let mut stream = Resampler::new(from, to).unwrap();
            let latency = stream.latency();
            if from.hz() % 1000 == 0 && to.hz() % 1000 == 0 {
                assert!(
                    latency <= Duration::from_millis(30),
                    "{from}→{to}: {latency:?}"
                );
            } else if from.hz() == 22050 || to.hz() == 22050 {
                assert!(
                    latency <= Duration::from_millis(60),
                    "{from}→{to}: {latency:?}"
                );
            }
            let frame = Pcm::silence(from, Duration::from_millis(20));
            let mut fed = Duration::ZERO;
            let mut produced = 0;
            for _ in 0..100 {
                produced += stream.process(&frame).unwrap().len();
                fed += frame.duration();
                let due = to.samples_in(fed.saturating_sub(latency));
                assert!(
                    produced + 1 >= due,
                    "{from}→{to}: {produced} out after {fed:?}, {due} due"
                );
            }
        }
    }

    #[test]
    fn a_frame_at_the_wrong_rate_is_refused() {
        let mut stream = Resampler::new(SampleRate::HZ_8000, SampleRate::HZ_16000).unwrap();
        let frame = Pcm::silence(SampleRate::HZ_48000, Duration::from_millis(20));
        assert!(matches!(
            stream.process(&frame),
            Err(Error::InvalidArgument(_))
        ));
        let mut same = Resampler::new(SampleRate::HZ_8000, SampleRate::HZ_8000).unwrap();
        assert!(matches!(
            same.process(&frame),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn flush_starts_a_fresh_stream() {
        let input = sine(SampleRate::HZ_22050, 1000.0, 0.5, 0.2);
        let mut stream = Resampler::new(SampleRate::HZ_22050, SampleRate::HZ_8000).unwrap();
        let mut first = stream.process(&input).unwrap();
        first.append(&stream.flush().unwrap()).unwrap();
        let mut second = stream.process(&input).unwrap();
        second.append(&stream.flush().unwrap()).unwrap();
        assert_eq!(first, second);
        assert!(stream.flush().unwrap().is_empty());
    }

    #[test]
    fn extreme_ratios_work_without_huge_blocks() {
        let output = resample(&Pcm::new(rate(7), vec![0.5; 20]), rate(384_000)).unwrap();
        assert_eq!(output.len(), 1_097_143);
        let back = resample(&output, rate(7)).unwrap();
        assert_eq!(back.len(), 20);
    }

    #[test]
    fn arbitrary_rates_keep_a_tone() {
        for (from, to) in [(44100, 8000), (11025, 16000), (44101, 16000), (8000, 96000)] {
            let (from, to) = (rate(from), rate(to));
            let output = resample(&sine(from, 1000.0, 0.5, 0.5), to).unwrap();
            let measured = frequency(middle(&output), to);
            assert!(
                (measured - 1000.0).abs() < 10.0,
                "{from}→{to}: {measured:.1} Hz"
            );
            let gain_db = 20.0 * (rms(middle(&output)) / (0.5 / 2f64.sqrt())).log10();
            assert!(gain_db.abs() < 0.5, "{from}→{to}: {gain_db:.2} dB");
        }
    }
}
