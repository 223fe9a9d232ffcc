//! CTranslate2 Whisper model directory → whisper.cpp ggml file.
//!
//! [`convert_ct2_dir`] indexes `model.bin` (or its parts), checks that it is a Whisper model
//! whisper.cpp can run, plans every output tensor (name, source rows, shape, type) before
//! writing a byte, then streams: each output tensor is read from its source in chunks of rows,
//! widened to `f32`, re-encoded and written. Memory stays at a few megabytes whatever the
//! model's size. The output is written to a temporary file beside `out` and renamed into place
//! only when complete, so a failure never leaves a partial model behind.
//!
//! The mapping (names, the fused Q/K/V split, the dropped key bias, the `[d, 1]` conv bias,
//! which tensors are f16 or quantized) is whisper.cpp's `whisper_model_load` contract.
//! File IO only; no threads, no clock.

use std::fs::{self, File};
use std::io::BufWriter;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ct2::{Ct2Index, PartsReader, VarInfo};
use super::ggml::{self, GgmlWriter, Hparams, TensorType};
use super::mel::{slaney_filterbank, WHISPER_N_FFT, WHISPER_SAMPLE_RATE};
use super::vocab::Vocabulary;
use super::{GgmlType, Progress, Stage};
use crate::{Error, Result};

/// What a conversion produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertReport {
    /// The written ggml file.
    pub output: PathBuf,
    /// The model's hyperparameters as written.
    pub hparams: Hparams,
    /// The element type of the weight matrices.
    pub ftype: GgmlType,
    /// Whether the model is multilingual (vocabulary of 51865 or more).
    pub multilingual: bool,
    /// Number of tensors written.
    pub tensors: usize,
    /// Size of the file in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
}

/// Converts the CTranslate2 Whisper model in `dir` to a ggml file at `out`.
///
/// `dir` holds `model.bin` (or `model.bin.part1`, `model.bin.part2`, … read in order as one
/// file) and `vocabulary.txt` (or CTranslate2's newer `vocabulary.json`); `config.json` is
/// not needed. Weight matrices are written as `ftype`; conv weights as f16 (f32 in an f32
/// file); biases, norms and positional embeddings as f32. `progress` is told after each
/// tensor ([`Stage::Converting`], counted in tensors).
///
/// Every malformed input is an [`Error::BadModel`] naming the file and the fault; `out` is
/// then left untouched.
pub fn convert_ct2_dir(
    dir: &Path,
    out: &Path,
    ftype: GgmlType,
    progress: &mut dyn FnMut(Progress),
) -> Result<ConvertReport> {
    let parts = model_parts(dir)?;
    let model_path = parts[0].clone();
    let mut src = PartsReader::open(&parts)?;
    let index = Ct2Index::read(&mut src, &model_path)?;
    if index.spec != "WhisperSpec" {
        return Err(index.bad(format!(
            "spec {:?} is not a Whisper model (WhisperSpec)",
            index.spec
        )));
    }
    check_architecture(&index, &mut src)?;
    let plan = Plan::build(&index, &mut src, ftype)?;
    let vocab = read_vocabulary(dir)?;
    check_vocabulary(&vocab.0, &vocab.1, &plan.hparams)?;

    let tmp = TempFile::beside(out)?;
    let file = File::create(&tmp.path).map_err(|e| Error::io(&tmp.path, e))?;
    let mut w = GgmlWriter::new(BufWriter::with_capacity(1 << 20, file));
    let io_err = |e| Error::io(&tmp.path, e);

    let h = plan.hparams;
    w.header(&h, ftype.ftype()).map_err(io_err)?;
    let n_mels = usize::try_from(h.n_mels).unwrap_or(0);
    let filters = slaney_filterbank(WHISPER_SAMPLE_RATE, WHISPER_N_FFT, n_mels);
    // 201 bins: a small constant that fits an i32.
    let n_bins = (WHISPER_N_FFT / 2 + 1) as i32;
    w.mel_filters(h.n_mels, n_bins, &filters).map_err(io_err)?;
    w.vocabulary(&vocab.1.ordinary).map_err(io_err)?;

    let total = plan.tensors.len() as u64;
    let mut values = Vec::new();
    let mut encoded = Vec::new();
    for (i, t) in plan.tensors.iter().enumerate() {
        w.tensor_header(&t.name, &t.dims, t.ty).map_err(io_err)?;
        let scale = match t.scale {
            Some(s) => Some(index.read_all_float(&mut src, s)?),
            None => None,
        };
        let row_bytes = (t.var.row_len() * t.var.dtype.size()).max(1);
        let chunk_rows = (CHUNK_BYTES / row_bytes).max(1);
        let mut start = t.rows.start;
        while start < t.rows.end {
            let end = (start + chunk_rows).min(t.rows.end);
            values.clear();
            encoded.clear();
            index.read_rows(&mut src, t.var, start..end, scale.as_deref(), &mut values)?;
            match t.ty {
                TensorType::F32 => ggml::encode_f32(&values, &mut encoded),
                TensorType::F16 => ggml::encode_f16(&values, &mut encoded),
                TensorType::Q8_0 => {
                    if !ggml::quantize_q8_0(&values, &mut encoded) {
                        // The plan checked every quantized row length; keep the error anyway.
                        return Err(index.bad(format!(
                            "{:?}: rows of {} cannot be quantized to q8_0",
                            t.var.name,
                            t.var.row_len()
                        )));
                    }
                }
            }
            w.bytes(&encoded).map_err(io_err)?;
            start = end;
        }
        progress(Progress {
            stage: Stage::Converting,
            done: i as u64 + 1,
            total: Some(total),
        });
    }
    let size = w.written();
    let (buf, sha256) = w.finish().map_err(io_err)?;
    let file = buf.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    drop(file);
    tmp.persist(out)?;
    Ok(ConvertReport {
        output: out.to_path_buf(),
        hparams: h,
        ftype,
        multilingual: is_multilingual(h.n_vocab),
        tensors: plan.tensors.len(),
        size,
        sha256,
    })
}

/// Source bytes read per chunk while streaming a tensor.
const CHUNK_BYTES: usize = 4 << 20;

/// whisper.cpp's test for a multilingual vocabulary.
fn is_multilingual(n_vocab: i32) -> bool {
    n_vocab >= 51865
}

/// `model.bin`, or `model.bin.part1`, `.part2`, … (consecutive from 1).
fn model_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.bin");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let parts: Vec<PathBuf> = (1..)
        .map(|n| dir.join(format!("model.bin.part{n}")))
        .take_while(|p| p.is_file())
        .collect();
    if parts.is_empty() {
        return Err(Error::BadModel {
            path: dir.to_path_buf(),
            reason: "no model.bin (nor model.bin.part1, …) in this directory".into(),
        });
    }
    Ok(parts)
}

