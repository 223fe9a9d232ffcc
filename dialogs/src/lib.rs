//! The conversation of the hotline.
//!
//! This crate owns the sans-IO dialog engine (inputs carry `now`; outputs are effects such
//! as play, listen, record, transfer, store a case), the flow and prompt files that define the
//! hotline, the bilingual service directory, the case registry (SQLite, durable before a
//! reference number is spoken) and caller profiles. It opens no sockets and spawns no tasks of
//! its own (sled, under the profiles, runs its background flush thread).
//!
//! - [`flow`]: flows as data — the states of the hotline (`flows/hotline.toml`), its prompts in
//!   both languages (`flows/prompts.tsv`) and grammars, checked on load with every problem
//!   reported by file and line (format: `docs/flows.md`).
//! - [`engine`]: one call's dialog, sans-IO: inputs with `now`, effects out (play, listen,
//!   record, store or look up a case, transfer, timers).
//! - [`backend`]: carries out the engine's storage effects against a data directory.
//! - [`directory`]: the bilingual service catalog (built in or loaded from a file), its topic
//!   menus of at most five choices, spoken-query search and the sentences read to callers.
//! - [`profiles`]: caller profiles and resumable sessions (normalised, redacted caller IDs;
//!   sled trees; a dropped call can continue within 15 minutes).
//! - [`registry`]: the case registry (case numbers with a Damm check digit, legal deadlines,
//!   the `CaseRegistry` trait and its SQLite store).

pub mod backend;
pub mod directory;
pub mod engine;
pub mod flow;
pub mod profiles;
pub mod registry;
