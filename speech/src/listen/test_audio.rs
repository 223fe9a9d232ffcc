//! Test signals shared by the listening tests: a real spoken sentence and synthetic noise.

use std::time::Duration;

use crate::audio::{Pcm, SampleRate};

const RATE: SampleRate = SampleRate::HZ_16000;

/// Flite's "rms" voice saying "I would like to file a complaint, please." (16 kHz mono,
/// 2.9 s, in `testdata/listen/`).
pub(crate) fn flite_speech() -> Pcm {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/listen/complaint_16k.wav"
    );
    // Test fixture: a missing or unreadable vector is a broken checkout, not a test result.
    let reader = hound::WavReader::open(path).expect("test vector present");
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate), (1, 16_000));
    let samples: Vec<i16> = reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("test vector readable");
    Pcm::from_i16(RATE, &samples)
}

/// Deterministic white noise (xorshift32), uniform, with an RMS level of `dbfs`.
pub(crate) fn white_noise(duration: Duration, dbfs: f32, seed: u32) -> Pcm {
    let mut x = seed.max(1);
    // Uniform noise on [-1, 1) has an RMS of 1/sqrt(3).
    let gain = 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
    let samples = (0..RATE.samples_in(duration))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            gain * ((x as f32 / u32::MAX as f32) * 2.0 - 1.0)
        })
        .collect();
    Pcm::new(RATE, samples)
}

/// A sine at `hz` with an RMS level of `dbfs`.
pub(crate) fn sine(duration: Duration, hz: f32, dbfs: f32) -> Pcm {
    // A sine's RMS is its peak over sqrt(2).
    let peak = 10f32.powf(dbfs / 20.0) * 2f32.sqrt();
    let rate = RATE.hz() as f32;
    let samples = (0..RATE.samples_in(duration))
        .map(|i| peak * (2.0 * std::f32::consts::PI * hz * i as f32 / rate).sin())
        .collect();
    Pcm::new(RATE, samples)
}
