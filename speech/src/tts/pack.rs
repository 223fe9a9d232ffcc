//! Recorded prompt packs: a WAV per prompt id and locale, plus digit and number clips, that
//! override synthesis (how real hotlines sound, and the only good route to Mongolian today).
//!
//! Layout under the pack's root:
//!
//! ```text
//! <root>/<locale>/<PROMPT_ID>.wav      e.g. mn/GREET.wav, en/MAIN.wav
//! <root>/<locale>/digits/<d>.wav       d = 0 … 9
//! <root>/<locale>/numbers/<n>.wav      optional, any n (e.g. 30 for "гучин")
//! ```
//!
//! `<locale>` is a [`Locale`] code (`mn`, `en`). Prompt ids are the ids of
//! `domain/prompts.tsv`: letters, digits and `_`, compared case-insensitively and reported in
//! upper case. Any WAV format is accepted (mono or downmixed, any rate); clips are converted to
//! the rate asked for when they are looked up.
//!
//! Loading reads and decodes every clip once, at [`PromptPack::open`]; lookups do no IO. A
//! missing root is an empty pack (synthesis covers everything). A clip that cannot be used (not
//! a WAV, empty, misnamed, duplicated) does not fail the load: the hotline keeps running on
//! the rest and on synthesis. It is skipped, logged with `tracing::warn!`, and kept as an
//! [`Error::PromptPack`] naming the file in [`PromptPack::problems`], for health checks and
//! the operator. To reload a pack, open it again.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{decode_wav, to_rate};
use crate::audio::{Pcm, SampleRate};
use crate::{Error, Locale, Result};

/// The largest clip file accepted (about 30 minutes of 16 kHz 16-bit audio).
pub const MAX_CLIP_BYTES: u64 = 64 * 1024 * 1024;

/// Recorded prompts, digits and numbers per locale, decoded in memory.
#[derive(Debug, Default)]
pub struct PromptPack {
    root: PathBuf,
    locales: BTreeMap<Locale, LocaleClips>,
    problems: Vec<Error>,
}

#[derive(Debug, Default)]
struct LocaleClips {
    prompts: BTreeMap<String, Pcm>,
    digits: [Option<Pcm>; 10],
    numbers: BTreeMap<u64, Pcm>,
}

