//! The engine driven in simulated time: no sleeps, no stores, every effect inspected.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::registry::{CaseStatus, StatusChange};

fn flow() -> Arc<Flow> {
    static FLOW: OnceLock<Arc<Flow>> = OnceLock::new();
    FLOW.get_or_init(|| Arc::new(Flow::builtin().expect("the built-in flow loads")))
        .clone()
}

fn directory() -> Arc<Directory> {
    static DIR: OnceLock<Arc<Directory>> = OnceLock::new();
    DIR.get_or_init(|| Arc::new(Directory::builtin().expect("the built-in directory loads")))
        .clone()
}

/// A fixed origin for simulated time; only offsets from it matter.
#[allow(clippy::disallowed_methods)] // tests need one real Instant to add durations to
fn origin() -> Instant {
    Instant::now()
}

/// Friday, inside opening hours (08:00-20:00 +08:00).
const OPEN: OffsetDateTime = datetime!(2026-11-27 10:00 +08:00);
/// Friday night.
const CLOSED: OffsetDateTime = datetime!(2026-11-27 22:30 +08:00);

/// A call with its simulated clock. Playback of every prompt finishes at once unless
/// `hold_playback` is set.
struct Call {
    engine: Engine,
    now: Instant,
    timer: Option<Instant>,
    hold_playback: bool,
    log: Vec<Output>,
}

impl Call {
    fn start(
        caller: Option<&str>,
        locale: Option<Lang>,
        wall: OffsetDateTime,
    ) -> (Call, Vec<Output>) {
        Call::start_with(caller, locale, None, None, wall)
    }

    fn start_with(
        caller: Option<&str>,
        locale: Option<Lang>,
        profile: Option<Profile>,
        session: Option<ResumableSession>,
        wall: OffsetDateTime,
    ) -> (Call, Vec<Output>) {
        let mut call = Call {
            engine: Engine::new(flow(), directory()),
            now: origin(),
            timer: None,
            hold_playback: false,
            log: Vec::new(),
        };
        let out = call.send(Input::CallStarted {
            caller: caller.map(str::to_string),
            locale,
            profile,
            session,
            wall,
        });
        (call, out)
    }

    /// Feeds an input (and the playback ends of what it says); returns every output.
    fn send(&mut self, input: Input) -> Vec<Output> {
        let mut all = Vec::new();
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            for out in self.engine.handle(self.now, input) {
                match &out {
                    Output::Play(p) if !self.hold_playback => {
                        queue.insert(0, Input::PlaybackFinished(p.mark))
                    }
                    Output::Timer(at) => self.timer = Some(*at),
                    Output::CancelTimer => self.timer = None,
                    _ => {}
                }
                all.push(out);
            }
        }
        self.log.extend(all.iter().cloned());
        all
    }

    fn keys(&mut self, keys: &str) -> Vec<Output> {
        let mut all = Vec::new();
        for k in keys.chars() {
            all.extend(self.send(Input::Keyed(k)));
            self.now += Duration::from_millis(300);
        }
        all
    }

    fn say(&mut self, text: &str) -> Vec<Output> {
        self.send(Input::Heard(vec![Hypothesis::new(text, 0.95)]))
    }

    /// Lets simulated time run to the pending timer.
    fn wait(&mut self) -> Vec<Output> {
        let at = self.timer.take().expect("a timer is pending");
        self.now = at;
        self.send(Input::Timeout)
    }
}

fn prompts(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Play(p) => Some(p.prompt.clone().unwrap_or_else(|| "(text)".into())),
            _ => None,
        })
        .collect()
}

