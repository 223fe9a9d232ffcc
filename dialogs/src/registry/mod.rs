//! The case registry: the system of record for complaints, petitions, proposals, criticism and
//! thanks filed through the hotline.
//!
//! This module owns the case model ([`NewCase`], [`Case`], [`CaseType`], [`CaseStatus`],
//! [`StatusChange`]), the reference number ([`CaseNumber`]), the legal deadlines
//! ([`Deadlines`]) and the [`CaseRegistry`] trait with its SQLite implementation
//! ([`SqliteRegistry`]).
//!
//! What it does not do: it never reads the clock (every operation takes `now`), never uses a
//! global RNG (the SQLite registry draws numbers from the RNG handed to it), spawns no threads
//! and opens no sockets. [`SqliteRegistry`] does blocking file IO: call it from a blocking
//! context (`spawn_blocking` in the async server).
//!
//! Durability: [`CaseRegistry::store`] returns only after the case is committed, so the number
//! it returns may be spoken to the caller at once.
//!
//! Time: timestamps are [`OffsetDateTime`]s supplied by the caller; deadlines are whole
//! calendar days ([`Date`]) counted from the date of receipt in the offset of `now` (pass
//! Ulaanbaatar time, UTC+8, to count Mongolian calendar days). A case is overdue on the day
//! after its due date if it is neither answered nor closed.
//!
//! ```
//! use dialogs::registry::{Channel, CaseRegistry, CaseType, Deadlines, NewCase, SqliteRegistry};
//! use rand::{rngs::StdRng, SeedableRng};
//! use time::{Duration, OffsetDateTime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let registry = SqliteRegistry::open(
//!     dir.path().join("cases.sqlite"),
//!     Deadlines::default(),
//!     StdRng::seed_from_u64(42),
//! )?;
//! let now = OffsetDateTime::from_unix_timestamp(1_790_000_000)?;
//! let case = registry.store(NewCase::new(CaseType::Complaint, "mn", Channel::Phone), now)?;
//! assert_eq!(case.due_date, (now + Duration::days(30)).date());
//! let spoken = case.number.groups(); // read out 3-3-3-1
//! assert_eq!(registry.get(&case.number)?.map(|c| c.number), Some(case.number));
//! # let _ = spoken;
//! # Ok(())
//! # }
//! ```

mod error;
mod number;
mod sqlite;

use std::path::PathBuf;

use time::{Date, OffsetDateTime};

pub use error::{Error, Result};
pub use number::{damm_check_digit, CaseNumber, CaseNumberError, CASE_NUMBER_DIGITS};
pub use sqlite::SqliteRegistry;

/// The registry of cases. Implementations are durable stores shared by all calls.
///
/// Every operation that changes a case takes `now`, records it in the case's history and
/// returns the case as stored.
pub trait CaseRegistry: Send + Sync {
    /// Files a new case under a fresh, unguessable number. Returns after the case is durable.
    fn store(&self, new: NewCase, now: OffsetDateTime) -> Result<Case>;
    /// The case with this number, or `None` if no case has it.
    fn get(&self, number: &CaseNumber) -> Result<Option<Case>>;
    /// Cases matching `filter`, oldest receipt first.
    fn list(&self, filter: &CaseFilter) -> Result<Vec<Case>>;
    /// Moves a case to `status` (not [`CaseStatus::Extended`], which only
    /// [`extend`](Self::extend) sets), recording `note` in its history.
    fn update_status(
        &self,
        number: &CaseNumber,
        status: CaseStatus,
        note: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Case>;
    /// Records the agency's answer and marks the case [`CaseStatus::Answered`].
    fn answer(&self, number: &CaseNumber, text: &str, now: OffsetDateTime) -> Result<Case>;
    /// Extends the deadline by [`Deadlines::extension_days`], once per case, and records
    /// [`CaseStatus::Extended`]; `note` should say why (the caller must be told).
    fn extend(&self, number: &CaseNumber, note: Option<&str>, now: OffsetDateTime) -> Result<Case>;
}

/// What the caller filed (Mongolian law on petitions and complaints, see `domain/HOTLINE.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaseType {
    /// гомдол: a complaint about an act or an omission of a public body.
    Complaint,
    /// санал хүсэлт: a proposal or request; answered within the longer proposal deadline.
    Suggestion,
    /// өргөдөл: a petition.
    Petition,
    /// шүүмжлэл: criticism.
    Criticism,
    /// талархал: thanks.
    Thanks,
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaseStatus {
    /// Filed, not yet handled.
    Received,
    /// Passed to the responsible agency.
    Forwarded,
    /// The agency's answer is recorded.
    Answered,
    /// Done; nothing more will happen.
    Closed,
    /// The deadline was extended (once, by the head of the body).
    Extended,
}

/// How the case reached the hotline (the channels the monthly report counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// A phone call (SIP or WebRTC).
    Phone,
    /// A text message.
    Sms,
    /// The web form.
    Web,
    /// The mobile app.
    App,
    /// In person at a counter.
    InPerson,
    /// A self-service kiosk.
    Kiosk,
}