impl PromptPack {
    /// Loads the pack under `root` (see the module docs for the layout).
    ///
    /// A missing `root` gives an empty pack. `root` existing but not a readable directory is
    /// an error; unusable clips are skipped and listed in [`PromptPack::problems`].
    pub fn open(root: &Path) -> Result<Self> {
        let mut pack = PromptPack {
            root: root.to_owned(),
            ..PromptPack::default()
        };
        match fs::metadata(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(root = %root.display(), "no prompt pack; synthesis only");
                return Ok(pack);
            }
            Err(e) => return Err(Error::io(root, e)),
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::PromptPack {
                    path: root.to_owned(),
                    reason: "not a directory".into(),
                })
            }
            Ok(_) => {}
        }
        for locale in Locale::ALL {
            let dir = root.join(locale.code());
            if !dir.is_dir() {
                continue;
            }
            let clips = pack.load_locale(&dir)?;
            pack.locales.insert(locale, clips);
        }
        for problem in &pack.problems {
            tracing::warn!(%problem, "prompt pack clip skipped");
        }
        tracing::debug!(
            root = %root.display(),
            prompts = pack.locales.values().map(|c| c.prompts.len()).sum::<usize>(),
            problems = pack.problems.len(),
            "prompt pack loaded"
        );
        Ok(pack)
    }

    /// The directory this pack was loaded from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The recorded prompt `id` (case-insensitive) for `locale` at `rate`, if the pack has it.
    pub fn prompt(&self, locale: Locale, id: &str, rate: SampleRate) -> Result<Option<Pcm>> {
        let clip = self
            .locales
            .get(&locale)
            .and_then(|c| c.prompts.get(&id.to_ascii_uppercase()));
        clip.map(|pcm| to_rate(pcm, rate)).transpose()
    }

    /// The recorded digit `d` (0–9) for `locale` at `rate`, if the pack has it.
    pub fn digit(&self, locale: Locale, d: u8, rate: SampleRate) -> Result<Option<Pcm>> {
        if d > 9 {
            return Err(Error::InvalidArgument(format!("{d} is not a digit")));
        }
        let clip = self
            .locales
            .get(&locale)
            .and_then(|c| c.digits[usize::from(d)].as_ref());
        clip.map(|pcm| to_rate(pcm, rate)).transpose()
    }

    /// The recorded number `n` for `locale` at `rate`, if the pack has it.
    pub fn number(&self, locale: Locale, n: u64, rate: SampleRate) -> Result<Option<Pcm>> {
        let clip = self.locales.get(&locale).and_then(|c| c.numbers.get(&n));
        clip.map(|pcm| to_rate(pcm, rate)).transpose()
    }

    /// The prompt ids recorded for `locale`, in upper case, sorted.
    pub fn ids(&self, locale: Locale) -> Vec<String> {
        self.locales
            .get(&locale)
            .map(|c| c.prompts.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether every ten digits are recorded for `locale` (so numbers can be read from clips).
    pub fn has_all_digits(&self, locale: Locale) -> bool {
        self.locales
            .get(&locale)
            .is_some_and(|c| c.digits.iter().all(Option::is_some))
    }

    /// True when nothing at all is recorded.
    pub fn is_empty(&self) -> bool {
        self.locales.values().all(|c| {
            c.prompts.is_empty() && c.numbers.is_empty() && c.digits.iter().all(Option::is_none)
        })
    }

    /// The clips that were skipped while loading, each an [`Error::PromptPack`] naming the file.
    pub fn problems(&self) -> &[Error] {
        &self.problems
    }

    fn load_locale(&mut self, dir: &Path) -> Result<LocaleClips> {
        let mut clips = LocaleClips::default();
        for (path, name) in wav_files(dir)? {
            match name.to_ascii_uppercase() {
                id if is_prompt_id(&id) => match clips.prompts.entry(id) {
                    Entry::Occupied(taken) => {
                        let reason = format!("a second recording of prompt {}", taken.key());
                        self.problem(&path, reason);
                    }
                    Entry::Vacant(slot) => {
                        if let Some(pcm) = self.load_clip(&path) {
                            slot.insert(pcm);
                        }
                    }
                },
                _ => self.problem(&path, "a prompt id has only letters, digits and `_`".into()),
            }
        }
        let digits = dir.join("digits");
        if digits.is_dir() {
            for (path, name) in wav_files(&digits)? {
                match name.parse::<u8>() {
                    Ok(d) if d <= 9 && name.len() == 1 => {
                        if let Some(pcm) = self.load_clip(&path) {
                            clips.digits[usize::from(d)] = Some(pcm);
                        }
                    }
                    _ => self.problem(&path, "digit clips are named 0.wav … 9.wav".into()),
                }
            }
        }
        let numbers = dir.join("numbers");
        if numbers.is_dir() {
            for (path, name) in wav_files(&numbers)? {
                match name.parse::<u64>().map(|n| clips.numbers.entry(n)) {
                    Ok(Entry::Occupied(taken)) => {
                        let reason = format!("a second recording of number {}", taken.key());
                        self.problem(&path, reason);
                    }
                    Ok(Entry::Vacant(slot)) => {
                        if let Some(pcm) = self.load_clip(&path) {
                            slot.insert(pcm);
                        }
                    }
                    Err(_) => self.problem(&path, "number clips are named <n>.wav".into()),
                }
            }
        }
        Ok(clips)
    }

    /// Reads and decodes one clip; a clip that cannot be used becomes a problem.
    fn load_clip(&mut self, path: &Path) -> Option<Pcm> {
        let loaded = fs::metadata(path)
            .map_err(|e| e.to_string())
            .and_then(|meta| {
                if meta.len() > MAX_CLIP_BYTES {
                    Err(format!("{} bytes, more than {MAX_CLIP_BYTES}", meta.len()))
                } else {
                    fs::read(path).map_err(|e| e.to_string())
                }
            })
            .and_then(|bytes| decode_wav(&bytes).map_err(|e| e.to_string()))
            .and_then(|pcm| {
                if pcm.is_empty() {
                    Err("no audio in it".to_owned())
                } else {
                    Ok(pcm)
                }
            });
        match loaded {
            Ok(pcm) => Some(pcm),
            Err(reason) => {
                self.problem(path, reason);
                None
            }
        }
    }

    fn problem(&mut self, path: &Path, reason: String) {
        self.problems.push(Error::PromptPack {
            path: path.to_owned(),
            reason,
        });
    }
}

/// The `*.wav` files (any case of the extension) directly in `dir`, with their stems, sorted
/// by file name so that loading is deterministic. Other entries are ignored.
fn wav_files(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_wav = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("wav"));
        if !is_wav || !path.is_file() {
            continue;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((path, stem));
    }
    files.sort();
    Ok(files)
}

