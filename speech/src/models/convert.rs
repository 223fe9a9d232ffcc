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
