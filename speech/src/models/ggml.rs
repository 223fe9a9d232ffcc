//! Writer for whisper.cpp's "legacy" ggml model file, and ggml's element encodings.
//!
//! Layout (little-endian): `u32` magic `ggml` · eleven `i32` hparams · mel filterbank
//! (`i32` n_mel, `i32` n_fft, n_mel × n_fft `f32`) · vocabulary (`i32` count, then per token
//! `i32` length + bytes) · tensors until end of file. A tensor is `i32` n_dims, `i32` name
//! length, `i32` type, `i32` × n_dims dimensions innermost first, the name, the data.
//!
//! [`GgmlWriter`] only encodes; it writes to any [`Write`] and hashes what it writes (SHA-256)
//! so the caller can record a checksum without reading the file back. The element encoders
//! ([`encode_f16`], [`quantize_q8_0`]) follow ggml's reference code bit for bit.

use std::io::Write;

use half::f16;
use sha2::{Digest, Sha256};

/// `ggml` as a little-endian `u32`.
pub const GGML_MAGIC: u32 = 0x6767_6d6c;
/// Elements per Q8_0 block.
pub const Q8_0_BLOCK: usize = 32;
/// Bytes per Q8_0 block: an `f16` scale and 32 `i8`.
pub const Q8_0_BLOCK_BYTES: usize = 2 + Q8_0_BLOCK;

/// The type of one tensor in the file, with ggml's type ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorType {
    /// `GGML_TYPE_F32` (0).
    F32,
    /// `GGML_TYPE_F16` (1).
    F16,
    /// `GGML_TYPE_Q8_0` (8): blocks of 32 values sharing an `f16` scale.
    Q8_0,
}

impl TensorType {
    /// ggml's `ggml_type` id.
    pub fn id(self) -> i32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q8_0 => 8,
        }
    }

    /// Bytes taken by `n` elements (`n` a multiple of 32 for Q8_0).
    pub fn bytes_for(self, n: usize) -> usize {
        match self {
            Self::F32 => n * 4,
            Self::F16 => n * 2,
            Self::Q8_0 => n / Q8_0_BLOCK * Q8_0_BLOCK_BYTES,
        }
    }
}

/// whisper.cpp's hyperparameters, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Hparams {
    /// Vocabulary size (rows of the token embedding).
    pub n_vocab: i32,
    /// Encoder positions (1500 for 30 s).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions (448).
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands of the input (80, or 128 for large-v3).
    pub n_mels: i32,
}

/// Writes a ggml model file field by field, counting and hashing the bytes.
#[derive(Debug)]
pub struct GgmlWriter<W: Write> {
    out: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> GgmlWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Writes raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.out.write_all(b)?;
        self.hasher.update(b);
        self.written += b.len() as u64;
        Ok(())
    }

    fn i32(&mut self, v: i32) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Magic and hyperparameters; `ftype` is whisper.cpp's file type (see
    /// [`super::GgmlType::ftype`]).
    pub fn header(&mut self, h: &Hparams, ftype: i32) -> std::io::Result<()> {
        self.bytes(&GGML_MAGIC.to_le_bytes())?;
        for v in [
            h.n_vocab,
            h.n_audio_ctx,
            h.n_audio_state,
            h.n_audio_head,
            h.n_audio_layer,
            h.n_text_ctx,
            h.n_text_state,
            h.n_text_head,
            h.n_text_layer,
            h.n_mels,
            ftype,
        ] {
            self.i32(v)?;
        }
        Ok(())
    }

    /// The mel filterbank, `n_mel` rows of `n_fft` bins.
    pub fn mel_filters(&mut self, n_mel: i32, n_fft: i32, filters: &[f32]) -> std::io::Result<()> {
        self.i32(n_mel)?;
        self.i32(n_fft)?;
        let mut buf = Vec::with_capacity(filters.len() * 4);
        encode_f32(filters, &mut buf);
        self.bytes(&buf)
    }

    /// The ordinary tokens as raw bytes.
    pub fn vocabulary(&mut self, tokens: &[Vec<u8>]) -> std::io::Result<()> {
        self.i32(len_i32(tokens.len())?)?;
        for t in tokens {
            self.i32(len_i32(t.len())?)?;
            self.bytes(t)?;
        }
        Ok(())
    }

    /// A tensor's header; `dims` outermost first (as PyTorch and CTranslate2 list them); they
    /// are written innermost first, as ggml's `ne`. The data follows with [`Self::bytes`].
    pub fn tensor_header(
        &mut self,
        name: &str,
        dims: &[usize],
        ty: TensorType,
    ) -> std::io::Result<()> {
        self.i32(len_i32(dims.len())?)?;
        self.i32(len_i32(name.len())?)?;
        self.i32(ty.id())?;
        for &d in dims.iter().rev() {
            self.i32(len_i32(d)?)?;
        }
        self.bytes(name.as_bytes())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and returns the underlying writer and the lowercase hex SHA-256 of all bytes.
    pub fn finish(mut self) -> std::io::Result<(W, String)> {
        self.out.flush()?;
        Ok((self.out, hex(&self.hasher.finalize())))
    }
}