/// The vocabulary file's path and its parsed tokens.
fn read_vocabulary(dir: &Path) -> Result<(PathBuf, Vocabulary)> {
    let txt = dir.join("vocabulary.txt");
    let json = dir.join("vocabulary.json");
    let bad = |path: &Path, reason: String| Error::BadModel {
        path: path.to_path_buf(),
        reason,
    };
    if txt.is_file() {
        let bytes = fs::read(&txt).map_err(|e| Error::io(&txt, e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| bad(&txt, "the vocabulary is not UTF-8".into()))?;
        let vocab = Vocabulary::parse(&text, &txt)?;
        return Ok((txt, vocab));
    }
    if json.is_file() {
        let bytes = fs::read(&json).map_err(|e| Error::io(&json, e))?;
        let tokens: Vec<String> = serde_json::from_slice(&bytes)
            .map_err(|e| bad(&json, format!("not a JSON list of tokens: {e}")))?;
        let vocab = Vocabulary::parse(&tokens.join("\n"), &json)?;
        return Ok((json, vocab));
    }
    Err(bad(dir, "no vocabulary.txt (nor vocabulary.json)".into()))
}

/// The vocabulary must cover the embedding and end its ordinary tokens where whisper.cpp
/// expects `<|endoftext|>` (50256, or 50257 in multilingual models).
fn check_vocabulary(path: &Path, vocab: &Vocabulary, h: &Hparams) -> Result<()> {
    let bad = |reason: String| Error::BadModel {
        path: path.to_path_buf(),
        reason,
    };
    let n_vocab = usize::try_from(h.n_vocab).unwrap_or(0);
    if vocab.total != n_vocab {
        return Err(bad(format!(
            "{} tokens, but the model's embedding has {n_vocab} rows",
            vocab.total
        )));
    }
    let eot = if is_multilingual(h.n_vocab) {
        50257
    } else {
        50256
    };
    if vocab.ordinary.len() != eot {
        return Err(bad(format!(
            "<|endoftext|> is token {}, whisper.cpp expects {eot} for a vocabulary of {n_vocab}",
            vocab.ordinary.len()
        )));
    }
    Ok(())
}

/// Refuses decoder variants whisper.cpp does not implement (when the flags are present).
fn check_architecture(index: &Ct2Index, src: &mut PartsReader) -> Result<()> {
    for (name, want, meaning) in [
        ("decoder/activation", 3, "GELU"),
        ("decoder/pre_norm", 1, "pre-norm layers"),
        ("decoder/scale_embeddings", 0, "unscaled embeddings"),
    ] {
        if let Some(v) = index.scalar_int(src, name)? {
            if v != want {
                return Err(index.bad(format!(
                    "{name} is {v}; whisper.cpp only runs {meaning} ({want})"
                )));
            }
        }
    }
    Ok(())
}

/// One output tensor: which rows of which variable, under which name, shape and type.
#[derive(Debug)]
struct Planned<'a> {
    name: String,
    var: &'a VarInfo,
    scale: Option<&'a VarInfo>,
    rows: Range<usize>,
    /// Output dimensions, outermost first.
    dims: Vec<usize>,
    ty: TensorType,
}

/// The hparams and every tensor to write, validated against the model.
#[derive(Debug)]
struct Plan<'a> {
    hparams: Hparams,
    tensors: Vec<Planned<'a>>,
}

/// How a tensor is typed in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A 2-D weight matrix: the file's weight type.
    Matrix,
    /// A conv kernel: f16 unless the whole file is f32.
    Conv,
    /// Biases, norms, positional embeddings: always f32.
    Plain,
}

struct Planner<'a> {
    index: &'a Ct2Index,
    ftype: GgmlType,
    out: Vec<Planned<'a>>,
}

impl<'a> Planner<'a> {
    /// The variable `name` with exactly `shape`, and its dequantization scale if it is integer.
    fn source(&self, name: &str, shape: &[usize]) -> Result<(&'a VarInfo, Option<&'a VarInfo>)> {
        let var = self.index.require(name)?;
        if var.shape != shape {
            return Err(self.index.bad(format!(
                "{name:?} has shape {:?}, expected {shape:?}",
                var.shape
            )));
        }
        if var.dtype.is_float() {
            return Ok((var, None));
        }
        let scale_name = format!("{name}_scale");
        let scale = self.index.var(&scale_name)?.ok_or_else(|| {
            self.index.bad(format!(
                "{name:?} is {:?} but there is no {scale_name:?} to dequantize it",
                var.dtype
            ))
        })?;
        if !scale.dtype.is_float() || (scale.elements() != 1 && scale.elements() != var.rows()) {
            return Err(self.index.bad(format!(
                "{scale_name:?} ({:?}, shape {:?}) is not a float scale per row of {name:?}",
                scale.dtype, scale.shape
            )));
        }
        Ok((var, Some(scale)))
    }

    fn ty(&self, role: Role) -> TensorType {
        match (role, self.ftype) {
            (Role::Plain, _) | (Role::Conv, GgmlType::F32) => TensorType::F32,
            (Role::Conv, _) => TensorType::F16,
            (Role::Matrix, t) => t.tensor_type(),
        }
    }

    /// Plans rows `rows` of `src` (shaped `shape`) as `name` with output `dims`.
    fn push(
        &mut self,
        name: String,
        src: &str,
        shape: &[usize],
        rows: Range<usize>,
        dims: Vec<usize>,
        role: Role,
    ) -> Result<()> {
        let (var, scale) = self.source(src, shape)?;
        let ty = self.ty(role);
        if ty == TensorType::Q8_0 && var.row_len() % ggml::Q8_0_BLOCK != 0 {
            return Err(self.index.bad(format!(
                "{src:?} has rows of {} values, not a multiple of {}: cannot be q8_0",
                var.row_len(),
                ggml::Q8_0_BLOCK
            )));
        }
        self.out.push(Planned {
            name,
            var,
            scale,
            rows,
            dims,
            ty,
        });
        Ok(())
    }

    /// A whole variable under a new name.
    fn whole(&mut self, name: String, src: &str, shape: &[usize], role: Role) -> Result<()> {
        let rows = shape.first().copied().unwrap_or(1);
        self.push(name, src, shape, 0..rows, shape.to_vec(), role)
    }

