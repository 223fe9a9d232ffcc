//! Carrying out the engine's storage effects against the real stores.
//!
//! [`Backend`] owns the case registry (SQLite), the caller profiles and resumable sessions
//! (sled) and the call-back list of a data directory, and turns the storage [`Output`]s of an
//! [`Engine`](crate::engine::Engine) into the [`Input`]s that answer them. Every call driver
//! (`ivr chat`, the assistant) uses it, so a case filed from the terminal and one filed by
//! phone land in the same place. Its calls block on file IO; an async driver runs them on a
//! blocking thread.
//!
//! Layout of a data directory: `cases.sqlite` (+ WAL files), `profiles/` (sled),
//! `callbacks.jsonl` (one JSON object a line).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use time::OffsetDateTime;

use crate::engine::{Input, Output};
use crate::profiles::{CallerId, Profile, ProfileStore, ResumableSession, SessionStore};
use crate::registry::{CaseRegistry, Deadlines, SqliteRegistry};

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The case registry could not be opened.
    #[error("cannot open the case registry: {0}")]
    Registry(#[from] crate::registry::Error),
    /// The profile store could not be opened.
    #[error("cannot open the caller profiles: {0}")]
    Profiles(#[from] crate::profiles::Error),
}

/// The stores behind calls.
#[derive(Clone)]
pub struct Backend {
    registry: Arc<dyn CaseRegistry>,
    profiles: Option<ProfileStore>,
    sessions: Option<SessionStore>,
    callbacks: Option<Arc<Mutex<PathBuf>>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("profiles", &self.profiles.is_some())
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// Opens (creating as needed) the stores of a data directory; case numbers are drawn from
    /// `rng`.
    pub fn open(dir: &Path, deadlines: Deadlines, rng: StdRng) -> Result<Backend, BackendError> {
        std::fs::create_dir_all(dir).map_err(|source| BackendError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let registry = SqliteRegistry::open(dir.join("cases.sqlite"), deadlines, rng)?;
        let profiles = ProfileStore::open(dir.join("profiles"))?;
        let sessions = profiles.sessions(SessionStore::DEFAULT_RESUME_WINDOW);
        Ok(Backend {
            registry: Arc::new(registry),
            profiles: Some(profiles),
            sessions: Some(sessions),
            callbacks: Some(Arc::new(Mutex::new(dir.join("callbacks.jsonl")))),
        })
    }

    /// A backend over any registry, with no profiles, sessions or call-back list (tests).
    pub fn with_registry(registry: Arc<dyn CaseRegistry>) -> Backend {
        Backend {
            registry,
            profiles: None,
            sessions: None,
            callbacks: None,
        }
    }

    /// The case registry.
    pub fn registry(&self) -> &Arc<dyn CaseRegistry> {
        &self.registry
    }

    /// What is known of a caller when their call starts: their profile (counting this call)
    /// and a session they may resume. Store errors are logged and treated as "nothing known":
    /// a call never fails because a profile could not be read.
    pub fn call_started(
        &self,
        caller: Option<&CallerId>,
        now: OffsetDateTime,
    ) -> (Option<Profile>, Option<ResumableSession>) {
        let Some(caller) = caller else {
            return (None, None);
        };
        let profile = self.profiles.as_ref().and_then(|p| {
            let before = p.get(caller).ok().flatten();
            if let Err(e) = p.update(caller, |profile| profile.record_call(now)) {
                tracing::warn!(%caller, error = %e, "cannot count the call in the profile");
            }
            before
        });
        let session = self
            .sessions
            .as_ref()
            .and_then(|s| match s.take(caller, now) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%caller, error = %e, "cannot read the resumable session");
                    None
                }
            });
        (profile, session)
    }

    /// Carries out a storage effect; returns the input that answers it (for
    /// [`Output::StoreCase`] and [`Output::LookupCase`]). Other outputs are ignored.
    pub fn perform(
        &self,
        caller: Option<&CallerId>,
        output: &Output,
        now: OffsetDateTime,
    ) -> Option<Input> {
        match output {
            Output::StoreCase(new) => Some(Input::CaseStored(
                self.registry.store(new.clone(), now).map_err(|e| {
                    tracing::error!(error = %e, "a case could not be stored");
                    e.to_string()
                }),
            )),
            Output::LookupCase(number) => {
                Some(Input::CaseFound(self.registry.get(number).map_err(|e| {
                    tracing::error!(error = %e, "a case could not be read");
                    e.to_string()
                })))
            }
            Output::SaveProfile(profile) => {
                if let (Some(store), Some(caller)) = (&self.profiles, caller) {
                    let wanted = profile.clone();
                    if let Err(e) = store.update(caller, |p| {
                        p.locale = wanted.locale.clone();
                        p.slow_speech = wanted.slow_speech;
                        p.keypad_only = wanted.keypad_only;
                    }) {
                        tracing::warn!(%caller, error = %e, "cannot save the profile");
                    }
                }
                None
            }
            Output::SaveSession(session) => {
                if let (Some(store), Some(caller)) = (&self.sessions, caller) {
                    if let Err(e) = store.save(caller, session.clone(), now) {
                        tracing::warn!(%caller, error = %e, "cannot save the session");
                    }
                }
                None
            }
            Output::ClearSession => {
                if let (Some(store), Some(caller)) = (&self.sessions, caller) {
                    if let Err(e) = store.take(caller, now) {
                        tracing::warn!(%caller, error = %e, "cannot clear the session");
                    }
                }
                None
            }
            Output::RequestCallback { number, locale } => {
                if let Some(path) = &self.callbacks {
                    let line = serde_json::json!({
                        "number": number,
                        "locale": locale.tag(),
                        "requested_at": now.unix_timestamp(),
                    });
                    let path = path.lock().unwrap_or_else(|p| p.into_inner());
                    let written = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&*path)
                        .and_then(|mut f| writeln!(f, "{line}").and_then(|_| f.sync_data()));
                    if let Err(e) = written {
                        tracing::error!(error = %e, "cannot record a call-back request");
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// Writes what the stores buffer (profiles and sessions) to disk.
    pub fn flush(&self) {
        if let Some(p) = &self.profiles {
            if let Err(e) = p.flush() {
                tracing::warn!(error = %e, "cannot flush the profiles");
            }
        }
    }
}