fn texts(out: &[Output]) -> String {
    out.iter()
        .filter_map(|o| match o {
            Output::Play(p) => Some(p.text()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn transfer(out: &[Output]) -> Option<&str> {
    out.iter().find_map(|o| match o {
        Output::Transfer { target } => Some(target.as_str()),
        _ => None,
    })
}

fn stored_case(new: &NewCase, number: &str, now: OffsetDateTime) -> Case {
    let due = now.date() + time::Duration::days(30);
    Case {
        number: number.parse().expect("a valid case number"),
        case_type: new.case_type,
        locale: new.locale.clone(),
        caller_number: new.caller_number.clone(),
        callback_number: new.callback_number.clone(),
        transcript: new.transcript.clone(),
        recording_path: new.recording_path.clone(),
        agency: new.agency.clone(),
        channel: new.channel,
        received_at: now,
        due_date: due,
        status: CaseStatus::Received,
        history: vec![StatusChange {
            status: CaseStatus::Received,
            at: now,
            note: None,
        }],
        answer: None,
    }
}

/// A valid case number (Damm check digit).
fn valid_number() -> String {
    let body = "495450921";
    let check = grammars::dtmf::damm_check_digit(body).expect("digits");
    format!("{body}{check}")
}

/// English caller at the main menu.
fn at_main_menu(caller: Option<&str>, wall: OffsetDateTime) -> Call {
    let (call, out) = Call::start(caller, Some(Lang::En), wall);
    assert_eq!(prompts(&out), ["GREET", "MAIN", "MAIN_LANG"]);
    call
}

#[test]
fn a_call_greets_asks_the_language_and_opens_the_main_menu() {
    let (mut call, out) = Call::start(None, None, OPEN);
    assert_eq!(prompts(&out), ["GREET", "LANG"]);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Listen(l) if l.grammars[0] == "language")));
    let out = call.keys("2");
    assert_eq!(prompts(&out), ["MAIN", "MAIN_LANG"]);
    assert_eq!(call.engine.locale(), Lang::En);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::SaveProfile(p) if p.locale.as_deref() == Some("en"))));
}

#[test]
fn the_number_is_spoken_only_after_the_store_is_acknowledged() {
    let mut call = at_main_menu(Some("+97699112233"), OPEN);
    call.say("file a complaint");
    assert!(call.engine.recording());
    call.send(Input::Recorded {
        transcript: Some("The land office has not answered my letter".into()),
        recording: Some("/data/rec/1.wav".into()),
    });
    call.say("complaint");
    call.keys("1"); // skip the agency
    let out = call.say("yes"); // the number we call back is right
    let new = out
        .iter()
        .find_map(|o| match o {
            Output::StoreCase(n) => Some(n.clone()),
            _ => None,
        })
        .expect("the case is handed to the store");
    assert_eq!(new.case_type, CaseType::Complaint);
    assert_eq!(new.caller_number.as_deref(), Some("+97699112233"));
    assert_eq!(new.recording_path, Some(PathBuf::from("/data/rec/1.wav")));
    assert!(new
        .transcript
        .as_deref()
        .is_some_and(|t| t.contains("land office")));
    let number = valid_number();
    assert!(
        !call
            .log
            .iter()
            .any(|o| matches!(o, Output::Play(p) if p.text().contains(&number[..3]))),
        "nothing that looks like the number is said before the store answers"
    );
    let out = call.send(Input::CaseStored(Ok(stored_case(&new, &number, OPEN))));
    let said = texts(&out);
    let grouped = format!("{} {} {}", &number[..3], &number[3..6], &number[6..]);
    assert_eq!(
        said.matches(&grouped).count(),
        2,
        "the number twice: {said}"
    );
    assert!(said.contains("30 days"), "{said}");
    assert!(said.contains("27 December 2026"), "{said}");
    assert!(out.contains(&Output::ClearSession));
    assert_eq!(prompts(&out), ["CMP_DONE", "ANYTHING_ELSE"]);
}

#[test]
fn a_failed_store_never_speaks_a_number_and_hands_over_to_staff() {
    let mut call = at_main_menu(Some("99112233"), OPEN);
    call.keys("2");
    call.send(Input::Recorded {
        transcript: Some("the road is broken".into()),
        recording: None,
    });
    call.keys("1"); // complaint
    call.keys("1"); // no agency
    let out = call.keys("1"); // the number is right
    assert!(out.iter().any(|o| matches!(o, Output::StoreCase(_))));
    let out = call.send(Input::CaseStored(Err("disk full".into())));
    assert_eq!(prompts(&out), ["CMP_FAILED", "OPER"]);
    assert!(transfer(&out).is_some());
    assert!(call.engine.ended());
}

#[test]
fn silence_re_prompts_then_reads_the_key_map_then_hands_over() {
    let mut call = at_main_menu(None, OPEN);
    let deadline = call
        .timer
        .expect("the no-input timer runs after the prompt");
    assert_eq!(deadline - call.now, Duration::from_secs(8));
    // A timer that fires early is ignored.
    call.now += Duration::from_secs(1);
    assert!(call.send(Input::Timeout).is_empty());
    let out = call.wait();
    assert_eq!(prompts(&out), ["NOINPUT", "MAIN", "MAIN_LANG"]);
    let out = call.wait();
    assert_eq!(prompts(&out), ["NOINPUT", "HELP_KEYS", "MAIN", "MAIN_LANG"]);
    let out = call.wait();
    assert_eq!(prompts(&out), ["OPER"]);
    assert_eq!(transfer(&out), Some("sip:operator@127.0.0.1:5070"));
}

