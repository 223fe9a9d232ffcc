//! `ivr call`: a robot caller that phones the assistant over `MediaGateway.Converse`, follows a
//! [`Script`] and checks what it hears. It is the demo, the end-to-end test driver and an
//! operations probe.
//!
//! The robot calls a `MediaGateway` over gRPC (`grpc://HOST:PORT`) or a phone number over SIP
//! (`sip:USER@HOST[:PORT]`, see [`sip`]: the SIP leg turns the line into the same messages,
//! prompts being what Whisper hears in the assistant's speech). Either way the robot plays
//! the media gateway's part of the contract (`proto/ivr/v1/media.proto`):
//!
//! - it opens the stream with `CallStart` (random call id, channel OTHER) and then sends one
//!   20 ms PCM16 `Audio` frame every 20 ms for the whole call, silence when the script says
//!   nothing, as a gateway sends RTP continuously; keys go as `Dtmf` messages (held 120 ms,
//!   120 ms apart);
//! - it queues the assistant's `Audio` per mark and plays it out in real time, one frame per
//!   tick; `PlayoutMark{mark}` goes when a mark's last sample has played (one frame after it
//!   was taken from the queue), `ClearPlayout` drops all queued audio at once and reports
//!   each dropped mark as interrupted (the playing one first);
//! - `Transfer` and `Hangup` from the assistant end the call.
//!
//! Pacing: [`tokio::time::interval`] with [`MissedTickBehavior::Burst`]. The stream is a
//! sample clock: after a stall (a busy machine running many robots) the missed frames are sent
//! at once, so the audio sent, the audio played and the marks stay aligned with wall time and
//! the assistant's endpointer sees no gap that the caller did not make. `Delay` would stretch
//! the call (every later mark reported late) and `Skip` would lose caller audio.
//!
//! How each script command runs ([`script`] has the syntax):
//!
//! - `say`/`play`/`key`/`silence` put their frames on the line, one per tick, and end when the
//!   last frame is sent (audio is prepared before dialling, see [`prepare()`]).
//! - `wait-prompt` passes when the assistant has spoken since the caller's last
//!   `say`/`play`/`key` (or since the call began), all its audio has played, and for
//!   [`CallOptions::quiet`] ([`QUIET`], 300 ms, over gRPC; [`sip::QUIET`], 1 s, over SIP)
//!   nothing more has played or arrived.
//! - `expect REGEX` matches against the texts of the `Event.prompt`s received since the
//!   previous `expect`, joined with spaces. With an audio check (a transcriber given, prompts
//!   not Mongolian), once those prompts have played out their received audio is transcribed
//!   and must be within [`MAX_AUDIO_WER`] word error rate of their text; prompts cut short by
//!   a barge-in are left out of the check.
//! - `expect-transfer [REGEX]` passes when a `Transfer` arrived (with a matching target).
//! - `hangup` sends `Hangup` and waits for the stream to end. At the script's end the robot
//!   hangs up the same way, and so it does when the script fails (waiting up to 2 s for the
//!   stream to end, so that the Hangup is delivered).
//!
//! Every wait is bounded by [`CallOptions::timeout`]. Once the assistant has hung up or
//! transferred, `expect` still passes on what was already said, `wait-prompt` and `hangup`
//! pass, and anything that would put sound on the line fails the script.
//!
//! The call runs in-process and returns a [`CallReport`] (timeline, turn latencies, prompts,
//! transfer target, failure, recording): the end-to-end tests and `ivr bench calls` call
//! [`prepare()`] once and [`run_call`] per call; `ivr call` prints the report.

// The driver paces real audio against the wall clock.
#![allow(clippy::disallowed_methods)]

mod caller;
pub mod prepare;
pub mod report;
pub mod script;
pub mod sip;

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ivr_proto::v1::media_gateway_client::MediaGatewayClient;
use ivr_proto::v1::{self as pb};
use rand::rngs::{StdRng, SysRng};
use rand::{RngExt, SeedableRng};
use speech::audio::resample::resample;
use speech::models::ModelStore;
use speech::stt::{SttLanguage, SttRequest, Transcriber, WhisperConfig};
use speech::{Locale, Pcm, SampleRate};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

