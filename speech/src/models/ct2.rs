//! Reader for CTranslate2's `model.bin` (binary versions 5 and 6, little-endian).
//!
//! Layout: `u32` version · string spec name · `u32` spec revision · `u32` variable count, then
//! per variable: string name · `u8` rank · `u32` × rank shape · `u8` dtype · `u32` byte length
//! · raw data; then `u32` alias count and (alias, target) string pairs. A string is a `u16`
//! length that counts a trailing NUL, then the bytes.
//!
//! [`Ct2Index::read`] scans the header and records where each variable's data lies, skipping
//! the data itself, so a model of any size is indexed in a few kilobytes;
//! [`Ct2Index::read_rows`] then reads and decodes one slice of one variable at a time. The
//! input is a [`PartsReader`]: one file, or several (`model.bin.part1`, `.part2`, …) read as
//! their concatenation without joining them on disk. File IO only; no threads.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use crate::{Error, Result};

/// The binary versions this reader understands.
const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u32> = 5..=6;
/// Sanity bound on a variable's rank.
const MAX_RANK: usize = 8;
/// How many alias hops [`Ct2Index::var`] follows before calling the aliases circular.
const MAX_ALIAS_DEPTH: usize = 8;

/// A CTranslate2 element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// Signed 8-bit integer (quantized weights, flags).
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    /// The size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    /// Whether values of this type are floating point.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F16 | Self::Bf16)
    }
}

/// Where one variable lies in the model and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarInfo {
    /// The variable's name, e.g. `encoder/conv1/weight`.
    pub name: String,
    /// Its shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: DType,
    /// Byte offset of its data in the (concatenated) model.
    pub offset: u64,
}