#[test]
fn the_no_input_clock_starts_when_the_prompt_has_been_heard() {
    let (mut call, _) = Call::start(None, Some(Lang::En), OPEN);
    call.hold_playback = true;
    let out = call.keys("9");
    assert!(
        !out.iter().any(|o| matches!(o, Output::Timer(_))),
        "no timer while speaking"
    );
    let last = out
        .iter()
        .filter_map(|o| match o {
            Output::Play(p) => Some(p.mark),
            _ => None,
        })
        .next_back()
        .expect("the menu is said again");
    call.now += Duration::from_secs(20);
    let out = call.send(Input::PlaybackFinished(last));
    assert!(
        matches!(out.as_slice(), [Output::Timer(at)] if *at == call.now + Duration::from_secs(8))
    );
}

#[test]
fn speech_holds_the_no_input_timer() {
    let mut call = at_main_menu(None, OPEN);
    let out = call.send(Input::SpeechStarted);
    assert_eq!(out, [Output::CancelTimer]);
    assert!(call.timer.is_none());
    let out = call.send(Input::NothingHeard);
    assert_eq!(prompts(&out), ["NOINPUT", "MAIN", "MAIN_LANG"]);
}

#[test]
fn nonsense_twice_then_a_person() {
    let mut call = at_main_menu(None, OPEN);
    let out = call.say("the weather is nice today");
    assert_eq!(prompts(&out), ["NOMATCH", "MAIN", "MAIN_LANG"]);
    let out = call.keys("7");
    assert_eq!(prompts(&out), ["NOMATCH", "HELP_KEYS", "MAIN", "MAIN_LANG"]);
    let out = call.say("bananas");
    assert_eq!(prompts(&out), ["OPER"]);
    assert!(transfer(&out).is_some());
}

#[test]
fn global_keys_work_in_every_listening_state() {
    // Each listening state of the hotline, reached by keys.
    let routes: [(&str, &str); 5] = [
        ("main", ""),
        ("info", "1"),
        ("cmp_type", "2"),
        ("stat_ask", "3"),
        ("language", "4"),
    ];
    for (state, keys) in routes {
        let mut call = at_main_menu(Some("99112233"), OPEN);
        call.keys(keys);
        if state == "cmp_type" {
            call.send(Input::Recorded {
                transcript: Some("words".into()),
                recording: None,
            });
        }
        assert_eq!(call.engine.state_name(), state);
        // While a number is keyed, digits are the number: the commands are spoken.
        let keyed = state != "stat_ask";
        let out = if keyed {
            call.keys("9")
        } else {
            call.say("repeat")
        };
        assert_eq!(
            prompts(&out).first().map(String::as_str),
            Some("REPEAT"),
            "repeat in {state}"
        );
        let out = if keyed {
            call.keys("8")
        } else {
            call.say("slower")
        };
        assert_eq!(
            prompts(&out).first().map(String::as_str),
            Some("SLOWER"),
            "slower in {state}"
        );
        assert!(out.iter().all(|o| !matches!(o, Output::Play(p) if !p.slow)));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::SaveProfile(p) if p.slow_speech)));
        let out = if keyed {
            call.keys("0")
        } else {
            call.say("operator")
        };
        assert_eq!(transfer(&out).map(|_| ()), Some(()), "operator in {state}");
    }
}

#[test]
fn spoken_commands_match_the_keys() {
    let mut call = at_main_menu(None, OPEN);
    assert_eq!(prompts(&call.say("repeat that please"))[0], "REPEAT");
    assert_eq!(prompts(&call.say("slow down"))[0], "SLOWER");
    assert!(call.engine.slow());
    let out = call.say("operator");
    assert!(transfer(&out).is_some());
}

#[test]
fn back_returns_to_the_previous_menu() {
    let mut call = at_main_menu(None, OPEN);
    call.keys("1");
    assert_eq!(call.engine.state_name(), "info");
    call.keys("1"); // a topic page
    let out = call.keys("*"); // back to the topics
    assert_eq!(prompts(&out), ["INFO_MENU", "INFO_SEARCH"]);
    let out = call.keys("*"); // back to the main menu
    assert_eq!(prompts(&out), ["MAIN", "MAIN_LANG"]);
    assert_eq!(call.engine.state_name(), "main");
}

