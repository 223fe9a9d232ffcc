//! [`ProfileStore`] and [`SessionStore`]: profiles and resumable sessions in two trees of one
//! sled database, keyed by the caller's normalised number.
//!
//! Updates are read-modify-write with compare-and-swap, retried until no other writer got in
//! between; `take` removes the session in the same step that reads it, so a session is resumed
//! at most once even when two calls from the same number race. Blocking file IO; no clock.

use std::convert::Infallible;
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionResult, TransactionError, TransactionalTree};
use sled::Transactional;
use time::{Duration, OffsetDateTime};

use super::{CallerId, Error, Profile, Result, ResumableSession};

/// The tree holding [`Profile`]s.
const PROFILES_TREE: &str = "caller_profiles";
/// The tree holding [`ResumableSession`]s.
const SESSIONS_TREE: &str = "resumable_sessions";
/// The format byte that precedes each record's JSON.
const FORMAT_V1: u8 = 1;

/// Caller profiles in a sled database. Cheap to share: sled trees are reference-counted and
/// safe to use from several threads.
#[derive(Clone)]
pub struct ProfileStore {
    db: sled::Db,
    profiles: sled::Tree,
    sessions: sled::Tree,
}

impl ProfileStore {
    /// Opens (creating if needed) the sled database in directory `dir`.
    ///
    /// A sled directory can be open only once at a time; to share it with other state (the
    /// prompt cache) open it once and use [`ProfileStore::with_db`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::with_db(open_sled(dir.as_ref())?)
    }

    /// Uses the profile and session trees of an already open database.
    pub fn with_db(db: sled::Db) -> Result<Self> {
        let profiles = db.open_tree(PROFILES_TREE)?;
        let sessions = db.open_tree(SESSIONS_TREE)?;
        Ok(Self {
            db,
            profiles,
            sessions,
        })
    }

    /// The caller's profile, or `None` if the number has none (or its record is undecodable).
    pub fn get(&self, caller: &CallerId) -> Result<Option<Profile>> {
        let stored = self.profiles.get(caller.as_str())?;
        Ok(stored.and_then(|bytes| decode(&bytes, PROFILES_TREE, caller)))
    }

    /// Applies `change` to the caller's profile (a default one if there is none) and stores the
    /// result atomically; returns the profile as stored.
    ///
    /// If another writer changes the same profile meanwhile, the update is retried on the new
    /// value, so `change` may run more than once: it must only modify the profile it is given.
    pub fn update<F>(&self, caller: &CallerId, mut change: F) -> Result<Profile>
    where
        F: FnMut(&mut Profile),
    {
        let key = caller.as_str();
        loop {
            let old = self.profiles.get(key)?;
            let mut profile = old
                .as_deref()
                .and_then(|bytes| decode(bytes, PROFILES_TREE, caller))
                .unwrap_or_default();
            change(&mut profile);
            let new = encode(&profile)?;
            if self.profiles.compare_and_swap(key, old, Some(new))?.is_ok() {
                return Ok(profile);
            }
        }
    }

    /// Forgets the caller: removes their profile and any resumable session, in one
    /// transaction. Returns whether there was anything to remove.
    pub fn forget(&self, caller: &CallerId) -> Result<bool> {
        let key = caller.as_str();
        (&self.profiles, &self.sessions)
            .transaction(
                |(profiles, sessions): &(TransactionalTree, TransactionalTree)|
                 -> ConflictableTransactionResult<bool, Infallible> {
                    let profile = profiles.remove(key)?;
                    let session = sessions.remove(key)?;
                    Ok(profile.is_some() || session.is_some())
                },
            )
            .map_err(|e| match e {
                TransactionError::Storage(e) => Error::Storage(e),
                TransactionError::Abort(never) => match never {},
            })
    }

    /// The resumable sessions kept in the same database, resumable for `resume_window` after
    /// they are saved.
    pub fn sessions(&self, resume_window: Duration) -> SessionStore {
        SessionStore {
            tree: self.sessions.clone(),
            resume_window,
        }
    }

    /// Writes everything stored so far to disk; returns when it is durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