fn is_prompt_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, rate: u32, samples: usize) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..samples {
            w.write_sample(((i % 100) as i16 - 50) * 200).unwrap();
        }
        w.finalize().unwrap();
    }

    fn sample_pack() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_wav(&root.join("en/GREET.wav"), 16_000, 16_000);
        write_wav(&root.join("en/main.WAV"), 16_000, 8_000);
        for d in 0..10 {
            write_wav(&root.join(format!("en/digits/{d}.wav")), 8_000, 4_000);
        }
        write_wav(&root.join("en/numbers/30.wav"), 8_000, 2_000);
        write_wav(&root.join("mn/GREET.wav"), 8_000, 800);
        fs::write(root.join("en/README.txt"), "notes").unwrap();
        dir
    }

    #[test]
    fn prompts_digits_and_numbers_are_found_per_locale() {
        let dir = sample_pack();
        let pack = PromptPack::open(dir.path()).unwrap();
        assert!(pack.problems().is_empty(), "{:?}", pack.problems());
        assert_eq!(pack.ids(Locale::En), ["GREET", "MAIN"]);
        assert_eq!(pack.ids(Locale::Mn), ["GREET"]);

        let greet = pack
            .prompt(Locale::En, "greet", SampleRate::HZ_16000)
            .unwrap()
            .unwrap();
        assert_eq!(greet.len(), 16_000);
        let mn = pack
            .prompt(Locale::Mn, "GREET", SampleRate::HZ_16000)
            .unwrap()
            .unwrap();
        assert_eq!((mn.rate(), mn.len()), (SampleRate::HZ_16000, 1_600));
        assert!(pack
            .prompt(Locale::Mn, "MAIN", SampleRate::HZ_8000)
            .unwrap()
            .is_none());

        let seven = pack
            .digit(Locale::En, 7, SampleRate::HZ_8000)
            .unwrap()
            .unwrap();
        assert_eq!(seven.len(), 4_000);
        assert!(pack.has_all_digits(Locale::En));
        assert!(!pack.has_all_digits(Locale::Mn));
        assert!(pack
            .digit(Locale::Mn, 7, SampleRate::HZ_8000)
            .unwrap()
            .is_none());
        assert!(matches!(
            pack.digit(Locale::En, 10, SampleRate::HZ_8000),
            Err(Error::InvalidArgument(_))
        ));
        assert!(pack
            .number(Locale::En, 30, SampleRate::HZ_8000)
            .unwrap()
            .is_some());
        assert!(pack
            .number(Locale::En, 31, SampleRate::HZ_8000)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_missing_root_is_an_empty_pack() {
        let dir = tempfile::tempdir().unwrap();
        let pack = PromptPack::open(&dir.path().join("nothing-here")).unwrap();
        assert!(pack.is_empty());
        assert!(pack.ids(Locale::En).is_empty());
        assert!(pack
            .prompt(Locale::En, "GREET", SampleRate::HZ_8000)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_root_that_is_a_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pack");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            PromptPack::open(&file),
            Err(Error::PromptPack { .. })
        ));
    }

    #[test]
    fn bad_clips_are_skipped_and_named_while_the_rest_loads() {
        let dir = sample_pack();
        let root = dir.path();
        fs::write(root.join("en/BYE.wav"), "this is not audio").unwrap();
        let mut truncated = fs::read(root.join("en/GREET.wav")).unwrap();
        truncated.truncate(30);
        fs::write(root.join("en/NOMATCH.wav"), truncated).unwrap();
        write_wav(&root.join("en/EMPTY.wav"), 8_000, 0);
        write_wav(&root.join("en/two words.wav"), 8_000, 100);
        write_wav(&root.join("en/greet.wav"), 8_000, 100);
        write_wav(&root.join("en/digits/12.wav"), 8_000, 100);
        write_wav(&root.join("en/numbers/thirty.wav"), 8_000, 100);

        let pack = PromptPack::open(root).unwrap();
        assert_eq!(pack.ids(Locale::En), ["GREET", "MAIN"]);
        let mut named: Vec<String> = pack
            .problems()
            .iter()
            .map(|e| match e {
                Error::PromptPack { path, .. } => {
                    path.strip_prefix(root).unwrap().display().to_string()
                }
                other => panic!("unexpected problem {other}"),
            })
            .collect();
        named.sort();
        assert_eq!(
            named,
            [
                "en/BYE.wav",
                "en/EMPTY.wav",
                "en/NOMATCH.wav",
                "en/digits/12.wav",
                "en/greet.wav",
                "en/numbers/thirty.wav",
                "en/two words.wav",
            ]
        );
        // The first of the two GREET recordings (sorted by name: upper case first) is kept.
        let greet = pack
            .prompt(Locale::En, "GREET", SampleRate::HZ_16000)
            .unwrap()
            .unwrap();
        assert_eq!(greet.len(), 16_000);
    }
}
