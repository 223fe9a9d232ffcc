//! Caller profiles and resumable sessions: what the hotline remembers about a phone number
//! between calls.
//!
//! This module owns the caller's identity ([`CallerId`], a normalised phone number that prints
//! redacted), the per-caller preferences ([`Profile`]: language, slow speech, keypad-only, call
//! count) and the state of a call that dropped half-way ([`ResumableSession`]), together with
//! their sled stores ([`ProfileStore`], [`SessionStore`]; two trees of one sled database).
//!
//! What it does not do: it never reads the clock (every operation that depends on time takes
//! `now`), spawns no threads (sled runs its own background flusher) and opens no sockets. The
//! stores do blocking file IO: call them from a blocking context (`spawn_blocking` in the async
//! server).
//!
//! Durability: this is loss-tolerant state (see `DESIGN.md`). sled writes become durable on its
//! periodic flush or on [`ProfileStore::flush`]; a crash may lose the last moments of updates,
//! which costs a caller a remembered preference, never a case. A stored record that cannot be
//! decoded (damaged, or written by an incompatible version) is logged at `warn` and treated as
//! absent; the next update overwrites it.
//!
//! Encoding: each record is one format byte (currently 1) followed by JSON. Fields are only
//! ever added, with defaults, so older records decode in newer programs and newer records in
//! older ones (unknown fields are ignored); an incompatible change takes a new format byte.
//!
//! Time: instants are Unix seconds (UTC). A dropped call may be resumed for
//! [`SessionStore::DEFAULT_RESUME_WINDOW`] (15 minutes) after it was saved, inclusive.
//!
//! ```
//! use dialogs::profiles::{CallerId, ProfileStore, ResumableSession, SessionStore};
//! use time::{Duration, OffsetDateTime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = ProfileStore::open(dir.path())?;
//! let caller = CallerId::parse("9911 2233")?;
//! let now = OffsetDateTime::from_unix_timestamp(1_790_000_000)?;
//!
//! // A call starts: count it, and pick up the caller's preferences.
//! let profile = store.update(&caller, |p| p.record_call(now))?;
//! assert_eq!(profile.calls, 1);
//! store.update(&caller, |p| p.slow_speech = true)?;
//!
//! // The call drops in the middle of a complaint; the caller rings back 10 minutes later.
//! let sessions = store.sessions(SessionStore::DEFAULT_RESUME_WINDOW);
//! let mut session = ResumableSession::new("complaint.describe");
//! session.data.insert("case_type".into(), "complaint".into());
//! sessions.save(&caller, session, now)?;
//! let resumed = sessions.take(&caller, now + Duration::minutes(10))?;
//! assert_eq!(resumed.map(|s| s.flow_state), Some("complaint.describe".to_owned()));
//! # Ok(())
//! # }
//! ```

mod caller_id;
mod error;
mod store;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use caller_id::CallerId;
pub use error::{Error, Result};
pub use store::{ProfileStore, SessionStore};

/// What the hotline remembers about a caller across calls.
///
/// New fields may be added (with defaults); build one with [`Profile::default`] and set fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Profile {
    /// The language the caller chose, `"mn"` or `"en"`; `None` until they choose.
    pub locale: Option<String>,
    /// Whether prompts are spoken at the slow rate.
    pub slow_speech: bool,
    /// Whether the caller prefers the keypad to speech (no speech recognition is attempted).
    pub keypad_only: bool,
    /// How many calls came from this number.
    pub calls: u32,
    /// When the last call started, in Unix seconds.
    pub last_call: Option<i64>,
}

impl Profile {
    /// Counts a call that started at `now` (the count saturates rather than wrapping).
    pub fn record_call(&mut self, now: OffsetDateTime) {
        self.calls = self.calls.saturating_add(1);
        self.last_call = Some(now.unix_timestamp());
    }
}

/// The state of a call that dropped in the middle of a flow, kept so that the caller can
/// continue where they left off if they call back within the resume window.
///
/// `Debug` shows the keys of [`data`](Self::data) but not its values, which may hold a
/// transcript.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResumableSession {
    /// Where in the flow the call was (a flow state name).
    pub flow_state: String,
    /// What had been collected: case type, partial transcript, recording path…
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// When the session was saved, in Unix seconds; [`SessionStore::save`] sets it.
    pub saved_at: i64,
}

impl ResumableSession {
    /// A session at `flow_state` with no data yet.
    pub fn new(flow_state: impl Into<String>) -> Self {
        Self {
            flow_state: flow_state.into(),
            data: BTreeMap::new(),
            saved_at: 0,
        }
    }
}

impl fmt::Debug for ResumableSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumableSession")
            .field("flow_state", &self.flow_state)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("saved_at", &self.saved_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_call_counts_and_stamps_the_call() {
        let mut profile = Profile::default();
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid timestamp");
        profile.record_call(now);
        profile.record_call(now);
        assert_eq!(profile.calls, 2);
        assert_eq!(profile.last_call, Some(1_790_000_000));
        profile.calls = u32::MAX;
        profile.record_call(now);
        assert_eq!(profile.calls, u32::MAX);
    }

    #[test]
    fn session_debug_hides_the_transcript() {
        let mut session = ResumableSession::new("complaint.describe");
        session
            .data
            .insert("transcript".into(), "my neighbour Bat-Erdene".into());
        let shown = format!("{session:?}");
        assert!(shown.contains("transcript"), "{shown}");
        assert!(!shown.contains("Bat-Erdene"), "{shown}");
    }
}