impl fmt::Debug for ProfileStore {
    // sled's own `Debug` dumps tree nodes, which would print caller numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileStore")
            .field("profiles", &self.profiles.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// Sessions of dropped calls, resumable for a window after they are saved. Obtained from
/// [`ProfileStore::sessions`].
#[derive(Clone)]
pub struct SessionStore {
    tree: sled::Tree,
    resume_window: Duration,
}

impl SessionStore {
    /// How long after a call drops it may be resumed: 15 minutes.
    pub const DEFAULT_RESUME_WINDOW: Duration = Duration::minutes(15);

    /// How long after saving a session may be taken.
    pub fn resume_window(&self) -> Duration {
        self.resume_window
    }

    /// Saves the caller's session at `now` (which replaces `session.saved_at`), replacing any
    /// session saved earlier for the same number.
    pub fn save(
        &self,
        caller: &CallerId,
        mut session: ResumableSession,
        now: OffsetDateTime,
    ) -> Result<()> {
        session.saved_at = now.unix_timestamp();
        self.tree.insert(caller.as_str(), encode(&session)?)?;
        Ok(())
    }

    /// Removes the caller's session and returns it if it was saved within the resume window
    /// before `now` (the boundary included). A session is returned at most once; one that is
    /// too old or undecodable is removed and `None` returned.
    pub fn take(&self, caller: &CallerId, now: OffsetDateTime) -> Result<Option<ResumableSession>> {
        let Some(bytes) = self.tree.remove(caller.as_str())? else {
            return Ok(None);
        };
        let session = decode::<ResumableSession>(&bytes, SESSIONS_TREE, caller);
        Ok(session.filter(|s| self.is_resumable(s, now)))
    }

    /// Removes every session that can no longer be resumed at `now` (and every undecodable
    /// one); returns how many were removed. A session saved again meanwhile is kept.
    pub fn expire(&self, now: OffsetDateTime) -> Result<usize> {
        let mut removed = 0;
        for entry in self.tree.iter() {
            let (key, bytes) = entry?;
            let stale = match decode_record::<ResumableSession>(&bytes) {
                Ok(session) => !self.is_resumable(&session, now),
                Err(reason) => {
                    tracing::warn!(tree = SESSIONS_TREE, %reason, "removing undecodable record");
                    true
                }
            };
            if stale
                && self
                    .tree
                    .compare_and_swap(&key, Some(&bytes), None::<&[u8]>)?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn is_resumable(&self, session: &ResumableSession, now: OffsetDateTime) -> bool {
        let age = now.unix_timestamp().saturating_sub(session.saved_at);
        age <= self.resume_window.whole_seconds()
    }
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("sessions", &self.tree.len())
            .field("resume_window", &self.resume_window)
            .finish()
    }
}

/// The stored form of `record`: the format byte, then JSON.
fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT_V1];
    serde_json::to_writer(&mut out, record)?;
    Ok(out)
}

/// Decodes a stored record, or says why it cannot be.
fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    match bytes.split_first() {
        Some((&FORMAT_V1, json)) => serde_json::from_slice(json).map_err(|e| e.to_string()),
        Some((format, _)) => Err(format!("unknown record format {format}")),
        None => Err("empty record".to_owned()),
    }
}

