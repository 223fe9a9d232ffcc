//! WAV files in and out: prompt packs, TTS output, recordings, test vectors.
//!
//! Owns reading any common WAV into mono [`Pcm`] and writing 16-bit mono PCM WAVs. The file
//! functions ([`read`], [`write`]) do blocking file IO on the calling thread; the in-memory
//! ones ([`read_bytes`], [`to_bytes`]) do none. No clock, no threads.
//!
//! # What it reads
//!
//! - 8-, 16-, 24- and 32-bit integer PCM and 32-bit float, also inside
//!   `WAVE_FORMAT_EXTENSIBLE` headers (decoded by `hound`).
//! - G.711 µ-law and A-law WAVs (format tags 7 and 6, 8 bits per sample), decoded with
//!   [`crate::audio::g711`].
//! - Any number of channels, downmixed by averaging; any rate [`SampleRate::new`] accepts.
//! - Headers written by programs streaming to a pipe (espeak-ng `--stdout`, sox and others)
//!   whose data chunk length is 0 or a placeholder of 0x7FFFF000 or more: everything after the
//!   data chunk header is taken as audio (cut to whole sample frames). A smaller length that
//!   overruns the file means the file is truncated, and is an error.
//!
//! Everything else is an [`Error::Wav`] naming the file (`<memory>` for bytes) with a reason a
//! person can act on; a file that cannot be opened is an [`Error::Io`].
//!
//! ```
//! use speech::audio::{wav, Pcm, SampleRate};
//! # fn main() -> speech::Result<()> {
//! let tone = Pcm::from_i16(SampleRate::HZ_8000, &[0, 1000, -1000]);
//! let bytes = wav::to_bytes(&tone)?;
//! assert_eq!(wav::read_bytes(&bytes)?, tone);
//! # Ok(()) }
//! ```

use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::audio::{g711::Law, Pcm, SampleRate};
use crate::{Error, Result};

/// How in-memory WAV data is named in errors.
const MEMORY: &str = "<memory>";

/// Reads a WAV file into mono audio at the file's rate.
pub fn read(path: &Path) -> Result<Pcm> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes).map_err(|reason| wav_error(path, reason))
}

/// Reads WAV data held in memory (e.g. a TTS program's stdout) into mono audio.
pub fn read_bytes(bytes: &[u8]) -> Result<Pcm> {
    parse(bytes).map_err(|reason| wav_error(Path::new(MEMORY), reason))
}

/// Writes audio as a 16-bit PCM mono WAV file at the audio's rate (samples clipped to ±1).
pub fn write(path: &Path, pcm: &Pcm) -> Result<()> {
    let bytes = encode(pcm).map_err(|reason| wav_error(path, reason))?;
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// The bytes of a 16-bit PCM mono WAV file holding the audio (samples clipped to ±1).
pub fn to_bytes(pcm: &Pcm) -> Result<Vec<u8>> {
    encode(pcm).map_err(|reason| wav_error(Path::new(MEMORY), reason))
}

fn wav_error(path: &Path, reason: String) -> Error {
    Error::Wav {
        path: PathBuf::from(path),
        reason,
    }
}

fn encode(pcm: &Pcm) -> std::result::Result<Vec<u8>, String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: pcm.rate().hz(),
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = Cursor::new(Vec::with_capacity(44 + 2 * pcm.len()));
    let mut writer = hound::WavWriter::new(&mut cursor, spec).map_err(|e| e.to_string())?;
    for sample in pcm.to_i16() {
        writer.write_sample(sample).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())?;
    Ok(cursor.into_inner())
}

