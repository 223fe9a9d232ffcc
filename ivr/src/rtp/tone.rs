//! In-band DTMF: a Goertzel detector for keys sent as audio by old trunks, and the tone
//! generator (for tests, and to key digits in-band toward such trunks).
//!
//! **Detector** ([`ToneDetector`]). Input is 8 kHz `i16` PCM in any chunk size (decoded
//! G.711). Every 10 ms it analyses the last 20 ms (160 samples) with the Goertzel algorithm at
//! the eight DTMF frequencies (ITU-T Q.23) and at twice the two strongest. A window holds a
//! key when:
//!
//! - the strongest row and column tones each reach about −40 dBFS (amplitude 400);
//! - twist: the two differ by at most ±8 dB;
//! - each is at least 6 dB above the other tones of its group;
//! - SNR: the two tones carry at least 60 % of the window's energy (speech and noise spread
//!   theirs);
//! - their second harmonics are at least 10 dB below them (voiced speech has strong
//!   harmonics, a DTMF tone has none).
//!
//! A key is reported once it holds for three consecutive windows (≥ 40 ms of tone); the next
//! key (the same or another) only after three windows without a key (≥ 40 ms of pause). A
//! one-window dropout inside a tone does not split it. Frequencies must be within about 1 %
//! (a 20 ms window resolves 50 Hz): digitally generated tones are exact, and the ±1.5 % of
//! Q.24 is for analogue senders we do not expect. G.711 quantisation noise (~38 dB SNR) is
//! far below the thresholds.
//!
//! **Generator**: [`tone`] and [`digits`] synthesize the two sines of a key.
//!
//! Pure computation: no clock, no IO.
//!
//! ```
//! use std::time::Duration;
//! use ivr::rtp::{dtmf::DtmfKey, tone::{digits, ToneDetector}};
//! let audio = digits("42#", Duration::from_millis(60), Duration::from_millis(60), 6000);
//! let mut det = ToneDetector::new();
//! det.handle_samples(&audio);
//! let keys: String = std::iter::from_fn(|| det.poll_key()).map(DtmfKey::as_char).collect();
//! assert_eq!(keys, "42#");
//! ```

use std::collections::VecDeque;
use std::f32::consts::PI;
use std::time::Duration;

use super::dtmf::DtmfKey;
use super::{samples_in, CLOCK_RATE};

/// Row (low group) frequencies, Hz.
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) frequencies, Hz.
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keypad, by row then column.
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

const WINDOW: usize = 160;
const HOP: usize = 80;
/// Windows a key must hold for to be reported.
const ON_WINDOWS: u32 = 3;
/// Windows without a key before the next key can be reported.
const OFF_WINDOWS: u32 = 3;
/// Smallest amplitude of each tone.
const MIN_AMPLITUDE: f32 = 400.0;
/// ±8 dB of twist, as a power ratio.
const MAX_TWIST: f32 = 6.31;
/// The strongest tone of a group over any other of the group: 6 dB.
const GROUP_MARGIN: f32 = 4.0;
/// Share of the window's energy in the two tones.
const MIN_SHARE: f32 = 0.6;
/// Second harmonic at least 10 dB down.
const MAX_HARMONIC: f32 = 0.1;
/// Keys reported and not yet polled.
const MAX_PENDING: usize = 32;

/// The in-band DTMF detector (see the module docs).
#[derive(Debug, Clone)]
pub struct ToneDetector {
    /// The last [`WINDOW`] samples at most.
    buf: VecDeque<f32>,
    /// Samples since the last analysis.
    since: usize,
    /// The key seen in consecutive windows, and how many.
    candidate: Option<(DtmfKey, u32)>,
    /// Whether a key has been reported and no pause has followed yet.
    holding: bool,
    /// Consecutive windows without a key.
    quiet: u32,
    keys: VecDeque<DtmfKey>,
}

impl Default for ToneDetector {
    fn default() -> Self {
        ToneDetector {
            buf: VecDeque::with_capacity(WINDOW),
            since: 0,
            candidate: None,
            holding: false,
            quiet: OFF_WINDOWS,
            keys: VecDeque::new(),
        }
    }
}

impl ToneDetector {
    /// A detector that has heard nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds audio (8 kHz, any length).
    pub fn handle_samples(&mut self, samples: &[i16]) {
        for &s in samples {
            if self.buf.len() == WINDOW {
                self.buf.pop_front();
            }
            self.buf.push_back(f32::from(s));
            self.since += 1;
            if self.since >= HOP && self.buf.len() == WINDOW {
                self.since = 0;
                let key = self.analyse();
                self.step(key);
            }
        }
    }