fn len_i32(n: usize) -> std::io::Result<i32> {
    i32::try_from(n).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{n} does not fit the format's i32"),
        )
    })
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends `values` as little-endian `f32`.
pub fn encode_f32(values: &[f32], out: &mut Vec<u8>) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends `values` as little-endian IEEE half floats (round to nearest even).
pub fn encode_f16(values: &[f32], out: &mut Vec<u8>) {
    for v in values {
        out.extend_from_slice(&f16::from_f32(*v).to_le_bytes());
    }
}

/// Appends `values` (a multiple of 32 long) as ggml `block_q8_0`s, as ggml's
/// `quantize_row_q8_0_ref` does: per block, d = max|x| / 127 stored as `f16`, then 32 `i8`
/// `round(x / d)` computed with the unrounded `f32` d.
///
/// Returns `false` (appending nothing) if the length is not a multiple of 32.
pub fn quantize_q8_0(values: &[f32], out: &mut Vec<u8>) -> bool {
    if !values.len().is_multiple_of(Q8_0_BLOCK) {
        return false;
    }
    out.reserve(values.len() / Q8_0_BLOCK * Q8_0_BLOCK_BYTES);
    for block in values.chunks_exact(Q8_0_BLOCK) {
        let amax = block.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        for x in block {
            // |x * id| <= 127 up to rounding; the clamp only guards that rounding.
            out.push((x * id).round().clamp(-127.0, 127.0) as i8 as u8);
        }
    }
    true
}

/// Decodes ggml `block_q8_0`s (a whole number of 34-byte blocks) back to `f32`.
pub fn dequantize_q8_0(bytes: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(bytes.len() / Q8_0_BLOCK_BYTES * Q8_0_BLOCK);
    for block in bytes.chunks_exact(Q8_0_BLOCK_BYTES) {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        out.extend(block[2..].iter().map(|&q| f32::from(q as i8) * d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_starts_with_magic_and_eleven_hparams() {
        let h = Hparams {
            n_vocab: 51864,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
        };
        let mut w = GgmlWriter::new(Vec::new());
        w.header(&h, 1).unwrap();
        let (bytes, _) = w.finish().unwrap();
        assert_eq!(bytes.len(), 4 + 11 * 4);
        assert_eq!(&bytes[..4], b"lmgg");
        let ints: Vec<i32> = bytes[4..]
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(ints, [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);
    }

    #[test]
    fn tensor_header_reverses_dimensions() {
        let mut w = GgmlWriter::new(Vec::new());
        w.tensor_header("ab", &[384, 80, 3], TensorType::F16)
            .unwrap();
        let (bytes, _) = w.finish().unwrap();
        let ints: Vec<i32> = bytes[..24]
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(ints, [3, 2, 1, 3, 80, 384]);
        assert_eq!(&bytes[24..], b"ab");
    }

    #[test]
    fn writer_hash_is_the_sha256_of_the_bytes() {
        let mut w = GgmlWriter::new(Vec::new());
        w.bytes(b"abc").unwrap();
        assert_eq!(w.written(), 3);
        let (_, sha) = w.finish().unwrap();
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn q8_0_block_is_scale_then_32_quants() {
        let values: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) / 8.0).collect();
        let mut out = Vec::new();
        assert!(quantize_q8_0(&values, &mut out));
        assert_eq!(out.len(), Q8_0_BLOCK_BYTES);
        let d = f16::from_le_bytes([out[0], out[1]]).to_f32();
        assert!((d - 2.0 / 127.0).abs() < 1e-5);
        // The extreme value maps to -127; zero to zero.
        assert_eq!(out[2] as i8, -127);
        assert_eq!(out[2 + 16] as i8, 0);
    }

    #[test]
    fn q8_0_round_trip_is_within_half_a_step() {
        let values: Vec<f32> = (0..96)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0)
            .collect();
        let mut out = Vec::new();
        assert!(quantize_q8_0(&values, &mut out));
        assert_eq!(out.len(), 3 * Q8_0_BLOCK_BYTES);
        let back = dequantize_q8_0(&out);
        for (block, (orig, got)) in values.chunks(32).zip(back.chunks(32)).enumerate() {
            let amax = orig.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let step = amax / 127.0;
            for (a, b) in orig.iter().zip(got) {
                assert!(
                    (a - b).abs() <= step * 0.5 + amax * 1e-3,
                    "block {block}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn q8_0_of_zeros_has_zero_scale() {
        let mut out = Vec::new();
        assert!(quantize_q8_0(&[0.0; 32], &mut out));
        assert!(out.iter().all(|&b| b == 0));
    }

    #[test]
    fn q8_0_refuses_partial_blocks() {
        let mut out = Vec::new();
        assert!(!quantize_q8_0(&[1.0; 33], &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn f16_encoding_is_little_endian_half() {
        let mut out = Vec::new();
        encode_f16(&[1.0, -2.0], &mut out);
        assert_eq!(out, [0x00, 0x3c, 0x00, 0xc0]);
    }

    #[test]
    fn type_sizes_match_ggml() {
        assert_eq!(TensorType::F32.bytes_for(64), 256);
        assert_eq!(TensorType::F16.bytes_for(64), 128);
        assert_eq!(TensorType::Q8_0.bytes_for(64), 68);
        assert_eq!(TensorType::Q8_0.id(), 8);
    }
}
