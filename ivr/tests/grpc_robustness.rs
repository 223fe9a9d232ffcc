//! The assistant's `MediaGateway.Converse` stream under bad input, against the real
//! `ivr serve`: every malformed stream ends with a clear gRPC status, while a well-behaved
//! keypad call on the same server goes on undisturbed; a gateway that vanishes mid-call
//! leaves the server serving, its call counted as ended; health answers over HTTP and gRPC.
//!
//! The test plays the gateway as an instant-playout gateway would: each mark is reported
//! played out (`PlayoutMark`) as soon as its first audio arrives. The calls are keypad only,
//! so the Whisper models do not matter here. One stream waits out the server's
//! `CallStart` time-out (10 s) for real; every other wait is bounded by [`STEP`].

mod common;

use std::collections::HashSet;
use std::time::Duration;

use ivr_proto::v1::media_gateway_client::MediaGatewayClient;
use ivr_proto::v1::{down, event, up, Audio, AudioFormat, CallStart, Down, Dtmf, Hangup, Up};
use ivr_proto::v1::{Channel as CallChannel, Listening, PlayoutMark, Prompt};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use common::Server;

/// The longest the test waits for any one thing the server should do promptly.
const STEP: Duration = Duration::from_secs(20);
/// The server's limit for the first message, plus slack for a loaded machine.
const CALL_START_WAIT: Duration = Duration::from_secs(10 + 10);
/// A well-formed case number (its Damm check digit is right) that was never issued.
const UNKNOWN_CASE: &str = "1234567894";

fn start(call_id: &str, sample_rate_hz: u32) -> Up {
    Up {
        msg: Some(up::Msg::Start(CallStart {
            call_id: call_id.to_string(),
            caller: String::new(),
            called: "1111".to_string(),
            format: Some(AudioFormat { sample_rate_hz }),
            locale_hint: "en".to_string(),
            channel: CallChannel::Sip as i32,
        })),
    }
}

fn audio(seq: u64, samples: usize) -> Up {
    Up {
        msg: Some(up::Msg::Audio(Audio {
            pcm16: vec![0; samples * 2],
            seq,
            mark: 0,
        })),
    }
}

fn odd_audio(seq: u64) -> Up {
    Up {
        msg: Some(up::Msg::Audio(Audio {
            pcm16: vec![0; 161],
            seq,
            mark: 0,
        })),
    }
}

fn key(key: char) -> Up {
    Up {
        msg: Some(up::Msg::Dtmf(Dtmf {
            key: key.to_string(),
            duration_ms: 100,
        })),
    }
}

/// A media gateway's side of one call.
struct Gateway {
    up: mpsc::Sender<Up>,
    downs: Streaming<Down>,
    /// Marks already reported played out.
    played: HashSet<u64>,
    /// Prompt ids heard so far, for failure messages.
    prompts: Vec<String>,
}

impl Gateway {
    /// Opens a `Converse` stream and sends `first` messages on it (none: a silent stream).
    async fn open(server: &Server, first: Vec<Up>) -> Result<Gateway, Status> {
        let mut client = MediaGatewayClient::connect(server.grpc_url())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", server.grpc_url()));
        let (tx, rx) = mpsc::channel(64);
        for up in first {
            tx.send(up)
                .await
                .unwrap_or_else(|_| panic!("the request stream is open"));
        }
        let response = timeout(STEP, client.converse(ReceiverStream::new(rx)))
            .await
            .unwrap_or_else(|_| panic!("Converse was not answered within {STEP:?}"))?;
        Ok(Gateway {
            up: tx,
            downs: response.into_inner(),
            played: HashSet::new(),
            prompts: Vec::new(),
        })
    }

    /// A call that starts well: CallStart, English, 8 kHz.
    async fn call(server: &Server, call_id: &str) -> Gateway {
        Gateway::open(server, vec![start(call_id, 8000)])
            .await
            .unwrap_or_else(|status| panic!("the call {call_id} was refused: {status:?}"))
    }

    async fn send(&self, up: Up) {
        self.up
            .send(up)
            .await
            .unwrap_or_else(|_| panic!("the request stream is open"));
    }

