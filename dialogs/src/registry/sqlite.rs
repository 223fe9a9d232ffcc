//! [`SqliteRegistry`]: the case registry in one SQLite file.
//!
//! Owns one connection behind a mutex and the RNG that draws case numbers. Every write runs in
//! an `IMMEDIATE` transaction and returns after `COMMIT`; the file is in WAL mode with
//! `synchronous=FULL`, so a committed case survives a crash of the process and of the machine.
//! Reads of a case and its history run in one transaction, so they see one state.
//!
//! It does blocking file IO (call it from a blocking context), reads no clock (`now` is passed
//! in) and starts no threads. The schema is versioned: `schema_version` holds the number of
//! migrations applied, and opening a file applies the missing ones in a transaction; a file from
//! a newer program is refused rather than misread.
//!
//! Storage units: instants as Unix nanoseconds (UTC) plus the offset in seconds they were given
//! in; dates as Julian day numbers; enums as short lowercase words.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::Rng;
use rusqlite::types::Value;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use time::{Date, OffsetDateTime, UtcOffset};

use super::{
    add_days, Case, CaseFilter, CaseNumber, CaseRegistry, CaseStatus, CaseType, Channel, Deadlines,
    Error, NewCase, Result, StatusChange,
};

/// How many fresh numbers `store` draws before giving up. With 900 million numbers a single
/// collision is rare; 32 in a row means the space is full or the RNG is broken.
const MAX_NUMBER_ATTEMPTS: u32 = 32;

/// How long a write waits for another process holding the file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`. Append
/// only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE cases (
    number            TEXT    PRIMARY KEY NOT NULL CHECK (length(number) = 10),
    case_type         TEXT    NOT NULL,
    locale            TEXT    NOT NULL,
    caller_number     TEXT,
    callback_number   TEXT,
    transcript        TEXT,
    recording_path    TEXT,
    agency            TEXT,
    channel           TEXT    NOT NULL,
    received_at_ns    INTEGER NOT NULL,
    received_offset_s INTEGER NOT NULL,
    due_date          INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    answer            TEXT
) STRICT;
CREATE INDEX cases_received ON cases (received_at_ns);
CREATE INDEX cases_status_due ON cases (status, due_date);
CREATE INDEX cases_agency ON cases (agency);
CREATE TABLE status_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    number      TEXT    NOT NULL REFERENCES cases (number),
    status      TEXT    NOT NULL,
    at_ns       INTEGER NOT NULL,
    at_offset_s INTEGER NOT NULL,
    note        TEXT
) STRICT;
CREATE INDEX status_history_case ON status_history (number, id);
"];

/// Columns of `cases` in the order [`read_case_row`] expects.
const CASE_COLUMNS: &str = "number, case_type, locale, caller_number, callback_number, \
     transcript, recording_path, agency, channel, received_at_ns, received_offset_s, due_date, \
     status, answer";

/// The case registry stored in one SQLite file. Shared between calls by reference (`Arc`); all
/// operations serialize on one connection.
#[derive(Debug)]
pub struct SqliteRegistry<R> {
    inner: Mutex<Inner<R>>,
    deadlines: Deadlines,
}

#[derive(Debug)]
struct Inner<R> {
    conn: Connection,
    rng: R,
}

impl<R: Rng + Send> SqliteRegistry<R> {
    /// Opens the registry at `path`, creating the file and schema if absent and migrating an
    /// older schema. Case numbers are drawn from `rng`, which the caller seeds (from the OS in
    /// production, fixed in tests).
    ///
    /// Fails with [`Error::NotADatabase`] if the file is not an SQLite database and
    /// [`Error::SchemaTooNew`] if a newer program wrote it.
    pub fn open(path: impl AsRef<Path>, deadlines: Deadlines, rng: R) -> Result<Self> {
        let path = path.as_ref();
        let not_a_database = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::NotADatabase {
                path: path.to_owned(),
            },
            _ => Error::Storage(e),
        };
        let mut conn = Connection::open(path).map_err(not_a_database)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(not_a_database)?;
        // The first statement that reads the file is where a non-database is detected.
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(not_a_database)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::WalUnavailable { mode });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(not_a_database)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(not_a_database)?;
        migrate(&mut conn).map_err(|e| match e {
            Error::Storage(e) => not_a_database(e),
            other => other,
        })?;
        Ok(Self {
            inner: Mutex::new(Inner { conn, rng }),
            deadlines,
        })
    }

    /// The deadlines this registry applies.
    pub fn deadlines(&self) -> Deadlines {
        self.deadlines
    }

    fn lock(&self) -> MutexGuard<'_, Inner<R>> {
        // A panic while the lock was held dropped any open transaction, which rolls it back, so
        // the connection is consistent and the poison can be ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on the current state of case `number` inside one write transaction and
    /// returns the case as committed.
    fn modify(
        &self,
        number: &CaseNumber,
        change: impl FnOnce(&rusqlite::Transaction<'_>, &Case) -> Result<()>,
    ) -> Result<Case> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let case = load_case(&tx, number)?.ok_or(Error::UnknownCase(*number))?;
        change(&tx, &case)?;
        let updated = load_case(&tx, number)?.ok_or(Error::UnknownCase(*number))?;
        tx.commit()?;
        Ok(updated)
    }
}

