//! `ivr.v1.CaseService`: staff's view of the case registry over gRPC.
//!
//! [`Cases`] wraps any [`CaseRegistry`] and maps between the registry's types and the
//! messages of `proto/ivr/v1/cases.proto`. Registry calls block (file IO), so each one runs on
//! tokio's blocking pool (`spawn_blocking`); the service itself holds no lock and no state
//! besides the registry and the clock.
//!
//! Time: the service never reads the system clock itself. It holds a [`Clock`]; every request
//! reads it once and uses that instant for the registry operation (`now`) and for the
//! `overdue` flag of every case it returns. The registry counts calendar days in the offset of
//! `now`, so the clock should give Ulaanbaatar time (UTC+8); [`system_clock`] builds one.
//!
//! Wire formats: instants are Unix seconds (`*_unix`), `due_date` is `YYYY-MM-DD`, absent
//! optional texts are empty strings, and `0` in a request means "not set".
//!
//! Errors, as gRPC status codes:
//!
//! | cause | code |
//! |---|---|
//! | malformed case number, wrong check digit, unknown enum value, status not settable, empty answer, bad time range | `INVALID_ARGUMENT` (the message says why) |
//! | no case has the number | `NOT_FOUND` |
//! | the case's state forbids it (closed, answered, already extended) | `FAILED_PRECONDITION` |
//! | storage failure, damaged record | `INTERNAL` (details only in the server's log) |

use std::fmt;
use std::sync::Arc;

use dialogs::registry::{
    self, Case, CaseFilter, CaseNumber, CaseRegistry, CaseStatus, CaseType, Channel, StatusChange,
};
use ivr_proto::v1 as pb;
use ivr_proto::v1::case_service_server::CaseService;
use time::{Date, OffsetDateTime, UtcOffset};
use tonic::{Request, Response, Status};

/// How many cases `ListCases` returns when the request sets no limit.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// The most cases one `ListCases` answer holds; larger limits are lowered to this.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Where the services read the current time from; tests pass a fixed instant.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// A [`Clock`] reading the system clock, giving instants in `offset` (pass UTC+8, Ulaanbaatar
/// time, so that deadlines count Mongolian calendar days).
pub fn system_clock(offset: UtcOffset) -> Clock {
    Arc::new(move || OffsetDateTime::now_utc().to_offset(offset))
}

/// The `CaseService` implementation over a shared registry.
#[derive(Clone)]
pub struct Cases {
    registry: Arc<dyn CaseRegistry>,
    clock: Clock,
}

impl fmt::Debug for Cases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cases").finish_non_exhaustive()
    }
}

impl Cases {
    /// A service answering from `registry`, reading the time from `clock`.
    pub fn new(registry: Arc<dyn CaseRegistry>, clock: Clock) -> Self {
        Self { registry, clock }
    }

    /// Runs one registry operation on the blocking pool and maps its error to a status.
    async fn run<T, F>(&self, operation: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&dyn CaseRegistry) -> registry::Result<T> + Send + 'static,
    {
        let registry = Arc::clone(&self.registry);
        match tokio::task::spawn_blocking(move || operation(registry.as_ref())).await {
            Ok(result) => result.map_err(status_of),
            Err(join_error) => {
                tracing::error!(error = %join_error, "case registry operation did not complete");
                Err(Status::internal(INTERNAL_MESSAGE))
            }
        }
    }
}