use caller::{Caller, CallerConfig, Output};
pub use caller::{MAX_AUDIO_WER, QUIET};
pub use prepare::{caller_voices, prepare, PreparedScript};
pub use report::{CallReport, Failure, Recording, TimelineEntry, TimelineEvent, TurnLatency};
pub use script::{Script, ScriptError};

/// How long `expect`, `wait-prompt` and friends wait by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A `MediaGateway` gRPC server, `grpc://HOST:PORT`.
    Grpc {
        /// `HOST:PORT`.
        authority: String,
    },
    /// A SIP user agent reached over UDP, `sip:USER@HOST[:PORT]` (see [`sip`]).
    Sip {
        /// The Request-URI, as given.
        uri: String,
        /// Where the INVITE goes: the URI's `HOST:PORT` (port 5060 when the URI has none),
        /// resolved when the call is placed.
        dest: String,
    },
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(authority) = s.strip_prefix("grpc://") {
            let authority = authority.trim_end_matches('/');
            let valid = authority
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid || authority.contains('/') {
                return Err(format!("{s:?}: expected grpc://HOST:PORT"));
            }
            Ok(Target::Grpc {
                authority: authority.to_owned(),
            })
        } else if s.starts_with("sip:") {
            let dest = sip::destination(s)?;
            Ok(Target::Sip {
                uri: s.to_owned(),
                dest,
            })
        } else if s.starts_with("sips:") {
            Err(format!(
                "{s}: sips: (SIP over TLS) is not supported; call sip:"
            ))
        } else {
            Err(format!(
                "{s:?}: expected grpc://HOST:PORT or sip:USER@HOST[:PORT]"
            ))
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Grpc { authority } => write!(f, "grpc://{authority}"),
            Target::Sip { uri, .. } => f.write_str(uri),
        }
    }
}

/// How to place a call.
#[derive(Clone)]
pub struct CallOptions {
    /// Where to call.
    pub target: Target,
    /// The caller's number (`CallStart.caller`).
    pub caller: String,
    /// The number dialled (`CallStart.called`).
    pub called: String,
    /// The language hint (`CallStart.locale_hint`); `None` sends none.
    pub locale: Option<Locale>,
    /// How long each waiting step may wait.
    pub timeout: Duration,
    /// Checks matched prompts' audio with this transcriber (English prompts only); `None`
    /// checks texts only.
    pub transcriber: Option<Arc<dyn Transcriber>>,
    /// Keep both directions of the call in [`CallReport::recording`].
    pub record: bool,
    /// How long the line must stay quiet for `wait-prompt` to pass ([`QUIET`] over gRPC,
    /// [`sip::QUIET`] over SIP, where the assistant's audio arrives in real time).
    pub quiet: Duration,
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("target", &self.target)
            .field("caller", &self.caller)
            .field("called", &self.called)
            .field("locale", &self.locale)
            .field("timeout", &self.timeout)
            .field("audio_check", &self.transcriber.is_some())
            .field("record", &self.record)
            .field("quiet", &self.quiet)
            .finish()
    }
}

impl CallOptions {
    /// A call to `target` from "99112233" to "1111", no language hint, [`DEFAULT_TIMEOUT`], no
    /// audio check, no recording, the target's quiet time.
    pub fn new(target: Target) -> Self {
        let quiet = match target {
            Target::Grpc { .. } => QUIET,
            Target::Sip { .. } => sip::QUIET,
        };
        CallOptions {
            quiet,
            target,
            caller: "99112233".into(),
            called: "1111".into(),
            locale: None,
            timeout: DEFAULT_TIMEOUT,
            transcriber: None,
            record: false,
        }
    }
}

