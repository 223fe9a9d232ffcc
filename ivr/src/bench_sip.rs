//! `ivr bench sip`: how many phone calls the gateway holds, the CPU each costs, and what the
//! SIP leg adds to a turn.
//!
//! The assistant runs in this process as `ivr bench calls` runs it (Whisper `tiny.en`, Flite,
//! a temporary data directory) with a phone gateway ([`crate::gateway::Gateway`]) in front of
//! it on a free loopback port: calls are answered at once (no ringing), the call limit is out
//! of the way, RTP on the default port range.
//!
//! ## Hold test
//!
//! For each `--calls N`, in ascending order, SIPp (Debian `sip-tester`, on `PATH`) places N
//! calls with the scenario [`HOLD_SCENARIO`]: each offers PCMU and telephone-event at
//! `[rtpstream_audio_port]`, streams a quiet line after the ACK, holds `--seconds`, then hangs
//! up. SIPp 3.6.1 sends every call's stream from one socket at its media port (`-mp`, a free
//! range above 40000) and offers that port: the hotline's RTP for every call goes there. The
//! socket is bound, so those packets are taken, never refused with ICMP; SIPp does not read
//! them (the kernel drops them once the socket's buffer is full). The
//! quiet line is white noise at about −60 dBFS, raw µ-law, made at run time and looped
//! (`rtp_stream="FILE,-1,0"`): the assistant's voice activity detector hears no speech, so the
//! load is the gateway's media path plus the assistant listening and playing its prompts and
//! re-prompts. SIPp places the calls at N per second while the gateway's INVITE burst per
//! source allows (50 by default, [`crate::sip::access::AccessConfig`]), at its sustained
//! INVITE rate (25 per second) beyond: faster, the gateway would rightly answer 503.
//!
//! Each level starts from zeroed gateway counters and spacing histogram, waits after SIPp
//! until every call task has ended and merged its counts, and prints a row: calls
//! ok and failed (SIPp's final counts; its exit status when they are missing), RTP packets
//! the gateway sent and received, caller packets lost and late (its jitter buffer), the
//! spacing of the packets it sent (p1 / p50 / p99 / p99.9 / max, 0.1 ms buckets, upper
//! edges), the share of gaps within 20 ± 2 ms, and CPU: user + system time of this process
//! (assistant and gateway; SIPp is another process) over the level's wall time, and per
//! call-second (N × `--seconds`). A level is held when no call failed, no caller packet was
//! lost or late, at least 90 % of the caller packets SIPp should have sent arrived, and the
//! spacing's p1 and p99 are within 20 ± 2 ms. The run stops at the first level not held and
//! prints `largest held: N`.
//!
//! One warm-up call is placed before the first level, so that the prompts of a call's first
//! seconds are rendered (and cached) outside the measurement.
//!
//! `--seconds` is at most [`MAX_HOLD`]: a caller who stays silent is re-prompted and, about a
//! minute in, passed on by the flow's escalation (to the operator, by REFER), which the
//! scenario does not follow.
//!
//! ## Turn latency
//!
//! Unless `--no-turns`, one robot caller ([`crate::robot`], English) runs the keypad script
//! [`turn_script`] (six key turns through the main menu and the information directory) over
//! gRPC and then over SIP against the same server, `--rounds` times, after one warm-up call
//! over gRPC that renders the prompts the script reaches. A key turn's latency is
//! the time from the tick the robot sent the key on to the first *voiced* frame (RMS at least
//! [`VOICED_RMS`], about −40 dBFS) the robot played of the answer, read from the robot's
//! recording of the call. Both targets are measured the same way, so a prompt's leading
//! silence counts alike on both and the difference SIP − gRPC is the SIP leg: the gateway's
//! Converse hop, its 20 ms playout, RTP over loopback and the robot's jitter buffer, plus the
//! key's trip as RFC 4733 events. That trip includes the key's hold
//! ([`crate::robot::prepare::KEY_TONE`], 120 ms): the gateway reports an RFC 4733 key when its
//! end packet arrives (RFC 4733 §2.5.1.4), while the robot's gRPC `Dtmf` message goes when the
//! key goes down; the footer gives the difference without it too. To place the key in the recording, the script plays one
//! 20 ms frame at about −66 dBFS (far below voice activity) just before each key: its
//! position in the recording and the timeline's step times give the key's tick.
//!
//! The gRPC row also gives the key to the first frame of the answer the robot played at all
//! (any sample not zero: the robot plays digital silence when it has nothing, and the
//! answer's audio messages are resampled speech, whose leading quiet is not exactly zero):
//! the first audio message. The two gRPC figures differ by the answers' leading silence. Over
//! SIP the line is never digital silence (comfort noise, µ-law), so only the voiced measure
//! exists there. (The assistant's own `Event.latency` covers spoken turns only.)
//!
//! Over SIP the robot needs a transcriber (the prompts' words are what it hears); the keypad
//! script checks no words, so its transcriber hears nothing ([`NoWords`]) rather than run
//! Whisper beside the assistant it measures. A turn is left out (and counted) when the answer
//! cannot be told apart: the line was not quiet just before the key, or nothing voiced came.
//!
//! Reads the clock, spawns processes, runtimes and tasks, and waits on the wall clock: calls
//! are real time. Measures; asserts nothing about speed.