#[tonic::async_trait]
impl CaseService for Cases {
    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        let number = parse_number(&request.get_ref().number)?;
        let now = (self.clock)();
        let case = self
            .run(move |registry| registry.get(&number))
            .await?
            .ok_or_else(|| status_of(registry::Error::UnknownCase(number)))?;
        Ok(Response::new(case_to_proto(&case, now)))
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let now = (self.clock)();
        let filter = filter_from_proto(request.get_ref(), now)?;
        let cases = self.run(move |registry| registry.list(&filter)).await?;
        Ok(Response::new(pb::ListCasesResponse {
            cases: cases.iter().map(|case| case_to_proto(case, now)).collect(),
        }))
    }

    async fn update_status(
        &self,
        request: Request<pb::UpdateStatusRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        let request = request.into_inner();
        let number = parse_number(&request.number)?;
        let status = settable_status(request.status)?;
        let agency = non_empty(request.agency);
        if agency.is_some() && status != CaseStatus::Forwarded {
            return Err(Status::invalid_argument(
                "an agency is given only when forwarding a case",
            ));
        }
        let note = forwarding_note(agency.as_deref(), non_empty(request.note));
        let now = (self.clock)();
        let case = self
            .run(move |registry| registry.update_status(&number, status, note.as_deref(), now))
            .await?;
        Ok(Response::new(case_to_proto(&case, now)))
    }

    async fn answer(
        &self,
        request: Request<pb::AnswerRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        let request = request.into_inner();
        let number = parse_number(&request.number)?;
        if request.answer.trim().is_empty() {
            return Err(Status::invalid_argument("the answer is empty"));
        }
        let now = (self.clock)();
        let text = request.answer;
        let case = self
            .run(move |registry| registry.answer(&number, &text, now))
            .await?;
        Ok(Response::new(case_to_proto(&case, now)))
    }

    async fn extend(
        &self,
        request: Request<pb::ExtendRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        let request = request.into_inner();
        let number = parse_number(&request.number)?;
        let note = non_empty(request.note);
        let now = (self.clock)();
        let case = self
            .run(move |registry| registry.extend(&number, note.as_deref(), now))
            .await?;
        Ok(Response::new(case_to_proto(&case, now)))
    }
}

/// The message of every `INTERNAL` answer; the cause goes to the log only.
const INTERNAL_MESSAGE: &str = "the case registry failed; the incident is logged";

/// The status a registry error is answered with.
fn status_of(error: registry::Error) -> Status {
    use registry::Error;
    match error {
        Error::UnknownCase(_) => Status::not_found(error.to_string()),
        Error::InvalidTransition { .. } | Error::AlreadyExtended(_) => {
            Status::failed_precondition(error.to_string())
        }
        other => {
            tracing::error!(error = %other, "case registry operation failed");
            Status::internal(INTERNAL_MESSAGE)
        }
    }
}

/// Parses a case number as sent (separators allowed); `INVALID_ARGUMENT` says what is wrong.
fn parse_number(text: &str) -> Result<CaseNumber, Status> {
    text.parse::<CaseNumber>()
        .map_err(|error| Status::invalid_argument(format!("case number {text:?}: {error}")))
}

/// `Some(text)` unless the text is blank.
fn non_empty(text: String) -> Option<String> {
    (!text.trim().is_empty()).then_some(text)
}

/// The history note of a status change: the agency a case is forwarded to, then the note.
///
/// The registry keeps the agency of a case as filed; the agency a case is forwarded to is
/// recorded in the history entry of the forwarding.
fn forwarding_note(agency: Option<&str>, note: Option<String>) -> Option<String> {
    match (agency, note) {
        (Some(agency), Some(note)) => Some(format!("forwarded to {agency}: {note}")),
        (Some(agency), None) => Some(format!("forwarded to {agency}")),
        (None, note) => note,
    }
}