/// Calls `options.target` and runs `script` (prepared for the call rate; 8000 Hz over SIP).
/// Never fails as a function: every problem, connecting included, is the report's
/// [`CallReport::failure`].
pub async fn run_call(script: &PreparedScript, options: &CallOptions) -> CallReport {
    let call_id = random_call_id();
    let start = pb::CallStart {
        call_id: call_id.clone(),
        caller: options.caller.clone(),
        called: options.called.clone(),
        format: Some(pb::AudioFormat {
            sample_rate_hz: script.rate.hz(),
        }),
        locale_hint: options
            .locale
            .map(|l| l.code().to_owned())
            .unwrap_or_default(),
        channel: pb::Channel::Other as i32,
    };
    let over_sip = matches!(options.target, Target::Sip { .. });
    let config = CallerConfig {
        rate: script.rate,
        timeout: options.timeout,
        // Over SIP the prompts' texts are transcripts of their audio: nothing to check.
        audio_check: options.transcriber.is_some()
            && options.locale != Some(Locale::Mn)
            && !over_sip,
        record: options.record,
        quiet: options.quiet,
    };
    let now = Instant::now();
    let mut caller = Caller::new(&script.steps, config, start, now);
    let (up_tx, up_rx) = mpsc::channel::<pb::Up>(1024);
    let mut up_tx = Some(up_tx);
    let (heard_tx, heard_rx) = mpsc::channel::<(u64, Result<String, String>)>(4);
    // The CallStart is queued before the call is placed: the far end reads it first.
    flush(&mut caller, &mut up_tx, &heard_tx, options).await;
    let opened = match &options.target {
        Target::Grpc { authority } => converse_grpc(authority, up_rx).await,
        Target::Sip { uri, dest } if script.rate == SampleRate::HZ_8000 => {
            sip::dial(uri, dest, up_rx, options).await
        }
        Target::Sip { .. } => Err(OpenError::Robot(format!(
            "a SIP call carries 8000 Hz audio; the script was prepared at {} Hz",
            script.rate.hz()
        ))),
    };
    match opened {
        Ok(downs) => drive(&mut caller, up_tx, heard_tx, heard_rx, downs, options).await,
        Err(OpenError::Refused(why)) => caller.handle_stream_end(Instant::now(), Some(why)),
        Err(e) => {
            let mut report = caller.into_report(Instant::now());
            report.failure = Some(match e {
                OpenError::Connect(why) => Failure::Connect(format!("{}: {why}", options.target)),
                OpenError::Robot(why) | OpenError::Refused(why) => Failure::Robot(why),
            });
            return report;
        }
    }
    caller.into_report(Instant::now())
}

/// The assistant's side of a call: its messages, or why the call broke (one line).
type DownStream = Pin<Box<dyn Stream<Item = Result<pb::Down, String>> + Send>>;

/// Why a call could not be placed.
#[derive(Debug)]
enum OpenError {
    /// The far end could not be reached.
    Connect(String),
    /// The far end was reached and refused the call (an error status, a SIP final response).
    Refused(String),
    /// The robot cannot place this call.
    Robot(String),
}

/// Opens `MediaGateway.Converse` on `authority` with `ups` as the up stream.
async fn converse_grpc(
    authority: &str,
    ups: mpsc::Receiver<pb::Up>,
) -> Result<DownStream, OpenError> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| OpenError::Connect(e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT);
    let channel = endpoint.connect().await.map_err(|e| {
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            // hyper and tonic repeat their cause's text in their own.
            let text = s.to_string();
            if !msg.contains(&text) {
                msg = format!("{msg}: {text}");
            }
            source = s.source();
        }
        OpenError::Connect(msg)
    })?;
    let mut client = MediaGatewayClient::new(channel);
    match client.converse(ReceiverStream::new(ups)).await {
        Ok(response) => Ok(Box::pin(
            response
                .into_inner()
                .map(|m| m.map_err(|status| status_line(&status))),
        )),
        Err(status) => Err(OpenError::Refused(status_line(&status))),
    }
}