// Timing real calls and waiting for a child process: reading the clock and sleeping are the
// point of this module.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use speech::audio::{g711, wav};
use speech::models::ModelStore;
use speech::stt::{Outcome, SttRequest, Transcriber, Transcript};
use speech::tts::Speaker;
use speech::{Locale, Pcm, SampleRate};

use crate::bench_calls::{caller_number, CpuTimes, InProcess, Spread};
use crate::bench_dialogs::TempDir;
use crate::gateway::signalling::Spacing;
use crate::gateway::{Gateway, GatewayArgs, GatewayStats};
use crate::robot::prepare::KEY_TONE;
use crate::robot::{self, CallOptions, CallReport, Target, TimelineEvent};

/// The longest hold `--seconds` allows (see the module docs).
pub const MAX_HOLD: u32 = 60;

/// A frame is voiced at this RMS or above (16-bit samples): about −40 dBFS, as the robot's
/// SIP leg cuts the line into utterances.
pub const VOICED_RMS: f64 = 330.0;

/// The nominal spacing of outgoing RTP packets, and the tolerance a held level keeps to.
const PTIME: Duration = Duration::from_millis(20);
const TOLERANCE: Duration = Duration::from_millis(2);

/// The share of the caller packets SIPp should have sent that must arrive.
const MIN_RECEIVED: f64 = 0.9;

/// The warm-up call's hold.
const WARM_UP_SECONDS: u32 = 3;

/// How long SIPp may take beyond a level's calls before it is stopped.
const SIPP_SLACK: Duration = Duration::from_secs(30);

/// How long the gateway's call tasks may take to end after SIPp.
const DRAIN: Duration = Duration::from_secs(10);

/// How long the gateway's counts must stay the same after its last call ended.
const SETTLE: Duration = Duration::from_millis(200);

/// The caller's quiet line: its level (RMS of 16-bit samples, −60 dBFS) and length.
const QUIET_RMS: f64 = 32.8;
const QUIET_SECONDS: usize = 2;

/// The key marker's amplitude (about −66 dBFS: no voice activity, yet not silence).
const MARKER_AMPLITUDE: i16 = 16;

/// Samples in one 20 ms frame at 8000 Hz.
const FRAME_LEN: usize = 160;

/// Voiced frames within this many frames before a key mean the line was not quiet.
const QUIET_BEFORE_KEY: usize = 5;

/// Seconds each robot step may wait.
const TURN_TIMEOUT: Duration = Duration::from_secs(40);