impl<R: Rng + Send> CaseRegistry for SqliteRegistry<R> {
    fn store(&self, new: NewCase, now: OffsetDateTime) -> Result<Case> {
        let due_date = self.deadlines.due_date(new.case_type, now)?;
        let recording_path = match &new.recording_path {
            Some(path) => Some(
                path.to_str()
                    .ok_or_else(|| Error::RecordingPathNotUtf8(path.clone()))?
                    .to_owned(),
            ),
            None => None,
        };
        let (now_ns, now_offset) = encode_instant(now)?;

        let mut guard = self.lock();
        let inner = &mut *guard;
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut number = None;
        for _ in 0..MAX_NUMBER_ATTEMPTS {
            let candidate = CaseNumber::random(&mut inner.rng);
            let taken = tx
                .query_row(
                    "SELECT 1 FROM cases WHERE number = ?1",
                    [candidate.to_string()],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if !taken {
                number = Some(candidate);
                break;
            }
        }
        let number = number.ok_or(Error::NumbersExhausted {
            attempts: MAX_NUMBER_ATTEMPTS,
        })?;
        tx.execute(
            &format!(
                "INSERT INTO cases ({CASE_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULL)"
            ),
            params![
                number.to_string(),
                case_type_code(new.case_type),
                new.locale,
                new.caller_number,
                new.callback_number,
                new.transcript,
                recording_path,
                new.agency,
                channel_code(new.channel),
                now_ns,
                now_offset,
                due_date.to_julian_day(),
                status_code(CaseStatus::Received),
            ],
        )?;
        insert_history(&tx, &number, CaseStatus::Received, now, None)?;
        let case = load_case(&tx, &number)?.ok_or(Error::UnknownCase(number))?;
        tx.commit()?;
        Ok(case)
    }

    fn get(&self, number: &CaseNumber) -> Result<Option<Case>> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction()?;
        let case = load_case(&tx, number)?;
        tx.commit()?;
        Ok(case)
    }

    fn list(&self, filter: &CaseFilter) -> Result<Vec<Case>> {
        let mut conditions: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(status) = filter.status {
            conditions.push("status = ?");
            values.push(Value::Text(status_code(status).to_owned()));
        }
        if let Some(case_type) = filter.case_type {
            conditions.push("case_type = ?");
            values.push(Value::Text(case_type_code(case_type).to_owned()));
        }
        if let Some(agency) = &filter.agency {
            conditions.push("agency = ?");
            values.push(Value::Text(agency.clone()));
        }
        if let Some(from) = filter.received_from {
            conditions.push("received_at_ns >= ?");
            values.push(Value::Integer(encode_instant(from)?.0));
        }
        if let Some(until) = filter.received_until {
            conditions.push("received_at_ns < ?");
            values.push(Value::Integer(encode_instant(until)?.0));
        }
        if let Some(now) = filter.overdue_at {
            conditions.push("status NOT IN (?, ?) AND due_date < ?");
            values.push(Value::Text(status_code(CaseStatus::Answered).to_owned()));
            values.push(Value::Text(status_code(CaseStatus::Closed).to_owned()));
            values.push(Value::Integer(i64::from(now.date().to_julian_day())));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // SQLite reads a negative LIMIT as "no limit".
        values.push(Value::Integer(filter.limit.map_or(-1, i64::from)));
        values.push(Value::Integer(i64::from(filter.offset)));
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases {where_clause} \
             ORDER BY received_at_ns, number LIMIT ? OFFSET ?"
        );

        let mut inner = self.lock();
        let tx = inner.conn.transaction()?;
        let rows = {
            let mut statement = tx.prepare(&sql)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(values), read_case_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows
        };
        let mut cases = Vec::with_capacity(rows.len());
        for row in rows {
            cases.push(finish_case(&tx, row)?);
        }
        tx.commit()?;
        Ok(cases)
    }