/// A case as the dialog files it, before it has a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    /// What kind of case.
    pub case_type: CaseType,
    /// Language of the call, `"mn"` or `"en"`.
    pub locale: String,
    /// The number the call came from, if known.
    pub caller_number: Option<String>,
    /// A number the caller asked to be called back on.
    pub callback_number: Option<String>,
    /// What the caller said, as recognised.
    pub transcript: Option<String>,
    /// The recording of the caller's statement.
    pub recording_path: Option<PathBuf>,
    /// The responsible agency, if already known.
    pub agency: Option<String>,
    /// How the case arrived.
    pub channel: Channel,
}

impl NewCase {
    /// A case with only the required fields set; fill the optional ones as known.
    pub fn new(case_type: CaseType, locale: impl Into<String>, channel: Channel) -> Self {
        Self {
            case_type,
            locale: locale.into(),
            caller_number: None,
            callback_number: None,
            transcript: None,
            recording_path: None,
            agency: None,
            channel,
        }
    }
}

/// One entry of a case's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The status entered.
    pub status: CaseStatus,
    /// When.
    pub at: OffsetDateTime,
    /// Why, or what was done (free text for staff).
    pub note: Option<String>,
}

/// A filed case as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The reference number given to the caller.
    pub number: CaseNumber,
    /// What kind of case.
    pub case_type: CaseType,
    /// Language of the call, `"mn"` or `"en"`.
    pub locale: String,
    /// The number the call came from, if known.
    pub caller_number: Option<String>,
    /// A number the caller asked to be called back on.
    pub callback_number: Option<String>,
    /// What the caller said, as recognised.
    pub transcript: Option<String>,
    /// The recording of the caller's statement.
    pub recording_path: Option<PathBuf>,
    /// The responsible agency, if known.
    pub agency: Option<String>,
    /// How the case arrived.
    pub channel: Channel,
    /// When the case was filed (the `now` given to `store`).
    pub received_at: OffsetDateTime,
    /// Last day on which an answer is on time.
    pub due_date: Date,
    /// Current status (the last entry of `history`).
    pub status: CaseStatus,
    /// Every status the case went through, oldest first, starting with `Received`.
    pub history: Vec<StatusChange>,
    /// The agency's answer, once given.
    pub answer: Option<String>,
}

impl Case {
    /// Whether the deadline was already extended.
    pub fn is_extended(&self) -> bool {
        self.history
            .iter()
            .any(|change| change.status == CaseStatus::Extended)
    }

    /// Whether the case is still open after its due date, on the calendar date of `now`.
    pub fn is_overdue(&self, now: OffsetDateTime) -> bool {
        self.status.is_open() && now.date() > self.due_date
    }
}

impl CaseStatus {
    /// Whether the case still awaits an answer.
    pub fn is_open(self) -> bool {
        !matches!(self, CaseStatus::Answered | CaseStatus::Closed)
    }