impl VarInfo {
    /// Number of rows: the first dimension (1 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per row: the product of the other dimensions (1 for a vector or scalar).
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The header of a `model.bin`: its variables, where their data is, and its aliases.
#[derive(Clone, Debug)]
pub struct Ct2Index {
    path: PathBuf,
    /// The spec name, `WhisperSpec` for Whisper models.
    pub spec: String,
    /// The spec revision.
    pub revision: u32,
    vars: Vec<VarInfo>,
    by_name: HashMap<String, usize>,
    aliases: HashMap<String, String>,
}

impl Ct2Index {
    /// Scans the header of a model from `src`; `path` names it in errors.
    pub fn read(src: &mut PartsReader, path: &Path) -> Result<Self> {
        let total = src.len();
        let mut r = HeaderReader { src, path };
        let version = r.u32("binary version")?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(r.bad(format!(
                "unsupported CTranslate2 binary version {version} (this reader takes {}..={})",
                SUPPORTED_VERSIONS.start(),
                SUPPORTED_VERSIONS.end()
            )));
        }
        let spec = r.string("spec name")?;
        let revision = r.u32("spec revision")?;
        let count = r.u32("variable count")?;
        let mut vars: Vec<VarInfo> = Vec::with_capacity(count.min(4096) as usize);
        let mut by_name = HashMap::new();
        for i in 0..count {
            let name = r.string("variable name")?;
            let rank = usize::from(r.u8("rank")?);
            if rank > MAX_RANK {
                return Err(r.bad(format!("variable {name:?} has rank {rank}")));
            }
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(r.u32("dimension")? as usize);
            }
            let code = r.u8("dtype")?;
            let dtype = DType::from_code(code)
                .ok_or_else(|| r.bad(format!("variable {name:?} has unknown dtype {code}")))?;
            let byte_len = u64::from(r.u32("byte length")?);
            let expected = shape
                .iter()
                .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64));
            if expected != Some(byte_len) {
                return Err(r.bad(format!(
                    "variable {name:?} of shape {shape:?} and dtype {dtype:?} has {byte_len} bytes"
                )));
            }
            let offset = r.position()?;
            let end = offset + byte_len;
            if end > total {
                return Err(r.bad(format!(
                    "truncated: variable {name:?} ends at byte {end} of a {total}-byte file"
                )));
            }
            r.skip_to(end)?;
            if by_name.insert(name.clone(), vars.len()).is_some() {
                return Err(r.bad(format!("variable {name:?} appears twice")));
            }
            vars.push(VarInfo {
                name,
                shape,
                dtype,
                offset,
            });
            debug_assert_eq!(vars.len(), i as usize + 1);
        }
        let alias_count = r.u32("alias count")?;
        let mut aliases = HashMap::new();
        for _ in 0..alias_count {
            let alias = r.string("alias name")?;
            let target = r.string("alias target")?;
            aliases.insert(alias, target);
        }
        Ok(Self {
            path: path.to_path_buf(),
            spec,
            revision,
            vars,
            by_name,
            aliases,
        })
    }

    /// The model's path, for error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All variables in file order.
    pub fn vars(&self) -> &[VarInfo] {
        &self.vars
    }

    /// The variable `name`, following aliases; `Ok(None)` if there is none, an error if an
    /// alias points nowhere or aliases loop.
    pub fn var(&self, name: &str) -> Result<Option<&VarInfo>> {
        let mut current = name;
        for _ in 0..=MAX_ALIAS_DEPTH {
            if let Some(&i) = self.by_name.get(current) {
                return Ok(Some(&self.vars[i]));
            }
            match self.aliases.get(current) {
                Some(target) => current = target,
                None if current == name => return Ok(None),
                None => {
                    return Err(self.bad(format!(
                        "alias {name:?} points to {current:?}, which does not exist"
                    )))
                }
            }
        }
        Err(self.bad(format!("aliases starting at {name:?} form a loop")))
    }

    /// The variable `name`, which must exist.
    pub fn require(&self, name: &str) -> Result<&VarInfo> {
        self.var(name)?
            .ok_or_else(|| self.bad(format!("missing variable {name:?}")))
    }

    /// The value of an integer scalar variable (`encoder/num_heads`, flags), if present.
    pub fn scalar_int(&self, src: &mut PartsReader, name: &str) -> Result<Option<i64>> {
        let Some(var) = self.var(name)? else {
            return Ok(None);
        };
        if var.elements() != 1 {
            return Err(self.bad(format!(
                "{name:?} should be a scalar, has shape {:?}",
                var.shape
            )));
        }
        let mut buf = [0u8; 4];
        let bytes = &mut buf[..var.dtype.size()];
        self.read_at(src, var.offset, bytes)?;
        let value = match var.dtype {
            DType::I8 => i64::from(i8::from_le_bytes([bytes[0]])),
            DType::I16 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            other => {
                return Err(self.bad(format!("{name:?} should be an integer, is {other:?}")));
            }
        };
        Ok(Some(value))
    }

    /// Reads rows `rows` of `var` (rows are the first dimension) as `f32`, appending to `out`.
    ///
    /// Float types are widened; integer types are dequantized with `scale` (one divisor per
    /// row of the whole variable, or a single one for all rows): value = q / scale.
    pub fn read_rows(
        &self,
        src: &mut PartsReader,
        var: &VarInfo,
        rows: std::ops::Range<usize>,
        scale: Option<&[f32]>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        if rows.start > rows.end || rows.end > var.rows() {
            return Err(Error::InvalidArgument(format!(
                "rows {rows:?} of {:?} with {} rows",
                var.name,
                var.rows()
            )));
        }
        let row_len = var.row_len();
        let size = var.dtype.size();
        let mut bytes = vec![0u8; rows.len() * row_len * size];
        self.read_at(
            src,
            var.offset + (rows.start * row_len * size) as u64,
            &mut bytes,
        )?;
        out.reserve(rows.len() * row_len);
        match var.dtype {
            DType::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            DType::F16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            DType::Bf16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            DType::I8 | DType::I16 | DType::I32 => {
                let scale = scale.ok_or_else(|| {
                    self.bad(format!(
                        "{:?} is {:?} without a {:?}",
                        var.name,
                        var.dtype,
                        format!("{}_scale", var.name)
                    ))
                })?;
                if scale.len() != 1 && scale.len() != var.rows() {
                    return Err(self.bad(format!(
                        "{:?} has {} rows but {} scales",
                        var.name,
                        var.rows(),
                        scale.len()
                    )));
                }
                for (i, row) in bytes.chunks_exact(row_len.max(1) * size).enumerate() {
                    let s = match scale {
                        [one] => *one,
                        per_row => per_row[rows.start + i],
                    };
                    for q in row.chunks_exact(size) {
                        let q = match q {
                            [a] => f32::from(i8::from_le_bytes([*a])),
                            [a, b] => f32::from(i16::from_le_bytes([*a, *b])),
                            [a, b, c, d] => i32::from_le_bytes([*a, *b, *c, *d]) as f32,
                            _ => unreachable!("chunks_exact yields elements of the dtype's size"),
                        };
                        out.push(q / s);
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads a whole float variable (a scale vector) as `f32`.
    pub fn read_all_float(&self, src: &mut PartsReader, var: &VarInfo) -> Result<Vec<f32>> {
        if !var.dtype.is_float() {
            return Err(self.bad(format!("{:?} should be floating point", var.name)));
        }
        let mut out = Vec::with_capacity(var.elements());
        self.read_rows(src, var, 0..var.rows(), None, &mut out)?;
        Ok(out)
    }

    fn read_at(&self, src: &mut PartsReader, offset: u64, buf: &mut [u8]) -> Result<()> {
        src.seek(SeekFrom::Start(offset))
            .and_then(|_| src.read_exact(buf))
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => self.bad("truncated file".into()),
                _ => Error::io(&self.path, e),
            })
    }

    /// A [`Error::BadModel`] naming this model.
    pub fn bad(&self, reason: String) -> Error {
        Error::BadModel {
            path: self.path.clone(),
            reason,
        }
    }
}

/// Reads the header's fields, turning a short read into "truncated".
struct HeaderReader<'a> {
    src: &'a mut PartsReader,
    path: &'a Path,
}

impl HeaderReader<'_> {
    fn bad(&self, reason: String) -> Error {
        Error::BadModel {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn exact<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.src.read_exact(&mut buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => self.bad(format!("truncated while reading the {what}")),
            _ => Error::io(self.path, e),
        })?;
        Ok(buf)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.exact::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.exact::<4>(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = usize::from(u16::from_le_bytes(self.exact::<2>(what)?));
        let mut bytes = vec![0u8; len];
        self.src
            .read_exact(&mut bytes)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => {
                    self.bad(format!("truncated while reading the {what}"))
                }
                _ => Error::io(self.path, e),
            })?;
        if bytes.pop() != Some(0) {
            return Err(self.bad(format!("the {what} is not NUL-terminated")));
        }
        String::from_utf8(bytes).map_err(|_| self.bad(format!("the {what} is not UTF-8")))
    }

    fn position(&mut self) -> Result<u64> {
        self.src
            .stream_position()
            .map_err(|e| Error::io(self.path, e))
    }

    fn skip_to(&mut self, offset: u64) -> Result<()> {
        self.src
            .seek(SeekFrom::Start(offset))
            .map(drop)
            .map_err(|e| Error::io(self.path, e))
    }
}