/// The SIPp scenario of one held call. `[rtpstream_audio_port]` is where SIPp streams from
/// and where the hotline's RTP goes; the hold is `-d` (the bare `<pause/>`).
pub const HOLD_SCENARIO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="hold">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:9900[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: [cseq] INVITE
      Contact: <sip:9900[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Accept-Language: en
      Subject: hold
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [rtpstream_audio_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=ptime:20
      a=sendrecv

    ]]>
  </send>

  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true" timeout="10000"/>

  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:9900[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: [cseq] ACK
      Contact: <sip:9900[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <nop>
    <action>
      <exec rtp_stream="quiet.ul,-1,0"/>
    </action>
  </nop>

  <pause/>

  <nop>
    <action>
      <exec rtp_stream="pause"/>
    </action>
  </nop>

  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:9900[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: [cseq] BYE
      Contact: <sip:9900[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true" timeout="10000"/>
</scenario>
"#;

/// Options of `ivr bench sip`.
#[derive(Debug, Args)]
pub struct SipBenchArgs {
    /// Calls held at once, one level after another (comma-separated, ascending).
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = [5, 10, 20, 40, 80, 160],
        value_parser = clap::value_parser!(u32).range(1..=2000)
    )]
    pub calls: Vec<u32>,
    /// How long each call is held, in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=MAX_HOLD as i64))]
    pub seconds: u32,
    /// Skip the turn-latency comparison of SIP and gRPC.
    #[arg(long)]
    pub no_turns: bool,
    /// How many times the keypad call runs on each target.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
}

/// Runs the benchmark: the hold table, then the turn table. Fails on a setup problem (no
/// SIPp, the warm-up call failing) or when a robot call of the turn test fails; a level not
/// held is a result, not a failure.
pub fn sip(store: &ModelStore, args: &SipBenchArgs) -> anyhow::Result<()> {
    let mut levels = args.calls.clone();
    levels.sort_unstable();
    levels.dedup();
    let scratch = TempDir::new("ivr-bench-sip")?;
    std::fs::write(scratch.path().join("hold.xml"), HOLD_SCENARIO)
        .context("writing the SIPp scenario")?;
    std::fs::write(scratch.path().join("quiet.ul"), quiet_line())
        .context("writing the caller's quiet line")?;

    let server = InProcess::start(store)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let gateway_args = GatewayArgs {
        sip: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        max_calls: 100_000,
        ring_ms: 0,
        ..GatewayArgs::default()
    };
    let gateway = server
        .runtime()
        .block_on(Gateway::start(
            &gateway_args,
            format!("http://{}", server.grpc()),
            stop_rx,
        ))
        .context("starting the phone gateway")?;
    let outcome = run(&server, &gateway, scratch.path(), &levels, args);
    let _ = stop_tx.send(true);
    let joined = server
        .runtime()
        .block_on(async { tokio::time::timeout(DRAIN, gateway.join()).await });
    let stopped = server.stop();
    drop(scratch);
    outcome?;
    if joined.is_err() {
        bail!("the gateway did not stop within {} s", DRAIN.as_secs());
    }
    stopped
}

/// Both tests against the running server and gateway.
fn run(
    server: &InProcess,
    gateway: &Gateway,
    dir: &Path,
    levels: &[u32],
    args: &SipBenchArgs,
) -> anyhow::Result<()> {
    let sipp = Sipp {
        dir,
        gateway: gateway.local,
    };
    let warm = sipp.run(1, WARM_UP_SECONDS)?;
    if !warm.all_ok(1) {
        bail!(
            "the warm-up call failed ({}):\n{}",
            warm.status,
            warm.report
        );
    }
    wait_for_calls_to_end(&gateway.stats)?;

    println!(
        "Hold: SIPp calls to the gateway at {} (this process: assistant + gateway), each held \
         {} s with a quiet line (−60 dBFS), PCMU 20 ms\n",
        gateway.local, args.seconds
    );
    println!("{}", Level::header());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut held = None;
    for &calls in levels {
        let level = measure_level(&sipp, &gateway.stats, calls, args.seconds)?;
        println!("{}", level.row());
        let ok = level.verdict().is_empty();
        if !ok {
            if !level.sipp.report.is_empty() {
                println!(
                    "\nSIPp at {calls} calls ({}):\n{}",
                    level.sipp.status, level.sipp.report
                );
            }
            break;
        }
        held = Some(calls);
    }
    match held {
        Some(n) => println!("\nlargest held: {n}"),
        None => println!("\nlargest held: none"),
    }
    println!("({cores} cores; CPU % of one core: 100 = one core busy)");

    if args.no_turns {
        return Ok(());
    }
    let turns = turn_test(server, gateway, dir, args.rounds)?;
    println!(
        "\nTurns: one robot caller, keypad script of {} key turns, {} round(s) per target, \
         against the same server\n",
        KEYS.len(),
        args.rounds
    );
    print!("{}", turns.table());
    println!("\n{}", turns.footer());
    let failed = turns.failures();
    if !failed.is_empty() {
        println!("\nfailed calls:\n{failed}");
        bail!("{} robot call(s) failed", turns.failed());
    }
    Ok(())
}

/// Raw µ-law white noise at [`QUIET_RMS`], [`QUIET_SECONDS`] long, from a fixed seed.
fn quiet_line() -> Vec<u8> {
    // A uniform distribution on [-a, a] has RMS a / sqrt(3).
    let amplitude = QUIET_RMS * 3f64.sqrt();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..QUIET_SECONDS * 8000)
        .map(|_| {
            // xorshift64*: plenty for noise.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
            let unit = r as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            g711::ulaw_encode((unit * amplitude).round() as i16)
        })
        .collect()
}

/// Waits until the gateway has no call in progress and the call tasks have added their
/// counts: a task adds them just after the gateway counts its call ended, so the counts must
/// also stay the same for [`SETTLE`].
fn wait_for_calls_to_end(stats: &GatewayStats) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRAIN;
    let counts = || {
        (
            stats.active.load(Ordering::Relaxed),
            stats.rtp_sent.load(Ordering::Relaxed),
            stats.rtp_received.load(Ordering::Relaxed),
        )
    };
    let mut last = counts();
    let mut steady_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = counts();
        if now != last {
            last = now;
            steady_since = Instant::now();
        } else if now.0 == 0 && steady_since.elapsed() >= SETTLE {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} call(s) still in progress {} s after SIPp ended",
                now.0,
                DRAIN.as_secs()
            );
        }
    }
}

/// Zeroes the counters a level reads.
fn reset(stats: &GatewayStats) {
    for counter in [
        &stats.calls,
        &stats.refused,
        &stats.rtp_received,
        &stats.rtp_lost,
        &stats.rtp_late,
        &stats.rtp_sent,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    if let Ok(mut spacing) = stats.spacing.lock() {
        *spacing = Spacing::default();
    }
}

/// One level of the hold test.
fn measure_level(
    sipp: &Sipp<'_>,
    stats: &GatewayStats,
    calls: u32,
    seconds: u32,
) -> anyhow::Result<Level> {
    reset(stats);
    let cpu_before = CpuTimes::now();
    let started = Instant::now();
    let result = sipp.run(calls, seconds)?;
    wait_for_calls_to_end(stats)?;
    let wall = started.elapsed();
    let cpu = CpuTimes::now()
        .zip(cpu_before)
        .map(|(after, before)| after.since(&before).process());
    let spacing = stats.spacing.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(Level {
        calls,
        seconds,
        sipp: result,
        refused: stats.refused.load(Ordering::Relaxed),
        sent: stats.rtp_sent.load(Ordering::Relaxed),
        received: stats.rtp_received.load(Ordering::Relaxed),
        lost: stats.rtp_lost.load(Ordering::Relaxed),
        late: stats.rtp_late.load(Ordering::Relaxed),
        spacing,
        wall,
        cpu,
    })
}

/// SIPp, run from the directory holding the scenario and the quiet line.
struct Sipp<'a> {
    dir: &'a Path,
    gateway: SocketAddr,
}

/// What SIPp reported for one run.
#[derive(Debug, Clone)]
struct SippResult {
    status: String,
    /// Its exit code (0: every call went as the scenario says).
    code: Option<i32>,
    successful: Option<u64>,
    failed: Option<u64>,
    /// Its error log, when a call failed.
    report: String,
}