    /// Whether [`CaseRegistry::update_status`] may move a case from `self` to `to`.
    ///
    /// A case may be forwarded again (to another agency) while open, answered while open, and
    /// closed from any state but closed. `Received` is only the initial state and `Extended`
    /// is set only by [`CaseRegistry::extend`].
    pub fn may_become(self, to: CaseStatus) -> bool {
        use CaseStatus::*;
        match to {
            Received | Extended => false,
            Forwarded | Answered => self.is_open(),
            Closed => self != Closed,
        }
    }
}

/// Legal deadlines, in calendar days. Defaults follow the law on petitions and complaints
/// (Art. 16): 30 days, proposals 90, one extension of 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Days to answer any case but a proposal.
    pub default_days: u32,
    /// Days to answer a proposal or request ([`CaseType::Suggestion`]).
    pub proposal_days: u32,
    /// Days added by the single extension.
    pub extension_days: u32,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            default_days: 30,
            proposal_days: 90,
            extension_days: 30,
        }
    }
}

impl Deadlines {
    /// Days allowed for a case of this type.
    pub fn days_for(&self, case_type: CaseType) -> u32 {
        match case_type {
            CaseType::Suggestion => self.proposal_days,
            _ => self.default_days,
        }
    }

    /// The due date of a case of `case_type` received at `received_at`.
    pub fn due_date(&self, case_type: CaseType, received_at: OffsetDateTime) -> Result<Date> {
        add_days(received_at.date(), self.days_for(case_type))
    }
}

/// `date` plus `days`, or [`Error::DateOutOfRange`].
pub(crate) fn add_days(date: Date, days: u32) -> Result<Date> {
    date.checked_add(time::Duration::days(i64::from(days)))
        .ok_or(Error::DateOutOfRange)
}

/// Which cases [`CaseRegistry::list`] returns. Every criterion set must match; the default
/// matches every case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Only cases in this status.
    pub status: Option<CaseStatus>,
    /// Only cases of this type.
    pub case_type: Option<CaseType>,
    /// Only cases assigned to this agency (exact match).
    pub agency: Option<String>,
    /// Only cases received at or after this instant.
    pub received_from: Option<OffsetDateTime>,
    /// Only cases received strictly before this instant.
    pub received_until: Option<OffsetDateTime>,
    /// Only cases that are open and past their due date on the calendar date of this instant.
    pub overdue_at: Option<OffsetDateTime>,
    /// At most this many cases.
    pub limit: Option<u32>,
    /// Skip this many matching cases first (for paging).
    pub offset: u32,
}

#[cfg(test)]
mod tests {
    use time::Month;

    use super::*;

    fn at(year: i32, month: Month, day: u8) -> OffsetDateTime {
        Date::from_calendar_date(year, month, day)
            .expect("valid test date")
            .midnight()
            .assume_utc()
    }

    #[test]
    fn proposals_get_ninety_days_others_thirty() {
        let deadlines = Deadlines::default();
        let received = at(2026, Month::January, 31);
        assert_eq!(
            deadlines.due_date(CaseType::Complaint, received).ok(),
            Date::from_calendar_date(2026, Month::March, 2).ok()
        );
        assert_eq!(
            deadlines.due_date(CaseType::Suggestion, received).ok(),
            Date::from_calendar_date(2026, Month::May, 1).ok()
        );
    }

    #[test]
    fn due_date_past_the_calendar_is_an_error() {
        let received = Date::MAX.midnight().assume_utc();
        assert!(matches!(
            Deadlines::default().due_date(CaseType::Thanks, received),
            Err(Error::DateOutOfRange)
        ));
    }

    #[test]
    fn closed_cases_accept_no_transition_and_extended_is_not_settable() {
        use CaseStatus::*;
        for to in [Received, Forwarded, Answered, Closed, Extended] {
            assert!(!Closed.may_become(to), "{to:?}");
            assert!(!Received.may_become(Extended));
        }
        assert!(Received.may_become(Forwarded));
        assert!(Extended.may_become(Answered));
        assert!(!Answered.may_become(Forwarded));
        assert!(Answered.may_become(Closed));
    }
}