#[test]
fn a_doubtful_answer_is_confirmed_first() {
    let mut call = at_main_menu(None, OPEN);
    let out = call.send(Input::Heard(vec![Hypothesis::new("complaint", 0.6)]));
    assert_eq!(prompts(&out), ["CONFIRM"]);
    assert!(texts(&out).contains("complaint"));
    let out = call.say("no");
    assert_eq!(prompts(&out), ["MAIN", "MAIN_LANG"]);
    call.send(Input::Heard(vec![Hypothesis::new("complaint", 0.6)]));
    call.keys("1");
    assert!(call.engine.recording(), "confirmed: filing starts");
}

#[test]
fn emergency_words_are_never_filed() {
    let mut call = at_main_menu(Some("99112233"), OPEN);
    let out = call.say("please send an ambulance my father is not breathing");
    assert_eq!(prompts(&out), ["EMERGENCY", "ANYTHING_ELSE"]);
    call.keys("1");
    call.keys("2");
    let out = call.send(Input::Recorded {
        transcript: Some("my neighbour is bleeding, call the police".into()),
        recording: Some("/tmp/x.wav".into()),
    });
    assert_eq!(prompts(&out), ["EMERGENCY", "ANYTHING_ELSE"]);
    assert!(!call.log.iter().any(|o| matches!(o, Output::StoreCase(_))));
    assert!(call.engine.slots().get("transcript").is_none());
}

#[test]
fn a_mistyped_number_is_caught_by_its_check_digit() {
    let mut call = at_main_menu(None, OPEN);
    call.keys("3");
    let good = valid_number();
    let mut bad: Vec<char> = good.chars().collect();
    bad[4] = if bad[4] == '1' { '2' } else { '1' };
    let bad: String = bad.into_iter().collect();
    let out = call.keys(&bad);
    assert_eq!(prompts(&out), ["STAT_BADCHECK", "STAT_ASK"]);
    let out = call.keys(&format!("{good}#"));
    let number = out
        .iter()
        .find_map(|o| match o {
            Output::LookupCase(n) => Some(n.to_string()),
            _ => None,
        })
        .expect("a lookup");
    assert_eq!(
        number
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>(),
        good
    );
    let out = call.send(Input::CaseFound(Ok(None)));
    assert_eq!(prompts(&out), ["STAT_NOTFOUND"]);
}

#[test]
fn a_spoken_number_is_taken_digit_by_digit() {
    let mut call = at_main_menu(None, OPEN);
    call.keys("3");
    let words: Vec<&str> = valid_number()
        .chars()
        .map(|d| {
            [
                "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            ][d.to_digit(10).expect("digit") as usize]
        })
        .collect();
    let out = call.say(&words.join(" "));
    assert!(out.iter().any(|o| matches!(o, Output::LookupCase(_))));
}

#[test]
fn a_found_case_reads_status_due_date_and_answer() {
    let mut call = at_main_menu(None, OPEN);
    call.keys("3");
    call.keys(&valid_number());
    let mut case = stored_case(
        &NewCase::new(CaseType::Petition, "en", Channel::Phone),
        &valid_number(),
        datetime!(2026-11-02 09:00 +08:00),
    );
    case.agency = Some("the Land Agency".into());
    case.status = CaseStatus::Answered;
    case.answer = Some("Your land certificate is ready.".into());
    let out = call.send(Input::CaseFound(Ok(Some(case))));
    assert_eq!(prompts(&out), ["STAT_READ", "STAT_ANSWER", "ANYTHING_ELSE"]);
    let said = texts(&out);
    assert!(
        said.contains("Your petition from 2 November 2026 is with the Land Agency"),
        "{said}"
    );
    assert!(said.contains("Answer due by 2 December 2026"), "{said}");
    assert!(said.contains("Your land certificate is ready."));
}

#[test]
fn a_slow_keyer_is_warned_and_may_ask_for_more_time() {
    let mut call = at_main_menu(None, OPEN);
    call.keys("3");
    let out = call.wait();
    assert_eq!(prompts(&out), ["WAIT_WARN"]);
    let out = call.send(Input::Keyed('#'));
    assert_eq!(prompts(&out), ["MORE_TIME"]);
    assert_eq!(
        call.timer.map(|t| t - call.now),
        Some(Duration::from_secs(30))
    );
    let out = call.wait();
    assert_eq!(prompts(&out), ["WAIT_WARN"]);
    let out = call.wait();
    assert_eq!(prompts(&out), ["NOINPUT", "STAT_ASK"]);
}

#[test]
fn a_pause_between_keys_ends_a_short_number() {
    let mut call = at_main_menu(None, OPEN);
    call.keys("3");
    call.keys("12345");
    assert_eq!(
        call.timer
            .map(|t| t - call.now + Duration::from_millis(300)),
        Some(Duration::from_secs(5))
    );
    let out = call.wait();
    assert_eq!(prompts(&out), ["STAT_BADCHECK", "STAT_ASK"]);
}

#[test]
fn outside_hours_a_call_back_is_offered() {
    let mut call = at_main_menu(Some("99112233"), CLOSED);
    let out = call.keys("0");
    assert_eq!(prompts(&out), ["OPER_CLOSED"]);
    assert!(transfer(&out).is_none());
    let out = call.keys("1");
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::RequestCallback { number, .. } if number == "99112233")));
    assert!(texts(&out).contains("9911 2233"));
    // Without a number there is nothing to call back: the caller hears the hours.
    let mut call = at_main_menu(None, CLOSED);
    let out = call.keys("0");
    assert_eq!(prompts(&out), ["OPER_HOURS", "ANYTHING_ELSE"]);
}