/// Decodes the record stored for `caller`, logging and returning `None` if it is undecodable.
fn decode<T: DeserializeOwned>(bytes: &[u8], tree: &str, caller: &CallerId) -> Option<T> {
    match decode_record(bytes) {
        Ok(record) => Some(record),
        Err(reason) => {
            tracing::warn!(tree, %caller, %reason, "undecodable record treated as absent");
            None
        }
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
    use super::*;

    const T0: i64 = 1_790_000_000;

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).expect("valid test timestamp")
    }

    fn caller(raw: &str) -> CallerId {
        CallerId::parse(raw).expect("valid test number")
    }

    fn temp_store() -> (tempfile::TempDir, ProfileStore) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = ProfileStore::open(dir.path()).expect("open sled store");
        (dir, store)
    }

    fn complaint_session() -> ResumableSession {
        let mut session = ResumableSession::new("complaint.describe");
        session.data.insert("case_type".into(), "complaint".into());
        session
            .data
            .insert("transcript".into(), "the bus to Zaisan never came".into());
        session
    }

    #[test]
    fn profile_round_trips() -> Result<()> {
        let (_dir, store) = temp_store();
        let id = caller("99112233");
        assert_eq!(store.get(&id)?, None);
        let stored = store.update(&id, |p| {
            p.locale = Some("en".into());
            p.slow_speech = true;
            p.keypad_only = true;
        })?;
        assert_eq!(store.get(&id)?, Some(stored.clone()));
        assert_eq!(stored.locale.as_deref(), Some("en"));
        assert!(stored.slow_speech && stored.keypad_only);
        // The same phone written differently finds the same profile.
        assert_eq!(store.get(&caller("+976 9911 2233"))?, Some(stored));
        assert_eq!(store.get(&caller("99112234"))?, None);
        Ok(())
    }

    #[test]
    fn update_counts_calls_and_keeps_preferences() -> Result<()> {
        let (_dir, store) = temp_store();
        let id = caller("99112233");
        store.update(&id, |p| p.record_call(at(T0)))?;
        store.update(&id, |p| p.locale = Some("mn".into()))?;
        let profile = store.update(&id, |p| p.record_call(at(T0 + 3600)))?;
        assert_eq!(profile.calls, 2);
        assert_eq!(profile.last_call, Some(T0 + 3600));
        assert_eq!(profile.locale.as_deref(), Some("mn"));
        Ok(())
    }

    #[test]
    fn reopening_keeps_profiles_and_sessions() -> Result<()> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let id = caller("99112233");
        {
            let store = ProfileStore::open(dir.path())?;
            store.update(&id, |p| p.record_call(at(T0)))?;
            store.sessions(SessionStore::DEFAULT_RESUME_WINDOW).save(
                &id,
                complaint_session(),
                at(T0),
            )?;
            store.flush()?;
        }
        let store = ProfileStore::open(dir.path())?;
        assert_eq!(store.get(&id)?.map(|p| p.calls), Some(1));
        let sessions = store.sessions(SessionStore::DEFAULT_RESUME_WINDOW);
        assert!(sessions.take(&id, at(T0 + 60))?.is_some());
        Ok(())
    }

    #[test]
    fn corrupted_profile_is_absent_and_overwritten() -> Result<()> {
        let (_dir, store) = temp_store();
        let id = caller("99112233");
        for garbage in [&b"\x01{not json"[..], b"\x09{}", b""] {
            store.profiles.insert(id.as_str(), garbage)?;
            assert_eq!(store.get(&id)?, None);
            let profile = store.update(&id, |p| p.record_call(at(T0)))?;
            assert_eq!(profile.calls, 1, "counting restarts from a fresh profile");
            assert_eq!(store.get(&id)?, Some(profile));
        }
        Ok(())
    }

    #[test]
    fn records_with_unknown_or_missing_fields_still_decode() -> Result<()> {
        let (_dir, store) = temp_store();
        let id = caller("99112233");
        let newer = b"\x01{\"locale\":\"mn\",\"calls\":7,\"voice\":\"female\"}";
        store.profiles.insert(id.as_str(), &newer[..])?;
        let profile = store.get(&id)?.expect("decodable record");
        assert_eq!(profile.locale.as_deref(), Some("mn"));
        assert_eq!(profile.calls, 7);
        assert!(!profile.slow_speech);
        Ok(())
    }

    #[test]
    fn session_resumes_within_the_window_and_not_after() -> Result<()> {
        let (_dir, store) = temp_store();
        let sessions = store.sessions(SessionStore::DEFAULT_RESUME_WINDOW);
        let id = caller("99112233");

        sessions.save(&id, complaint_session(), at(T0))?;
        let resumed = sessions
            .take(&id, at(T0 + 15 * 60))?
            .expect("within window");
        assert_eq!(resumed.flow_state, "complaint.describe");
        assert_eq!(resumed.saved_at, T0);
        assert_eq!(resumed.data, complaint_session().data);

        sessions.save(&id, complaint_session(), at(T0))?;
        assert_eq!(sessions.take(&id, at(T0 + 15 * 60 + 1))?, None);
        Ok(())
    }

    #[test]
    fn resume_window_is_configurable() -> Result<()> {
        let (_dir, store) = temp_store();
        let sessions = store.sessions(Duration::minutes(5));
        let id = caller("99112233");
        sessions.save(&id, complaint_session(), at(T0))?;
        assert_eq!(sessions.take(&id, at(T0 + 5 * 60 + 1))?, None);
        Ok(())
    }

    #[test]
    fn session_is_taken_only_once() -> Result<()> {
        let (_dir, store) = temp_store();
        let sessions = store.sessions(SessionStore::DEFAULT_RESUME_WINDOW);
        let id = caller("99112233");
        sessions.save(&id, complaint_session(), at(T0))?;
        assert!(sessions.take(&id, at(T0 + 1))?.is_some());
        assert_eq!(sessions.take(&id, at(T0 + 2))?, None);
        Ok(())
    }

    #[test]
    fn a_later_save_replaces_the_earlier_session() -> Result<()> {
        let (_dir, store) = temp_store();
        let sessions = store.sessions(SessionStore::DEFAULT_RESUME_WINDOW);
        let id = caller("99112233");
        sessions.save(&id, ResumableSession::new("menu"), at(T0))?;
        sessions.save(&id, complaint_session(), at(T0 + 600))?;
        let taken = sessions
            .take(&id, at(T0 + 1200))?
            .expect("second save is fresh");
        assert_eq!(taken.flow_state, "complaint.describe");
        Ok(())
    }

    #[test]
    fn corrupted_session_is_absent_and_removed() -> Result<()> {
        let (_dir, store) = temp_store();
        let sessions = store.sessions(SessionStore::DEFAULT_RESUME_WINDOW);
        let id = caller("99112233");
        store.sessions.insert(id.as_str(), &b"\x01[1,2"[..])?;
        assert_eq!(sessions.take(&id, at(T0))?, None);
        assert!(store.sessions.is_empty());
        Ok(())
    }

    #[test]
    fn expire_purges_only_stale_and_undecodable_sessions() -> Result<()> {
        let (_dir, store) = temp_store();
        let sessions = store.sessions(SessionStore::DEFAULT_RESUME_WINDOW);
        let old = caller("99110001");
        let fresh = caller("99110002");
        let broken = caller("99110003");
        sessions.save(&old, complaint_session(), at(T0))?;
        sessions.save(&fresh, complaint_session(), at(T0 + 600))?;
        store.sessions.insert(broken.as_str(), &b"garbage"[..])?;

        assert_eq!(sessions.expire(at(T0 + 15 * 60 + 1))?, 2);
        assert_eq!(sessions.take(&old, at(T0))?, None);
        assert!(sessions.take(&fresh, at(T0 + 15 * 60 + 1))?.is_some());
        assert_eq!(sessions.expire(at(T0 + 15 * 60 + 1))?, 0);
        Ok(())
    }

    #[test]
    fn forget_removes_profile_and_session_of_that_caller_only() -> Result<()> {
        let (_dir, store) = temp_store();
        let sessions = store.sessions(SessionStore::DEFAULT_RESUME_WINDOW);
        let id = caller("99112233");
        let other = caller("88112233");
        for c in [&id, &other] {
            store.update(c, |p| p.record_call(at(T0)))?;
            sessions.save(c, complaint_session(), at(T0))?;
        }

        assert!(store.forget(&id)?);
        assert_eq!(store.get(&id)?, None);
        assert_eq!(sessions.take(&id, at(T0 + 1))?, None);
        assert!(!store.forget(&id)?, "nothing left to forget");

        assert!(store.get(&other)?.is_some());
        assert!(sessions.take(&other, at(T0 + 1))?.is_some());
        Ok(())
    }

    #[test]
    fn debug_output_does_not_leak_numbers() -> Result<()> {
        let (_dir, store) = temp_store();
        let id = caller("99112233");
        store.update(&id, |p| p.record_call(at(T0)))?;
        let shown = format!("{store:?} {:?}", store.sessions(Duration::minutes(1)));
        assert!(!shown.contains("9911"), "{shown}");
        Ok(())
    }
}