async fn drive(
    caller: &mut Caller<'_>,
    mut up_tx: Option<mpsc::Sender<pb::Up>>,
    heard_tx: mpsc::Sender<(u64, Result<String, String>)>,
    mut heard_rx: mpsc::Receiver<(u64, Result<String, String>)>,
    mut downs: DownStream,
    options: &CallOptions,
) {
    let mut ticks = tokio::time::interval(prepare::FRAME);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut downs_open = true;
    while !caller.is_finished() {
        tokio::select! {
            _ = ticks.tick() => caller.handle_tick(Instant::now()),
            msg = downs.next(), if downs_open => match msg {
                Some(Ok(down)) => caller.handle_down(Instant::now(), down),
                None => {
                    downs_open = false;
                    caller.handle_stream_end(Instant::now(), None);
                }
                Some(Err(why)) => {
                    downs_open = false;
                    caller.handle_stream_end(Instant::now(), Some(why));
                }
            },
            Some((id, heard)) = heard_rx.recv() => {
                caller.handle_transcript(Instant::now(), id, heard);
            }
        }
        flush(caller, &mut up_tx, &heard_tx, options).await;
    }
}

/// Carries out what the caller asked for.
async fn flush(
    caller: &mut Caller<'_>,
    up_tx: &mut Option<mpsc::Sender<pb::Up>>,
    heard_tx: &mpsc::Sender<(u64, Result<String, String>)>,
    options: &CallOptions,
) {
    while let Some(output) = caller.poll_output() {
        match output {
            Output::Send(up) => {
                if let Some(tx) = up_tx {
                    // A closed channel means the call is over; the stream's end says why.
                    if tx.send(up).await.is_err() {
                        *up_tx = None;
                    }
                }
            }
            Output::Close => *up_tx = None,
            Output::Transcribe { id, audio } => {
                let Some(stt) = options.transcriber.clone() else {
                    // Audio checks are only configured with a transcriber.
                    let _ = heard_tx.try_send((id, Err("no transcriber".into())));
                    continue;
                };
                let tx = heard_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = tx.blocking_send((id, transcribe(stt.as_ref(), &audio)));
                });
            }
        }
    }
}

/// What `stt` hears in `audio` (English, any rate). Blocking: call it off the async threads.
fn transcribe(stt: &dyn Transcriber, audio: &Pcm) -> Result<String, String> {
    resample(audio, SampleRate::HZ_16000)
        .and_then(|a| {
            stt.transcribe(
                &a,
                &SttRequest {
                    language: SttLanguage::En,
                    ..SttRequest::default()
                },
            )
        })
        .map(|t| t.text)
        .map_err(|e| e.to_string())
}

fn status_line(status: &tonic::Status) -> String {
    let message = status.message().replace('\n', " ");
    if message.is_empty() {
        format!("gRPC status {:?}", status.code())
    } else {
        format!("gRPC status {:?}: {message}", status.code())
    }
}

fn random_call_id() -> String {
    let mut rng = match StdRng::try_from_rng(&mut SysRng) {
        Ok(rng) => rng,
        // Without OS randomness, a time-based seed still keeps concurrent robots apart.
        Err(_) => StdRng::seed_from_u64(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        ),
    };
    format!("robot-{:016x}", rng.random::<u64>())
}

/// Options of `ivr call`.
#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// Where to call: `grpc://HOST:PORT`, or `sip:USER@HOST[:PORT]` (over UDP, at 8000 Hz).
    pub target: String,
    /// The script to run.
    #[arg(long)]
    pub script: PathBuf,
    /// Write both directions to a stereo WAV (left: caller, right: assistant).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Print only the conversation.
    #[arg(long)]
    pub transcript: bool,
    /// The call's sample rate in Hz: 8000 (a phone line, µ-law) or 16000.
    #[arg(long, default_value_t = 8000, value_parser = parse_call_rate)]
    pub rate: u32,
    /// How long each expect or wait may take, in seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_secs_f64())]
    pub timeout: f64,
    /// Check prompt texts only; do not transcribe their audio (gRPC; over SIP Whisper always
    /// transcribes the prompts, their only text).
    #[arg(long)]
    pub no_asr_check: bool,
    /// The caller's number.
    #[arg(long, default_value = "99112233")]
    pub caller: String,
    /// Language hint for the call: en or mn (also the language `say` speaks).
    #[arg(long)]
    pub lang: Option<String>,
    /// Whisper model for the audio check (over SIP: for the prompts' words).
    #[arg(long, default_value = "tiny.en")]
    pub model: String,
    /// How long the line must stay quiet for `wait-prompt`, in seconds (default: 0.3 over
    /// gRPC, 1 over SIP).
    #[arg(long)]
    pub quiet: Option<f64>,
}