/// `WAVE_FORMAT_PCM`: integer samples.
const FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_IEEE_FLOAT`.
const FORMAT_FLOAT: u16 = 3;
/// `WAVE_FORMAT_ALAW`.
const FORMAT_ALAW: u16 = 6;
/// `WAVE_FORMAT_MULAW`.
const FORMAT_MULAW: u16 = 7;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format tag is the start of the sub-format GUID.
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Data chunk lengths from here up, when more than the bytes present, are placeholders left
/// by a writer that streamed the file, not a sign of truncation.
const STREAMED_DATA_LEN: u32 = 0x7FFF_F000;

/// What the RIFF chunk walk found: the format and where the audio lies.
struct Layout {
    format: u16,
    channels: u16,
    rate: u32,
    block_align: u16,
    bits: u16,
    /// Where the fmt chunk's body lies.
    fmt: std::ops::Range<usize>,
    /// Offset of the first audio byte.
    data_start: usize,
    /// The data chunk's declared length.
    data_len: u32,
}

fn parse(bytes: &[u8]) -> std::result::Result<Pcm, String> {
    let layout = scan(bytes)?;
    let available = bytes.len() - layout.data_start;
    let block = usize::from(layout.block_align.max(1));
    // Writers streaming to a pipe cannot seek back to fill in the lengths: they leave 0 or a
    // huge placeholder (espeak-ng and sox write 0x7FFFF000, others 0xFFFFFFFF).
    let declared = layout.data_len as usize;
    let streamed =
        layout.data_len == 0 || (layout.data_len >= STREAMED_DATA_LEN && declared > available);
    let data_len = if streamed {
        available - available % block
    } else if declared > available {
        return Err(format!(
            "truncated: the data chunk declares {declared} bytes but only {available} follow"
        ));
    } else {
        declared
    };
    let rate = SampleRate::new(layout.rate)
        .map_err(|_| format!("unusable sample rate {} Hz", layout.rate))?;
    match layout.format {
        FORMAT_ALAW | FORMAT_MULAW => {
            if layout.bits != 8 {
                return Err(format!(
                    "G.711 data must have 8 bits per sample, not {}",
                    layout.bits
                ));
            }
            let law = if layout.format == FORMAT_ALAW {
                Law::A
            } else {
                Law::Mu
            };
            let data = &bytes[layout.data_start..layout.data_start + data_len];
            let samples = data
                .iter()
                .map(|&c| f32::from(law.decode_sample(c)) / 32768.0);
            Ok(Pcm::new(rate, downmix(samples, layout.channels)))
        }
        FORMAT_PCM | FORMAT_FLOAT => {
            // hound gets a canonical copy (fmt chunk, then data chunk, true lengths): that
            // covers streamed lengths and the odd-length chunks before the data, whose pad
            // byte hound does not skip.
            let canonical = canonical_wav(
                &bytes[layout.fmt.clone()],
                &bytes[layout.data_start..layout.data_start + data_len],
            )?;
            decode_with_hound(&canonical, &layout, rate)
        }
        _ => Err(unsupported(&layout)),
    }
}

/// Walks the RIFF chunks up to the data chunk, checking what hound would otherwise report
/// less clearly.
fn scan(bytes: &[u8]) -> std::result::Result<Layout, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let magic_ok = |at: usize, magic: &[u8; 4]| {
        let end = (at + 4).min(bytes.len());
        at < bytes.len() && bytes[at..end] == magic[..end - at]
    };
    if !magic_ok(0, b"RIFF") || (bytes.len() > 8 && !magic_ok(8, b"WAVE")) {
        return Err(match bytes.get(..4) {
            Some(b"RIFX") => "big-endian RIFX files are not supported".into(),
            Some(b"RF64") => "RF64 files are not supported".into(),
            _ => "not a RIFF/WAVE file".into(),
        });
    }
    if bytes.len() < 12 {
        return Err(format!("truncated header ({} bytes)", bytes.len()));
    }
    let mut fmt: Option<std::ops::Range<usize>> = None;
    let mut at = 12;
    loop {
        let Some(header) = bytes.get(at..at + 8) else {
            return Err(if fmt.is_none() {
                "truncated header: no fmt chunk".into()
            } else {
                "truncated header: no data chunk".into()
            });
        };
        let id = &header[..4];
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let body = at + 8;
        if id == b"data" {
            let Some(fmt) = fmt else {
                return Err("no fmt chunk before the data".into());
            };
            return layout(&bytes[fmt.clone()], fmt, body, len);
        }
        let end = body.saturating_add(len as usize);
        if id == b"fmt " {
            if len < 16 {
                return Err(format!("malformed header: fmt chunk of {len} bytes"));
            }
            if end > bytes.len() {
                return Err("truncated header: the fmt chunk is cut short".into());
            }
            fmt = Some(body..end);
        }
        // Chunks are padded to an even length.
        at = end.saturating_add(len as usize % 2);
    }
}

fn layout(
    fmt: &[u8],
    fmt_range: std::ops::Range<usize>,
    data_start: usize,
    data_len: u32,
) -> std::result::Result<Layout, String> {
    // `scan` only passes fmt bodies of 16 bytes or more; offset 24 is read only past 26.
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let mut format = u16_at(0);
    let channels = u16_at(2);
    if channels == 0 {
        return Err("the header declares zero channels".into());
    }
    if format == FORMAT_EXTENSIBLE && fmt.len() >= 26 {
        // WAVEFORMATEXTENSIBLE: cbSize, valid bits, channel mask, then the GUID whose first
        // two bytes are the format tag.
        format = u16_at(24);
    }
    Ok(Layout {
        format,
        channels,
        rate: u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]),
        block_align: u16_at(12),
        bits: u16_at(14),
        fmt: fmt_range,
        data_start,
        data_len,
    })
}

/// A minimal WAV: RIFF header, the given fmt chunk body, and a data chunk.
fn canonical_wav(fmt: &[u8], data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let too_large = |_| "larger than 4 GiB".to_string();
    let fmt_len = u32::try_from(fmt.len()).map_err(too_large)?;
    let data_len = u32::try_from(data.len()).map_err(too_large)?;
    let fmt_pad = fmt.len() % 2;
    let riff_len = 4 + 8 + fmt.len() + fmt_pad + 8 + data.len();
    let mut out = Vec::with_capacity(8 + riff_len);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32::try_from(riff_len).map_err(too_large)?.to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&fmt_len.to_le_bytes());
    out.extend_from_slice(fmt);
    out.resize(out.len() + fmt_pad, 0);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

fn decode_with_hound(
    bytes: &[u8],
    layout: &Layout,
    rate: SampleRate,
) -> std::result::Result<Pcm, String> {
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| match e {
        hound::Error::Unsupported => unsupported(layout),
        hound::Error::FormatError(what) => format!("malformed header: {what}"),
        hound::Error::IoError(_) => "truncated header".into(),
        other => other.to_string(),
    })?;
    let spec = reader.spec();
    let data_error = |e: hound::Error| match e {
        hound::Error::IoError(_) => "truncated: the audio data ends early".to_string(),
        hound::Error::Unsupported | hound::Error::TooWide => unsupported(layout),
        other => format!("corrupt audio data: {other}"),
    };
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<std::result::Result<_, _>>()
            .map_err(data_error)?,
        hound::SampleFormat::Int => {
            if !(1..=32).contains(&spec.bits_per_sample) {
                return Err(unsupported(layout));
            }
            let scale = 1.0 / f64::from(1u32 << (spec.bits_per_sample - 1));
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| (f64::from(s) * scale) as f32))
                .collect::<std::result::Result<_, _>>()
                .map_err(data_error)?
        }
    };
    Ok(Pcm::new(rate, downmix(samples.into_iter(), spec.channels)))
}

fn unsupported(layout: &Layout) -> String {
    let name = match layout.format {
        FORMAT_PCM => "integer PCM",
        2 => "Microsoft ADPCM",
        FORMAT_FLOAT => "IEEE float",
        0x11 => "IMA ADPCM",
        0x31 => "GSM 6.10",
        0x55 => "MP3",
        _ => "unknown format",
    };
    format!(
        "unsupported format: format tag {:#06x} ({name}) with {} bits per sample; convert to \
         16-bit PCM",
        layout.format, layout.bits
    )
}

/// Averages interleaved channels into one.
fn downmix(samples: impl Iterator<Item = f32>, channels: u16) -> Vec<f32> {
    let channels = usize::from(channels.max(1));
    if channels == 1 {
        return samples.collect();
    }
    let interleaved: Vec<f32> = samples.collect();
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV header and data, written by hand so the tests do not trust the writer they test.
    fn wav(format: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let block_align = channels * bits / 8;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVE");
        out.extend_from_slice(b"fmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        out.extend_from_slice(&block_align.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    fn reason(result: Result<Pcm>) -> (PathBuf, String) {
        match result {
            Err(Error::Wav { path, reason }) => (path, reason),
            other => panic!("expected a WAV error, got {other:?}"),
        }
    }

    #[test]
    fn each_integer_width_reads_to_the_same_samples() {
        // Full scale negative, half scale positive, zero, quarter scale negative.
        let expected = [-1.0f32, 0.5, 0.0, -0.25];
        let eight: Vec<u8> = [0u8, 192, 128, 96].to_vec();
        let sixteen: Vec<u8> = [-32768i16, 16384, 0, -8192]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let twenty_four: Vec<u8> = [-8_388_608i32, 4_194_304, 0, -2_097_152]
            .iter()
            .flat_map(|s| s.to_le_bytes()[..3].to_vec())
            .collect();
        let thirty_two: Vec<u8> = [i32::MIN, 1 << 30, 0, -(1 << 29)]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let float: Vec<u8> = expected.iter().flat_map(|s| s.to_le_bytes()).collect();
        for (format, bits, data) in [
            (1, 8, eight),
            (1, 16, sixteen),
            (1, 24, twenty_four),
            (1, 32, thirty_two),
            (3, 32, float),
        ] {
            let pcm = read_bytes(&wav(format, 1, 16_000, bits, &data)).unwrap();
            assert_eq!(pcm.rate(), SampleRate::HZ_16000);
            assert_eq!(pcm.samples(), expected, "{bits}-bit format {format}");
        }
    }

    #[test]
    fn write_then_read_gives_the_16_bit_samples_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompt.wav");
        let pcm = Pcm::from_i16(SampleRate::HZ_22050, &[0, 1, -1, 12345, -32768, 32767]);
        write(&path, &pcm).unwrap();
        assert_eq!(read(&path).unwrap(), pcm);
        assert_eq!(std::fs::read(&path).unwrap(), to_bytes(&pcm).unwrap());
        // And the header says 16-bit mono PCM at the audio's rate.
        let bytes = to_bytes(&pcm).unwrap();
        assert_eq!(bytes, wav(1, 1, 22_050, 16, &bytes[44..]));
    }

    #[test]
    fn out_of_range_samples_are_clipped_when_written() {
        let loud = Pcm::new(SampleRate::HZ_8000, vec![1.5, -3.0]);
        let back = read_bytes(&to_bytes(&loud).unwrap()).unwrap();
        assert_eq!(back.to_i16(), vec![32767, -32768]);
    }

    #[test]
    fn stereo_and_more_channels_are_averaged() {
        let stereo: Vec<u8> = [16384i16, 0, -16384, -16384, 8192, -8192]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let pcm = read_bytes(&wav(1, 2, 48_000, 16, &stereo)).unwrap();
        assert_eq!(pcm.samples(), [0.25, -0.5, 0.0]);
        let three: Vec<u8> = [0.3f32, 0.6, 0.0]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let pcm = read_bytes(&wav(3, 3, 8_000, 32, &three)).unwrap();
        assert_eq!(pcm.len(), 1);
        assert!((pcm.samples()[0] - 0.3).abs() < 1e-6);
    }

    #[test]
    fn g711_wavs_are_decoded() {
        let mu = read_bytes(&wav(7, 1, 8_000, 8, &[0xFF, 0x80, 0x00])).unwrap();
        assert_eq!(mu.to_i16(), vec![0, 32124, -32124]);
        let a = read_bytes(&wav(6, 2, 8_000, 8, &[0xD5, 0xD5, 0xAA, 0x2A])).unwrap();
        assert_eq!(a.to_i16(), vec![8, 0]);
    }

    #[test]
    fn streamed_headers_with_unknown_length_are_read_to_the_end() {
        let data: Vec<u8> = [100i16, -200, 300]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        for sentinel in [0u32, 0x7FFF_F000, u32::MAX] {
            let mut bytes = wav(1, 1, 22_050, 16, &data);
            bytes[4..8].copy_from_slice(&sentinel.to_le_bytes());
            bytes[40..44].copy_from_slice(&sentinel.to_le_bytes());
            // A stray odd byte at the end (a cut-off sample) is dropped.
            bytes.push(7);
            let pcm = read_bytes(&bytes).unwrap();
            assert_eq!(pcm.to_i16(), vec![100, -200, 300], "length {sentinel:#x}");
            assert_eq!(pcm.rate(), SampleRate::HZ_22050);
        }
    }

    /// A `WAVE_FORMAT_EXTENSIBLE` file whose sub-format GUID starts with `format`.
    fn extensible(format: u16, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut bytes = wav(FORMAT_EXTENSIBLE, 1, 8_000, bits, data);
        let mut ext = Vec::new();
        ext.extend_from_slice(&22u16.to_le_bytes()); // cbSize
        ext.extend_from_slice(&bits.to_le_bytes()); // valid bits
        ext.extend_from_slice(&4u32.to_le_bytes()); // channel mask: front centre
        ext.extend_from_slice(&format.to_le_bytes());
        ext.extend_from_slice(&[0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
        bytes.splice(36..36, ext);
        bytes[16..20].copy_from_slice(&40u32.to_le_bytes());
        let riff_len = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff_len.to_le_bytes());
        bytes
    }

    #[test]
    fn extensible_headers_are_read_by_their_sub_format() {
        let pcm = read_bytes(&extensible(FORMAT_PCM, 16, &[0x00, 0x40, 0x00, 0xC0])).unwrap();
        assert_eq!(pcm.samples(), [0.5, -0.5]);
        let mu = read_bytes(&extensible(FORMAT_MULAW, 8, &[0x80, 0xFF])).unwrap();
        assert_eq!(mu.to_i16(), vec![32124, 0]);
        let (_, why) = reason(read_bytes(&extensible(0x55, 16, &[0; 4])));
        assert!(why.contains("unsupported format"), "{why}");
    }

    #[test]
    fn espeak_ng_stdout_is_read() {
        // `espeak-ng --stdout one` (1.51): RIFF and data lengths are 0x7FFFF024 and 0x7FFFF000.
        let bytes = include_bytes!("../../testdata/audio/espeak-ng-stdout-one.wav");
        assert_eq!(&bytes[40..44], &0x7FFF_F000u32.to_le_bytes());
        let pcm = read_bytes(bytes).unwrap();
        assert_eq!(pcm.rate(), SampleRate::HZ_22050);
        assert_eq!(pcm.len(), (bytes.len() - 44) / 2);
        assert!(pcm.peak() > 0.1, "the word is missing: peak {}", pcm.peak());
    }

    #[test]
    fn chunks_before_the_data_are_skipped() {
        let mut bytes = wav(1, 1, 8_000, 16, &[1, 0, 2, 0]);
        // Insert an odd-sized LIST chunk (padded to even) between fmt and data.
        let list = [b'L', b'I', b'S', b'T', 3, 0, 0, 0, b'a', b'b', b'c', 0];
        bytes.splice(36..36, list);
        let riff_len = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff_len.to_le_bytes());
        assert_eq!(read_bytes(&bytes).unwrap().to_i16(), vec![1, 2]);
    }

    #[test]
    fn a_header_without_samples_is_empty_audio() {
        let pcm = read_bytes(&wav(1, 1, 16_000, 16, &[])).unwrap();
        assert!(pcm.is_empty());
        assert_eq!(pcm.rate(), SampleRate::HZ_16000);
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let valid = wav(1, 1, 8_000, 16, &[0; 32]);
        let mut zero_channels = valid.clone();
        zero_channels[22..24].copy_from_slice(&0u16.to_le_bytes());
        let mut zero_rate = valid.clone();
        zero_rate[24..28].copy_from_slice(&0u32.to_le_bytes());
        let cases: [(&str, Vec<u8>, &str); 9] = [
            (
                "garbage.wav",
                vec![
                    0x13, 0x37, 0xFF, 0x00, 0x42, 0x99, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                ],
                "not a RIFF/WAVE file",
            ),
            (
                "notes.txt",
                b"Hello, this is not audio at all.\n".to_vec(),
                "not a RIFF/WAVE file",
            ),
            ("empty.wav", Vec::new(), "empty"),
            ("short.wav", valid[..30].to_vec(), "truncated header"),
            ("cut.wav", valid[..60].to_vec(), "truncated"),
            ("mono0.wav", zero_channels, "zero channels"),
            ("rate0.wav", zero_rate, "sample rate 0 Hz"),
            (
                "adpcm.wav",
                wav(2, 1, 8_000, 4, &[0; 8]),
                "unsupported format",
            ),
            ("riff.wav", b"RIFF".to_vec(), "truncated header"),
        ];
        for (name, bytes, expected) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let (named, why) = reason(read(&path));
            assert_eq!(named, path, "{name}");
            assert!(why.contains(expected), "{name}: {why:?} lacks {expected:?}");
            let (named, why_in_memory) = reason(read_bytes(&bytes));
            assert_eq!(named, Path::new("<memory>"));
            assert_eq!(why_in_memory, why);
        }
    }

    #[test]
    fn the_error_message_names_the_file() {
        let path = Path::new("/prompts/mn/greeting.wav");
        let message = wav_error(path, "not a RIFF/WAVE file".into()).to_string();
        assert!(message.contains("/prompts/mn/greeting.wav"), "{message}");
        assert!(message.contains("not a RIFF/WAVE file"), "{message}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.wav");
        match read(&path) {
            Err(Error::Io {
                path: named,
                source,
            }) => {
                assert_eq!(named, path);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an IO error, got {other:?}"),
        }
        let nowhere = dir.path().join("no/such/dir/out.wav");
        assert!(matches!(
            write(
                &nowhere,
                &Pcm::silence(SampleRate::HZ_8000, std::time::Duration::from_millis(1))
            ),
            Err(Error::Io { .. })
        ));
    }
}
