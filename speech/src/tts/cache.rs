//! The render cache: synthesized audio kept in a sled directory, so a static prompt is
//! synthesized once and then read back.
//!
//! The cache is loss-tolerant by design: it may lose recent entries on a crash (sled flushes
//! in the background), and every failure degrades to synthesizing again. A [`CacheKey`] is the
//! SHA-256 of everything that shapes the audio: engine, voice, speech rate, output sample rate
//! and the segments, in an unambiguous length-prefixed encoding. A value is
//!
//! ```text
//! format version (1 byte) | sample rate Hz (u32 LE) | sample count n (u32 LE)
//! | first 8 bytes of SHA-256 of the samples | n × i16 LE samples
//! ```
//!
//! A value that does not check out (other version, wrong rate or length, digest mismatch) is
//! treated as a miss, logged, and overwritten by the fresh rendering.
//!
//! Entries are never evicted: wrap only engines whose speech repeats (prompts, menus), and
//! speak one-off content (case numbers, transcripts) with the bare engine, see
//! [`CachedSynthesizer::inner`]. IO: the sled directory; sled runs its own flusher thread.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Segment, SpeakOptions, SpeechRate, Synthesizer};
use crate::audio::{Pcm, SampleRate};
use crate::{Error, Locale, Result};

/// What identifies one rendering: a SHA-256 digest.
///
/// A `None` voice is keyed as "the engine's default", and the engine's version is not part of
/// the key: after changing an engine's default voice or upgrading the program, call
/// [`RenderCache::clear`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key for `engine` speaking `speech` as `opts` say.
    pub fn new(engine: &str, speech: &[Segment], opts: &SpeakOptions) -> Self {
        fn bytes(hash: &mut Sha256, b: &[u8]) {
            hash.update((b.len() as u64).to_le_bytes());
            hash.update(b);
        }
        let mut hash = Sha256::new();
        hash.update(b"speech.tts.render");
        hash.update([RenderCache::FORMAT_VERSION]);
        bytes(&mut hash, engine.as_bytes());
        match &opts.voice {
            None => hash.update([0]),
            Some(voice) => {
                hash.update([1]);
                bytes(&mut hash, voice.as_bytes());
            }
        }
        hash.update([match opts.rate {
            SpeechRate::Normal => 0,
            SpeechRate::Slow => 1,
            SpeechRate::Slower => 2,
        }]);
        hash.update(opts.output_rate.hz().to_le_bytes());
        for segment in speech {
            match segment {
                Segment::Text(text) => {
                    hash.update(b"T");
                    bytes(&mut hash, text.as_bytes());
                }
                Segment::Pause(pause) => {
                    hash.update(b"P");
                    hash.update(pause.as_nanos().to_le_bytes());
                }
            }
        }
        Self(hash.finalize().into())
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Rendered audio in a sled database. Cloning shares the same database.
#[derive(Clone, Debug)]
pub struct RenderCache {
    db: sled::Db,
}

const HEADER_LEN: usize = 1 + 4 + 4 + 8;

impl RenderCache {
    /// The value format written by this code; other versions read as misses.
    pub const FORMAT_VERSION: u8 = 1;

    /// Opens (creating if needed) the cache in directory `dir`. Fails with [`Error::Cache`]
    /// when sled cannot open it (for example another process holds it).
    pub fn open(dir: &Path) -> Result<Self> {
        let db = open_sled(dir).map_err(|e| Error::Cache(format!("{}: {e}", dir.display())))?;
        Ok(Self { db })
    }

    /// The audio stored under `key`, if it is there, intact and at `rate`.
    ///
    /// [`Error::Cache`] only when the database cannot be read; a damaged entry is a miss.
    pub fn get(&self, key: &CacheKey, rate: SampleRate) -> Result<Option<Pcm>> {
        let Some(value) = self
            .db
            .get(key.0)
            .map_err(|e| Error::Cache(e.to_string()))?
        else {
            return Ok(None);
        };
        match decode_value(&value, rate) {
            Ok(pcm) => Ok(Some(pcm)),
            Err(reason) => {
                tracing::warn!(reason, "damaged render-cache entry; rendering again");
                Ok(None)
            }
        }
    }

    /// Stores `pcm` under `key` (as 16-bit samples), replacing what was there.
    pub fn put(&self, key: &CacheKey, pcm: &Pcm) -> Result<()> {
        let value = encode_value(pcm)?;
        self.db
            .insert(key.0, value)
            .map_err(|e| Error::Cache(e.to_string()))?;
        Ok(())
    }

    /// Writes everything to disk now (sled otherwise does so every half second).
    pub fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .map(drop)
            .map_err(|e| Error::Cache(e.to_string()))
    }

    /// Number of stored renderings.
    pub fn len(&self) -> usize {
        self.db.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.db.is_empty()
    }

    /// Forgets every rendering (after a voice or engine upgrade, say).
    pub fn clear(&self) -> Result<()> {
        self.db.clear().map_err(|e| Error::Cache(e.to_string()))
    }
}