    /// A layer norm: `gamma` → `.weight`, `beta` → `.bias`.
    fn norm(&mut self, to: &str, from: &str, d: usize) -> Result<()> {
        self.whole(
            format!("{to}.weight"),
            &format!("{from}/gamma"),
            &[d],
            Role::Plain,
        )?;
        self.whole(
            format!("{to}.bias"),
            &format!("{from}/beta"),
            &[d],
            Role::Plain,
        )
    }

    /// A linear layer `[n_out, n_in]` with its bias.
    fn linear(&mut self, to: &str, from: &str, n_out: usize, n_in: usize) -> Result<()> {
        self.whole(
            format!("{to}.weight"),
            &format!("{from}/weight"),
            &[n_out, n_in],
            Role::Matrix,
        )?;
        self.whole(
            format!("{to}.bias"),
            &format!("{from}/bias"),
            &[n_out],
            Role::Plain,
        )
    }

    /// Rows `part*d .. (part+1)*d` of a fused `[parts*d, d]` projection, with its bias unless
    /// it is a key (Whisper has no key bias; CTranslate2 stores zeros, and a key bias would
    /// not change attention anyway: it adds the same q·b to every score of a query).
    fn fused_part(
        &mut self,
        to: &str,
        from: &str,
        parts: usize,
        part: usize,
        d: usize,
        with_bias: bool,
    ) -> Result<()> {
        let rows = part * d..(part + 1) * d;
        self.push(
            format!("{to}.weight"),
            &format!("{from}/weight"),
            &[parts * d, d],
            rows.clone(),
            vec![d, d],
            Role::Matrix,
        )?;
        if with_bias {
            self.push(
                format!("{to}.bias"),
                &format!("{from}/bias"),
                &[parts * d],
                rows,
                vec![d],
                Role::Plain,
            )?;
        }
        Ok(())
    }

    fn self_attention(&mut self, to: &str, from: &str, d: usize) -> Result<()> {
        let sa = format!("{from}/self_attention");
        self.norm(&format!("{to}.attn_ln"), &format!("{sa}/layer_norm"), d)?;
        let fused = format!("{sa}/linear_0");
        self.fused_part(&format!("{to}.attn.query"), &fused, 3, 0, d, true)?;
        self.fused_part(&format!("{to}.attn.key"), &fused, 3, 1, d, false)?;
        self.fused_part(&format!("{to}.attn.value"), &fused, 3, 2, d, true)?;
        self.linear(&format!("{to}.attn.out"), &format!("{sa}/linear_1"), d, d)
    }

    fn mlp(&mut self, to: &str, from: &str, d: usize) -> Result<()> {
        let ffn = format!("{from}/ffn");
        self.norm(&format!("{to}.mlp_ln"), &format!("{ffn}/layer_norm"), d)?;
        self.linear(&format!("{to}.mlp.0"), &format!("{ffn}/linear_0"), 4 * d, d)?;
        self.linear(&format!("{to}.mlp.2"), &format!("{ffn}/linear_1"), d, 4 * d)
    }
}

impl<'a> Plan<'a> {
    fn build(index: &'a Ct2Index, src: &mut PartsReader, ftype: GgmlType) -> Result<Self> {
        let enc_pos = index.require("encoder/position_encodings/encodings")?;
        let dec_pos = index.require("decoder/position_encodings/encodings")?;
        let embed = index.require("decoder/embeddings/weight")?;
        let conv1 = index.require("encoder/conv1/weight")?;
        let two_d = |v: &VarInfo| -> Result<(usize, usize)> {
            match v.shape[..] {
                [a, b] if a > 0 && b > 0 => Ok((a, b)),
                _ => Err(index.bad(format!(
                    "{:?} has shape {:?}, expected 2-D",
                    v.name, v.shape
                ))),
            }
        };
        let (n_audio_ctx, d) = two_d(enc_pos)?;
        let (n_text_ctx, d_text) = two_d(dec_pos)?;
        let (n_vocab, d_embed) = two_d(embed)?;
        if d_text != d || d_embed != d {
            return Err(index.bad(format!(
                "widths disagree: encoder {d}, decoder positions {d_text}, embeddings {d_embed} \
                 (whisper.cpp needs one width)"
            )));
        }
        let n_mels = match conv1.shape[..] {
            [out, mels, 3] if out == d && mels > 0 => mels,
            _ => {
                return Err(index.bad(format!(
                    "\"encoder/conv1/weight\" has shape {:?}, expected [{d}, n_mels, 3]",
                    conv1.shape
                )))
            }
        };
        let n_audio_layer = count_layers(index, "encoder/layer_")?;
        let n_text_layer = count_layers(index, "decoder/layer_")?;
        let heads = |name: &str, src: &mut PartsReader| -> Result<usize> {
            // Every released Whisper model has 64-wide heads; older CTranslate2 conversions
            // do not record the head count.
            let n = index.scalar_int(src, name)?.unwrap_or((d / 64) as i64);
            match usize::try_from(n) {
                Ok(n) if n > 0 && d % n == 0 => Ok(n),
                _ => Err(index.bad(format!("{name} = {n} does not divide the width {d}"))),
            }
        };
        let n_audio_head = heads("encoder/num_heads", src)?;
        let n_text_head = heads("decoder/num_heads", src)?;
        let to_i32 = |what: &str, v: usize| -> Result<i32> {
            i32::try_from(v).map_err(|_| index.bad(format!("{what} = {v} is too large")))
        };
        let hparams = Hparams {
            n_vocab: to_i32("n_vocab", n_vocab)?,
            n_audio_ctx: to_i32("n_audio_ctx", n_audio_ctx)?,
            n_audio_state: to_i32("n_audio_state", d)?,
            n_audio_head: to_i32("n_audio_head", n_audio_head)?,
            n_audio_layer: to_i32("n_audio_layer", n_audio_layer)?,
            n_text_ctx: to_i32("n_text_ctx", n_text_ctx)?,
            n_text_state: to_i32("n_text_state", d)?,
            n_text_head: to_i32("n_text_head", n_text_head)?,
            n_text_layer: to_i32("n_text_layer", n_text_layer)?,
            n_mels: to_i32("n_mels", n_mels)?,
        };

        let mut p = Planner {
            index,
            ftype,
            out: Vec::new(),
        };
        // Encoder.
        p.whole(
            "encoder.positional_embedding".into(),
            "encoder/position_encodings/encodings",
            &[n_audio_ctx, d],
            Role::Plain,
        )?;
        for (conv, n_in) in [("conv1", n_mels), ("conv2", d)] {
            p.whole(
                format!("encoder.{conv}.weight"),
                &format!("encoder/{conv}/weight"),
                &[d, n_in, 3],
                Role::Conv,
            )?;
            // whisper.cpp adds the bias as a [1, d] tensor (ggml order).
            p.push(
                format!("encoder.{conv}.bias"),
                &format!("encoder/{conv}/bias"),
                &[d],
                0..d,
                vec![d, 1],
                Role::Plain,
            )?;
        }
        for i in 0..n_audio_layer {
            let (to, from) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
            p.self_attention(&to, &from, d)?;
            p.mlp(&to, &from, d)?;
        }
        p.norm("encoder.ln_post", "encoder/layer_norm", d)?;
        // Decoder.
        p.whole(
            "decoder.positional_embedding".into(),
            "decoder/position_encodings/encodings",
            &[n_text_ctx, d],
            Role::Plain,
        )?;
        p.whole(
            "decoder.token_embedding.weight".into(),
            "decoder/embeddings/weight",
            &[n_vocab, d],
            Role::Matrix,
        )?;
        for i in 0..n_text_layer {
            let (to, from) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
            p.self_attention(&to, &from, d)?;
            let ca = format!("{from}/attention");
            p.norm(
                &format!("{to}.cross_attn_ln"),
                &format!("{ca}/layer_norm"),
                d,
            )?;
            p.linear(
                &format!("{to}.cross_attn.query"),
                &format!("{ca}/linear_0"),
                d,
                d,
            )?;
            let kv = format!("{ca}/linear_1");
            p.fused_part(&format!("{to}.cross_attn.key"), &kv, 2, 0, d, false)?;
            p.fused_part(&format!("{to}.cross_attn.value"), &kv, 2, 1, d, true)?;
            p.linear(
                &format!("{to}.cross_attn.out"),
                &format!("{ca}/linear_2"),
                d,
                d,
            )?;
            p.mlp(&to, &from, d)?;
        }
        p.norm("decoder.ln", "decoder/layer_norm", d)?;
        check_output_projection(index, n_vocab, d)?;
        Ok(Self {
            hparams,
            tensors: p.out,
        })
    }
}