impl SippResult {
    fn all_ok(&self, calls: u32) -> bool {
        self.code == Some(0) && self.successful == Some(u64::from(calls)) && self.failed == Some(0)
    }

    /// Calls that went as the scenario says, and the others.
    fn counts(&self, calls: u32) -> (u64, u64) {
        match (self.successful, self.failed) {
            (Some(ok), Some(failed)) => (ok, failed),
            // No final screen: its exit status is all there is.
            _ if self.code == Some(0) => (u64::from(calls), 0),
            _ => (0, u64::from(calls)),
        }
    }
}

impl Sipp<'_> {
    /// Places `calls` calls, each held `seconds`, and waits for SIPp to end.
    fn run(&self, calls: u32, seconds: u32) -> anyhow::Result<SippResult> {
        let rate = placing_rate(calls);
        let placing = Duration::from_secs(u64::from(calls.div_ceil(rate)));
        let limit = placing + Duration::from_secs(u64::from(seconds)) + SIPP_SLACK;
        let sip_port = free_udp_port()?;
        let media = free_media_ports(calls)?;
        let stdout = self.dir.join("sipp.out");
        let mut child = Command::new("sipp")
            .current_dir(self.dir)
            .args(["-sf", "hold.xml", "-i", "127.0.0.1", "-s", "1111"])
            .args(["-nostdin", "-trace_err"])
            .args(["-p", &sip_port.to_string(), "-mp", &media.to_string()])
            .args(["-r", &rate.to_string(), "-rp", "1000"])
            .args(["-l", &calls.to_string(), "-m", &calls.to_string()])
            .args(["-d", &(u64::from(seconds) * 1000).to_string()])
            .args([
                "-timeout",
                &format!("{}s", limit.as_secs()),
                "-timeout_error",
            ])
            .arg(self.gateway.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).context("creating SIPp's output file")?)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    anyhow::anyhow!("sipp is not installed: run scripts/setup.sh (sip-tester)")
                }
                _ => anyhow::Error::new(e).context("starting sipp"),
            })?;
        let deadline = Instant::now() + limit + Duration::from_secs(10);
        let status: ExitStatus = loop {
            if let Some(status) = child.try_wait().context("waiting for sipp")? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("sipp ran past {} s", limit.as_secs() + 10);
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let screen = std::fs::read_to_string(&stdout).unwrap_or_default();
        let mut result = SippResult {
            status: status.to_string(),
            code: status.code(),
            successful: final_count(&screen, "Successful call"),
            failed: final_count(&screen, "Failed call"),
            report: String::new(),
        };
        if !result.all_ok(calls) {
            result.report = self.error_logs();
        }
        self.clean();
        Ok(result)
    }

    /// The tails of SIPp's error logs in the directory.
    fn error_logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("_errors.log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: String = text
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                let _ = writeln!(out, "--- {name} ---\n{tail}");
            }
        }
        out
    }

    /// Removes SIPp's logs so that the next run's are its own.
    fn clean(&self) {
        for entry in std::fs::read_dir(self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".log") || name == "sipp.out" {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Calls per second: all at once within the gateway's INVITE burst per source, its
/// sustained INVITE rate beyond (see the module docs).
fn placing_rate(calls: u32) -> u32 {
    let invite = crate::sip::access::AccessConfig::default().invite;
    if calls <= invite.burst {
        calls
    } else {
        (invite.per_second.floor() as u32).max(1)
    }
}

/// A UDP port on loopback no one uses now (released before SIPp binds it).
fn free_udp_port() -> anyhow::Result<u16> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free UDP port")?;
    Ok(socket.local_addr()?.port())
}

/// A base port for SIPp's media (`-mp`) above which the ports SIPp may take (a pair a call
/// at most) are free now, outside the gateway's RTP range.
fn free_media_ports(calls: u32) -> anyhow::Result<u16> {
    let span = 2 * calls + 16;
    let mut base: u32 = 40_000;
    while base + span < 65_000 {
        let all_free = (base..base + span).all(|port| {
            u16::try_from(port)
                .ok()
                .is_some_and(|p| UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
        });
        if all_free {
            return Ok(base as u16);
        }
        base += span.next_multiple_of(1000);
    }
    bail!("no {span} free UDP ports in a row between 40000 and 65000 for SIPp's media")
}

/// The cumulative value of a counter in SIPp's last statistics screen, e.g.
/// `  Successful call        |        0                  |        1                 `.
fn final_count(screen: &str, counter: &str) -> Option<u64> {
    let line = screen
        .lines()
        .rfind(|l| l.trim_start().starts_with(counter))?;
    line.split('|').nth(2)?.trim().parse().ok()
}

/// What one level of the hold test measured.
#[derive(Debug, Clone)]
struct Level {
    calls: u32,
    seconds: u32,
    sipp: SippResult,
    /// Calls the gateway refused.
    refused: u64,
    /// RTP packets the gateway sent and received; caller packets lost and late.
    sent: u64,
    received: u64,
    lost: u64,
    late: u64,
    spacing: Spacing,
    wall: Duration,
    /// User + system seconds of this process; `None` without `/proc`.
    cpu: Option<f64>,
}

impl Level {
    fn header() -> String {
        "| calls | ok | failed | RTP sent | RTP received | lost | late \
         | spacing ms p1 / p50 / p99 / p99.9 / max | within 20 ± 2 ms \
         | CPU % of one core | CPU ms per call-second | verdict |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
            .to_owned()
    }

    /// Caller packets SIPp should have sent: 50 a second for each call's hold.
    fn expected_received(&self) -> u64 {
        u64::from(self.calls) * u64::from(self.seconds) * 50
    }

    /// Why the level is not held; empty when it is.
    fn verdict(&self) -> Vec<String> {
        let mut why = Vec::new();
        let (_, failed) = self.sipp.counts(self.calls);
        if failed > 0 || self.refused > 0 {
            why.push(format!("{failed} failed, {} refused", self.refused));
        }
        if self.lost > 0 {
            why.push(format!("{} lost", self.lost));
        }
        if self.late > 0 {
            why.push(format!("{} late", self.late));
        }
        let expected = self.expected_received();
        if (self.received as f64) < expected as f64 * MIN_RECEIVED {
            why.push(format!("received {} of ~{expected}", self.received));
        }
        let (lo, hi) = (PTIME - TOLERANCE, PTIME + TOLERANCE);
        // Quantiles are bucket upper edges, 0.1 ms above the gaps they stand for.
        let p1 = self.spacing.quantile(0.01);
        let p99 = self.spacing.quantile(0.99);
        if self.spacing.count() == 0 {
            why.push("no packets sent".to_owned());
        } else if p1 <= lo || p99 > hi {
            why.push(format!("spacing p1 {} / p99 {} ms", ms(p1), ms(p99)));
        }
        why
    }

    fn row(&self) -> String {
        let (ok, failed) = self.sipp.counts(self.calls);
        let s = &self.spacing;
        let spacing = if s.count() == 0 {
            "-".to_owned()
        } else {
            format!(
                "{} / {} / {} / {} / {}",
                ms(s.quantile(0.01)),
                ms(s.quantile(0.5)),
                ms(s.quantile(0.99)),
                ms(s.quantile(0.999)),
                ms(s.quantile(1.0))
            )
        };
        let within = if s.count() == 0 {
            "-".to_owned()
        } else {
            format!("{:.2} %", s.within(PTIME, TOLERANCE) * 100.0)
        };
        let (core, per_call) = match self.cpu {
            Some(cpu) if !self.wall.is_zero() => (
                format!("{:.0}", cpu / self.wall.as_secs_f64() * 100.0),
                format!(
                    "{:.1}",
                    cpu * 1000.0 / (f64::from(self.calls) * f64::from(self.seconds))
                ),
            ),
            _ => ("n/a".to_owned(), "n/a".to_owned()),
        };
        let why = self.verdict();
        let verdict = if why.is_empty() {
            "held".to_owned()
        } else {
            format!("not held: {}", why.join(", "))
        };
        format!(
            "| {} | {ok} | {failed} | {} | {} | {} | {} | {spacing} | {within} | {core} \
             | {per_call} | {verdict} |",
            self.calls, self.sent, self.received, self.lost, self.late
        )
    }
}

/// Milliseconds with one decimal.
fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The keys of the turn test, in order: the information directory, repeat, a topic, back,
/// repeat, back to the main menu.
const KEYS: [char; 6] = ['1', '9', '2', '*', '9', '*'];

/// The turn test's script: after the greeting and main menu, each key waits for the line to
/// go quiet, plays the marker frame `marker` and presses the key; after the last key the
/// robot listens 3 s and hangs up.
pub fn turn_script(marker: &Path) -> String {
    let mut s = String::from("# Keypad turns: main menu, information, repeat, a topic, back.\n");
    for key in KEYS {
        let _ = write!(s, "wait-prompt\nplay {}\nkey {key}\n", marker.display());
    }
    s.push_str("silence 3\nhangup\n");
    s
}

/// A transcriber that hears no words: the robot's SIP leg needs one, and a keypad script
/// checks no words (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct NoWords;

impl Transcriber for NoWords {
    fn transcribe(&self, audio: &Pcm, request: &SttRequest) -> speech::Result<Transcript> {
        Ok(Transcript {
            outcome: Outcome::NothingHeard(speech::stt::NothingHeard::NoSpeech),
            text: String::new(),
            confidence: 0.0,
            no_speech_probability: 1.0,
            language: request.language.code().to_owned(),
            timings: speech::stt::SttTimings {
                audio: audio.duration(),
                ..Default::default()
            },
        })
    }
}

/// Which way a robot call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Grpc,
    Sip,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Grpc => "gRPC",
            Way::Sip => "SIP",
        }
    }
}