fn samples_digest(samples: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(samples);
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn encode_value(pcm: &Pcm) -> Result<Vec<u8>> {
    let n = u32::try_from(pcm.len())
        .map_err(|_| Error::Cache(format!("{} samples are too many to cache", pcm.len())))?;
    let samples: Vec<u8> = pcm.to_i16().iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut value = Vec::with_capacity(HEADER_LEN + samples.len());
    value.push(RenderCache::FORMAT_VERSION);
    value.extend_from_slice(&pcm.rate().hz().to_le_bytes());
    value.extend_from_slice(&n.to_le_bytes());
    value.extend_from_slice(&samples_digest(&samples));
    value.extend_from_slice(&samples);
    Ok(value)
}

fn decode_value(value: &[u8], rate: SampleRate) -> Result<Pcm, String> {
    if value.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than a header", value.len()));
    }
    // In bounds: both fields lie inside the header, checked just above.
    let u32_at =
        |at: usize| u32::from_le_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]]);
    if value[0] != RenderCache::FORMAT_VERSION {
        return Err(format!("format version {}", value[0]));
    }
    if u32_at(1) != rate.hz() {
        return Err(format!("stored at {} Hz, asked for {rate}", u32_at(1)));
    }
    let samples = &value[HEADER_LEN..];
    if samples.len() != u32_at(5) as usize * 2 {
        return Err(format!(
            "{} sample bytes for {} samples",
            samples.len(),
            u32_at(5)
        ));
    }
    if samples_digest(samples) != value[9..HEADER_LEN] {
        return Err("sample digest mismatch".into());
    }
    let pcm: Vec<i16> = samples
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok(Pcm::from_i16(rate, &pcm))
}

/// Any [`Synthesizer`] with a [`RenderCache`] in front: the same speech with the same options
/// is synthesized once and read back afterwards.
///
/// Audio comes back as 16-bit precision whether it was cached or just rendered, so a hit and
/// a miss give identical samples. Cache failures are logged and fall back to the engine.
#[derive(Debug)]
pub struct CachedSynthesizer<S> {
    inner: S,
    cache: RenderCache,
}

impl<S: Synthesizer> CachedSynthesizer<S> {
    /// `inner` behind `cache`.
    pub fn new(inner: S, cache: RenderCache) -> Self {
        Self { inner, cache }
    }

    /// The engine itself, for speech not worth caching.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The cache.
    pub fn cache(&self) -> &RenderCache {
        &self.cache
    }
}

impl<S: Synthesizer> Synthesizer for CachedSynthesizer<S> {
    fn synthesize(&self, speech: &[Segment], opts: &SpeakOptions) -> Result<Pcm> {
        let key = CacheKey::new(self.inner.engine(), speech, opts);
        match self.cache.get(&key, opts.output_rate) {
            Ok(Some(pcm)) => return Ok(pcm),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "render cache unreadable; synthesizing"),
        }
        let rendered = self.inner.synthesize(speech, opts)?;
        let pcm = Pcm::from_i16(rendered.rate(), &rendered.to_i16());
        if let Err(e) = self.cache.put(&key, &pcm) {
            tracing::warn!(error = %e, "render cache not written");
        }
        Ok(pcm)
    }

    fn engine(&self) -> &'static str {
        self.inner.engine()
    }

    fn default_voice(&self, locale: Locale) -> Option<String> {
        self.inner.default_voice(locale)
    }
}

