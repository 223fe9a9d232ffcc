//! The robot against an in-process fake assistant: a tonic `MediaGateway` server on
//! 127.0.0.1 that hands each call to the test, which plays the assistant's part message by
//! message. The robot paces real audio, so these tests take real time; audio is kept to a few
//! hundred milliseconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_proto::v1::media_gateway_server::{MediaGateway, MediaGatewayServer};
use ivr_proto::v1::{self as pb, down, event, up};
use speech::stt::{SttRequest, Transcript};
use speech::tts::Speaker;
use speech::Pcm;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use super::*;

/// One call as the fake assistant sees it.
struct FakeCall {
    ups: Streaming<pb::Up>,
    downs: mpsc::Sender<Result<pb::Down, Status>>,
}

struct FakeAssistant {
    calls: mpsc::Sender<FakeCall>,
}

#[tonic::async_trait]
impl MediaGateway for FakeAssistant {
    type ConverseStream = ReceiverStream<Result<pb::Down, Status>>;

    async fn converse(
        &self,
        request: Request<Streaming<pb::Up>>,
    ) -> Result<Response<Self::ConverseStream>, Status> {
        let (tx, rx) = mpsc::channel(256);
        self.calls
            .send(FakeCall {
                ups: request.into_inner(),
                downs: tx,
            })
            .await
            .map_err(|_| Status::unavailable("the test is over"))?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn fake_assistant() -> (SocketAddr, mpsc::Receiver<FakeCall>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MediaGatewayServer::new(FakeAssistant { calls: tx }))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, rx)
}