    fn update_status(
        &self,
        number: &CaseNumber,
        status: CaseStatus,
        note: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Case> {
        self.modify(number, |tx, case| {
            if !case.status.may_become(status) {
                return Err(Error::InvalidTransition {
                    number: *number,
                    from: case.status,
                    to: status,
                });
            }
            set_status(tx, number, status)?;
            insert_history(tx, number, status, now, note)
        })
    }

    fn answer(&self, number: &CaseNumber, text: &str, now: OffsetDateTime) -> Result<Case> {
        self.modify(number, |tx, case| {
            if !case.status.may_become(CaseStatus::Answered) {
                return Err(Error::InvalidTransition {
                    number: *number,
                    from: case.status,
                    to: CaseStatus::Answered,
                });
            }
            tx.execute(
                "UPDATE cases SET answer = ?2 WHERE number = ?1",
                params![number.to_string(), text],
            )?;
            set_status(tx, number, CaseStatus::Answered)?;
            insert_history(tx, number, CaseStatus::Answered, now, None)
        })
    }

    fn extend(&self, number: &CaseNumber, note: Option<&str>, now: OffsetDateTime) -> Result<Case> {
        let extension_days = self.deadlines.extension_days;
        self.modify(number, |tx, case| {
            if !case.status.is_open() {
                return Err(Error::InvalidTransition {
                    number: *number,
                    from: case.status,
                    to: CaseStatus::Extended,
                });
            }
            if case.is_extended() {
                return Err(Error::AlreadyExtended(*number));
            }
            let due_date = add_days(case.due_date, extension_days)?;
            tx.execute(
                "UPDATE cases SET due_date = ?2 WHERE number = ?1",
                params![number.to_string(), due_date.to_julian_day()],
            )?;
            set_status(tx, number, CaseStatus::Extended)?;
            insert_history(tx, number, CaseStatus::Extended, now, note)
        })
    }
}

/// Brings the schema up to the newest version, in one transaction.
fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        [],
    )?;
    let version: Option<i64> = tx
        .query_row("SELECT max(version) FROM schema_version", [], |row| {
            row.get(0)
        })
        .optional()?
        .flatten();
    let version = version.unwrap_or(0);
    if version > supported {
        return Err(Error::SchemaTooNew {
            found: version,
            supported,
        });
    }
    let start = usize::try_from(version)
        .map_err(|_| Error::CorruptRecord(format!("schema version {version}")))?;
    for migration in &MIGRATIONS[start..] {
        tx.execute_batch(migration)?;
    }
    if version < supported {
        tx.execute("DELETE FROM schema_version", [])?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [supported],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn set_status(
    tx: &rusqlite::Transaction<'_>,
    number: &CaseNumber,
    status: CaseStatus,
) -> Result<()> {
    tx.execute(
        "UPDATE cases SET status = ?2 WHERE number = ?1",
        params![number.to_string(), status_code(status)],
    )?;
    Ok(())
}

fn insert_history(
    tx: &rusqlite::Transaction<'_>,
    number: &CaseNumber,
    status: CaseStatus,
    at: OffsetDateTime,
    note: Option<&str>,
) -> Result<()> {
    let (at_ns, at_offset) = encode_instant(at)?;
    tx.execute(
        "INSERT INTO status_history (number, status, at_ns, at_offset_s, note) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            number.to_string(),
            status_code(status),
            at_ns,
            at_offset,
            note
        ],
    )?;
    Ok(())
}

/// A `cases` row as read, before its codes are checked and its history is attached.
struct CaseRow {
    number: String,
    case_type: String,
    locale: String,
    caller_number: Option<String>,
    callback_number: Option<String>,
    transcript: Option<String>,
    recording_path: Option<String>,
    agency: Option<String>,
    channel: String,
    received_at_ns: i64,
    received_offset_s: i32,
    due_date: i32,
    status: String,
    answer: Option<String>,
}

fn read_case_row(row: &Row<'_>) -> rusqlite::Result<CaseRow> {
    Ok(CaseRow {
        number: row.get(0)?,
        case_type: row.get(1)?,
        locale: row.get(2)?,
        caller_number: row.get(3)?,
        callback_number: row.get(4)?,
        transcript: row.get(5)?,
        recording_path: row.get(6)?,
        agency: row.get(7)?,
        channel: row.get(8)?,
        received_at_ns: row.get(9)?,
        received_offset_s: row.get(10)?,
        due_date: row.get(11)?,
        status: row.get(12)?,
        answer: row.get(13)?,
    })
}