    /// The next key detected.
    pub fn poll_key(&mut self) -> Option<DtmfKey> {
        self.keys.pop_front()
    }

    fn step(&mut self, key: Option<DtmfKey>) {
        let Some(key) = key else {
            self.candidate = None;
            self.quiet = self.quiet.saturating_add(1);
            if self.quiet >= OFF_WINDOWS {
                self.holding = false;
            }
            return;
        };
        self.quiet = 0;
        let count = match self.candidate {
            Some((k, n)) if k == key => n + 1,
            _ => 1,
        };
        self.candidate = Some((key, count));
        if count >= ON_WINDOWS && !self.holding {
            self.holding = true;
            if self.keys.len() < MAX_PENDING {
                self.keys.push_back(key);
            }
        }
    }

    /// The key in the current window, if the checks pass.
    fn analyse(&self) -> Option<DtmfKey> {
        let (a, b) = self.buf.as_slices();
        let energy: f32 = a.iter().chain(b).map(|x| x * x).sum();
        let power = |f: f32| goertzel(a, b, f);
        let rows = ROWS.map(power);
        let cols = COLS.map(power);
        let (r, row) = strongest(&rows);
        let (c, col) = strongest(&cols);
        let min = MIN_AMPLITUDE * MIN_AMPLITUDE * WINDOW as f32 / 2.0;
        if row < min || col < min {
            return None;
        }
        if row > col * MAX_TWIST || col > row * MAX_TWIST {
            return None;
        }
        let dominant = |group: &[f32; 4], i: usize| {
            group
                .iter()
                .enumerate()
                .all(|(j, &p)| j == i || p * GROUP_MARGIN <= group[i])
        };
        if !dominant(&rows, r) || !dominant(&cols, c) {
            return None;
        }
        if row + col < MIN_SHARE * energy {
            return None;
        }
        if power(2.0 * ROWS[r]) > MAX_HARMONIC * row || power(2.0 * COLS[c]) > MAX_HARMONIC * col {
            return None;
        }
        DtmfKey::from_char(KEYPAD[r][c])
    }
}

