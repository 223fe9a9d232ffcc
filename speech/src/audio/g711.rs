//! ITU-T G.711 companding: µ-law (North America, Japan) and A-law (Europe, most of the
//! world, Mongolia included), the codecs of every telephone call that reaches the hotline.
//!
//! Owns the per-sample encoders and decoders and the whole-buffer helpers on [`Law`]. Pure
//! computation: no IO, no clock, no threads, no allocation beyond the returned buffers.
//!
//! # Units and conventions
//!
//! - Linear samples are 16-bit two's complement (`i16`), the usual left-justified form of
//!   G.711's 14-bit (µ-law) and 13-bit (A-law) linear scales: one step of the standard's
//!   µ-law scale is 4 here, one step of its A-law scale is 8 (so µ-law code 0x80 decodes to
//!   +8031 × 4 = +32124, A-law code 0xAA to +4032 × 8 = +32256).
//! - Codes are the octets as sent on the wire: µ-law with all bits inverted, A-law with the
//!   even bits inverted (XOR 0x55), both with the sign bit set for positive values.
//! - Encoding follows the ITU-T G.191 reference implementation: negative samples are
//!   quantised through their one's complement, so `x` and `-x - 1` get mirror-image codes and
//!   the small negative values of µ-law encode to 0x7F ("negative zero"), which decodes to 0.
//! - Decoding returns the standard's reconstruction value (the middle of the quantisation
//!   interval), so decoding then re-encoding any code gives the same code back (except µ-law
//!   0x7F, which comes back as 0xFF: both mean zero).
//!
//! # Driving it
//!
//! ```
//! use speech::audio::{g711::Law, Pcm, SampleRate};
//! let rtp_payload = [0xFFu8; 160]; // 20 ms of µ-law silence
//! let audio = Law::Mu.decode(&rtp_payload, SampleRate::HZ_8000);
//! assert_eq!(audio.len(), 160);
//! assert_eq!(Law::Mu.encode(&audio), rtp_payload);
//! ```

use crate::audio::{Pcm, SampleRate};

/// A G.711 companding law.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    /// µ-law (PCMU, RTP payload type 0).
    Mu,
    /// A-law (PCMA, RTP payload type 8).
    A,
}

impl Law {
    /// Encodes audio to one G.711 octet per sample (samples are clipped to ±1 and rounded to
    /// 16 bits first). The sample rate is not checked: G.711 is defined at 8 kHz, and
    /// resampling is the caller's business.
    pub fn encode(self, pcm: &Pcm) -> Vec<u8> {
        let encode = self.encoder();
        pcm.samples()
            .iter()
            .map(|&s| encode(crate::audio::pcm::f32_to_i16(s)))
            .collect()
    }

    /// Decodes G.711 octets to audio at `rate` (8 kHz for anything off the telephone
    /// network).
    pub fn decode(self, bytes: &[u8], rate: SampleRate) -> Pcm {
        let table = self.table();
        Pcm::new(
            rate,
            bytes
                .iter()
                .map(|&b| f32::from(table[usize::from(b)]) / 32768.0)
                .collect(),
        )
    }

    /// Encodes then decodes: the audio as the far end of a G.711 call hears it (quantisation
    /// noise included, no band limiting). The rate is kept.
    pub fn round_trip(self, pcm: &Pcm) -> Pcm {
        self.decode(&self.encode(pcm), pcm.rate())
    }

    /// Encodes one 16-bit linear sample.
    pub fn encode_sample(self, sample: i16) -> u8 {
        (self.encoder())(sample)
    }

    /// Decodes one code to a 16-bit linear sample.
    pub fn decode_sample(self, code: u8) -> i16 {
        self.table()[usize::from(code)]
    }

    fn encoder(self) -> fn(i16) -> u8 {
        match self {
            Law::Mu => ulaw_encode,
            Law::A => alaw_encode,
        }
    }

    fn table(self) -> &'static [i16; 256] {
        match self {
            Law::Mu => &ULAW_DECODE,
            Law::A => &ALAW_DECODE,
        }
    }
}