fn load_case(tx: &rusqlite::Transaction<'_>, number: &CaseNumber) -> Result<Option<Case>> {
    let row = tx
        .query_row(
            &format!("SELECT {CASE_COLUMNS} FROM cases WHERE number = ?1"),
            [number.to_string()],
            read_case_row,
        )
        .optional()?;
    row.map(|row| finish_case(tx, row)).transpose()
}

/// Checks a row's codes and attaches its history.
fn finish_case(tx: &rusqlite::Transaction<'_>, row: CaseRow) -> Result<Case> {
    let number: CaseNumber = row
        .number
        .parse()
        .map_err(|e| Error::CorruptRecord(format!("case number {:?}: {e}", row.number)))?;
    let history = {
        let mut statement = tx.prepare_cached(
            "SELECT status, at_ns, at_offset_s, note FROM status_history \
             WHERE number = ?1 ORDER BY id",
        )?;
        let rows = statement
            .query_map([&row.number], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i32>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(status, at_ns, at_offset, note)| {
                Ok(StatusChange {
                    status: parse_status(&status)?,
                    at: decode_instant(at_ns, at_offset)?,
                    note,
                })
            })
            .collect::<Result<Vec<_>>>()?
    };
    Ok(Case {
        number,
        case_type: parse_case_type(&row.case_type)?,
        locale: row.locale,
        caller_number: row.caller_number,
        callback_number: row.callback_number,
        transcript: row.transcript,
        recording_path: row.recording_path.map(PathBuf::from),
        agency: row.agency,
        channel: parse_channel(&row.channel)?,
        received_at: decode_instant(row.received_at_ns, row.received_offset_s)?,
        due_date: Date::from_julian_day(row.due_date)
            .map_err(|e| Error::CorruptRecord(format!("due date {}: {e}", row.due_date)))?,
        status: parse_status(&row.status)?,
        history,
        answer: row.answer,
    })
}

/// An instant as (Unix nanoseconds, offset seconds). Instants outside 1677-2262 do not fit.
fn encode_instant(at: OffsetDateTime) -> Result<(i64, i32)> {
    let ns = i64::try_from(at.unix_timestamp_nanos()).map_err(|_| Error::DateOutOfRange)?;
    Ok((ns, at.offset().whole_seconds()))
}

fn decode_instant(ns: i64, offset_s: i32) -> Result<OffsetDateTime> {
    let corrupt = || Error::CorruptRecord(format!("instant {ns} ns at offset {offset_s} s"));
    let offset = UtcOffset::from_whole_seconds(offset_s).map_err(|_| corrupt())?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .map_err(|_| corrupt())?
        .checked_to_offset(offset)
        .ok_or_else(corrupt)
}

fn case_type_code(case_type: CaseType) -> &'static str {
    match case_type {
        CaseType::Complaint => "complaint",
        CaseType::Suggestion => "suggestion",
        CaseType::Petition => "petition",
        CaseType::Criticism => "criticism",
        CaseType::Thanks => "thanks",
    }
}

fn parse_case_type(code: &str) -> Result<CaseType> {
    Ok(match code {
        "complaint" => CaseType::Complaint,
        "suggestion" => CaseType::Suggestion,
        "petition" => CaseType::Petition,
        "criticism" => CaseType::Criticism,
        "thanks" => CaseType::Thanks,
        other => return Err(Error::CorruptRecord(format!("case type {other:?}"))),
    })
}

fn status_code(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::Received => "received",
        CaseStatus::Forwarded => "forwarded",
        CaseStatus::Answered => "answered",
        CaseStatus::Closed => "closed",
        CaseStatus::Extended => "extended",
    }
}

fn parse_status(code: &str) -> Result<CaseStatus> {
    Ok(match code {
        "received" => CaseStatus::Received,
        "forwarded" => CaseStatus::Forwarded,
        "answered" => CaseStatus::Answered,
        "closed" => CaseStatus::Closed,
        "extended" => CaseStatus::Extended,
        other => return Err(Error::CorruptRecord(format!("status {other:?}"))),
    })
}

fn channel_code(channel: Channel) -> &'static str {
    match channel {
        Channel::Phone => "phone",
        Channel::Sms => "sms",
        Channel::Web => "web",
        Channel::App => "app",
        Channel::InPerson => "in_person",
        Channel::Kiosk => "kiosk",
    }
}