    /// The next message that is not audio: `Ok(None)` when the stream ended with OK, `Err`
    /// with the status it ended with otherwise. Audio is played out at once.
    async fn next(&mut self, within: Duration) -> Result<Option<down::Msg>, Status> {
        loop {
            let message = timeout(within, self.downs.message())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "nothing from the assistant within {within:?} (prompts so far: {:?})",
                        self.prompts
                    )
                })?;
            let Some(Down { msg: Some(msg) }) = message else {
                if message.is_none() {
                    return Ok(None);
                }
                continue;
            };
            match msg {
                down::Msg::Audio(a) => {
                    if self.played.insert(a.mark) {
                        self.send(Up {
                            msg: Some(up::Msg::Playout(PlayoutMark {
                                mark: a.mark,
                                interrupted: false,
                            })),
                        })
                        .await;
                    }
                }
                down::Msg::Event(ivr_proto::v1::Event {
                    kind: Some(event::Kind::Prompt(p)),
                }) => {
                    self.prompts.push(p.prompt_id.clone());
                    return Ok(Some(down::Msg::Event(ivr_proto::v1::Event {
                        kind: Some(event::Kind::Prompt(p)),
                    })));
                }
                other => return Ok(Some(other)),
            }
        }
    }

    /// The next non-audio message of a call that must go on.
    async fn expect_next(&mut self) -> down::Msg {
        match self.next(STEP).await {
            Ok(Some(msg)) => msg,
            Ok(None) => panic!("the call ended early (prompts: {:?})", self.prompts),
            Err(status) => panic!("the call failed: {status:?} (prompts: {:?})", self.prompts),
        }
    }

    /// Reads until the assistant listens in `state`.
    async fn until_listening(&mut self, state: &str) -> Listening {
        loop {
            if let down::Msg::Event(ivr_proto::v1::Event {
                kind: Some(event::Kind::Listening(l)),
            }) = self.expect_next().await
            {
                if l.state == state {
                    return l;
                }
            }
        }
    }

    /// Reads until the assistant says the prompt `id`.
    async fn until_prompt(&mut self, id: &str) -> Prompt {
        loop {
            if let down::Msg::Event(ivr_proto::v1::Event {
                kind: Some(event::Kind::Prompt(p)),
            }) = self.expect_next().await
            {
                if p.prompt_id == id {
                    return p;
                }
            }
        }
    }

    async fn keys(&self, keys: &str) {
        for k in keys.chars() {
            self.send(key(k)).await;
        }
    }

    /// Hangs up and reads the stream to its end, which must be OK.
    async fn hang_up(mut self) {
        self.send(Up {
            msg: Some(up::Msg::Hangup(Hangup {
                reason: "caller done".to_string(),
            })),
        })
        .await;
        loop {
            match self.next(STEP).await {
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(status) => panic!("hanging up ended the stream with {status:?}"),
            }
        }
    }

    /// Reads until the stream ends, which must be with an error status.
    async fn status(mut self, within: Duration) -> Status {
        loop {
            match self.next(within).await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended with OK, not an error"),
                Err(status) => return status,
            }
        }
    }
}

/// The status a stream opened with `first` ends with.
async fn rejection(server: &Server, first: Vec<Up>, within: Duration) -> Status {
    match Gateway::open(server, first).await {
        Ok(gateway) => gateway.status(within).await,
        Err(status) => status,
    }
}