/// whisper.cpp ties the output projection to the token embedding; a model whose projection
/// has another shape cannot be expressed (an alias to the embedding, or none, is fine).
fn check_output_projection(index: &Ct2Index, n_vocab: usize, d: usize) -> Result<()> {
    if let Some(proj) = index.var("decoder/projection/weight")? {
        if proj.shape != [n_vocab, d] {
            return Err(index.bad(format!(
                "decoder/projection/weight has shape {:?}, expected the embedding's [{n_vocab}, {d}]",
                proj.shape
            )));
        }
    }
    Ok(())
}

/// The number of layers under `prefix` (`encoder/layer_`): one more than the highest index.
fn count_layers(index: &Ct2Index, prefix: &str) -> Result<usize> {
    let highest = index
        .vars()
        .iter()
        .filter_map(|v| v.name.strip_prefix(prefix))
        .filter_map(|rest| rest.split('/').next()?.parse::<usize>().ok())
        .max();
    match highest {
        Some(n) => Ok(n + 1),
        None => Err(index.bad(format!("no {prefix}N variables: the model has no layers"))),
    }
}

/// A file being written beside its destination; removed on drop unless persisted.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    fn beside(dest: &Path) -> Result<Self> {
        let name = dest
            .file_name()
            .ok_or_else(|| Error::InvalidArgument(format!("{} names no file", dest.display())))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".partial-{}", std::process::id()));
        Ok(Self {
            path: dest.with_file_name(tmp_name),
            keep: false,
        })
    }

    fn persist(mut self, dest: &Path) -> Result<()> {
        fs::rename(&self.path, dest).map_err(|e| Error::io(dest, e))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: the file may not have been created.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use half::{bf16, f16};

    use super::*;

    const MELS: usize = 4;
    const AUDIO_CTX: usize = 6;
    const TEXT_CTX: usize = 5;
    /// 50256 ordinary tokens, `<|endoftext|>`, three more specials: an English vocabulary.
    const N_VOCAB: usize = 50260;

    /// One variable of a synthetic CTranslate2 model.
    #[derive(Clone, Debug)]
    struct Var {
        name: String,
        shape: Vec<usize>,
        dtype: u8,
        data: Vec<u8>,
    }

    /// A small Whisper-shaped CTranslate2 model, written the way CTranslate2 writes one.
    #[derive(Clone, Debug)]
    pub(crate) struct Ct2Model {
        version: u32,
        spec: String,
        d: usize,
        vars: Vec<Var>,
        aliases: Vec<(String, String)>,
        vocabulary: String,
    }

    /// Values exactly representable in f16: k / 1024 for |k| <= 1000.
    fn pattern(seed: usize, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((seed * 7919 + i * 31) % 2001) as f32 / 1024.0 - 1000.0 / 1024.0)
            .collect()
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    impl Ct2Model {
        pub(crate) fn whisper(d: usize, enc_layers: usize, dec_layers: usize) -> Self {
            let mut m = Self {
                version: 6,
                spec: "WhisperSpec".into(),
                d,
                vars: Vec::new(),
                aliases: vec![(
                    "decoder/projection/weight".into(),
                    "decoder/embeddings/weight".into(),
                )],
                vocabulary: String::new(),
            };
            m.scalar("decoder/activation", 1, vec![3]);
            m.scalar("decoder/pre_norm", 1, vec![1]);
            m.scalar("decoder/scale_embeddings", 1, vec![0]);
            m.scalar("encoder/num_heads", 2, 2i16.to_le_bytes().to_vec());
            m.scalar("decoder/num_heads", 2, 2i16.to_le_bytes().to_vec());
            m.float("encoder/position_encodings/encodings", &[AUDIO_CTX, d]);
            m.float("encoder/conv1/weight", &[d, MELS, 3]);
            m.float("encoder/conv1/bias", &[d]);
            m.float("encoder/conv2/weight", &[d, d, 3]);
            m.float("encoder/conv2/bias", &[d]);
            m.norm("encoder/layer_norm");
            for i in 0..enc_layers {
                let l = format!("encoder/layer_{i}");
                m.norm(&format!("{l}/self_attention/layer_norm"));
                m.linear(&format!("{l}/self_attention/linear_0"), 3 * d, d);
                m.linear(&format!("{l}/self_attention/linear_1"), d, d);
                m.ffn(&l);
            }
            m.float("decoder/position_encodings/encodings", &[TEXT_CTX, d]);
            // The embedding is f16, as in the published models.
            let emb = pattern(m.vars.len(), N_VOCAB * d);
            m.put(
                "decoder/embeddings/weight",
                &[N_VOCAB, d],
                4,
                emb.iter()
                    .flat_map(|x| f16::from_f32(*x).to_le_bytes())
                    .collect(),
            );
            m.norm("decoder/layer_norm");
            for i in 0..dec_layers {
                let l = format!("decoder/layer_{i}");
                m.norm(&format!("{l}/self_attention/layer_norm"));
                m.linear(&format!("{l}/self_attention/linear_0"), 3 * d, d);
                m.linear(&format!("{l}/self_attention/linear_1"), d, d);
                m.norm(&format!("{l}/attention/layer_norm"));
                m.linear(&format!("{l}/attention/linear_0"), d, d);
                m.linear(&format!("{l}/attention/linear_1"), 2 * d, d);
                m.linear(&format!("{l}/attention/linear_2"), d, d);
                m.ffn(&l);
            }
            let mut vocab: Vec<String> = (0..50256).map(|i| format!("t{i}")).collect();
            vocab[0] = "Ġthe".into();
            vocab.push("<|endoftext|>".into());
            vocab.extend(["<|startoftranscript|>", "<|en|>", "<|notimestamps|>"].map(String::from));
            m.vocabulary = vocab.join("\n") + "\n";
            m
        }

        fn put(&mut self, name: &str, shape: &[usize], dtype: u8, data: Vec<u8>) {
            self.vars.retain(|v| v.name != name);
            self.vars.push(Var {
                name: name.into(),
                shape: shape.to_vec(),
                dtype,
                data,
            });
        }

        fn scalar(&mut self, name: &str, dtype: u8, data: Vec<u8>) {
            self.put(name, &[], dtype, data);
        }

        fn float(&mut self, name: &str, shape: &[usize]) {
            let v = pattern(self.vars.len(), shape.iter().product());
            self.put(name, shape, 0, f32_bytes(&v));
        }

        fn norm(&mut self, prefix: &str) {
            self.float(&format!("{prefix}/gamma"), &[self.d]);
            self.float(&format!("{prefix}/beta"), &[self.d]);
        }

        fn linear(&mut self, prefix: &str, n_out: usize, n_in: usize) {
            self.float(&format!("{prefix}/weight"), &[n_out, n_in]);
            self.float(&format!("{prefix}/bias"), &[n_out]);
        }

        fn ffn(&mut self, layer: &str) {
            let d = self.d;
            self.norm(&format!("{layer}/ffn/layer_norm"));
            self.linear(&format!("{layer}/ffn/linear_0"), 4 * d, d);
            self.linear(&format!("{layer}/ffn/linear_1"), d, 4 * d);
        }

        fn var(&self, name: &str) -> &Var {
            self.vars
                .iter()
                .find(|v| v.name == name)
                .expect("test variable exists")
        }

        /// A float variable's values as f32.
        fn values(&self, name: &str) -> Vec<f32> {
            let v = self.var(name);
            match v.dtype {
                0 => v
                    .data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                4 => v
                    .data
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                5 => v
                    .data
                    .chunks_exact(2)
                    .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                other => panic!("test helper: dtype {other} is not float"),
            }
        }

        fn to_bytes(&self) -> Vec<u8> {
            fn string(out: &mut Vec<u8>, s: &str) {
                out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            let mut vars = self.vars.clone();
            // CTranslate2 writes variables sorted by name.
            vars.sort_by(|a, b| a.name.cmp(&b.name));
            let mut out = Vec::new();
            out.extend_from_slice(&self.version.to_le_bytes());
            string(&mut out, &self.spec);
            out.extend_from_slice(&3u32.to_le_bytes());
            out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
            for v in &vars {
                string(&mut out, &v.name);
                out.push(v.shape.len() as u8);
                for &s in &v.shape {
                    out.extend_from_slice(&(s as u32).to_le_bytes());
                }
                out.push(v.dtype);
                out.extend_from_slice(&(v.data.len() as u32).to_le_bytes());
                out.extend_from_slice(&v.data);
            }
            out.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
            for (a, t) in &self.aliases {
                string(&mut out, a);
                string(&mut out, t);
            }
            out
        }

        /// A model directory holding `model.bin` and `vocabulary.txt`.
        pub(crate) fn write_dir(&self) -> tempfile::TempDir {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("model.bin"), self.to_bytes()).unwrap();
            std::fs::write(dir.path().join("vocabulary.txt"), &self.vocabulary).unwrap();
            dir
        }
    }

    /// A parsed ggml file.
    #[derive(Debug)]
    struct Ggml {
        hparams: Vec<i32>,
        mel: (i32, i32, Vec<f32>),
        vocab: Vec<Vec<u8>>,
        /// name → (ne, innermost first; type id; data)
        tensors: BTreeMap<String, (Vec<usize>, i32, Vec<u8>)>,
    }

    impl Ggml {
        fn parse(bytes: &[u8]) -> Self {
            let mut pos = 0;
            let i32_at = |pos: &mut usize| {
                let v = i32::from_le_bytes(bytes[*pos..*pos + 4].try_into().unwrap());
                *pos += 4;
                v
            };
            assert_eq!(i32_at(&mut pos) as u32, ggml::GGML_MAGIC);
            let hparams: Vec<i32> = (0..11).map(|_| i32_at(&mut pos)).collect();
            let (n_mel, n_fft) = (i32_at(&mut pos), i32_at(&mut pos));
            let n = (n_mel * n_fft) as usize;
            let mel = bytes[pos..pos + 4 * n]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            pos += 4 * n;
            let count = i32_at(&mut pos);
            let mut vocab = Vec::new();
            for _ in 0..count {
                let len = i32_at(&mut pos) as usize;
                vocab.push(bytes[pos..pos + len].to_vec());
                pos += len;
            }
            let mut tensors = BTreeMap::new();
            while pos < bytes.len() {
                let n_dims = i32_at(&mut pos);
                let name_len = i32_at(&mut pos) as usize;
                let ty = i32_at(&mut pos);
                let ne: Vec<usize> = (0..n_dims).map(|_| i32_at(&mut pos) as usize).collect();
                let name = String::from_utf8(bytes[pos..pos + name_len].to_vec()).unwrap();
                pos += name_len;
                let elems: usize = ne.iter().product();
                let size = match ty {
                    0 => TensorType::F32.bytes_for(elems),
                    1 => TensorType::F16.bytes_for(elems),
                    8 => TensorType::Q8_0.bytes_for(elems),
                    other => panic!("unexpected tensor type {other}"),
                };
                let data = bytes[pos..pos + size].to_vec();
                pos += size;
                assert!(
                    tensors.insert(name.clone(), (ne, ty, data)).is_none(),
                    "{name} twice"
                );
            }
            Self {
                hparams,
                mel: (n_mel, n_fft, mel),
                vocab,
                tensors,
            }
        }

        fn tensor(&self, name: &str) -> &(Vec<usize>, i32, Vec<u8>) {
            self.tensors
                .get(name)
                .unwrap_or_else(|| panic!("no tensor {name}"))
        }

        fn values(&self, name: &str) -> Vec<f32> {
            let (_, ty, data) = self.tensor(name);
            match ty {
                0 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                1 => data
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                _ => ggml::dequantize_q8_0(data),
            }
        }
    }

    fn convert(model: &Ct2Model, ftype: GgmlType) -> (Ggml, ConvertReport) {
        let dir = model.write_dir();
        let out = dir.path().join("out.bin");
        let report = convert_ct2_dir(dir.path(), &out, ftype, &mut |_| {}).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        (Ggml::parse(&bytes), report)
    }

    /// Converts a broken model: must be `BadModel`, leave no file in a fresh output
    /// directory; returns the message.
    fn refused(dir: &Path, ftype: GgmlType) -> String {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("out.bin");
        let err = convert_ct2_dir(dir, &out, ftype, &mut |_| {}).unwrap_err();
        assert!(matches!(err, Error::BadModel { .. }), "{err:?}");
        let left: Vec<_> = std::fs::read_dir(out_dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        err.to_string()
    }

    fn refused_model(model: &Ct2Model) -> String {
        let dir = model.write_dir();
        refused(dir.path(), GgmlType::F16)
    }

    fn rows(values: &[f32], row_len: usize, rows: Range<usize>) -> Vec<f32> {
        values[rows.start * row_len..rows.end * row_len].to_vec()
    }

    #[test]
    fn hparams_come_from_the_shapes_and_flags() {
        let (g, report) = convert(&Ct2Model::whisper(32, 2, 3), GgmlType::F16);
        assert_eq!(g.hparams, [N_VOCAB as i32, 6, 32, 2, 2, 5, 32, 2, 3, 4, 1]);
        assert!(!report.multilingual);
        assert_eq!(report.hparams.n_text_layer, 3);
    }

    #[test]
    fn every_whisper_cpp_tensor_is_written_once_with_its_name() {
        let (g, report) = convert(&Ct2Model::whisper(32, 2, 2), GgmlType::F16);
        // whisper.cpp's count: 7 encoder-wide, 15 per encoder layer, 4 decoder-wide, 24 per
        // decoder layer.
        assert_eq!(g.tensors.len(), 7 + 2 * 15 + 4 + 2 * 24);
        assert_eq!(report.tensors, g.tensors.len());
        for name in [
            "encoder.positional_embedding",
            "encoder.conv1.weight",
            "encoder.conv2.bias",
            "encoder.ln_post.weight",
            "encoder.blocks.1.attn_ln.bias",
            "encoder.blocks.1.attn.query.weight",
            "encoder.blocks.1.attn.out.bias",
            "encoder.blocks.0.mlp_ln.weight",
            "encoder.blocks.0.mlp.0.weight",
            "encoder.blocks.0.mlp.2.bias",
            "decoder.positional_embedding",
            "decoder.token_embedding.weight",
            "decoder.ln.bias",
            "decoder.blocks.1.cross_attn_ln.weight",
            "decoder.blocks.1.cross_attn.query.bias",
            "decoder.blocks.1.cross_attn.key.weight",
            "decoder.blocks.1.cross_attn.value.bias",
            "decoder.blocks.1.cross_attn.out.weight",
        ] {
            assert!(g.tensors.contains_key(name), "missing {name}");
        }
    }

    #[test]
    fn key_biases_are_not_written() {
        let (g, _) = convert(&Ct2Model::whisper(32, 1, 1), GgmlType::F16);
        assert!(g.tensors.keys().all(|n| !n.ends_with("key.bias")));
        assert!(g.tensors.contains_key("encoder.blocks.0.attn.key.weight"));
    }

    #[test]
    fn fused_self_attention_is_split_into_query_key_value_rows() {
        let m = Ct2Model::whisper(32, 1, 1);
        let (g, _) = convert(&m, GgmlType::F32);
        let w = m.values("encoder/layer_0/self_attention/linear_0/weight");
        let b = m.values("encoder/layer_0/self_attention/linear_0/bias");
        let p = "encoder.blocks.0.attn";
        assert_eq!(g.values(&format!("{p}.query.weight")), rows(&w, 32, 0..32));
        assert_eq!(g.values(&format!("{p}.key.weight")), rows(&w, 32, 32..64));
        assert_eq!(g.values(&format!("{p}.value.weight")), rows(&w, 32, 64..96));
        assert_eq!(g.values(&format!("{p}.query.bias")), b[0..32]);
        assert_eq!(g.values(&format!("{p}.value.bias")), b[64..96]);
        assert_eq!(g.tensor(&format!("{p}.value.weight")).0, [32, 32]);
    }

    #[test]
    fn fused_cross_attention_is_split_into_key_and_value_rows() {
        let m = Ct2Model::whisper(32, 1, 1);
        let (g, _) = convert(&m, GgmlType::F32);
        let w = m.values("decoder/layer_0/attention/linear_1/weight");
        let b = m.values("decoder/layer_0/attention/linear_1/bias");
        let p = "decoder.blocks.0.cross_attn";
        assert_eq!(g.values(&format!("{p}.key.weight")), rows(&w, 32, 0..32));
        assert_eq!(g.values(&format!("{p}.value.weight")), rows(&w, 32, 32..64));
        assert_eq!(g.values(&format!("{p}.value.bias")), b[32..64]);
        assert_eq!(
            g.values(&format!("{p}.query.weight")),
            m.values("decoder/layer_0/attention/linear_0/weight")
        );
        assert_eq!(
            g.values(&format!("{p}.out.bias")),
            m.values("decoder/layer_0/attention/linear_2/bias")
        );
    }

    #[test]
    fn dimensions_are_written_innermost_first() {
        let (g, _) = convert(&Ct2Model::whisper(32, 1, 1), GgmlType::F16);
        assert_eq!(g.tensor("encoder.blocks.0.mlp.0.weight").0, [32, 128]);
        assert_eq!(g.tensor("encoder.blocks.0.mlp.2.weight").0, [128, 32]);
        assert_eq!(g.tensor("encoder.positional_embedding").0, [32, AUDIO_CTX]);
        assert_eq!(g.tensor("decoder.positional_embedding").0, [32, TEXT_CTX]);
        assert_eq!(g.tensor("decoder.token_embedding.weight").0, [32, N_VOCAB]);
        assert_eq!(g.tensor("encoder.conv1.weight").0, [3, MELS, 32]);
        assert_eq!(g.tensor("encoder.conv2.weight").0, [3, 32, 32]);
    }

    #[test]
    fn conv_biases_are_one_by_width() {
        let m = Ct2Model::whisper(32, 1, 1);
        let (g, _) = convert(&m, GgmlType::F16);
        for conv in ["conv1", "conv2"] {
            let (ne, ty, _) = g.tensor(&format!("encoder.{conv}.bias"));
            assert_eq!((ne.as_slice(), *ty), (&[1, 32][..], 0));
            assert_eq!(
                g.values(&format!("encoder.{conv}.bias")),
                m.values(&format!("encoder/{conv}/bias"))
            );
        }
    }

    #[test]
    fn f16_file_has_half_matrices_and_convs_and_f32_vectors() {
        let m = Ct2Model::whisper(32, 1, 1);
        let (g, _) = convert(&m, GgmlType::F16);
        assert_eq!(g.hparams[10], 1);
        for (name, (ne, ty, _)) in &g.tensors {
            let want = if name.contains("positional_embedding")
                || ne.len() == 1
                || name.ends_with("conv1.bias")
                || name.ends_with("conv2.bias")
            {
                0
            } else {
                1
            };
            assert_eq!(*ty, want, "{name}");
        }
        // The pattern is exact in f16, so the halves hold the very values.
        assert_eq!(
            g.values("encoder.blocks.0.mlp.0.weight"),
            m.values("encoder/layer_0/ffn/linear_0/weight")
        );
        assert_eq!(
            g.values("decoder.token_embedding.weight"),
            m.values("decoder/embeddings/weight")
        );
    }

    #[test]
    fn f32_file_is_all_f32() {
        let (g, report) = convert(&Ct2Model::whisper(32, 1, 1), GgmlType::F32);
        assert_eq!(g.hparams[10], 0);
        assert_eq!(report.ftype, GgmlType::F32);
        assert!(g.tensors.values().all(|(_, ty, _)| *ty == 0));
    }

    #[test]
    fn q8_0_file_quantizes_matrices_but_not_convs_or_vectors() {
        let m = Ct2Model::whisper(32, 1, 1);
        let (g, _) = convert(&m, GgmlType::Q8_0);
        assert_eq!(g.hparams[10], 2007);
        assert_eq!(g.tensor("decoder.token_embedding.weight").1, 8);
        assert_eq!(g.tensor("encoder.blocks.0.attn.key.weight").1, 8);
        assert_eq!(g.tensor("decoder.blocks.0.cross_attn.out.weight").1, 8);
        assert_eq!(g.tensor("encoder.conv1.weight").1, 1);
        assert_eq!(g.tensor("encoder.conv1.bias").1, 0);
        assert_eq!(g.tensor("encoder.positional_embedding").1, 0);
        assert_eq!(g.tensor("encoder.blocks.0.attn.query.bias").1, 0);
        let (_, _, data) = g.tensor("encoder.blocks.0.mlp.0.weight");
        assert_eq!(data.len(), 128 * 32 / 32 * 34);
        let want = m.values("encoder/layer_0/ffn/linear_0/weight");
        let got = g.values("encoder.blocks.0.mlp.0.weight");
        for (block, (a, b)) in want.chunks(32).zip(got.chunks(32)).enumerate() {
            let amax = a.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= amax / 127.0 * 0.51 + 1e-3 * amax,
                    "block {block}"
                );
            }
        }
    }

    #[test]
    fn q8_0_is_refused_for_rows_not_a_multiple_of_32() {
        let dir = Ct2Model::whisper(16, 1, 1).write_dir();
        let msg = refused(dir.path(), GgmlType::Q8_0);
        assert!(msg.contains("multiple of 32"), "{msg}");
        // The same model converts to f16.
        let out = dir.path().join("out.bin");
        convert_ct2_dir(dir.path(), &out, GgmlType::F16, &mut |_| {}).unwrap();
    }

    #[test]
    fn int8_weights_are_divided_by_their_row_scale() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        let name = "encoder/layer_0/self_attention/linear_1/weight";
        let q: Vec<i8> = (0..32 * 32).map(|i| ((i * 7) % 255) as i8).collect();
        let scale: Vec<f32> = (0..32).map(|r| 2.0 + r as f32).collect();
        m.put(name, &[32, 32], 1, q.iter().map(|&x| x as u8).collect());
        m.put(&format!("{name}_scale"), &[32], 0, f32_bytes(&scale));
        let (g, _) = convert(&m, GgmlType::F32);
        let got = g.values("encoder.blocks.0.attn.out.weight");
        for (i, (&qv, gv)) in q.iter().zip(&got).enumerate() {
            assert_eq!(*gv, f32::from(qv) / scale[i / 32], "element {i}");
        }
    }

    #[test]
    fn int8_weights_without_a_scale_are_refused() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        let name = "encoder/layer_0/self_attention/linear_1/weight";
        m.put(name, &[32, 32], 1, vec![1; 32 * 32]);
        let msg = refused_model(&m);
        assert!(msg.contains("weight_scale"), "{msg}");
    }

    #[test]
    fn bf16_sources_are_widened() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        let values: Vec<f32> = (0..32).map(|i| i as f32 * 0.5 - 3.0).collect();
        m.put(
            "encoder/layer_norm/gamma",
            &[32],
            5,
            values
                .iter()
                .flat_map(|x| bf16::from_f32(*x).to_le_bytes())
                .collect(),
        );
        let (g, _) = convert(&m, GgmlType::F16);
        assert_eq!(g.values("encoder.ln_post.weight"), values);
    }

    #[test]
    fn embedding_stored_under_its_alias_is_found() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        let emb = m.var("decoder/embeddings/weight").clone();
        m.vars.retain(|v| v.name != emb.name);
        m.put(
            "decoder/projection/weight",
            &emb.shape,
            emb.dtype,
            emb.data.clone(),
        );
        m.aliases = vec![(
            "decoder/embeddings/weight".into(),
            "decoder/projection/weight".into(),
        )];
        let (g, _) = convert(&m, GgmlType::F16);
        assert_eq!(
            g.values("decoder.token_embedding.weight"),
            m.values("decoder/projection/weight")
        );
    }

    #[test]
    fn alias_to_a_missing_variable_is_refused() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        m.vars.retain(|v| v.name != "decoder/embeddings/weight");
        m.aliases = vec![("decoder/embeddings/weight".into(), "nowhere".into())];
        let msg = refused_model(&m);
        assert!(msg.contains("nowhere"), "{msg}");
    }

    #[test]
    fn parts_convert_like_the_joined_file() {
        let m = Ct2Model::whisper(32, 1, 1);
        let (_, whole) = convert(&m, GgmlType::F16);
        let dir = tempfile::tempdir().unwrap();
        let bytes = m.to_bytes();
        let cut = bytes.len() / 3;
        std::fs::write(dir.path().join("model.bin.part1"), &bytes[..cut]).unwrap();
        std::fs::write(dir.path().join("model.bin.part2"), &bytes[cut..]).unwrap();
        std::fs::write(dir.path().join("vocabulary.txt"), &m.vocabulary).unwrap();
        let out = dir.path().join("out.bin");
        let parts = convert_ct2_dir(dir.path(), &out, GgmlType::F16, &mut |_| {}).unwrap();
        assert_eq!(parts.sha256, whole.sha256);
        assert_eq!(parts.size, whole.size);
    }

    #[test]
    fn mel_filters_and_ordinary_vocabulary_are_written() {
        let (g, _) = convert(&Ct2Model::whisper(32, 1, 1), GgmlType::F16);
        assert_eq!((g.mel.0, g.mel.1), (MELS as i32, 201));
        assert_eq!(g.mel.2, slaney_filterbank(16_000, 400, MELS));
        assert_eq!(g.vocab.len(), 50256);
        assert_eq!(g.vocab[0], b" the");
        assert_eq!(g.vocab[50255], b"t50255");
    }

    #[test]
    fn report_checksum_and_size_match_the_file() {
        let m = Ct2Model::whisper(32, 1, 1);
        let dir = m.write_dir();
        let out = dir.path().join("out.bin");
        let report = convert_ct2_dir(dir.path(), &out, GgmlType::F16, &mut |_| {}).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(report.size, bytes.len() as u64);
        assert_eq!(
            report.sha256,
            ggml::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
    }

    #[test]
    fn progress_counts_tensors_up_to_the_total() {
        let m = Ct2Model::whisper(32, 1, 1);
        let dir = m.write_dir();
        let mut seen = Vec::new();
        convert_ct2_dir(
            dir.path(),
            &dir.path().join("o.bin"),
            GgmlType::F16,
            &mut |p| seen.push(p),
        )
        .unwrap();
        let total = (7 + 15 + 4 + 24) as u64;
        assert_eq!(seen.len() as u64, total);
        assert!(seen
            .iter()
            .all(|p| p.stage == Stage::Converting && p.total == Some(total)));
        assert_eq!(seen.last().map(|p| p.done), Some(total));
    }

    #[test]
    fn truncated_models_are_refused_without_output() {
        let m = Ct2Model::whisper(32, 1, 1);
        let bytes = m.to_bytes();
        for cut in [0, 3, 10, 40, bytes.len() / 2, bytes.len() - 1] {
            let dir = m.write_dir();
            std::fs::write(dir.path().join("model.bin"), &bytes[..cut]).unwrap();
            let msg = refused(dir.path(), GgmlType::F16);
            assert!(msg.contains("truncated"), "cut at {cut}: {msg}");
        }
    }

    #[test]
    fn unsupported_binary_version_is_refused() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        m.version = 7;
        assert!(refused_model(&m).contains("binary version 7"));
    }

    #[test]
    fn non_whisper_spec_is_refused() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        m.spec = "TransformerSpec".into();
        assert!(refused_model(&m).contains("TransformerSpec"));
    }

    #[test]
    fn unknown_dtype_is_refused() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        m.put("encoder/layer_norm/beta", &[32], 9, vec![0; 32 * 4]);
        assert!(refused_model(&m).contains("unknown dtype 9"));
    }

    #[test]
    fn byte_length_disagreeing_with_shape_is_refused() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        m.put("encoder/layer_norm/beta", &[32], 0, vec![0; 31 * 4]);
        assert!(refused_model(&m).contains("124 bytes"));
    }

    #[test]
    fn missing_tensor_is_refused_by_name() {
        let mut m = Ct2Model::whisper(32, 2, 1);
        m.vars
            .retain(|v| v.name != "encoder/layer_1/ffn/linear_1/bias");
        assert!(refused_model(&m).contains("encoder/layer_1/ffn/linear_1/bias"));
    }

    #[test]
    fn inconsistent_shapes_are_refused() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        m.float("decoder/layer_0/attention/linear_1/weight", &[96, 32]);
        let msg = refused_model(&m);
        assert!(
            msg.contains("[96, 32]") && msg.contains("[64, 32]"),
            "{msg}"
        );

        let mut m = Ct2Model::whisper(32, 1, 1);
        m.float("decoder/position_encodings/encodings", &[TEXT_CTX, 16]);
        assert!(refused_model(&m).contains("widths disagree"));
    }

    #[test]
    fn unsupported_activation_is_refused() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        m.scalar("decoder/activation", 1, vec![0]);
        assert!(refused_model(&m).contains("GELU"));
    }

    #[test]
    fn vocabulary_problems_are_refused() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        m.vocabulary = m.vocabulary.replace("<|endoftext|>", "eot");
        assert!(refused_model(&m).contains("endoftext"));

        let mut m = Ct2Model::whisper(32, 1, 1);
        m.vocabulary.push_str("<|extra|>\n");
        assert!(refused_model(&m).contains("50261 tokens"));

        let m = Ct2Model::whisper(32, 1, 1);
        let dir = m.write_dir();
        std::fs::remove_file(dir.path().join("vocabulary.txt")).unwrap();
        assert!(refused(dir.path(), GgmlType::F16).contains("vocabulary.txt"));

        let dir = m.write_dir();
        std::fs::write(dir.path().join("vocabulary.txt"), [0xff, 0xfe, b'\n']).unwrap();
        assert!(refused(dir.path(), GgmlType::F16).contains("UTF-8"));
    }

    #[test]
    fn directory_without_a_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(refused(dir.path(), GgmlType::F16).contains("model.bin"));
    }

    #[test]
    fn failed_conversion_leaves_an_existing_output_untouched() {
        let mut m = Ct2Model::whisper(32, 1, 1);
        m.vars.retain(|v| v.name != "decoder/layer_norm/gamma");
        let dir = m.write_dir();
        let out = dir.path().join("out.bin");
        std::fs::write(&out, b"previous model").unwrap();
        convert_ct2_dir(dir.path(), &out, GgmlType::F16, &mut |_| {}).unwrap_err();
        assert_eq!(std::fs::read(&out).unwrap(), b"previous model");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }
}