/// One robot call of the turn test.
#[derive(Debug, Clone)]
struct TurnCall {
    way: Way,
    round: u32,
    /// Key to first voiced frame, per key turn that could be measured.
    voiced_ms: Vec<u32>,
    /// Key turns that could not be measured.
    unmeasured: usize,
    /// Key to the first frame of the answer with any sound (gRPC only).
    first_audio_ms: Vec<u32>,
    failure: Option<String>,
}

/// Runs the keypad script over gRPC and over SIP, `rounds` times each, alternating.
fn turn_test(
    server: &InProcess,
    gateway: &Gateway,
    dir: &Path,
    rounds: u32,
) -> anyhow::Result<TurnResult> {
    let marker = dir.join("marker.wav");
    let frame: Vec<i16> = (0..FRAME_LEN)
        .map(|i| {
            if i % 2 == 0 {
                MARKER_AMPLITUDE
            } else {
                -MARKER_AMPLITUDE
            }
        })
        .collect();
    wav::write(&marker, &Pcm::from_i16(SampleRate::HZ_8000, &frame))
        .context("writing the key marker")?;
    let script = robot::Script::parse(&turn_script(&marker), "keypad turns")?;
    // Keys and a marker only: nothing to synthesize.
    let speaker = Speaker::new(robot::caller_voices());
    let prepared = robot::prepare(&script, SampleRate::HZ_8000, Locale::En, &speaker)?;

    let robots = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("robot")
        .enable_all()
        .build()
        .context("starting the robot's runtime")?;
    let sip: Target = format!("sip:1111@{}", gateway.local)
        .parse()
        .map_err(anyhow::Error::msg)?;
    let place = |way: Way, i: u32| {
        let target = match way {
            Way::Grpc => server.target(),
            Way::Sip => sip.clone(),
        };
        let mut options = CallOptions::new(target);
        options.caller = caller_number(i);
        options.locale = Some(Locale::En);
        options.timeout = TURN_TIMEOUT;
        options.record = true;
        if way == Way::Sip {
            options.transcriber = Some(Arc::new(NoWords));
        }
        robots.block_on(robot::run_call(&prepared, &options))
    };
    // A warm-up call renders the prompts the script reaches, so that no measured turn waits
    // for the synthesizer.
    let warm = place(Way::Grpc, 0);
    if let Some(failure) = warm.failure {
        bail!("the warm-up call of the turn test failed: {failure}");
    }
    let mut calls = Vec::new();
    for round in 1..=rounds {
        for way in [Way::Grpc, Way::Sip] {
            let report = place(way, calls.len() as u32 + 1);
            calls.push(measure_turns(way, round, &report));
        }
    }
    Ok(TurnResult { calls })
}