fn parse_channel(code: &str) -> Result<Channel> {
    Ok(match code {
        "phone" => Channel::Phone,
        "sms" => Channel::Sms,
        "web" => Channel::Web,
        "app" => Channel::App,
        "in_person" => Channel::InPerson,
        "kiosk" => Channel::Kiosk,
        other => return Err(Error::CorruptRecord(format!("channel {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use rand::rngs::StdRng;
    use rand::{SeedableRng, TryRng};
    use time::{Month, Time};

    use super::*;

    fn at(month: Month, day: u8, hour: u8) -> OffsetDateTime {
        Date::from_calendar_date(2026, month, day)
            .expect("valid test date")
            .with_time(Time::from_hms(hour, 0, 0).expect("valid test time"))
            .assume_offset(UtcOffset::from_hms(8, 0, 0).expect("valid offset"))
    }

    fn date(month: Month, day: u8) -> Date {
        Date::from_calendar_date(2026, month, day).expect("valid test date")
    }

    fn open(path: &Path, seed: u64) -> SqliteRegistry<StdRng> {
        SqliteRegistry::open(path, Deadlines::default(), StdRng::seed_from_u64(seed))
            .expect("open registry")
    }

    fn full_case() -> NewCase {
        NewCase {
            case_type: CaseType::Petition,
            locale: "mn".to_owned(),
            caller_number: Some("+97699112233".to_owned()),
            callback_number: Some("88001122".to_owned()),
            transcript: Some("Гэрийн ойролцоо гэрэлтүүлэг байхгүй байна".to_owned()),
            recording_path: Some(PathBuf::from("recordings/2026/01/call-17.wav")),
            agency: Some("Нийслэлийн Засаг даргын Тамгын газар".to_owned()),
            channel: Channel::Phone,
        }
    }

    /// An RNG that always yields zero bits, so every drawn number is the same.
    struct StuckRng;

    impl TryRng for StuckRng {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.fill(0);
            Ok(())
        }
    }

    #[test]
    fn stored_case_reads_back_with_every_field() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(&dir.path().join("cases.sqlite"), 1);
        let now = at(Month::March, 3, 10);
        let stored = registry.store(full_case(), now).expect("store");
        let new = full_case();
        assert_eq!(stored.case_type, new.case_type);
        assert_eq!(stored.locale, new.locale);
        assert_eq!(stored.caller_number, new.caller_number);
        assert_eq!(stored.callback_number, new.callback_number);
        assert_eq!(stored.transcript, new.transcript);
        assert_eq!(stored.recording_path, new.recording_path);
        assert_eq!(stored.agency, new.agency);
        assert_eq!(stored.channel, new.channel);
        assert_eq!(stored.received_at, now);
        assert_eq!(stored.received_at.offset(), now.offset());
        assert_eq!(stored.status, CaseStatus::Received);
        assert_eq!(stored.answer, None);
        assert_eq!(
            stored.history,
            vec![StatusChange {
                status: CaseStatus::Received,
                at: now,
                note: None
            }]
        );
        assert_eq!(registry.get(&stored.number).expect("get"), Some(stored));
    }

    #[test]
    fn consecutive_numbers_are_not_sequential() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(&dir.path().join("cases.sqlite"), 2);
        let now = at(Month::March, 3, 10);
        let mut previous: Option<CaseNumber> = None;
        for _ in 0..20 {
            let number = registry
                .store(NewCase::new(CaseType::Complaint, "en", Channel::Web), now)
                .expect("store")
                .number;
            if let Some(previous) = previous {
                let a = previous.digits();
                let b = number.digits();
                // Differences confined to the last digits would mean a counter.
                assert_ne!(a[..7], b[..7], "{previous} then {number}");
            }
            previous = Some(number);
        }
    }

    #[test]
    fn a_taken_number_is_redrawn() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cases.sqlite");
        let now = at(Month::March, 3, 10);
        let first = open(&path, 3)
            .store(NewCase::new(CaseType::Thanks, "mn", Channel::Phone), now)
            .expect("store");
        // Same seed: the first candidate is the number already taken.
        let registry = open(&path, 3);
        let second = registry
            .store(NewCase::new(CaseType::Thanks, "mn", Channel::Phone), now)
            .expect("store");
        assert_ne!(first.number, second.number);
        assert_eq!(
            registry.list(&CaseFilter::default()).expect("list").len(),
            2
        );
    }

    #[test]
    fn a_stuck_rng_ends_in_exhaustion_not_a_loop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = SqliteRegistry::open(
            dir.path().join("cases.sqlite"),
            Deadlines::default(),
            StuckRng,
        )
        .expect("open");
        let now = at(Month::March, 3, 10);
        let new = NewCase::new(CaseType::Thanks, "mn", Channel::Phone);
        registry.store(new.clone(), now).expect("first store");
        assert!(matches!(
            registry.store(new, now),
            Err(Error::NumbersExhausted { .. })
        ));
        assert_eq!(
            registry.list(&CaseFilter::default()).expect("list").len(),
            1
        );
    }

    #[test]
    fn history_keeps_changes_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(&dir.path().join("cases.sqlite"), 4);
        let number = registry
            .store(full_case(), at(Month::March, 1, 9))
            .expect("store")
            .number;
        registry
            .update_status(
                &number,
                CaseStatus::Forwarded,
                Some("to GASR"),
                at(Month::March, 2, 9),
            )
            .expect("forward");
        registry
            .extend(&number, Some("site visit needed"), at(Month::March, 20, 9))
            .expect("extend");
        registry
            .answer(&number, "The lights are repaired.", at(Month::April, 10, 9))
            .expect("answer");
        let closed = registry
            .update_status(&number, CaseStatus::Closed, None, at(Month::April, 11, 9))
            .expect("close");
        let statuses: Vec<_> = closed.history.iter().map(|c| (c.status, c.at)).collect();
        assert_eq!(
            statuses,
            vec![
                (CaseStatus::Received, at(Month::March, 1, 9)),
                (CaseStatus::Forwarded, at(Month::March, 2, 9)),
                (CaseStatus::Extended, at(Month::March, 20, 9)),
                (CaseStatus::Answered, at(Month::April, 10, 9)),
                (CaseStatus::Closed, at(Month::April, 11, 9)),
            ]
        );
        assert_eq!(closed.history[1].note.as_deref(), Some("to GASR"));
        assert_eq!(closed.history[2].note.as_deref(), Some("site visit needed"));
        assert_eq!(closed.status, CaseStatus::Closed);
        assert_eq!(closed.answer.as_deref(), Some("The lights are repaired."));
        assert_eq!(registry.get(&number).expect("get"), Some(closed));
    }

    #[test]
    fn due_dates_follow_the_law_and_extend_only_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(&dir.path().join("cases.sqlite"), 5);
        // 23:00 in Ulaanbaatar is still 1 March there, though 15:00 UTC.
        let received = at(Month::March, 1, 23);
        let complaint = registry
            .store(
                NewCase::new(CaseType::Complaint, "mn", Channel::Phone),
                received,
            )
            .expect("store");
        assert_eq!(complaint.due_date, date(Month::March, 31));
        let proposal = registry
            .store(
                NewCase::new(CaseType::Suggestion, "mn", Channel::Phone),
                received,
            )
            .expect("store");
        assert_eq!(proposal.due_date, date(Month::May, 30));

        let extended = registry
            .extend(&complaint.number, None, at(Month::March, 25, 9))
            .expect("extend");
        assert_eq!(extended.due_date, date(Month::April, 30));
        assert_eq!(extended.status, CaseStatus::Extended);
        assert!(extended.is_extended());
        assert!(matches!(
            registry.extend(&complaint.number, None, at(Month::April, 20, 9)),
            Err(Error::AlreadyExtended(n)) if n == complaint.number
        ));
        // A forward after the extension does not reopen the right to extend.
        registry
            .update_status(
                &complaint.number,
                CaseStatus::Forwarded,
                None,
                at(Month::April, 21, 9),
            )
            .expect("forward");
        assert!(matches!(
            registry.extend(&complaint.number, None, at(Month::April, 22, 9)),
            Err(Error::AlreadyExtended(_))
        ));
        let stored = registry
            .get(&complaint.number)
            .expect("get")
            .expect("present");
        assert_eq!(stored.due_date, date(Month::April, 30));
    }

    #[test]
    fn deadlines_are_configurable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let deadlines = Deadlines {
            default_days: 15,
            proposal_days: 60,
            extension_days: 10,
        };
        let registry = SqliteRegistry::open(
            dir.path().join("cases.sqlite"),
            deadlines,
            StdRng::seed_from_u64(6),
        )
        .expect("open");
        let received = at(Month::March, 1, 9);
        let proposal = registry
            .store(
                NewCase::new(CaseType::Suggestion, "en", Channel::Sms),
                received,
            )
            .expect("store");
        assert_eq!(proposal.due_date, date(Month::April, 30));
        let petition = registry
            .store(
                NewCase::new(CaseType::Petition, "en", Channel::Sms),
                received,
            )
            .expect("store");
        assert_eq!(petition.due_date, date(Month::March, 16));
        let extended = registry
            .extend(&petition.number, None, received)
            .expect("extend");
        assert_eq!(extended.due_date, date(Month::March, 26));
    }

    #[test]
    fn forbidden_transitions_are_refused_and_leave_the_case_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(&dir.path().join("cases.sqlite"), 7);
        let now = at(Month::March, 1, 9);
        let case = registry.store(full_case(), now).expect("store");
        assert!(matches!(
            registry.update_status(&case.number, CaseStatus::Extended, None, now),
            Err(Error::InvalidTransition {
                to: CaseStatus::Extended,
                ..
            })
        ));
        registry
            .update_status(&case.number, CaseStatus::Closed, Some("duplicate"), now)
            .expect("close");
        assert!(matches!(
            registry.answer(&case.number, "too late", now),
            Err(Error::InvalidTransition {
                from: CaseStatus::Closed,
                to: CaseStatus::Answered,
                ..
            })
        ));
        assert!(matches!(
            registry.extend(&case.number, None, now),
            Err(Error::InvalidTransition { .. })
        ));
        let stored = registry.get(&case.number).expect("get").expect("present");
        assert_eq!(stored.status, CaseStatus::Closed);
        assert_eq!(stored.answer, None);
        assert_eq!(stored.history.len(), 2);
        assert_eq!(stored.due_date, case.due_date);
    }

    #[test]
    fn unknown_numbers_are_absent_and_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(&dir.path().join("cases.sqlite"), 8);
        let now = at(Month::March, 1, 9);
        let stored = registry.store(full_case(), now).expect("store");
        let unknown: CaseNumber = "4710395826".parse().expect("valid number");
        assert_ne!(stored.number, unknown);
        assert_eq!(registry.get(&unknown).expect("get"), None);
        assert!(matches!(
            registry.update_status(&unknown, CaseStatus::Forwarded, None, now),
            Err(Error::UnknownCase(n)) if n == unknown
        ));
        assert!(matches!(
            registry.answer(&unknown, "x", now),
            Err(Error::UnknownCase(_))
        ));
        assert!(matches!(
            registry.extend(&unknown, None, now),
            Err(Error::UnknownCase(_))
        ));
    }

    #[test]
    fn filters_select_by_every_criterion() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(&dir.path().join("cases.sqlite"), 9);
        let store = |case_type, agency: Option<&str>, received| {
            let mut new = NewCase::new(case_type, "mn", Channel::Phone);
            new.agency = agency.map(str::to_owned);
            registry.store(new, received).expect("store").number
        };
        let jan = store(CaseType::Complaint, Some("GASR"), at(Month::January, 5, 9));
        let feb = store(
            CaseType::Suggestion,
            Some("GASR"),
            at(Month::February, 5, 9),
        );
        let mar = store(CaseType::Complaint, Some("Police"), at(Month::March, 5, 9));
        let apr = store(CaseType::Thanks, None, at(Month::April, 5, 9));
        registry
            .answer(&jan, "done", at(Month::January, 20, 9))
            .expect("answer");
        registry
            .update_status(&mar, CaseStatus::Forwarded, None, at(Month::March, 6, 9))
            .expect("forward");

        let numbers = |filter: CaseFilter| -> Vec<CaseNumber> {
            registry
                .list(&filter)
                .expect("list")
                .into_iter()
                .map(|c| c.number)
                .collect()
        };
        assert_eq!(numbers(CaseFilter::default()), vec![jan, feb, mar, apr]);
        assert_eq!(
            numbers(CaseFilter {
                case_type: Some(CaseType::Complaint),
                ..CaseFilter::default()
            }),
            vec![jan, mar]
        );
        assert_eq!(
            numbers(CaseFilter {
                status: Some(CaseStatus::Forwarded),
                ..CaseFilter::default()
            }),
            vec![mar]
        );
        assert_eq!(
            numbers(CaseFilter {
                agency: Some("GASR".to_owned()),
                ..CaseFilter::default()
            }),
            vec![jan, feb]
        );
        assert_eq!(
            numbers(CaseFilter {
                received_from: Some(at(Month::February, 5, 9)),
                received_until: Some(at(Month::April, 5, 9)),
                ..CaseFilter::default()
            }),
            vec![feb, mar]
        );
        // On 6 April: Jan is answered; Mar (due 4 April) is overdue; Feb (proposal, due 6
        // May) and Apr (due 5 May) are not.
        assert_eq!(
            numbers(CaseFilter {
                overdue_at: Some(at(Month::April, 6, 9)),
                ..CaseFilter::default()
            }),
            vec![mar]
        );
        // The due date itself is still on time.
        assert_eq!(
            numbers(CaseFilter {
                overdue_at: Some(at(Month::April, 4, 9)),
                ..CaseFilter::default()
            }),
            Vec::<CaseNumber>::new()
        );
        assert_eq!(
            numbers(CaseFilter {
                limit: Some(2),
                offset: 1,
                ..CaseFilter::default()
            }),
            vec![feb, mar]
        );
        assert_eq!(
            numbers(CaseFilter {
                case_type: Some(CaseType::Complaint),
                agency: Some("GASR".to_owned()),
                ..CaseFilter::default()
            }),
            vec![jan]
        );
        let listed = registry.list(&CaseFilter::default()).expect("list");
        let overdue: Vec<_> = listed
            .iter()
            .filter(|c| c.is_overdue(at(Month::April, 6, 9)))
            .map(|c| c.number)
            .collect();
        assert_eq!(overdue, vec![mar]);
    }

    #[test]
    fn reopening_the_file_keeps_every_case() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cases.sqlite");
        let (first, second) = {
            let registry = open(&path, 10);
            let first = registry
                .store(full_case(), at(Month::May, 1, 9))
                .expect("store");
            let second = registry
                .store(
                    NewCase::new(CaseType::Criticism, "en", Channel::Kiosk),
                    at(Month::May, 2, 9),
                )
                .expect("store");
            let second = registry
                .answer(&second.number, "Thank you", at(Month::May, 3, 9))
                .expect("answer");
            (first, second)
        };
        let registry = open(&path, 11);
        assert_eq!(
            registry.get(&first.number).expect("get"),
            Some(first.clone())
        );
        assert_eq!(
            registry.get(&second.number).expect("get"),
            Some(second.clone())
        );
        assert_eq!(
            registry.list(&CaseFilter::default()).expect("list"),
            vec![first, second]
        );
    }

    #[test]
    fn the_file_is_in_wal_mode_with_a_versioned_schema() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cases.sqlite");
        let registry = open(&path, 12);
        registry
            .store(full_case(), at(Month::May, 1, 9))
            .expect("store");
        let conn = Connection::open(&path).expect("plain connection");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
        let version: i64 = conn
            .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
            .expect("version");
        assert_eq!(version, i64::try_from(MIGRATIONS.len()).expect("small"));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cases.sqlite");
        std::fs::write(&path, "number,status\n4710395826,received\n".repeat(200))
            .expect("write junk");
        let result = SqliteRegistry::open(&path, Deadlines::default(), StdRng::seed_from_u64(1));
        match result {
            Err(Error::NotADatabase { path: reported }) => assert_eq!(reported, path),
            other => panic!("expected NotADatabase, got {other:?}"),
        }
    }

    #[test]
    fn a_schema_from_a_newer_program_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cases.sqlite");
        drop(open(&path, 1));
        Connection::open(&path)
            .and_then(|c| c.execute("UPDATE schema_version SET version = 99", []))
            .expect("bump version");
        let result = SqliteRegistry::open(&path, Deadlines::default(), StdRng::seed_from_u64(1));
        assert!(matches!(result, Err(Error::SchemaTooNew { found: 99, .. })));
    }

    #[test]
    fn a_hand_edited_row_is_reported_corrupt() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cases.sqlite");
        let registry = open(&path, 1);
        let case = registry
            .store(full_case(), at(Month::May, 1, 9))
            .expect("store");
        Connection::open(&path)
            .and_then(|c| c.execute("UPDATE cases SET status = 'lost'", []))
            .expect("edit row");
        assert!(matches!(
            registry.get(&case.number),
            Err(Error::CorruptRecord(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_recording_paths_are_refused() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;

        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(&dir.path().join("cases.sqlite"), 1);
        let mut new = full_case();
        new.recording_path = Some(PathBuf::from(OsString::from_vec(vec![0x66, 0xff, 0x6f])));
        assert!(matches!(
            registry.store(new, at(Month::May, 1, 9)),
            Err(Error::RecordingPathNotUtf8(_))
        ));
        assert_eq!(registry.list(&CaseFilter::default()).expect("list"), vec![]);
    }

    #[test]
    fn concurrent_stores_from_many_threads_all_land() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(&dir.path().join("cases.sqlite"), 13);
        let shared: &dyn CaseRegistry = &registry;
        let numbers: Vec<CaseNumber> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4u8)
                .map(|worker| {
                    scope.spawn(move || {
                        (0..10u8)
                            .map(|i| {
                                shared
                                    .store(full_case(), at(Month::June, 1 + worker, i))
                                    .expect("store")
                                    .number
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("worker finished"))
                .collect()
        });
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 40);
        let listed = registry.list(&CaseFilter::default()).expect("list");
        assert_eq!(listed.len(), 40);
        for number in &numbers {
            assert!(listed.iter().any(|c| c.number == *number), "{number}");
        }
    }
}