/// Encodes a 16-bit linear sample to a µ-law code (G.711 §3, G.191 reference quantiser).
/// Magnitudes beyond the standard's last decision value (8159 × 4) clip to the largest code.
pub fn ulaw_encode(sample: i16) -> u8 {
    // Bias between µ-law's and A-law's thresholds, on the 14-bit scale: adding it makes
    // every segment boundary a power of two.
    const BIAS: i32 = 33;
    const CLIP: i32 = 0x1FFF;
    let x = i32::from(sample);
    let positive = x >= 0;
    // 14-bit magnitude; the one's complement keeps negative and positive codes symmetric.
    let magnitude = if positive { x >> 2 } else { (!x) >> 2 };
    let biased = (magnitude + BIAS).min(CLIP);
    // Segment 0 covers biased values 33..=63, segment s covers 2^(s+5)..2^(s+6): the
    // segment is the bit length of `biased >> 6`, which is below 128, so at most 7.
    let segment = 32 - (biased >> 6).leading_zeros() as i32;
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    let code = ((segment << 4) | mantissa) as u8;
    // Transmitted with every bit inverted: sign bit set for positive samples.
    if positive {
        !code
    } else {
        !code & 0x7F
    }
}

/// Decodes a µ-law code to a 16-bit linear sample (the interval's reconstruction value).
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Encodes a 16-bit linear sample to an A-law code (G.711 §2, G.191 reference quantiser).
pub fn alaw_encode(sample: i16) -> u8 {
    let x = i32::from(sample);
    let positive = x >= 0;
    // 12-bit magnitude (the sign is the 13th bit of A-law's linear scale).
    let magnitude = if positive { x >> 4 } else { (!x) >> 4 };
    let code = if magnitude < 16 {
        // Segments 0 and 1 share the smallest step; segment 0 has no leading one.
        magnitude
    } else {
        // Position of the leading one: 4 for 16..=31 (segment 1) up to 10 (segment 7).
        let top = 31 - (magnitude as u32).leading_zeros() as i32;
        let segment = top - 3;
        let mantissa = (magnitude >> (top - 4)) & 0x0F;
        (segment << 4) | mantissa
    };
    let signed = if positive { code | 0x80 } else { code };
    // Transmitted with the even bits inverted.
    (signed as u8) ^ 0x55
}

/// Decodes an A-law code to a 16-bit linear sample (the interval's reconstruction value).
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// µ-law code → linear, built from the G.191 expansion rule.
static ULAW_DECODE: [i16; 256] = ulaw_table();
/// A-law code → linear, built from the G.191 expansion rule.
static ALAW_DECODE: [i16; 256] = alaw_table();

const fn ulaw_expand(code: u8) -> i16 {
    let inverted = !code;
    let negative = inverted & 0x80 != 0;
    let exponent = ((inverted >> 4) & 0x07) as i32;
    let mantissa = (inverted & 0x0F) as i32;
    // On the 16-bit scale: the implicit leading one, the mantissa steps, half a step, minus
    // the bias (33 on the 14-bit scale).
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    (if negative { -magnitude } else { magnitude }) as i16
}

const fn alaw_expand(code: u8) -> i16 {
    let natural = code ^ 0x55;
    let positive = natural & 0x80 != 0;
    let exponent = ((natural >> 4) & 0x07) as i32;
    let mut mantissa = (natural & 0x0F) as i32;
    if exponent > 0 {
        mantissa += 16;
    }
    // Left-justify to 16 bits and add half a quantisation step.
    let mut magnitude = (mantissa << 4) + 8;
    if exponent > 1 {
        magnitude <<= exponent - 1;
    }
    (if positive { magnitude } else { -magnitude }) as i16
}

const fn ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_expand(i as u8);
        i += 1;
    }
    table
}