/// The registry filter of a `ListCases` request; `now` decides which cases are overdue.
fn filter_from_proto(
    request: &pb::ListCasesRequest,
    now: OffsetDateTime,
) -> Result<CaseFilter, Status> {
    let received_from = instant_from_unix(request.received_from_unix, "received_from_unix")?;
    let received_until = instant_from_unix(request.received_to_unix, "received_to_unix")?;
    if let (Some(from), Some(until)) = (received_from, received_until) {
        if from > until {
            return Err(Status::invalid_argument(
                "received_from_unix is after received_to_unix",
            ));
        }
    }
    let limit = match request.limit {
        0 => DEFAULT_LIST_LIMIT,
        limit => limit.min(MAX_LIST_LIMIT),
    };
    Ok(CaseFilter {
        status: status_from_proto(request.status)?,
        case_type: case_type_from_proto(request.r#type)?,
        agency: non_empty(request.agency.clone()),
        received_from,
        received_until,
        overdue_at: request.overdue_only.then_some(now),
        limit: Some(limit),
        offset: 0,
    })
}

/// An instant from Unix seconds; `0` is "not set".
fn instant_from_unix(seconds: i64, field: &str) -> Result<Option<OffsetDateTime>, Status> {
    if seconds == 0 {
        return Ok(None);
    }
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(Some)
        .map_err(|_| Status::invalid_argument(format!("{field} {seconds} is out of range")))
}

/// The status a client may set through `UpdateStatus`: forwarded, answered or closed.
fn settable_status(value: i32) -> Result<CaseStatus, Status> {
    match status_from_proto(value)? {
        Some(status @ (CaseStatus::Forwarded | CaseStatus::Answered | CaseStatus::Closed)) => {
            Ok(status)
        }
        Some(CaseStatus::Extended) => Err(Status::invalid_argument(
            "a deadline is extended with Extend, not UpdateStatus",
        )),
        Some(_) => Err(Status::invalid_argument(
            "status must be forwarded, answered or closed",
        )),
        None => Err(Status::invalid_argument("status is required")),
    }
}

/// A registry status from its wire value; `None` for unspecified.
fn status_from_proto(value: i32) -> Result<Option<CaseStatus>, Status> {
    let status = pb::CaseStatus::try_from(value)
        .map_err(|_| Status::invalid_argument(format!("unknown case status {value}")))?;
    Ok(match status {
        pb::CaseStatus::Unspecified => None,
        pb::CaseStatus::Received => Some(CaseStatus::Received),
        pb::CaseStatus::Forwarded => Some(CaseStatus::Forwarded),
        pb::CaseStatus::Answered => Some(CaseStatus::Answered),
        pb::CaseStatus::Closed => Some(CaseStatus::Closed),
        pb::CaseStatus::Extended => Some(CaseStatus::Extended),
    })
}

/// A registry case type from its wire value; `None` for unspecified.
fn case_type_from_proto(value: i32) -> Result<Option<CaseType>, Status> {
    let case_type = pb::CaseType::try_from(value)
        .map_err(|_| Status::invalid_argument(format!("unknown case type {value}")))?;
    Ok(match case_type {
        pb::CaseType::Unspecified => None,
        pb::CaseType::Complaint => Some(CaseType::Complaint),
        pb::CaseType::Suggestion => Some(CaseType::Suggestion),
        pb::CaseType::Petition => Some(CaseType::Petition),
        pb::CaseType::Criticism => Some(CaseType::Criticism),
        pb::CaseType::Thanks => Some(CaseType::Thanks),
    })
}

fn status_to_proto(status: CaseStatus) -> pb::CaseStatus {
    match status {
        CaseStatus::Received => pb::CaseStatus::Received,
        CaseStatus::Forwarded => pb::CaseStatus::Forwarded,
        CaseStatus::Answered => pb::CaseStatus::Answered,
        CaseStatus::Closed => pb::CaseStatus::Closed,
        CaseStatus::Extended => pb::CaseStatus::Extended,
        // A status added to the registry before the contract knows it.
        _ => pb::CaseStatus::Unspecified,
    }
}

fn case_type_to_proto(case_type: CaseType) -> pb::CaseType {
    match case_type {
        CaseType::Complaint => pb::CaseType::Complaint,
        CaseType::Suggestion => pb::CaseType::Suggestion,
        CaseType::Petition => pb::CaseType::Petition,
        CaseType::Criticism => pb::CaseType::Criticism,
        CaseType::Thanks => pb::CaseType::Thanks,
        _ => pb::CaseType::Unspecified,
    }
}

/// The channel as the contract spells it (`phone`, `sms`, `web`, `app`, `in_person`, `kiosk`).
fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Phone => "phone",
        Channel::Sms => "sms",
        Channel::Web => "web",
        Channel::App => "app",
        Channel::InPerson => "in_person",
        Channel::Kiosk => "kiosk",
        // A channel added to the registry before the contract knows it.
        _ => "",
    }
}

