//! The mel filterbank whisper.cpp reads from a model file.
//!
//! Whisper's front end uses librosa's mel filters (`librosa.filters.mel(sr=16000, n_fft=400,
//! n_mels=80)`: Slaney's mel scale, `htk=False`, `norm="slaney"`). whisper.cpp does not compute
//! them; the converter writes them into the ggml file. This module computes the same matrix in
//! `f64` and rounds to `f32` at the end. Pure computation: no IO.
//!
//! Units: frequencies in Hz, `n_fft` in samples (the FFT bins are `n_fft / 2 + 1`).

/// Whisper's audio sample rate in Hz.
pub const WHISPER_SAMPLE_RATE: u32 = 16_000;
/// Whisper's FFT size in samples (25 ms at 16 kHz); 201 frequency bins.
pub const WHISPER_N_FFT: usize = 400;

/// Slaney-normalised mel filters, row-major `n_mels × (n_fft / 2 + 1)`, spanning 0 Hz to the
/// Nyquist frequency, as librosa computes them with its defaults (`htk=False`,
/// `norm="slaney"`).
pub fn slaney_filterbank(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;
    let nyquist = f64::from(sample_rate) / 2.0;
    // Centre frequencies of the bins: linspace(0, sr/2, n_bins).
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|k| {
            if n_bins == 1 {
                0.0
            } else {
                nyquist * k as f64 / (n_bins - 1) as f64
            }
        })
        .collect();
    // n_mels + 2 points equally spaced on the mel scale between 0 Hz and Nyquist.
    let mel_max = hz_to_mel(nyquist);
    let mel_points: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_max * i as f64 / (n_mels + 1) as f64))
        .collect();

    let mut weights = Vec::with_capacity(n_mels * n_bins);
    for m in 0..n_mels {
        let (left, centre, right) = (mel_points[m], mel_points[m + 1], mel_points[m + 2]);
        // Slaney normalisation: each triangle has unit area in Hz.
        let enorm = 2.0 / (right - left);
        for &f in &fft_freqs {
            let lower = (f - left) / (centre - left);
            let upper = (right - f) / (right - centre);
            let w = lower.min(upper).max(0.0);
            weights.push((w * enorm) as f32);
        }
    }
    weights
}

/// Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

/// Inverse of [`hz_to_mel`].
fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(w: &[f32], row: usize, col: usize) -> f32 {
        w[row * (WHISPER_N_FFT / 2 + 1) + col]
    }

    #[test]
    fn whisper_filterbank_has_80_by_201_entries() {
        let w = slaney_filterbank(WHISPER_SAMPLE_RATE, WHISPER_N_FFT, 80);
        assert_eq!(w.len(), 80 * 201);
    }

    #[test]
    fn whisper_filterbank_matches_librosa_values() {
        // Reference values from librosa 0.11 `filters.mel(sr=16000, n_fft=400, n_mels=80)`.
        let w = slaney_filterbank(WHISPER_SAMPLE_RATE, WHISPER_N_FFT, 80);
        let reference: &[(usize, usize, f64)] = &REFERENCE_80;
        for &(row, col, want) in reference {
            let got = f64::from(at(&w, row, col));
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "filter {row} bin {col}: got {got}, librosa {want}"
            );
        }
    }

    #[test]
    fn each_filter_is_a_triangle_with_a_single_peak() {
        let w = slaney_filterbank(WHISPER_SAMPLE_RATE, WHISPER_N_FFT, 80);
        for row in 0..80 {
            let r = &w[row * 201..(row + 1) * 201];
            assert!(r.iter().all(|&x| x >= 0.0));
            let nonzero: Vec<usize> = (0..201).filter(|&k| r[k] > 0.0).collect();
            assert!(!nonzero.is_empty(), "filter {row} is empty");
            // Non-zero bins are contiguous.
            assert_eq!(
                nonzero.last().copied().unwrap_or(0) - nonzero[0] + 1,
                nonzero.len()
            );
        }
    }

    #[test]
    fn mel_scale_round_trips() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    /// (filter, bin, value) sampled from librosa's output: each sampled filter's first,
    /// peak and last non-zero bin.
    const REFERENCE_80: [(usize, usize, f64); 28] = [
        (0, 1, 2.486259490e-02),
        (1, 1, 1.990821911e-03),
        (1, 2, 2.287177183e-02),
        (2, 2, 3.981643822e-03),
        (2, 3, 2.088095061e-02),
        (5, 5, 9.954108857e-03),
        (5, 6, 1.490848418e-02),
        (10, 10, 1.990821771e-02),
        (10, 11, 4.954374861e-03),
        (20, 19, 1.097219996e-02),
        (20, 20, 1.389039401e-02),
        (30, 29, 1.585603692e-02),
        (30, 30, 8.962770924e-03),
        (40, 42, 5.411104765e-03),
        (40, 43, 1.473556645e-02),
        (40, 44, 6.518189795e-03),
        (50, 61, 8.110002382e-04),
        (50, 63, 9.462301619e-03),
        (50, 65, 2.778399503e-03),
        (60, 90, 1.434534322e-03),
        (60, 93, 6.591092795e-03),
        (60, 96, 7.978491485e-04),
        (70, 132, 8.483415004e-04),
        (70, 136, 4.571974277e-03),
        (70, 141, 4.963868414e-04),
        (79, 186, 3.667416750e-04),
        (79, 192, 3.164711874e-03),
        (79, 199, 4.487590049e-04),
    ];

    #[test]
    fn bins_outside_a_filter_are_zero() {
        let w = slaney_filterbank(WHISPER_SAMPLE_RATE, WHISPER_N_FFT, 80);
        assert_eq!(at(&w, 0, 0), 0.0);
        assert_eq!(at(&w, 0, 2), 0.0);
        assert_eq!(at(&w, 40, 41), 0.0);
        assert_eq!(at(&w, 79, 200), 0.0);
    }
}