/// Opens a sled database, waiting up to about five seconds for its file lock. sled releases the
/// lock from a background thread after the last handle is dropped, so reopening right away (a
/// restart inside the process, a test) can find it still held for a moment.
// A bounded wait on another handle's background thread; nothing here is a sans-IO core.
#[allow(clippy::disallowed_methods)]
fn open_sled(dir: &Path) -> sled::Result<sled::Db> {
    let mut attempts = 0;
    loop {
        match sled::open(dir) {
            Err(sled::Error::Io(e)) if lock_held(&e) && attempts < 250 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Whether opening failed only because another handle still holds the file lock. sled 0.34
/// reports that as `ErrorKind::Other` with the lock error in its message, not as
/// `WouldBlock`.
fn lock_held(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// Counts its calls; speaks a ramp whose length depends on the text.
    struct Counting(Arc<AtomicUsize>);

    impl Synthesizer for Counting {
        fn synthesize(&self, speech: &[Segment], opts: &SpeakOptions) -> Result<Pcm> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let n: usize = speech
                .iter()
                .map(|s| match s {
                    Segment::Text(t) => t.len() * 10,
                    Segment::Pause(d) => opts.output_rate.samples_in(*d),
                })
                .sum();
            Ok(Pcm::new(
                opts.output_rate,
                (0..n).map(|i| (i % 50) as f32 / 100.0).collect(),
            ))
        }

        fn engine(&self) -> &'static str {
            "counting"
        }
    }

    fn cached() -> (
        CachedSynthesizer<Counting>,
        Arc<AtomicUsize>,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let cache = RenderCache::open(dir.path()).unwrap();
        (
            CachedSynthesizer::new(Counting(Arc::clone(&calls)), cache),
            calls,
            dir,
        )
    }

    #[test]
    fn a_static_prompt_is_synthesized_once() {
        let (tts, calls, _dir) = cached();
        let opts = SpeakOptions::default();
        let first = tts.speak("Thank you for calling.", &opts).unwrap();
        let second = tts.speak("Thank you for calling.", &opts).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(first, second);
        assert_eq!(tts.cache().len(), 1);
    }

    #[test]
    fn anything_that_shapes_the_audio_is_a_different_entry() {
        let (tts, calls, _dir) = cached();
        let base = SpeakOptions::default();
        let slow = SpeakOptions {
            rate: SpeechRate::Slow,
            ..base.clone()
        };
        let narrow = SpeakOptions {
            output_rate: SampleRate::HZ_8000,
            ..base.clone()
        };
        let voiced = SpeakOptions {
            voice: Some("kal".into()),
            ..base.clone()
        };
        for opts in [&base, &slow, &narrow, &voiced] {
            tts.speak("one", opts).unwrap();
        }
        let paused = [
            Segment::Text("one".into()),
            Segment::Pause(Duration::from_millis(10)),
        ];
        tts.synthesize(&paused, &base).unwrap();
        // "ab" + "c" and "a" + "bc" must not collide.
        let split_a = [Segment::Text("ab".into()), Segment::Text("c".into())];
        let split_b = [Segment::Text("a".into()), Segment::Text("bc".into())];
        tts.synthesize(&split_a, &base).unwrap();
        tts.synthesize(&split_b, &base).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(tts.cache().len(), 7);
        let other_engine = CacheKey::new("flite", &split_a, &base);
        assert_ne!(other_engine, CacheKey::new("counting", &split_a, &base));
    }

    #[test]
    fn a_corrupt_entry_is_a_miss_and_is_overwritten() {
        let (tts, calls, _dir) = cached();
        let opts = SpeakOptions::default();
        let speech = [Segment::Text("Goodbye.".into())];
        let good = tts.synthesize(&speech, &opts).unwrap();
        let key = CacheKey::new("counting", &speech, &opts);
        let stored = tts.cache.db.get(key.0).unwrap().unwrap().to_vec();

        let mut flipped = stored.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        let damaged = [
            vec![],
            stored[..HEADER_LEN - 1].to_vec(),
            stored[..stored.len() - 2].to_vec(),
            flipped,
            [&[RenderCache::FORMAT_VERSION + 1][..], &stored[1..]].concat(),
        ];
        for (i, value) in damaged.into_iter().enumerate() {
            tts.cache.db.insert(key.0, value).unwrap();
            assert_eq!(tts.synthesize(&speech, &opts).unwrap(), good, "case {i}");
            assert_eq!(calls.load(Ordering::SeqCst), 2 + i, "case {i}");
            // Overwritten: the next call is a hit again.
            assert_eq!(tts.synthesize(&speech, &opts).unwrap(), good, "case {i}");
            assert_eq!(calls.load(Ordering::SeqCst), 2 + i, "case {i}");
        }
    }

    #[test]
    fn entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SpeakOptions::default();
        let speech = [Segment::Text("Here it is again.".into())];
        let key = CacheKey::new("counting", &speech, &opts);
        let pcm = Pcm::from_i16(SampleRate::HZ_16000, &[1, -2, 3, i16::MIN, i16::MAX]);
        {
            let cache = RenderCache::open(dir.path()).unwrap();
            cache.put(&key, &pcm).unwrap();
            cache.flush().unwrap();
        }
        let cache = RenderCache::open(dir.path()).unwrap();
        assert_eq!(cache.get(&key, SampleRate::HZ_16000).unwrap(), Some(pcm));
        assert_eq!(cache.get(&key, SampleRate::HZ_8000).unwrap(), None);
        cache.clear().unwrap();
        assert!(cache.is_empty());
    }

    #[test]
    fn an_unopenable_cache_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(RenderCache::open(&file), Err(Error::Cache(_))));
    }

    #[test]
    fn engine_errors_pass_through_and_are_not_cached() {
        struct Failing;
        impl Synthesizer for Failing {
            fn synthesize(&self, _: &[Segment], _: &SpeakOptions) -> Result<Pcm> {
                Err(Error::MissingProgram {
                    program: "flite".into(),
                    reason: "test".into(),
                })
            }
            fn engine(&self) -> &'static str {
                "failing"
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let tts = CachedSynthesizer::new(Failing, RenderCache::open(dir.path()).unwrap());
        let err = tts
            .speak("hello", &SpeakOptions::default())
            .map(|pcm| pcm.duration())
            .unwrap_err();
        assert!(matches!(err, Error::MissingProgram { .. }));
        assert!(tts.cache().is_empty());
    }
}