/// The key turns of one call, read from its timeline and recording.
fn measure_turns(way: Way, round: u32, report: &CallReport) -> TurnCall {
    let mut call = TurnCall {
        way,
        round,
        voiced_ms: Vec::new(),
        unmeasured: 0,
        first_audio_ms: Vec::new(),
        failure: report.failure.as_ref().map(ToString::to_string),
    };
    let Some(recording) = &report.recording else {
        call.unmeasured = KEYS.len();
        return call;
    };
    let steps: Vec<(Duration, &str)> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.event {
            TimelineEvent::Caller { command, .. } => Some((e.at, command.as_str())),
            _ => None,
        })
        .collect();
    let frames_caller: Vec<&[i16]> = recording.caller.chunks(FRAME_LEN).collect();
    let frames_far: Vec<&[i16]> = recording.assistant.chunks(FRAME_LEN).collect();
    let mut search_from = 0;
    for pair in steps.windows(2) {
        let [(marker_at, marker_cmd), (key_at, key_cmd)] = pair else {
            continue;
        };
        if !marker_cmd.starts_with("play") || !key_cmd.starts_with("key") {
            continue;
        }
        let Some(marker) =
            (search_from..frames_caller.len()).find(|&i| frames_caller[i].iter().any(|&s| s != 0))
        else {
            call.unmeasured += 1;
            continue;
        };
        search_from = marker + 1;
        // Both steps began on a tick: their distance in the timeline is whole frames.
        let gap = key_at.saturating_sub(*marker_at);
        let key = marker + (gap.as_secs_f64() / 0.02).round() as usize;
        match key_turn_latency(&frames_far, key, voiced) {
            Some(frames) => call.voiced_ms.push(frames * 20),
            None => call.unmeasured += 1,
        }
        if way == Way::Grpc {
            if let Some(frames) = key_turn_latency(&frames_far, key, sounding) {
                call.first_audio_ms.push(frames * 20);
            }
        }
    }
    call
}

/// Frames from the key's tick to the first frame of the answer that passes `heard`, or `None`
/// when the line did not pass it just before the key or nothing after it did.
fn key_turn_latency(far: &[&[i16]], key: usize, heard: fn(&[i16]) -> bool) -> Option<u32> {
    let before = key.saturating_sub(QUIET_BEFORE_KEY)..key.min(far.len());
    if before.clone().any(|i| heard(far[i])) {
        return None;
    }
    let first = (key..far.len()).find(|&i| heard(far[i]))?;
    u32::try_from(first - key).ok()
}

/// Any sample not zero.
fn sounding(frame: &[i16]) -> bool {
    frame.iter().any(|&s| s != 0)
}

fn voiced(frame: &[i16]) -> bool {
    if frame.is_empty() {
        return false;
    }
    let energy: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / frame.len() as f64).sqrt() >= VOICED_RMS
}

/// The turn test's calls.
#[derive(Debug, Clone)]
struct TurnResult {
    calls: Vec<TurnCall>,
}

impl TurnResult {
    fn collect(&self, way: Way, field: fn(&TurnCall) -> &[u32]) -> Vec<u32> {
        self.calls
            .iter()
            .filter(|c| c.way == way)
            .flat_map(|c| field(c).iter().copied())
            .collect()
    }

    fn spread(&self, way: Way) -> Option<Spread> {
        Spread::of(&mut self.collect(way, |c| &c.voiced_ms))
    }

    fn failed(&self) -> usize {
        self.calls.iter().filter(|c| c.failure.is_some()).count()
    }