fn parse_call_rate(s: &str) -> Result<u32, String> {
    match s.trim() {
        "8000" => Ok(8000),
        "16000" => Ok(16000),
        other => Err(format!("{other}: the call rate is 8000 or 16000 Hz")),
    }
}

/// Runs `ivr call`: prints the timeline (or the transcript) and the latency table on stdout;
/// a failed call is an error carrying its one-line reason (the command line prints it on
/// stderr and exits non-zero).
pub fn call(store: &ModelStore, data: &Path, args: &CallArgs) -> anyhow::Result<()> {
    let target: Target = args.target.parse().map_err(anyhow::Error::msg)?;
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        bail!(
            "--timeout {}: expected seconds, more than 0 and at most 3600",
            args.timeout
        );
    }
    let quiet = match args.quiet {
        None => None,
        Some(q) if q.is_finite() && (0.0..=60.0).contains(&q) => Some(Duration::from_secs_f64(q)),
        Some(q) => bail!("--quiet {q}: expected seconds, from 0 to 60"),
    };
    let over_sip = matches!(target, Target::Sip { .. });
    let locale: Option<Locale> = args.lang.as_deref().map(str::parse).transpose()?;
    let rate = SampleRate::new(args.rate)?;
    if over_sip && rate != SampleRate::HZ_8000 {
        bail!("--rate {}: a SIP call carries 8000 Hz audio", args.rate);
    }
    let script = Script::load(&args.script)?;
    // The render cache is a convenience here: robots running side by side (tests, `bench
    // calls` in separate processes) share a data directory, and sled allows one opener.
    let speaker = match crate::cli::speaker(data, caller_voices()) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(error = %format!("{e:#}"), "speaking without the render cache");
            speech::tts::Speaker::new(caller_voices())
        }
    };
    let prepared = prepare(&script, rate, locale.unwrap_or(Locale::En), &speaker)?;
    // Over SIP the prompts' words are what Whisper hears on the line: it is always needed.
    let transcriber: Option<Arc<dyn Transcriber>> =
        if !over_sip && (args.no_asr_check || locale == Some(Locale::Mn)) {
            None
        } else {
            let purpose = if over_sip {
                "to hear the prompts"
            } else {
                "for the audio check (or pass --no-asr-check)"
            };
            let stt = crate::cli::load_whisper(store, &args.model, WhisperConfig::default())
                .with_context(|| {
                    format!(
                        "loading Whisper {} {purpose} (fetch it with `ivr models fetch {}`)",
                        args.model, args.model
                    )
                })?;
            Some(Arc::new(stt))
        };
    let mut options = CallOptions::new(target);
    options.caller = args.caller.clone();
    options.locale = locale;
    options.timeout = Duration::from_secs_f64(args.timeout);
    options.transcriber = transcriber;
    options.record = args.record.is_some();
    if let Some(quiet) = quiet {
        options.quiet = quiet;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(run_call(&prepared, &options));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.transcript {
        report.write_transcript(&mut out)?;
    } else {
        report.write_timeline(&mut out)?;
        if !report.turns.is_empty() {
            std::io::Write::write_all(&mut out, b"\n")?;
            report.write_latencies(&mut out)?;
        }
    }
    if let (Some(path), Some(rec)) = (&args.record, &report.recording) {
        rec.write_wav(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    match report.failure {
        None => Ok(()),
        Some(failure) => Err(failure.into()),
    }
}

#[cfg(test)]
mod tests;