fn assert_status(what: &str, status: &Status, code: Code, words: &str) {
    assert_eq!(status.code(), code, "{what}: {status:?}");
    assert!(
        status.message().contains(words),
        "{what}: the message {:?} does not mention {words:?}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_streams_end_with_clear_statuses_while_a_concurrent_call_goes_on() {
    let server = common::start_server();

    // A well-behaved call reaches the main menu before any bad stream opens.
    let mut good = Gateway::call(&server, "good-call").await;
    good.until_listening("main").await;

    let bad = |first: Vec<Up>| rejection(&server, first, STEP);
    let silent = rejection(&server, Vec::new(), CALL_START_WAIT);
    let invalid = async {
        tokio::join!(
            bad(vec![start("rate", 44100)]),
            bad(vec![key('1'), start("late-start", 8000)]),
            bad(vec![start("twice", 8000), start("twice-again", 8000)]),
            bad(vec![start("order", 8000), audio(7, 160), audio(6, 160)]),
            bad(vec![start("odd", 8000), odd_audio(1)]),
            bad(vec![start("long", 8000), audio(1, 8000 * 10)]),
            bad(vec![start("empty", 8000), Up { msg: None }]),
        )
    };
    // The good call goes on while the bad streams fail and the silent one waits.
    let good_call = async {
        good.send(key('3')).await;
        good.until_listening("stat_ask").await;
        good.keys(&format!("{UNKNOWN_CASE}#")).await;
        let prompt = good.until_prompt("STAT_NOTFOUND").await;
        assert!(
            prompt.text.contains("could not find that number"),
            "{prompt:?}"
        );
        good
    };
    let (invalid, silent, good) = tokio::join!(invalid, silent, good_call);
    good.hang_up().await;

    let (rate, late, twice, order, odd, long, empty) = invalid;
    assert_status("wrong sample rate", &rate, Code::InvalidArgument, "44100");
    assert_status(
        "first message not CallStart",
        &late,
        Code::InvalidArgument,
        "first message",
    );
    assert_status(
        "a second CallStart",
        &twice,
        Code::InvalidArgument,
        "CallStart",
    );
    assert_status(
        "audio seq going back",
        &order,
        Code::InvalidArgument,
        "out of order",
    );
    assert_status(
        "odd byte count",
        &odd,
        Code::InvalidArgument,
        "whole 16-bit samples",
    );
    assert_status(
        "a 10 s frame",
        &long,
        Code::InvalidArgument,
        "80000 samples",
    );
    assert_status("an empty Up", &empty, Code::InvalidArgument, "nothing");
    assert_status(
        "no CallStart at all",
        &silent,
        Code::DeadlineExceeded,
        "CallStart",
    );

    let (code, metrics) = server.http_get("/metrics").await;
    assert_eq!(code, 200, "{metrics}");
    let sample = |name: &str| common::metric_value(&metrics, name);
    assert_eq!(
        sample("ivr_stream_errors_total{code=\"InvalidArgument\"}"),
        Some(7.0),
        "{metrics}"
    );
    assert_eq!(
        sample("ivr_stream_errors_total{code=\"DeadlineExceeded\"}"),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_vanishes_mid_call_leaves_the_server_serving() {
    let server = common::start_server();

    let mut gone = Gateway::call(&server, "vanishing").await;
    gone.until_listening("main").await;
    assert_eq!(server.metric("ivr_active_calls").await, Some(1.0));
    // No Hangup, no end of stream: the request sender and the response stream just go.
    drop(gone);

    // The server notices on its own; poll its gauge with a bound.
    let deadline = tokio::time::Instant::now() + STEP;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let active = server.metric("ivr_active_calls").await;
        if active == Some(0.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ivr_active_calls is {active:?} {STEP:?} after the gateway vanished\n{}",
            server.log()
        );
    }

    // A new call is served from the start.
    let mut next = Gateway::call(&server, "after").await;
    next.until_listening("main").await;
    next.send(key('3')).await;
    next.until_listening("stat_ask").await;
    next.keys(&format!("{UNKNOWN_CASE}#")).await;
    next.until_prompt("STAT_NOTFOUND").await;
    next.hang_up().await;

    let (_, metrics) = server.http_get("/metrics").await;
    assert_eq!(
        common::metric_value(&metrics, "ivr_calls_total"),
        Some(2.0),
        "{metrics}"
    );
    assert!(
        !metrics.contains("ivr_stream_errors_total{"),
        "a caller who goes away is not a stream error:\n{metrics}"
    );
}

#[tokio::test]
async fn health_answers_over_http_and_grpc() {
    let server = common::start_server();

    let (code, body) = server.http_get("/healthz").await;
    assert_eq!((code, body.trim()), (200, "ok"));

    let channel = tonic::transport::Endpoint::from_shared(server.grpc_url())
        .unwrap_or_else(|e| panic!("endpoint {}: {e}", server.grpc_url()))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", server.grpc_url()));
    let mut health = HealthClient::new(channel);
    for service in ["", "ivr.v1.MediaGateway"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner()
            .status;
        assert_eq!(
            status,
            i32::from(ServingStatus::Serving),
            "health of {service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "ivr.v1.NoSuchService".to_string(),
        })
        .await
        .expect_err("an unknown service has no health");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
}