/// Several files read as one: `model.bin`, or `model.bin.part1`, `model.bin.part2`, … in
/// order. Implements [`Read`] and [`Seek`] over their concatenation.
#[derive(Debug)]
pub struct PartsReader {
    parts: Vec<(File, u64)>,
    len: u64,
    pos: u64,
}

impl PartsReader {
    /// Opens `paths` in order.
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut parts = Vec::with_capacity(paths.len());
        let mut len = 0u64;
        for p in paths {
            let file = File::open(p).map_err(|e| Error::io(p, e))?;
            let size = file.metadata().map_err(|e| Error::io(p, e))?.len();
            len += size;
            parts.push((file, size));
        }
        Ok(Self { parts, len, pos: 0 })
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for PartsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut start = 0u64;
        for (file, size) in &mut self.parts {
            let end = start + *size;
            if self.pos < end {
                let within = self.pos - start;
                let room = usize::try_from(end - self.pos).unwrap_or(usize::MAX);
                let want = buf.len().min(room);
                file.seek(SeekFrom::Start(within))?;
                let n = file.read(&mut buf[..want])?;
                self.pos += n as u64;
                return Ok(n);
            }
            start = end;
        }
        Ok(0)
    }
}

impl Seek for PartsReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_read_as_their_concatenation_across_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"hello ").unwrap();
        std::fs::write(&b, b"world").unwrap();
        let mut r = PartsReader::open(&[a, b]).unwrap();
        assert_eq!(r.len(), 11);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"hello world");
        r.seek(SeekFrom::Start(4)).unwrap();
        let mut mid = [0u8; 4];
        r.read_exact(&mut mid).unwrap();
        assert_eq!(&mid, b"o wo");
    }

    #[test]
    fn reading_past_the_end_is_an_eof() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"abc").unwrap();
        let mut r = PartsReader::open(&[a]).unwrap();
        r.seek(SeekFrom::Start(2)).unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(
            r.read_exact(&mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn dtype_codes_follow_ctranslate2() {
        assert_eq!(DType::from_code(0), Some(DType::F32));
        assert_eq!(DType::from_code(1), Some(DType::I8));
        assert_eq!(DType::from_code(4), Some(DType::F16));
        assert_eq!(DType::from_code(5), Some(DType::Bf16));
        assert_eq!(DType::from_code(6), None);
    }
}