impl FakeCall {
    /// The next message from the robot; `None` once its stream has ended.
    async fn next(&mut self) -> Option<up::Msg> {
        loop {
            match self.ups.message().await {
                Ok(Some(pb::Up { msg: Some(msg) })) => return Some(msg),
                Ok(Some(pb::Up { msg: None })) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next message that is not an audio frame.
    async fn next_signal(&mut self) -> Option<up::Msg> {
        loop {
            match self.next().await? {
                up::Msg::Audio(_) => continue,
                other => return Some(other),
            }
        }
    }

    async fn send(&self, msg: down::Msg) {
        // The robot may already have gone; the test's assertions say whether that is right.
        let _ = self.downs.send(Ok(pb::Down { msg: Some(msg) })).await;
    }

    /// Announces a prompt and sends `ms` of its audio.
    async fn say(&self, mark: u64, text: &str, ms: usize) {
        self.send(down::Msg::Event(pb::Event {
            kind: Some(event::Kind::Prompt(pb::Prompt {
                mark,
                prompt_id: String::new(),
                text: text.into(),
                locale: "en".into(),
            })),
        }))
        .await;
        self.audio(mark, ms).await;
    }

    /// Sends `ms` of audio of `mark` (a constant, audible level).
    async fn audio(&self, mark: u64, ms: usize) {
        let samples = vec![1000i16; ms * 8];
        self.send(down::Msg::Audio(pb::Audio {
            pcm16: samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            seq: 0,
            mark,
        }))
        .await;
    }
}

fn prepared(src: &str) -> PreparedScript {
    let script = Script::parse(src, "t.call").expect("valid script");
    prepare(
        &script,
        SampleRate::HZ_8000,
        Locale::En,
        &Speaker::new(caller_voices()),
    )
    .expect("prepares without synthesis")
}

fn options(addr: SocketAddr) -> CallOptions {
    let mut o = CallOptions::new(Target::Grpc {
        authority: addr.to_string(),
    });
    o.timeout = Duration::from_secs(3);
    o
}

/// Starts the robot on `src` and returns its task and the fake assistant's view of the call,
/// whose CallStart has been checked.
async fn dial(
    src: &str,
    tune: impl FnOnce(&mut CallOptions),
) -> (tokio::task::JoinHandle<CallReport>, FakeCall) {
    let (addr, mut calls) = fake_assistant().await;
    let script = prepared(src);
    let mut opts = options(addr);
    tune(&mut opts);
    let robot = tokio::spawn(async move { run_call(&script, &opts).await });
    let mut call = calls.recv().await.expect("the robot calls");
    match call.next().await {
        Some(up::Msg::Start(start)) => {
            assert_eq!(start.caller, "99112233");
            assert_eq!(start.called, "1111");
            assert_eq!(start.format.map(|f| f.sample_rate_hz), Some(8000));
            assert_eq!(start.channel, pb::Channel::Other as i32);
            assert!(start.call_id.starts_with("robot-"), "{}", start.call_id);
        }
        other => panic!("the first message must be CallStart, got {other:?}"),
    }
    (robot, call)
}

async fn report(robot: tokio::task::JoinHandle<CallReport>) -> CallReport {
    robot.await.expect("the robot task does not panic")
}

#[tokio::test]
async fn marks_are_reported_after_playout_and_keys_arrive_as_dtmf_frames_continuously() {
    let (robot, mut call) = dial("wait-prompt\nexpect welcome\nkey 12\nhangup", |_| {}).await;
    let sent = Instant::now();
    call.say(1, "Hello and welcome.", 300).await;

    let mut frames = 0u64;
    let mut last_seq = None;
    let mut signals = Vec::new();
    while let Some(msg) = call.next().await {
        match msg {
            up::Msg::Audio(a) => {
                assert_eq!(a.pcm16.len(), 320, "20 ms of 8 kHz PCM16");
                if let Some(prev) = last_seq {
                    assert_eq!(a.seq, prev + 1, "audio seq increases by one");
                }
                last_seq = Some(a.seq);
                frames += 1;
            }
            other => {
                let is_hangup = matches!(other, up::Msg::Hangup(_));
                signals.push((sent.elapsed(), other));
                if is_hangup {
                    break;
                }
            }
        }
    }
    drop(call);
    let r = report(robot).await;
    assert!(r.passed(), "{:?}", r.failure);

    let (played_at, mark) = &signals[0];
    assert_eq!(
        mark,
        &up::Msg::Playout(pb::PlayoutMark {
            mark: 1,
            interrupted: false
        })
    );
    assert!(*played_at >= Duration::from_millis(300), "{played_at:?}");
    // wait-prompt: keys only after the prompt played and 300 ms of quiet.
    let (one_at, one) = &signals[1];
    let (two_at, two) = &signals[2];
    assert_eq!(
        one,
        &up::Msg::Dtmf(pb::Dtmf {
            key: "1".into(),
            duration_ms: 120
        })
    );
    assert_eq!(
        two,
        &up::Msg::Dtmf(pb::Dtmf {
            key: "2".into(),
            duration_ms: 120
        })
    );
    assert!(*one_at >= Duration::from_millis(600), "{one_at:?}");
    assert!(
        *two_at - *one_at >= Duration::from_millis(200),
        "keys are paced"
    );
    assert!(matches!(&signals[3].1, up::Msg::Hangup(h) if h.reason == "caller hung up"));
    // Silence flowed the whole time: about one frame per 20 ms.
    let expected = signals[3].0.as_millis() as u64 / 20;
    assert!(
        frames + 5 >= expected,
        "{frames} frames over {expected} ticks"
    );

    assert!(r
        .timeline
        .iter()
        .any(|e| matches!(&e.event, TimelineEvent::Prompt { mark: 1, text } if text == "Hello and welcome.")));
    assert!(r
        .timeline
        .iter()
        .any(|e| matches!(&e.event, TimelineEvent::Caller { command, .. } if command == "key 12")));
}

#[tokio::test]
async fn clear_playout_drops_the_queue_and_reports_the_mark_interrupted() {
    let (robot, mut call) = dial("silence 0.6", |o| o.record = true).await;
    call.say(7, "A long menu.", 2000).await;
    // Let a few frames play, then barge in.
    for _ in 0..5 {
        assert!(matches!(call.next().await, Some(up::Msg::Audio(_))));
    }
    call.send(down::Msg::Clear(pb::ClearPlayout { mark: 7 }))
        .await;
    assert_eq!(
        call.next_signal().await,
        Some(up::Msg::Playout(pb::PlayoutMark {
            mark: 7,
            interrupted: true
        }))
    );
    // Audio still in flight for the cleared mark is dropped too: no completion ever follows.
    call.audio(7, 200).await;
    assert!(
        matches!(call.next_signal().await, Some(up::Msg::Hangup(h)) if h.reason == "end of script")
    );
    drop(call);
    let r = report(robot).await;
    assert!(r.passed(), "{:?}", r.failure);
    assert!(r.timeline.iter().any(
        |e| matches!(&e.event, TimelineEvent::BargeIn { mark: 7, dropped } if dropped == &[7])
    ));
    assert!(r.prompts.iter().all(|p| p.interrupted));
    let rec = r.recording.expect("recorded");
    let heard = rec.assistant.iter().filter(|&&s| s != 0).count();
    assert!(heard > 0, "some of the prompt played");
    assert!(
        heard < 8 * 500,
        "the rest was dropped: {heard} samples played"
    );
    assert_eq!(
        rec.caller.iter().filter(|&&s| s != 0).count(),
        0,
        "the caller was silent"
    );
}

#[tokio::test]
async fn expect_fails_naming_the_regex_and_what_was_said() {
    let (robot, mut call) = dial("expect good ?bye", |o| {
        o.timeout = Duration::from_millis(400)
    })
    .await;
    call.say(1, "Hello there.", 100).await;
    assert!(matches!(
        call.next_signal().await,
        Some(up::Msg::Playout(pb::PlayoutMark { mark: 1, .. }))
    ));
    assert!(
        matches!(call.next_signal().await, Some(up::Msg::Hangup(h)) if h.reason == "script failed")
    );
    drop(call);
    let r = report(robot).await;
    let failure = r.failure.expect("the expectation fails").to_string();
    assert_eq!(
        failure,
        "t.call:1: `expect good ?bye` not met within 0.4 s: the assistant said \"Hello there.\""
    );
}

#[tokio::test]
async fn expect_passes_on_prompts_since_the_previous_expect_only() {
    let (robot, call) = dial("expect hello\nexpect hello", |o| {
        o.timeout = Duration::from_millis(400)
    })
    .await;
    call.say(1, "Hello.", 40).await;
    call.say(2, "Press 1 for English.", 40).await;
    let r = report(robot).await;
    let failure = r.failure.expect("the second expect fails").to_string();
    assert!(failure.starts_with("t.call:2: "), "{failure}");
    assert!(failure.contains("\"Press 1 for English.\""), "{failure}");
    drop(call);
}

#[tokio::test]
async fn an_assistant_that_hangs_up_early_fails_the_script() {
    let (robot, call) = dial("expect hello\nkey 1\nexpect menu", |_| {}).await;
    call.say(1, "Hello.", 40).await;
    call.send(down::Msg::Hangup(pb::Hangup {
        reason: "closed for the night".into(),
    }))
    .await;
    let r = report(robot).await;
    assert_eq!(
        r.failure,
        Some(Failure::EndedEarly {
            at: "t.call:2".into(),
            message: "the assistant hung up (closed for the night) before `key 1`".into(),
        })
    );
    drop(call);
}

#[tokio::test]
async fn a_script_ending_where_the_assistant_hangs_up_passes() {
    let (robot, call) = dial("expect goodbye\nwait-prompt\nhangup", |_| {}).await;
    call.say(1, "Goodbye.", 40).await;
    call.send(down::Msg::Hangup(pb::Hangup {
        reason: "done".into(),
    }))
    .await;
    let r = report(robot).await;
    assert!(r.passed(), "{:?}", r.failure);
    drop(call);
}

#[tokio::test]
async fn expect_transfer_checks_the_target() {
    let (robot, call) = dial("expect-transfer ^sip:operators@\n", |_| {}).await;
    call.send(down::Msg::Transfer(pb::Transfer {
        target: "sip:operators@hotline.example".into(),
    }))
    .await;
    let r = report(robot).await;
    assert!(r.passed(), "{:?}", r.failure);
    assert_eq!(r.transfer.as_deref(), Some("sip:operators@hotline.example"));
    drop(call);

    let (robot, call) = dial("expect-transfer ^sip:operators@\n", |_| {}).await;
    call.send(down::Msg::Transfer(pb::Transfer {
        target: "sip:billing@hotline.example".into(),
    }))
    .await;
    let r = report(robot).await;
    assert_eq!(
        r.failure.map(|f| f.to_string()).as_deref(),
        Some(
            "t.call:1: `expect-transfer ^sip:operators@`: the assistant transferred the call to \
             sip:billing@hotline.example"
        )
    );
    drop(call);
}

#[tokio::test]
async fn an_error_status_from_the_assistant_is_the_failure() {
    let (robot, call) = dial("silence 5", |_| {}).await;
    let _ = call
        .downs
        .send(Err(Status::internal("dialog engine crashed")))
        .await;
    let r = report(robot).await;
    let failure = r.failure.expect("the call fails").to_string();
    assert!(failure.contains("Internal"), "{failure}");
    assert!(failure.contains("dialog engine crashed"), "{failure}");
    drop(call);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let r = run_call(&prepared("hangup"), &options(addr)).await;
    assert!(
        matches!(&r.failure, Some(Failure::Connect(m)) if m.starts_with(&format!("grpc://{addr}"))),
        "{:?}",
        r.failure
    );
}

/// Hears whatever it was built with, and remembers how much audio it was given.
struct FixedTranscriber {
    text: String,
    heard_samples: std::sync::Mutex<Vec<usize>>,
}

impl Transcriber for FixedTranscriber {
    fn transcribe(&self, audio: &Pcm, _request: &SttRequest) -> speech::Result<Transcript> {
        self.heard_samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(audio.len());
        Ok(Transcript {
            outcome: speech::stt::Outcome::Heard,
            text: self.text.clone(),
            confidence: 0.9,
            no_speech_probability: 0.0,
            language: "en".into(),
            timings: Default::default(),
        })
    }
}

async fn audio_check(hears: &str) -> (CallReport, Vec<usize>) {
    let stt = Arc::new(FixedTranscriber {
        text: hears.into(),
        heard_samples: Default::default(),
    });
    let shared: Arc<dyn Transcriber> = stt.clone();
    let (robot, call) = dial("expect welcome", move |o| o.transcriber = Some(shared)).await;
    call.say(3, "Welcome to the 11-11 centre.", 200).await;
    let r = report(robot).await;
    drop(call);
    let heard = stt
        .heard_samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    (r, heard)
}

#[tokio::test]
async fn expect_checks_that_the_prompt_audio_says_the_text() {
    let (r, heard) = audio_check("Welcome to the 1111 center.").await;
    assert!(r.passed(), "{:?}", r.failure);
    // The whole prompt's audio (200 ms), after it played out, at Whisper's 16 kHz.
    assert_eq!(heard, [3200]);
    assert!(r.timeline.iter().any(|e| matches!(
        &e.event,
        TimelineEvent::Met { audio_check: Some((_, wer)), .. } if *wer <= MAX_AUDIO_WER
    )));

    let (r, _) = audio_check("Thank you for your patience.").await;
    let failure = r.failure.expect("the audio check fails").to_string();
    assert!(
        failure.starts_with(
            "t.call:1: `expect welcome`: the prompt text matched but its audio does not say it: \
             Whisper heard \"Thank you for your patience.\""
        ),
        "{failure}"
    );
}

#[test]
fn targets_are_grpc_or_sip_uris() {
    assert_eq!(
        "grpc://localhost:50051".parse::<Target>(),
        Ok(Target::Grpc {
            authority: "localhost:50051".into()
        })
    );
    assert_eq!(
        "sip:1111@127.0.0.1:5070".parse::<Target>(),
        Ok(Target::Sip {
            uri: "sip:1111@127.0.0.1:5070".into(),
            dest: "127.0.0.1:5070".into()
        })
    );
    assert_eq!(
        "sip:1111@hotline.example".parse::<Target>(),
        Ok(Target::Sip {
            uri: "sip:1111@hotline.example".into(),
            dest: "hotline.example:5060".into()
        })
    );
    assert!("sips:1111@hotline.example".parse::<Target>().is_err());
    assert!("sip:1111@".parse::<Target>().is_err());
    assert!("grpc://localhost".parse::<Target>().is_err());
    assert!("http://localhost:1".parse::<Target>().is_err());
}