    fn table(&self) -> String {
        let mut out = String::from(
            "| target | calls | key turns | unmeasured | key to first voiced audio ms p50 / p95 / max \
             | key to first audio ms p50 | SIP − gRPC at p50 ms |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        let grpc = self.spread(Way::Grpc);
        for way in [Way::Grpc, Way::Sip] {
            let calls = self.calls.iter().filter(|c| c.way == way).count();
            let unmeasured: usize = self
                .calls
                .iter()
                .filter(|c| c.way == way)
                .map(|c| c.unmeasured)
                .sum();
            let turns = self.collect(way, |c| &c.voiced_ms).len();
            let spread = self.spread(way);
            let assistant = match way {
                Way::Grpc => Spread::of(&mut self.collect(way, |c| &c.first_audio_ms))
                    .map_or_else(|| "-".to_owned(), |s| s.p50.to_string()),
                Way::Sip => "-".to_owned(),
            };
            let difference = match (way, spread, grpc) {
                (Way::Sip, Some(sip), Some(grpc)) => {
                    (i64::from(sip.p50) - i64::from(grpc.p50)).to_string()
                }
                _ => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {calls} | {turns} | {unmeasured} | {} | {assistant} | {difference} |",
                way.name(),
                spread.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            );
        }
        out
    }

    /// The answers' leading silence (from the gRPC side), and the SIP leg without the key's
    /// hold.
    fn footer(&self) -> String {
        let robot = self.spread(Way::Grpc);
        let first = Spread::of(&mut self.collect(Way::Grpc, |c| &c.first_audio_ms));
        let silence = match (robot, first) {
            (Some(r), Some(a)) => format!(
                "gRPC: first voiced frame − first audio, at p50: {} ms (the answers' leading \
                 silence; it counts alike in both rows' voiced figures)",
                i64::from(r.p50) - i64::from(a.p50)
            ),
            _ => "gRPC: no key turn had both measures".to_owned(),
        };
        let leg = match (self.spread(Way::Sip), robot) {
            (Some(sip), Some(grpc)) => format!(
                "\nSIP − gRPC − the key's hold ({} ms), at p50: {} ms (over RFC 4733 a key is \
                 known when its end packet arrives; the robot's gRPC Dtmf message goes when the \
                 key goes down)",
                KEY_TONE.as_millis(),
                i64::from(sip.p50) - i64::from(grpc.p50) - KEY_TONE.as_millis() as i64
            ),
            _ => String::new(),
        };
        format!("{silence}{leg}")
    }

    fn failures(&self) -> String {
        let mut out = String::new();
        for c in &self.calls {
            if let Some(f) = &c.failure {
                let _ = writeln!(out, "- {} round {}: {f}", c.way.name(), c.round);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(spacing_ms: &[f64], lost: u64, late: u64, ok: u64, failed: u64) -> Level {
        let mut spacing = Spacing::default();
        for &g in spacing_ms {
            spacing.record(Duration::from_secs_f64(g / 1000.0));
        }
        Level {
            calls: 2,
            seconds: 3,
            sipp: SippResult {
                status: "exit status: 0".into(),
                code: Some(if failed == 0 { 0 } else { 1 }),
                successful: Some(ok),
                failed: Some(failed),
                report: String::new(),
            },
            refused: 0,
            sent: 300,
            received: 300,
            lost,
            late,
            spacing,
            wall: Duration::from_secs(4),
            cpu: Some(0.6),
        }
    }

    #[test]
    fn a_level_with_steady_spacing_and_no_losses_is_held() {
        let l = level(&[20.0; 300], 0, 0, 2, 0);
        assert!(l.verdict().is_empty(), "{:?}", l.verdict());
        let row = l.row();
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 14, "{row}");
        assert_eq!(
            &cells[1..8],
            ["2", "2", "0", "300", "300", "0", "0"],
            "{row}"
        );
        assert_eq!(cells[8], "20.1 / 20.1 / 20.1 / 20.1 / 20.1", "{row}");
        assert_eq!(cells[9], "100.00 %", "{row}");
        // 0.6 s of CPU over 4 s; over 2 calls × 3 s.
        assert_eq!(&cells[10..12], ["15", "100.0"], "{row}");
        assert_eq!(cells[12], "held", "{row}");
        assert_eq!(
            Level::header().lines().next().map(|h| h.split('|').count()),
            Some(14)
        );
    }

    #[test]
    fn late_spacing_losses_or_failed_calls_are_not_held() {
        let mut gaps = vec![20.0; 290];
        gaps.extend([25.0; 10]);
        let spaced = level(&gaps, 0, 0, 2, 0);
        assert_eq!(spaced.verdict(), ["spacing p1 20.1 / p99 25.1 ms"]);
        let mut bunched = vec![20.0; 290];
        bunched.extend([1.0; 10]);
        assert_eq!(level(&bunched, 0, 0, 2, 0).verdict().len(), 1);
        assert_eq!(level(&[20.0; 300], 3, 0, 2, 0).verdict(), ["3 lost"]);
        assert_eq!(level(&[20.0; 300], 0, 1, 2, 0).verdict(), ["1 late"]);
        let failed = level(&[20.0; 300], 0, 0, 1, 1);
        assert_eq!(failed.verdict(), ["1 failed, 0 refused"]);
        assert!(failed.row().ends_with("| not held: 1 failed, 0 refused |"));
        let mut short = level(&[20.0; 300], 0, 0, 2, 0);
        short.received = 100;
        assert_eq!(short.verdict(), ["received 100 of ~300"]);
        assert_eq!(level(&[], 0, 0, 2, 0).verdict(), ["no packets sent"]);
    }

    #[test]
    fn sipp_counts_fall_back_to_its_exit_status() {
        let mut r = SippResult {
            status: String::new(),
            code: Some(0),
            successful: None,
            failed: None,
            report: String::new(),
        };
        assert_eq!(r.counts(4), (4, 0));
        assert!(!r.all_ok(4));
        r.code = Some(1);
        assert_eq!(r.counts(4), (0, 4));
        r.successful = Some(3);
        r.failed = Some(1);
        assert_eq!(r.counts(4), (3, 1));
    }

    #[test]
    fn sipp_final_counts_are_read_from_its_last_screen() {
        let screen = "  Successful call        |        0                  |        1      \n\
                      ...\n  Successful call        |        2                  |        7      \n\
                      \x20 Failed call            |        0                  |        1      \n";
        assert_eq!(final_count(screen, "Successful call"), Some(7));
        assert_eq!(final_count(screen, "Failed call"), Some(1));
        assert_eq!(final_count("nothing", "Failed call"), None);
    }

    #[test]
    fn calls_are_placed_at_once_within_the_invite_burst_and_at_the_sustained_rate_beyond() {
        let invite = crate::sip::access::AccessConfig::default().invite;
        assert_eq!(placing_rate(5), 5);
        assert_eq!(placing_rate(invite.burst), invite.burst);
        let beyond = placing_rate(invite.burst + 1);
        assert!(f64::from(beyond) <= invite.per_second && beyond >= 1);
    }

    #[test]
    fn the_quiet_line_is_about_minus_60_dbfs() {
        let line = quiet_line();
        assert_eq!(line.len(), QUIET_SECONDS * 8000);
        let samples: Vec<f64> = line
            .iter()
            .map(|&c| f64::from(g711::ulaw_decode(c)))
            .collect();
        let rms = (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt();
        let dbfs = 20.0 * (rms / 32768.0).log10();
        assert!((-62.0..-58.0).contains(&dbfs), "{dbfs} dBFS");
        // Far below the voiced threshold in every frame.
        assert!(samples
            .chunks(FRAME_LEN)
            .all(|f| { (f.iter().map(|s| s * s).sum::<f64>() / f.len() as f64).sqrt() < 100.0 }));
    }

    #[test]
    fn the_turn_script_plays_a_marker_before_each_key() {
        let text = turn_script(Path::new("/tmp/m.wav"));
        let script = robot::Script::parse(&text, "t").expect("it parses");
        let plays = text.lines().filter(|l| l.starts_with("play ")).count();
        let keys: Vec<&str> = text.lines().filter(|l| l.starts_with("key ")).collect();
        assert_eq!(plays, KEYS.len());
        assert_eq!(keys, ["key 1", "key 9", "key 2", "key *", "key 9", "key *"]);
        assert!(text.ends_with("hangup\n"));
        assert!(script.steps.len() >= 3 * KEYS.len());
    }

    #[test]
    fn a_key_turn_runs_from_the_key_to_the_first_voiced_frame() {
        let quiet = vec![0i16; FRAME_LEN];
        let voice = vec![2000i16; FRAME_LEN];
        let mut far: Vec<&[i16]> = vec![&quiet; 20];
        far[15] = &voice;
        far[16] = &voice;
        let faint = vec![3i16; FRAME_LEN];
        far[13] = &faint;
        assert_eq!(key_turn_latency(&far, 10, voiced), Some(5));
        assert_eq!(key_turn_latency(&far, 10, sounding), Some(3));
        // Voice just before the key: the old prompt was still playing.
        assert_eq!(key_turn_latency(&far, 17, voiced), None);
        // Nothing voiced after.
        far[15] = &quiet;
        far[16] = &quiet;
        assert_eq!(key_turn_latency(&far, 10, voiced), None);
    }

    #[test]
    fn the_turn_table_gives_the_difference_at_p50() {
        let call = |way, voiced: Vec<u32>, first: Vec<u32>| TurnCall {
            way,
            round: 1,
            voiced_ms: voiced,
            unmeasured: 0,
            first_audio_ms: first,
            failure: None,
        };
        let result = TurnResult {
            calls: vec![
                call(Way::Grpc, vec![100, 120, 140], vec![60, 80, 90]),
                call(Way::Sip, vec![140, 160, 200], vec![]),
            ],
        };
        let table = result.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert_eq!(lines[2], "| gRPC | 1 | 3 | 0 | 120 / 140 / 140 | 80 | - |");
        assert_eq!(lines[3], "| SIP | 1 | 3 | 0 | 160 / 200 / 200 | - | 40 |");
        let footer = result.footer();
        assert!(footer.contains("first audio, at p50: 40 ms"), "{footer}");
        assert!(footer.contains("hold (120 ms), at p50: -80 ms"), "{footer}");
        assert_eq!(result.failed(), 0);
    }

    #[test]
    fn the_no_words_transcriber_hears_nothing() {
        let pcm = Pcm::silence(SampleRate::HZ_16000, Duration::from_secs(1));
        let t = NoWords
            .transcribe(&pcm, &SttRequest::default())
            .expect("never fails");
        assert!(!t.is_heard());
        assert!(t.text.is_empty());
    }
}