const fn alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_expand(i as u8);
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reconstruction values of G.711 Table 2a (µ-law, 14-bit scale) per segment: the first
    // value and the step between the 16 values of the segment.
    const ULAW_SEGMENTS: [(i32, i32); 8] = [
        (0, 2),
        (33, 4),
        (99, 8),
        (231, 16),
        (495, 32),
        (1023, 64),
        (2079, 128),
        (4191, 256),
    ];
    // Reconstruction values of G.711 Table 1a (A-law, 13-bit scale).
    const ALAW_SEGMENTS: [(i32, i32); 8] = [
        (1, 2),
        (33, 2),
        (66, 4),
        (132, 8),
        (264, 16),
        (528, 32),
        (1056, 64),
        (2112, 128),
    ];

    /// The standard's value for a µ-law code, on the 16-bit scale.
    fn ulaw_reference(code: u8) -> i32 {
        let natural = !code;
        let (base, step) = ULAW_SEGMENTS[usize::from((natural >> 4) & 7)];
        let magnitude = 4 * (base + step * i32::from(natural & 0x0F));
        if natural & 0x80 != 0 {
            -magnitude
        } else {
            magnitude
        }
    }

    /// The standard's value for an A-law code, on the 16-bit scale.
    fn alaw_reference(code: u8) -> i32 {
        let natural = code ^ 0x55;
        let (base, step) = ALAW_SEGMENTS[usize::from((natural >> 4) & 7)];
        let magnitude = 8 * (base + step * i32::from(natural & 0x0F));
        if natural & 0x80 != 0 {
            magnitude
        } else {
            -magnitude
        }
    }

    #[test]
    fn ulaw_decodes_the_standard_extremes_and_zeros() {
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0xEF), 4 * 33);
    }

    #[test]
    fn alaw_decodes_the_standard_extremes_and_smallest_steps() {
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_decode(0xD4), 24);
    }

    #[test]
    fn every_code_decodes_to_the_tabulated_reconstruction_value() {
        for code in 0..=255u8 {
            assert_eq!(
                i32::from(ulaw_decode(code)),
                ulaw_reference(code),
                "µ-law {code:#04x}"
            );
            assert_eq!(
                i32::from(alaw_decode(code)),
                alaw_reference(code),
                "A-law {code:#04x}"
            );
        }
    }

    #[test]
    fn reencoding_a_decoded_code_gives_the_code_back() {
        for code in 0..=255u8 {
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                ulaw_encode(ulaw_decode(code)),
                expected,
                "µ-law {code:#04x}"
            );
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn ulaw_segment_boundaries_follow_the_decision_values() {
        // G.711 Table 2a decision values where a new segment starts (14-bit scale). The value
        // itself belongs to the upper segment.
        let boundaries = [31, 95, 223, 479, 991, 2015, 4063];
        for (segment, &b) in boundaries.iter().enumerate() {
            let (lower_base, lower_step) = ULAW_SEGMENTS[segment];
            let (upper_base, _) = ULAW_SEGMENTS[segment + 1];
            let below = i16::try_from(4 * b - 1).unwrap(); // the table tops out at 4063 × 4
            let at = i16::try_from(4 * b).unwrap();
            assert_eq!(
                i32::from(ulaw_decode(ulaw_encode(below))),
                4 * (lower_base + 15 * lower_step)
            );
            assert_eq!(i32::from(ulaw_decode(ulaw_encode(at))), 4 * upper_base);
            assert_eq!(
                i32::from(ulaw_decode(ulaw_encode(-below - 1))),
                -4 * (lower_base + 15 * lower_step)
            );
            assert_eq!(
                i32::from(ulaw_decode(ulaw_encode(-at - 1))),
                -4 * upper_base
            );
        }
        // Beyond the last decision value (8159) everything clips to the top code.
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
    }

    #[test]
    fn alaw_segment_boundaries_follow_the_decision_values() {
        // G.711 Table 1a decision values where a new segment starts (13-bit scale).
        let boundaries = [32, 64, 128, 256, 512, 1024, 2048];
        for (segment, &b) in boundaries.iter().enumerate() {
            let (lower_base, lower_step) = ALAW_SEGMENTS[segment];
            let (upper_base, _) = ALAW_SEGMENTS[segment + 1];
            let below = i16::try_from(8 * b - 1).unwrap(); // at most 16383
            let at = i16::try_from(8 * b).unwrap();
            assert_eq!(
                i32::from(alaw_decode(alaw_encode(below))),
                8 * (lower_base + 15 * lower_step)
            );
            assert_eq!(i32::from(alaw_decode(alaw_encode(at))), 8 * upper_base);
            assert_eq!(
                i32::from(alaw_decode(alaw_encode(-below - 1))),
                -8 * (lower_base + 15 * lower_step)
            );
            assert_eq!(
                i32::from(alaw_decode(alaw_encode(-at - 1))),
                -8 * upper_base
            );
        }
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn alaw_codes_are_even_bit_inverted() {
        // Zero and the smallest positive values: natural codes 0x80, 0x81 on the wire as
        // 0xD5, 0xD4; the negative mirror images 0x00, 0x01 as 0x55, 0x54.
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(16), 0xD4);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(-17), 0x54);
        // Undoing the inversion gives codes that grow with the magnitude.
        let mut last = 0u8;
        for x in (0..=i16::MAX).step_by(7) {
            let natural = alaw_encode(x) ^ 0x55;
            assert!(natural & 0x80 != 0, "positive sample {x} lost its sign bit");
            assert!(natural >= last, "A-law code not monotonic at {x}");
            last = natural;
        }
    }

    #[test]
    fn encoding_is_symmetric_under_ones_complement() {
        for x in (0..=i16::MAX).step_by(3) {
            assert_eq!(ulaw_encode(x) & 0x7F, ulaw_encode(!x) & 0x7F, "µ-law {x}");
            assert_eq!(alaw_encode(x) ^ 0x80, alaw_encode(!x), "A-law {x}");
        }
        assert_eq!(ulaw_encode(-1), 0x7F);
    }

    #[test]
    fn quantisation_error_stays_within_half_a_step_on_a_full_scale_sweep() {
        for x in i16::MIN..=i16::MAX {
            let xi = i32::from(x);
            // µ-law: half a step of the segment the sample falls in, up to the last decision
            // value (8159 on the 14-bit scale); beyond it, the error is the clipping distance.
            let mu = i32::from(ulaw_decode(ulaw_encode(x)));
            let magnitude = if xi >= 0 { xi } else { -xi - 1 };
            if magnitude < 4 * 8159 {
                let segment = ULAW_SEGMENTS
                    .iter()
                    .rposition(|&(base, step)| magnitude >= 4 * (base - step / 2))
                    .unwrap_or(0);
                let half_step = 4 * ULAW_SEGMENTS[segment].1 / 2;
                assert!((mu - xi).abs() <= half_step, "µ-law {x} → {mu}");
            } else {
                assert_eq!(mu.abs(), 32124, "µ-law {x} must clip");
            }
            // A-law covers the whole 16-bit range.
            let a = i32::from(alaw_decode(alaw_encode(x)));
            let segment = ALAW_SEGMENTS
                .iter()
                .rposition(|&(base, step)| magnitude >= 8 * (base - step / 2))
                .unwrap_or(0);
            let half_step = 8 * ALAW_SEGMENTS[segment].1 / 2;
            assert!((a - xi).abs() <= half_step, "A-law {x} → {a}");
        }
    }

    #[test]
    fn round_trip_keeps_a_speech_level_tone_within_companding_noise() {
        let rate = SampleRate::HZ_8000;
        let tone: Vec<f32> = (0..8000)
            .map(|n| 0.25 * (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / 8000.0).sin())
            .collect();
        let pcm = Pcm::new(rate, tone);
        for law in [Law::Mu, Law::A] {
            let heard = law.round_trip(&pcm);
            assert_eq!(heard.rate(), rate);
            assert_eq!(heard.len(), pcm.len());
            let noise: f64 = pcm
                .samples()
                .iter()
                .zip(heard.samples())
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum();
            let signal: f64 = pcm.samples().iter().map(|&a| f64::from(a).powi(2)).sum();
            let snr_db = 10.0 * (signal / noise).log10();
            // G.711's signal-to-quantisation-noise ratio is about 38 dB over most of its range.
            assert!(snr_db > 33.0, "{law:?}: SNR {snr_db:.1} dB");
        }
    }

    #[test]
    fn buffers_encode_and_decode_sample_by_sample() {
        let pcm = Pcm::from_i16(SampleRate::HZ_8000, &[0, 1000, -1000, 32767, -32768]);
        let mu = Law::Mu.encode(&pcm);
        assert_eq!(
            mu,
            vec![0xFF, ulaw_encode(1000), ulaw_encode(-1000), 0x80, 0x00]
        );
        let a = Law::A.encode(&pcm);
        assert_eq!(
            a,
            vec![0xD5, alaw_encode(1000), alaw_encode(-1000), 0xAA, 0x2A]
        );
        let decoded = Law::A.decode(&a, SampleRate::HZ_8000);
        assert_eq!(
            decoded.to_i16(),
            a.iter().map(|&c| alaw_decode(c)).collect::<Vec<_>>()
        );
        assert_eq!(Law::Mu.encode_sample(1000), ulaw_encode(1000));
        assert_eq!(Law::A.decode_sample(0xAA), 32256);
    }
}