#[test]
fn a_service_is_found_by_name_and_read_in_short_sentences() {
    let mut call = at_main_menu(None, OPEN);
    call.keys("1");
    let out = call.say("I need a birth certificate");
    let p = prompts(&out);
    assert_eq!(p.last().map(String::as_str), Some("INFO_AFTER"));
    assert!(p.iter().filter(|p| *p == "(text)").count() >= 3, "{p:?}");
    let said = texts(&out);
    assert!(said.to_lowercase().contains("birth"), "{said}");
    let out = call.keys("1"); // next service
    assert_eq!(prompts(&out).last().map(String::as_str), Some("INFO_AFTER"));
    let out = call.keys("3"); // the main menu
    assert_eq!(prompts(&out), ["MAIN", "MAIN_LANG"]);
}

#[test]
fn topic_menus_offer_at_most_five_choices() {
    let mut call = at_main_menu(None, OPEN);
    call.keys("1");
    for topic in 1..=5 {
        let out = call.keys(&topic.to_string());
        let options = prompts(&out)
            .iter()
            .filter(|p| *p == "INFO_OPTION" || *p == "INFO_MORE")
            .count();
        assert!(options <= 5, "topic {topic}: {options} choices");
        call.keys("*");
    }
}

#[test]
fn a_remembered_caller_skips_the_language_menu_and_keeps_slow_speech() {
    let profile = Profile {
        locale: Some("en".into()),
        slow_speech: true,
        ..Profile::default()
    };
    let (_, out) = Call::start_with(Some("99112233"), None, Some(profile), None, OPEN);
    assert_eq!(prompts(&out), ["GREET", "MAIN", "MAIN_LANG"]);
    assert!(out
        .iter()
        .all(|o| !matches!(o, Output::Play(p) if !p.slow || p.locale != Lang::En)));
}