/// `YYYY-MM-DD`.
fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn change_to_proto(change: &StatusChange) -> pb::StatusChange {
    pb::StatusChange {
        status: status_to_proto(change.status).into(),
        at_unix: change.at.unix_timestamp(),
        note: change.note.clone().unwrap_or_default(),
    }
}

/// The wire form of a case; `now` decides `overdue`.
fn case_to_proto(case: &Case, now: OffsetDateTime) -> pb::Case {
    pb::Case {
        number: case.number.to_string(),
        r#type: case_type_to_proto(case.case_type).into(),
        locale: case.locale.clone(),
        caller_number: case.caller_number.clone().unwrap_or_default(),
        callback_number: case.callback_number.clone().unwrap_or_default(),
        transcript: case.transcript.clone().unwrap_or_default(),
        recording_path: case
            .recording_path
            .as_ref()
            .map(|path| path.to_string_lossy().into_owned())
            .unwrap_or_default(),
        agency: case.agency.clone().unwrap_or_default(),
        channel: channel_name(case.channel).to_owned(),
        received_at_unix: case.received_at.unix_timestamp(),
        due_date: format_date(case.due_date),
        status: status_to_proto(case.status).into(),
        history: case.history.iter().map(change_to_proto).collect(),
        answer: case.answer.clone().unwrap_or_default(),
        overdue: case.is_overdue(now),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use dialogs::registry::{Deadlines, NewCase, SqliteRegistry};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use time::{Duration, Month};
    use tonic::Code;

    use super::*;

    /// 2026-03-02 09:00 in Ulaanbaatar (UTC+8).
    fn filed_at() -> OffsetDateTime {
        Date::from_calendar_date(2026, Month::March, 2)
            .and_then(|date| date.with_hms(9, 0, 0))
            .map(|at| at.assume_offset(ulaanbaatar()))
            .unwrap_or_else(|e| panic!("valid test instant: {e}"))
    }

    fn ulaanbaatar() -> UtcOffset {
        UtcOffset::from_hms(8, 0, 0).unwrap_or_else(|e| panic!("valid offset: {e}"))
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        registry: Arc<SqliteRegistry<StdRng>>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
            let registry = SqliteRegistry::open(
                dir.path().join("cases.sqlite"),
                Deadlines::default(),
                StdRng::seed_from_u64(7),
            )
            .unwrap_or_else(|e| panic!("open registry: {e}"));
            Self {
                _dir: dir,
                registry: Arc::new(registry),
            }
        }

        /// The service with the clock fixed at `now`.
        fn service_at(&self, now: OffsetDateTime) -> Cases {
            let registry: Arc<dyn CaseRegistry> = self.registry.clone();
            Cases::new(registry, Arc::new(move || now))
        }

        fn file(&self, new: NewCase, at: OffsetDateTime) -> Case {
            self.registry
                .store(new, at)
                .unwrap_or_else(|e| panic!("store: {e}"))
        }

        fn complaint(&self) -> Case {
            let mut new = NewCase::new(CaseType::Complaint, "mn", Channel::Phone);
            new.caller_number = Some("+97699112233".to_owned());
            new.callback_number = Some("99112233".to_owned());
            new.transcript = Some("Замын гэрэл ажиллахгүй байна".to_owned());
            new.recording_path = Some(PathBuf::from("recordings/2026/03/02/call-1.wav"));
            new.agency = Some("Нийслэлийн Засаг даргын Тамгын газар".to_owned());
            self.file(new, filed_at())
        }
    }

    fn failure<T: fmt::Debug>(result: Result<T, Status>) -> (Code, String) {
        match result {
            Ok(value) => panic!("expected an error, got {value:?}"),
            Err(status) => (status.code(), status.message().to_owned()),
        }
    }

    fn ok<T>(result: Result<Response<T>, Status>) -> T {
        result
            .unwrap_or_else(|status| panic!("unexpected {status:?}"))
            .into_inner()
    }

    fn get(number: &str) -> Request<pb::GetCaseRequest> {
        Request::new(pb::GetCaseRequest {
            number: number.to_owned(),
        })
    }

    #[tokio::test]
    async fn get_case_maps_every_field() {
        let fixture = Fixture::new();
        let case = fixture.complaint();
        let service = fixture.service_at(filed_at() + Duration::days(1));
        let got = ok(service.get_case(get(&case.number.to_string())).await);
        assert_eq!(
            got,
            pb::Case {
                number: case.number.to_string(),
                r#type: pb::CaseType::Complaint.into(),
                locale: "mn".to_owned(),
                caller_number: "+97699112233".to_owned(),
                callback_number: "99112233".to_owned(),
                transcript: "Замын гэрэл ажиллахгүй байна".to_owned(),
                recording_path: "recordings/2026/03/02/call-1.wav".to_owned(),
                agency: "Нийслэлийн Засаг даргын Тамгын газар".to_owned(),
                channel: "phone".to_owned(),
                received_at_unix: filed_at().unix_timestamp(),
                due_date: "2026-04-01".to_owned(),
                status: pb::CaseStatus::Received.into(),
                history: vec![pb::StatusChange {
                    status: pb::CaseStatus::Received.into(),
                    at_unix: filed_at().unix_timestamp(),
                    note: String::new(),
                }],
                answer: String::new(),
                overdue: false,
            }
        );
    }

    #[tokio::test]
    async fn absent_optional_fields_are_empty_and_channels_use_contract_words() {
        let fixture = Fixture::new();
        let case = fixture.file(
            NewCase::new(CaseType::Thanks, "en", Channel::InPerson),
            filed_at(),
        );
        let got = ok(fixture
            .service_at(filed_at())
            .get_case(get(&case.number.to_string()))
            .await);
        assert_eq!(got.channel, "in_person");
        assert_eq!(got.r#type, i32::from(pb::CaseType::Thanks));
        assert_eq!(
            (
                got.caller_number.as_str(),
                got.callback_number.as_str(),
                got.transcript.as_str(),
                got.recording_path.as_str(),
                got.agency.as_str(),
                got.answer.as_str()
            ),
            ("", "", "", "", "", "")
        );
    }

    #[tokio::test]
    async fn get_case_accepts_grouped_numbers() {
        let fixture = Fixture::new();
        let case = fixture.complaint();
        let [a, b, c, d] = case.number.groups();
        let got = ok(fixture
            .service_at(filed_at())
            .get_case(get(&format!("{a} {b}-{c}{d}")))
            .await);
        assert_eq!(got.number, case.number.to_string());
    }

    #[tokio::test]
    async fn wrong_check_digit_is_invalid_argument_with_the_reason() {
        let fixture = Fixture::new();
        let case = fixture.complaint();
        let mut digits = case.number.to_string().into_bytes();
        // The last byte is an ASCII digit; any other digit breaks the Damm check.
        digits[9] = b'0' + (digits[9] - b'0' + 1) % 10;
        let wrong = String::from_utf8(digits).unwrap_or_else(|e| panic!("ascii: {e}"));
        let (code, message) = failure(fixture.service_at(filed_at()).get_case(get(&wrong)).await);
        assert_eq!(code, Code::InvalidArgument);
        assert!(message.contains("check digit"), "{message}");
    }

    #[tokio::test]
    async fn malformed_numbers_are_invalid_argument() {
        let fixture = Fixture::new();
        let service = fixture.service_at(filed_at());
        for text in ["", "12345", "47103958261", "47103958x6"] {
            let (code, message) = failure(service.get_case(get(text)).await);
            assert_eq!(code, Code::InvalidArgument, "{text:?}: {message}");
        }
        let (_, message) = failure(service.get_case(get("12345")).await);
        assert!(message.contains("10 digits"), "{message}");
    }

    #[tokio::test]
    async fn unknown_case_is_not_found() {
        let fixture = Fixture::new();
        fixture.complaint();
        // A well-formed number (valid check digit) that was never issued.
        let (code, _) = failure(
            fixture
                .service_at(filed_at())
                .get_case(get("4710395826"))
                .await,
        );
        assert_eq!(code, Code::NotFound);
        let (code, _) = failure(
            fixture
                .service_at(filed_at())
                .answer(Request::new(pb::AnswerRequest {
                    number: "4710395826".to_owned(),
                    answer: "Fixed.".to_owned(),
                }))
                .await,
        );
        assert_eq!(code, Code::NotFound);
    }

    #[tokio::test]
    async fn overdue_follows_the_clock_in_its_offset() {
        let fixture = Fixture::new();
        let case = fixture.complaint();
        let number = case.number.to_string();
        // Due 2026-04-01: still on time that whole day in Ulaanbaatar, overdue the next.
        let last_minute = Date::from_calendar_date(2026, Month::April, 1)
            .and_then(|date| date.with_hms(23, 59, 0))
            .map(|at| at.assume_offset(ulaanbaatar()))
            .unwrap_or_else(|e| panic!("valid instant: {e}"));
        let on_time = ok(fixture.service_at(last_minute).get_case(get(&number)).await);
        assert!(!on_time.overdue);
        let late = ok(fixture
            .service_at(last_minute + Duration::minutes(2))
            .get_case(get(&number))
            .await);
        assert!(late.overdue);
    }

    fn list(request: pb::ListCasesRequest) -> Request<pb::ListCasesRequest> {
        Request::new(request)
    }

    fn numbers(response: &pb::ListCasesResponse) -> Vec<String> {
        response.cases.iter().map(|c| c.number.clone()).collect()
    }

    #[tokio::test]
    async fn list_cases_applies_every_filter() {
        let fixture = Fixture::new();
        let day = Duration::days(1);
        let mut petition = NewCase::new(CaseType::Petition, "en", Channel::Web);
        petition.agency = Some("GASR".to_owned());
        let old = fixture.file(petition.clone(), filed_at() - Duration::days(40));
        let recent = fixture.file(petition, filed_at());
        let suggestion = fixture.file(
            NewCase::new(CaseType::Suggestion, "mn", Channel::Sms),
            filed_at() + day,
        );
        fixture
            .registry
            .update_status(
                &recent.number,
                CaseStatus::Forwarded,
                None,
                filed_at() + day,
            )
            .unwrap_or_else(|e| panic!("forward: {e}"));
        let service = fixture.service_at(filed_at() + Duration::days(2));

        let all = ok(service.list_cases(list(Default::default())).await);
        assert_eq!(
            numbers(&all),
            [&old, &recent, &suggestion].map(|c| c.number.to_string())
        );

        let by_type = ok(service
            .list_cases(list(pb::ListCasesRequest {
                r#type: pb::CaseType::Suggestion.into(),
                ..Default::default()
            }))
            .await);
        assert_eq!(numbers(&by_type), [suggestion.number.to_string()]);

        let by_status = ok(service
            .list_cases(list(pb::ListCasesRequest {
                status: pb::CaseStatus::Forwarded.into(),
                ..Default::default()
            }))
            .await);
        assert_eq!(numbers(&by_status), [recent.number.to_string()]);

        let by_agency = ok(service
            .list_cases(list(pb::ListCasesRequest {
                agency: "GASR".to_owned(),
                ..Default::default()
            }))
            .await);
        assert_eq!(by_agency.cases.len(), 2);

        let in_range = ok(service
            .list_cases(list(pb::ListCasesRequest {
                received_from_unix: filed_at().unix_timestamp(),
                received_to_unix: (filed_at() + day).unix_timestamp(),
                ..Default::default()
            }))
            .await);
        assert_eq!(numbers(&in_range), [recent.number.to_string()]);

        let overdue = ok(service
            .list_cases(list(pb::ListCasesRequest {
                overdue_only: true,
                ..Default::default()
            }))
            .await);
        assert_eq!(numbers(&overdue), [old.number.to_string()]);
        assert!(overdue.cases[0].overdue);

        let limited = ok(service
            .list_cases(list(pb::ListCasesRequest {
                limit: 2,
                ..Default::default()
            }))
            .await);
        assert_eq!(
            numbers(&limited),
            [&old, &recent].map(|c| c.number.to_string())
        );
    }

    #[test]
    fn list_limit_defaults_to_100_and_is_capped_at_1000() {
        let now = filed_at();
        let limit_of = |limit| {
            filter_from_proto(
                &pb::ListCasesRequest {
                    limit,
                    ..Default::default()
                },
                now,
            )
            .map(|filter| filter.limit)
            .unwrap_or_else(|status| panic!("{status:?}"))
        };
        assert_eq!(limit_of(0), Some(100));
        assert_eq!(limit_of(7), Some(7));
        assert_eq!(limit_of(1000), Some(1000));
        assert_eq!(limit_of(u32::MAX), Some(1000));
    }

    #[tokio::test]
    async fn list_rejects_unknown_enum_values_and_inverted_ranges() {
        let fixture = Fixture::new();
        let service = fixture.service_at(filed_at());
        for request in [
            pb::ListCasesRequest {
                status: 42,
                ..Default::default()
            },
            pb::ListCasesRequest {
                r#type: -1,
                ..Default::default()
            },
            pb::ListCasesRequest {
                received_from_unix: 2_000,
                received_to_unix: 1_000,
                ..Default::default()
            },
            pb::ListCasesRequest {
                received_from_unix: i64::MAX,
                ..Default::default()
            },
        ] {
            let (code, message) = failure(service.list_cases(list(request)).await);
            assert_eq!(code, Code::InvalidArgument, "{message}");
        }
    }

    fn update(
        number: &str,
        status: pb::CaseStatus,
        agency: &str,
    ) -> Request<pb::UpdateStatusRequest> {
        Request::new(pb::UpdateStatusRequest {
            number: number.to_owned(),
            status: status.into(),
            note: "by phone".to_owned(),
            agency: agency.to_owned(),
        })
    }

    #[tokio::test]
    async fn forwarding_records_the_agency_and_note_in_the_history() {
        let fixture = Fixture::new();
        let case = fixture.complaint();
        let now = filed_at() + Duration::hours(3);
        let got = ok(fixture
            .service_at(now)
            .update_status(update(
                &case.number.to_string(),
                pb::CaseStatus::Forwarded,
                "Police",
            ))
            .await);
        assert_eq!(got.status, i32::from(pb::CaseStatus::Forwarded));
        assert_eq!(
            got.history.last(),
            Some(&pb::StatusChange {
                status: pb::CaseStatus::Forwarded.into(),
                at_unix: now.unix_timestamp(),
                note: "forwarded to Police: by phone".to_owned(),
            })
        );
    }

    #[tokio::test]
    async fn update_status_refuses_statuses_it_cannot_set() {
        let fixture = Fixture::new();
        let number = fixture.complaint().number.to_string();
        let service = fixture.service_at(filed_at());
        for status in [
            pb::CaseStatus::Unspecified,
            pb::CaseStatus::Received,
            pb::CaseStatus::Extended,
        ] {
            let (code, message) = failure(service.update_status(update(&number, status, "")).await);
            assert_eq!(code, Code::InvalidArgument, "{status:?}: {message}");
        }
        let (code, message) = failure(
            service
                .update_status(update(&number, pb::CaseStatus::Closed, "Police"))
                .await,
        );
        assert_eq!(code, Code::InvalidArgument, "{message}");
        // Nothing was changed by the refused requests.
        let case = ok(service.get_case(get(&number)).await);
        assert_eq!(case.history.len(), 1);
    }

    #[tokio::test]
    async fn forbidden_transitions_are_failed_precondition() {
        let fixture = Fixture::new();
        let number = fixture.complaint().number.to_string();
        let service = fixture.service_at(filed_at());
        ok(service
            .update_status(update(&number, pb::CaseStatus::Closed, ""))
            .await);
        let (code, _) = failure(
            service
                .update_status(update(&number, pb::CaseStatus::Forwarded, ""))
                .await,
        );
        assert_eq!(code, Code::FailedPrecondition);
        let (code, _) = failure(
            service
                .answer(Request::new(pb::AnswerRequest {
                    number: number.clone(),
                    answer: "Too late.".to_owned(),
                }))
                .await,
        );
        assert_eq!(code, Code::FailedPrecondition);
    }

    #[tokio::test]
    async fn answer_records_the_text_and_closes_the_deadline() {
        let fixture = Fixture::new();
        let case = fixture.complaint();
        // Answered after the due date: an answered case is no longer overdue.
        let service = fixture.service_at(filed_at() + Duration::days(45));
        let number = case.number.to_string();
        assert!(ok(service.get_case(get(&number)).await).overdue);
        let got = ok(service
            .answer(Request::new(pb::AnswerRequest {
                number: number.clone(),
                answer: "The street light was repaired.".to_owned(),
            }))
            .await);
        assert_eq!(got.answer, "The street light was repaired.");
        assert_eq!(got.status, i32::from(pb::CaseStatus::Answered));
        assert!(!got.overdue);
        let (code, _) = failure(
            service
                .answer(Request::new(pb::AnswerRequest {
                    number,
                    answer: "  ".to_owned(),
                }))
                .await,
        );
        assert_eq!(code, Code::InvalidArgument);
    }

    #[tokio::test]
    async fn extend_moves_the_due_date_once() {
        let fixture = Fixture::new();
        let number = fixture.complaint().number.to_string();
        let service = fixture.service_at(filed_at() + Duration::days(10));
        let extend = || {
            Request::new(pb::ExtendRequest {
                number: number.clone(),
                note: "needs a site visit".to_owned(),
            })
        };
        let got = ok(service.extend(extend()).await);
        assert_eq!(got.due_date, "2026-05-01");
        assert_eq!(got.status, i32::from(pb::CaseStatus::Extended));
        assert_eq!(
            got.history.last().map(|c| c.note.as_str()),
            Some("needs a site visit")
        );
        let (code, message) = failure(service.extend(extend()).await);
        assert_eq!(code, Code::FailedPrecondition);
        assert!(message.contains("already extended"), "{message}");
    }

    #[test]
    fn storage_failures_are_internal_without_details() {
        let status = status_of(registry::Error::CorruptRecord(
            "channel \"fax\" in /var/lib/ivr/cases.sqlite".to_owned(),
        ));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("sqlite"), "{}", status.message());
        assert!(!status.message().contains("fax"), "{}", status.message());
    }

    #[test]
    fn every_wire_enum_value_maps_back_to_itself() {
        for value in 1..=5 {
            let status = status_from_proto(value)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("status {value}"));
            assert_eq!(i32::from(status_to_proto(status)), value);
            let case_type = case_type_from_proto(value)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("type {value}"));
            assert_eq!(i32::from(case_type_to_proto(case_type)), value);
        }
        assert!(matches!(status_from_proto(0), Ok(None)));
        assert!(matches!(case_type_from_proto(0), Ok(None)));
    }

    #[test]
    fn dates_are_written_year_month_day() {
        let date = Date::from_calendar_date(2026, Month::January, 5)
            .unwrap_or_else(|e| panic!("valid date: {e}"));
        assert_eq!(format_date(date), "2026-01-05");
    }
}