/// The energy of the component at `f` Hz in the window `a` ++ `b`, scaled so that a sine of
/// amplitude `A` gives about `A² × N / 2` (its share of the window's sum of squares).
fn goertzel(a: &[f32], b: &[f32], f: f32) -> f32 {
    let coeff = 2.0 * (2.0 * PI * f / CLOCK_RATE as f32).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in a.iter().chain(b) {
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let n = (a.len() + b.len()) as f32;
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2.0 / n
}

fn strongest(group: &[f32; 4]) -> (usize, f32) {
    group.iter().copied().enumerate().fold(
        (0, f32::MIN),
        |best, (i, p)| if p > best.1 { (i, p) } else { best },
    )
}

/// `samples` samples of `key`'s two tones, each of amplitude `amplitude` (the sum peaks at
/// twice that; 6000 is about −11 dBm0 per tone in µ-law terms).
pub fn tone(key: DtmfKey, samples: usize, amplitude: i16) -> Vec<i16> {
    let c = key.as_char();
    let (r, col) = KEYPAD
        .iter()
        .enumerate()
        .find_map(|(r, row)| row.iter().position(|&k| k == c).map(|col| (r, col)))
        .unwrap_or((3, 1)); // every key is on the keypad; '0' if not
    let (fr, fc) = (ROWS[r], COLS[col]);
    let amp = f32::from(amplitude);
    (0..samples)
        .map(|n| {
            let t = n as f32 / CLOCK_RATE as f32;
            let v = amp * ((2.0 * PI * fr * t).sin() + (2.0 * PI * fc * t).sin());
            v.clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
        })
        .collect()
}

/// A string of keys (`0-9 * # A-D`; other characters are skipped) as tones of `on` each,
/// each followed by `off` of silence.
pub fn digits(keys: &str, on: Duration, off: Duration, amplitude: i16) -> Vec<i16> {
    let (on, off) = (samples_in(on) as usize, samples_in(off) as usize);
    let mut out = Vec::new();
    for key in keys.chars().filter_map(DtmfKey::from_char) {
        out.extend(tone(key, on, amplitude));
        out.resize(out.len() + off, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use speech::audio::g711::Law;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn detect(audio: &[i16]) -> String {
        let mut det = ToneDetector::new();
        // In 20 ms frames, as the media task feeds it.
        for frame in audio.chunks(160) {
            det.handle_samples(frame);
        }
        std::iter::from_fn(|| det.poll_key())
            .map(DtmfKey::as_char)
            .collect()
    }

    fn through(law: Law, audio: &[i16]) -> Vec<i16> {
        audio
            .iter()
            .map(|&s| law.decode_sample(law.encode_sample(s)))
            .collect()
    }

    fn white_noise(samples: usize, amplitude: i32, seed: u64) -> Vec<i16> {
        let mut x = seed;
        (0..samples)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x % (2 * amplitude as u64 + 1)) as i32 - amplitude) as i16
            })
            .collect()
    }

    const ALL: &str = "0123456789*#ABCD";

    #[test]
    fn every_key_survives_g711_in_both_laws() {
        let audio = digits(ALL, ms(60), ms(60), 6000);
        for law in [Law::Mu, Law::A] {
            assert_eq!(detect(&through(law, &audio)), ALL, "{law:?}");
        }
    }

    #[test]
    fn fast_dialling_at_50_ms_on_50_ms_off_is_detected() {
        let audio = digits("5551212#", ms(50), ms(50), 4000);
        assert_eq!(detect(&through(Law::Mu, &audio)), "5551212#");
    }

    #[test]
    fn quiet_tones_in_noise_are_detected() {
        let mut audio = digits("739", ms(80), ms(80), 1200);
        let noise = white_noise(audio.len(), 150, 9);
        for (s, n) in audio.iter_mut().zip(noise) {
            *s = s.saturating_add(n);
        }
        assert_eq!(detect(&through(Law::A, &audio)), "739");
    }

    #[test]
    fn tones_shorter_than_40_ms_are_ignored() {
        assert_eq!(detect(&digits("1", ms(20), ms(100), 6000)), "");
        assert_eq!(detect(&digits("1", ms(30), ms(100), 6000)), "");
    }

    #[test]
    fn a_key_held_long_is_one_key_and_a_short_dropout_does_not_split_it() {
        assert_eq!(detect(&digits("8", ms(2000), ms(100), 6000)), "8");
        let mut audio = tone(DtmfKey::Digit(8), 800, 6000);
        audio.extend([0; 80]); // 10 ms dropout
        audio.extend(tone(DtmfKey::Digit(8), 800, 6000));
        assert_eq!(detect(&audio), "8");
        // A real pause (60 ms) makes it two presses.
        assert_eq!(detect(&digits("88", ms(100), ms(60), 6000)), "88");
    }

    #[test]
    fn excessive_twist_is_rejected() {
        // Key 5: 770 Hz + 1336 Hz.
        let mix = |row_amp: f32, col_amp: f32| -> Vec<i16> {
            (0..1600)
                .map(|n| {
                    let t = n as f32 / 8000.0;
                    (row_amp * (2.0 * PI * 770.0 * t).sin()
                        + col_amp * (2.0 * PI * 1336.0 * t).sin()) as i16
                })
                .collect()
        };
        assert_eq!(
            detect(&mix(6000.0, 6000.0 / 2.0)),
            "5",
            "6 dB twist is fine"
        );
        assert_eq!(detect(&mix(6000.0, 6000.0 / 3.5)), "", "11 dB is too much");
        assert_eq!(detect(&mix(6000.0 / 3.5, 6000.0)), "", "reverse twist too");
    }

    #[test]
    fn single_tones_and_noise_give_no_keys() {
        let single: Vec<i16> = (0..8000)
            .map(|n| (8000.0 * (2.0 * PI * 941.0 * n as f32 / 8000.0).sin()) as i16)
            .collect();
        assert_eq!(detect(&single), "");
        assert_eq!(detect(&through(Law::Mu, &white_noise(80_000, 8000, 3))), "");
    }

    #[test]
    fn synthesized_speech_gives_no_false_keys_and_keys_after_it_are_heard() {
        use speech::tts::{FliteSynthesizer, SpeakOptions, SpeechRate, Synthesizer};
        use speech::SampleRate;
        let flite = FliteSynthesizer::new();
        let opts = SpeakOptions {
            voice: None,
            rate: SpeechRate::Normal,
            output_rate: SampleRate::HZ_8000,
        };
        let speech = flite
            .speak(
                "Thank you for calling the citizens' hotline. Please say or key the number \
                 of your complaint, one digit at a time, then press the pound key.",
                &opts,
            )
            .expect("flite renders English");
        let mut audio = through(Law::Mu, &speech.to_i16());
        assert!(audio.len() > 8000 * 4, "several seconds of speech");
        assert_eq!(detect(&audio), "", "speech alone");
        audio.extend(through(Law::Mu, &digits("2024", ms(70), ms(70), 5000)));
        assert_eq!(detect(&audio), "2024");
    }
}