#[test]
fn a_dropped_filing_resumes_where_it_stopped() {
    let mut call = at_main_menu(Some("99112233"), OPEN);
    call.keys("2");
    call.send(Input::Recorded {
        transcript: Some("the school is closed".into()),
        recording: None,
    });
    let out = call.keys("3"); // petition; now at the agency question
    let session = out
        .iter()
        .find_map(|o| match o {
            Output::SaveSession(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a resumable step saves the session");
    assert_eq!(session.flow_state, "cmp_agency");
    assert_eq!(
        session.data.get("case_type").map(String::as_str),
        Some("petition")
    );
    call.send(Input::Hangup);
    assert!(call.engine.ended());

    let (mut again, out) =
        Call::start_with(Some("99112233"), None, None, Some(session.clone()), OPEN);
    assert_eq!(prompts(&out), ["GREET", "RESUME"]);
    let out = again.keys("1");
    assert_eq!(prompts(&out), ["CMP_AGENCY"]);
    again.keys("1");
    let out = again.keys("1");
    let new = out
        .iter()
        .find_map(|o| match o {
            Output::StoreCase(n) => Some(n.clone()),
            _ => None,
        })
        .expect("the resumed case is stored");
    assert_eq!(new.case_type, CaseType::Petition);
    assert_eq!(new.transcript.as_deref(), Some("the school is closed"));

    let (mut fresh, _) = Call::start_with(Some("99112233"), None, None, Some(session), OPEN);
    let out = fresh.keys("2");
    assert!(out.contains(&Output::ClearSession));
    assert_eq!(prompts(&out), ["GREET", "LANG"]);
}

#[test]
fn mongolian_words_drive_the_menus() {
    let (mut call, _) = Call::start(None, Some(Lang::Mn), OPEN);
    let out = call.say("гомдол");
    assert!(call.engine.recording(), "{:?}", prompts(&out));
    call.send(Input::Recorded {
        transcript: Some("сургуулийн тухай".into()),
        recording: None,
    });
    let out = call.say("өргөдөл");
    assert_eq!(prompts(&out), ["CMP_AGENCY"]);
    let out = call.say("ажилтан");
    assert!(transfer(&out).is_some());
}

#[test]
fn repeat_after_filing_says_the_number_again() {
    let mut call = at_main_menu(Some("99112233"), OPEN);
    call.keys("2");
    call.send(Input::Recorded {
        transcript: Some("the bus never comes".into()),
        recording: None,
    });
    call.keys("1");
    call.keys("1");
    let out = call.keys("1");
    let new = out
        .iter()
        .find_map(|o| match o {
            Output::StoreCase(n) => Some(n.clone()),
            _ => None,
        })
        .expect("stored");
    call.send(Input::CaseStored(Ok(stored_case(
        &new,
        &valid_number(),
        OPEN,
    ))));
    let out = call.keys("9");
    assert_eq!(prompts(&out), ["REPEAT", "CMP_DONE", "ANYTHING_ELSE"]);
    // "Back" after filing leads to the main menu, never into filing again.
    let out = call.keys("*");
    assert_eq!(prompts(&out), ["MAIN", "MAIN_LANG"]);
}

#[test]
fn leaving_the_filing_for_a_person_forgets_the_half_filed_case() {
    let mut call = at_main_menu(Some("99112233"), OPEN);
    call.keys("2");
    call.send(Input::Recorded {
        transcript: Some("words".into()),
        recording: None,
    });
    let out = call.keys("1");
    assert!(out.iter().any(|o| matches!(o, Output::SaveSession(_))));
    let out = call.keys("0");
    assert!(out.contains(&Output::ClearSession), "{out:?}");
    assert!(transfer(&out).is_some());
}

#[test]
fn a_wrong_number_and_its_hash_count_once() {
    let mut call = at_main_menu(None, OPEN);
    call.keys("3");
    let good = valid_number();
    let bad = format!("{}{}", &good[..9], (good.as_bytes()[9] - b'0' + 1) % 10);
    let out = call.keys(&format!("{bad}#"));
    assert_eq!(prompts(&out), ["STAT_BADCHECK", "STAT_ASK"]);
}

#[test]
fn an_interrupted_prompt_does_not_hold_up_the_next_state() {
    let mut call = Call {
        engine: Engine::new(flow(), directory()),
        now: origin(),
        timer: None,
        hold_playback: true,
        log: Vec::new(),
    };
    call.send(Input::CallStarted {
        caller: None,
        locale: Some(Lang::En),
        profile: None,
        session: None,
        wall: OPEN,
    });
    // The greeting was never reported heard: the caller pressed 0 while it played. The
    // operator state has no prompt of its own and must still act.
    let out = call.send(Input::Keyed('0'));
    assert_eq!(prompts(&out), ["OPER"]);
    let mark = out
        .iter()
        .find_map(|o| match o {
            Output::Play(p) => Some(p.mark),
            _ => None,
        })
        .expect("OPER is said");
    let out = call.send(Input::PlaybackFinished(mark));
    assert!(transfer(&out).is_some());
}

#[test]
fn inputs_after_the_end_change_nothing() {
    let mut call = at_main_menu(None, OPEN);
    call.send(Input::Hangup);
    assert!(call.keys("1").is_empty());
    assert!(call.say("operator").is_empty());
    assert!(call.send(Input::Timeout).is_empty());
    // And before the start.
    let mut engine = Engine::new(flow(), directory());
    assert!(engine.handle(origin(), Input::Keyed('1')).is_empty());
}
