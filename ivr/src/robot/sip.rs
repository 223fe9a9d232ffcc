//! The robot's SIP leg: `ivr call sip:USER@HOST[:PORT]` calls like a phone, over SIP/UDP and
//! RTP, and turns the line into the `Up`/`Down` messages the robot's caller core speaks.
//!
//! The pieces are the sans-IO cores of [`crate::sip`] and [`crate::rtp`]; this module is their
//! tokio driver for one outgoing call:
//!
//! - Signalling: one UDP socket bound on the interface that routes to the target; a
//!   [`crate::sip::ua::Ua`] places the INVITE with an SDP offer of PCMU, PCMA and
//!   telephone-event ([`crate::sip::sdp::offer`], RFC 3264 §5) and reads the 200's answer.
//!   A final response other than 2xx refuses the call; no final response within the robot's
//!   timeout is a connect failure.
//! - Up, caller to far end: `Audio` (20 ms at 8000 Hz) is G.711-encoded in the negotiated law
//!   and sent as RTP (RFC 3550) to the address of the answer; `Dtmf` becomes RFC 4733 event
//!   packets, and audio is withheld while a key is being sent (RFC 4733 §2.5.1.3 leaves it
//!   to the sender; a phone mutes); `Hangup` (or the up stream's end) sends BYE and waits up
//!   to [`BYE_WAIT`] for its response; `PlayoutMark` has no meaning on a phone line and is
//!   dropped.
//! - Down, far end to caller: RTP of the negotiated codec goes through the jitter buffer
//!   ([`crate::rtp::jitter`]) and comes out as one 20 ms frame per tick. A segmenter cuts the frames into the
//!   assistant's utterances by energy: a segment starts on a voiced frame and ends after
//!   [`SEGMENT_END`] of unvoiced frames. A segment's frames go down as `Audio{mark}` (mark =
//!   the segment's number, from 1) and the silence between segments is not sent, so that the
//!   robot's `wait-prompt` sees the quiet. When a segment ends its audio is transcribed with
//!   the robot's Whisper (one segment at a time, in order, on a blocking thread) and an
//!   `Event.Prompt{mark, text: transcript, locale "en"}` follows: `expect` matches the words
//!   heard on the line. A segment is the speech between pauses, not the assistant's prompt:
//!   two prompts played without a pause are one segment.
//! - REFER from the far end (RFC 3515) becomes `Transfer{target: Refer-To}`; BYE becomes
//!   `Hangup`. Both go down after the transcripts of the audio heard before them.
//!
//! Deviations: UDP only (no TCP, no TLS: `sips:` is refused); no re-INVITE of our own (the
//! far end's are answered); no RTCP; incoming DTMF is ignored. The user agent core does not take transfers of our
//! side: it answers a REFER with 403 (not 202 and NOTIFY), and the leg reads the REFER's
//! `Refer-To` on its way into the core. A far end that falls back to another way of
//! transferring when REFER is refused is still reported as transferring.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ivr_proto::v1::{self as pb, down, event, up};
use rand::rngs::{StdRng, SysRng};
use rand::{RngExt, SeedableRng};
use speech::audio::g711::Law;
use speech::stt::Transcriber;
use speech::{Pcm, SampleRate};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;

use super::{CallOptions, DownStream, OpenError};
use crate::rtp::dtmf::{DtmfKey, DtmfSender};
use crate::rtp::jitter::JitterBuffer;
use crate::rtp::packet::RtpPacket;
use crate::rtp::rtcp::is_rtcp;
use crate::rtp::session::RtpSender;
use crate::rtp::Ssrc;
use crate::sip::header::NameAddr;
use crate::sip::message::{self, reason_phrase, Message, Method, MAX_MESSAGE};
use crate::sip::sdp::{self, Codec, Direction, Negotiated, SessionVersion};
use crate::sip::transaction::{Timers, Transport};
use crate::sip::ua::{CallRef, EndReason, Ua, UaConfig, UaEvent};
use crate::sip::uri::{Scheme, Uri};

/// How long the line must stay quiet for `wait-prompt` to pass over SIP: a segment's end is
/// known [`SEGMENT_END`] after its last voiced frame and the assistant's next sentence may
/// follow a pause about that long, so the robot waits for more.
pub const QUIET: Duration = Duration::from_millis(1000);
/// How long an utterance may pause before it counts as over.
pub const SEGMENT_END: Duration = Duration::from_millis(600);
/// How long a hangup waits for the BYE's response.
pub const BYE_WAIT: Duration = Duration::from_secs(2);

/// The duration of one frame of far-end audio.
const FRAME: Duration = super::prepare::FRAME;
/// Samples in one 20 ms frame at 8000 Hz.
const FRAME_LEN: usize = 160;
/// A frame whose RMS is at least this is voiced: about −40 dBFS, well above comfort noise
/// and well below speech.
const VOICED_RMS: f64 = 330.0;
/// The longest segment: a longer utterance is cut here (bounded memory, and a transcript
/// comes out within this time).
const MAX_SEGMENT: Duration = Duration::from_secs(30);

/// The `HOST:PORT` an INVITE to `uri` (`sip:[USER@]HOST[:PORT][;params]`) goes to.
///
/// IPv6 hosts keep their brackets; the port defaults to 5060 (RFC 3261 §19.1.2; no DNS SRV
/// lookup, RFC 3263, is made).
pub fn destination(uri: &str) -> Result<String, String> {
    let parsed = Uri::parse(uri).map_err(|e| format!("{uri:?}: {e}"))?;
    if parsed.scheme != Scheme::Sip {
        return Err(format!("{uri:?}: expected sip:USER@HOST[:PORT]"));
    }
    if parsed.port == Some(0) {
        return Err(format!("{uri:?}: port 0"));
    }
    let (host, port) = parsed.host_port();
    Ok(format!("{host}:{port}"))
}

/// What the [`Segmenter`] found in a frame.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Segment {
    /// Audio of segment `mark`, to go down now.
    Audio { mark: u64, samples: Vec<i16> },
    /// Segment `mark` is over; `audio` is all of it, to transcribe.
    End { mark: u64, audio: Vec<i16> },
}

/// Cuts the far end's 20 ms frames into utterances by energy (see the module docs).
///
/// Unvoiced frames after a segment's last voiced one are held back: they go down (before the
/// next voiced frame) only when the segment goes on, so its audio keeps its pauses and the
/// quiet after it is not sent at all.
#[derive(Debug, Default)]
pub(crate) struct Segmenter {
    last_mark: u64,
    /// The segment under way: its mark and its audio so far (sent down).
    current: Option<(u64, Vec<i16>)>,
    /// Unvoiced frames since the current segment's last voiced frame.
    held: Vec<i16>,
}

impl Segmenter {
    /// Takes the next frame of far-end audio (any length; 20 ms at 8000 Hz on the line).
    pub fn push(&mut self, frame: &[i16]) -> Vec<Segment> {
        let mut out = Vec::new();
        let voiced = rms(frame) >= VOICED_RMS;
        match (&mut self.current, voiced) {
            (None, false) => {}
            (None, true) => {
                self.last_mark += 1;
                self.current = Some((self.last_mark, frame.to_vec()));
                out.push(Segment::Audio {
                    mark: self.last_mark,
                    samples: frame.to_vec(),
                });
            }
            (Some((mark, audio)), true) => {
                let mut samples = std::mem::take(&mut self.held);
                samples.extend_from_slice(frame);
                audio.extend_from_slice(&samples);
                out.push(Segment::Audio {
                    mark: *mark,
                    samples,
                });
            }
            (Some(_), false) => {
                self.held.extend_from_slice(frame);
                if self.held.len() >= samples_in(SEGMENT_END) {
                    out.extend(self.finish());
                }
            }
        }
        if let Some((_, audio)) = &self.current {
            if audio.len() + self.held.len() >= samples_in(MAX_SEGMENT) {
                out.extend(self.finish());
            }
        }
        out
    }

    /// Ends the segment under way, if any (the line went quiet for good: BYE, REFER).
    pub fn finish(&mut self) -> Option<Segment> {
        self.held.clear();
        self.current
            .take()
            .map(|(mark, audio)| Segment::End { mark, audio })
    }
}

/// Samples in `d` at 8000 Hz.
fn samples_in(d: Duration) -> usize {
    (d.as_millis() as usize) * FRAME_LEN / FRAME.as_millis() as usize
}

/// The root mean square of `samples` (0 for none).
fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Places the call to `uri` at `dest` and runs it with `ups` as the caller's side: the first
/// message must be the `CallStart` (its `caller` becomes the From user). Returns once the
/// call is answered; the call then runs on its own task until both sides are done.
pub(super) async fn dial(
    uri: &str,
    dest: &str,
    mut ups: mpsc::Receiver<pb::Up>,
    options: &CallOptions,
) -> Result<DownStream, OpenError> {
    let Some(stt) = options.transcriber.clone() else {
        return Err(OpenError::Robot(
            "a SIP call needs a transcriber: the prompts' words are what it hears".into(),
        ));
    };
    let caller = match ups.recv().await {
        Some(pb::Up {
            msg: Some(up::Msg::Start(start)),
        }) => start.caller,
        _ => {
            return Err(OpenError::Robot(
                "the call did not begin with CallStart".into(),
            ))
        }
    };
    let target = Uri::parse(uri).map_err(|e| OpenError::Robot(format!("{uri}: {e}")))?;
    let remote = tokio::net::lookup_host(dest)
        .await
        .map_err(|e| OpenError::Connect(format!("resolving {dest}: {e}")))?
        .next()
        .ok_or_else(|| OpenError::Connect(format!("{dest}: no address")))?;
    let sockets = Sockets::bind(remote)
        .await
        .map_err(|e| OpenError::Connect(format!("opening sockets towards {remote}: {e}")))?;
    let mut rng = rng();
    let contact = Uri::parse(&format!("sip:robot@{}", sockets.sip_addr))
        .map_err(|e| OpenError::Robot(format!("our contact: {e}")))?;
    let from = Uri::parse(&format!(
        "sip:{}@{}",
        user_part(&caller),
        sockets.sip_addr.ip()
    ))
    .map_err(|e| OpenError::Robot(format!("caller {caller:?}: {e}")))?;
    let mut ua = Ua::new(
        UaConfig {
            contact,
            user_agent: "ivr-robot".into(),
            timers: Timers::default(),
        },
        rng.random(),
    );
    let mut session = SessionVersion::new(rng.random());
    let offer = sdp::offer(sockets.rtp_addr, &mut session);
    // The caller's language travels as Accept-Language (the gateway's locale hint).
    let language: Vec<(&str, String)> = options
        .locale
        .map(|l| ("Accept-Language", l.code().to_owned()))
        .into_iter()
        .collect();
    let call = ua.invite(
        Instant::now(),
        target,
        NameAddr::new(from),
        remote,
        Transport::Udp,
        offer.into_bytes(),
        &language,
    );
    let mut leg = SipLeg {
        sockets,
        ua,
        call,
        buf: vec![0; MAX_MESSAGE],
    };
    let answered = tokio::time::timeout(options.timeout, leg.await_answer()).await;
    let negotiated = match answered {
        Ok(Ok(negotiated)) => negotiated,
        Ok(Err(e)) => {
            leg.hang_up().await;
            return Err(e);
        }
        Err(_) => {
            leg.hang_up().await;
            return Err(OpenError::Connect(format!(
                "no answer within {} s",
                options.timeout.as_secs_f64()
            )));
        }
    };
    let (down_tx, down_rx) = mpsc::channel(256);
    let (job_tx, job_rx) = mpsc::channel(64);
    let worker_tx = down_tx.clone();
    tokio::task::spawn_blocking(move || transcribe_segments(stt.as_ref(), job_rx, worker_tx));
    let media = Media::new(&mut rng, negotiated);
    tokio::spawn(
        Call {
            leg,
            media,
            session,
            segmenter: Segmenter::default(),
            down_tx,
            jobs: Some(job_tx),
            seq: 0,
            transferred: false,
        }
        .run(ups),
    );
    Ok(Box::pin(ReceiverStream::new(down_rx)))
}

/// The SIP and RTP sockets of one call, on the interface that routes to the far end.
struct Sockets {
    sip: UdpSocket,
    sip_addr: SocketAddr,
    rtp: UdpSocket,
    rtp_addr: SocketAddr,
}

impl Sockets {
    async fn bind(remote: SocketAddr) -> std::io::Result<Sockets> {
        // Connecting a UDP socket sends nothing; it asks the kernel for the route's source.
        let unspecified: SocketAddr = match remote {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let probe = UdpSocket::bind(unspecified).await?;
        probe.connect(remote).await?;
        let ip = probe.local_addr()?.ip();
        let sip = UdpSocket::bind((ip, 0)).await?;
        let rtp = UdpSocket::bind((ip, 0)).await?;
        Ok(Sockets {
            sip_addr: sip.local_addr()?,
            rtp_addr: rtp.local_addr()?,
            sip,
            rtp,
        })
    }
}

/// The signalling of one call: the user agent core and its socket.
struct SipLeg {
    sockets: Sockets,
    ua: Ua,
    call: CallRef,
    buf: Vec<u8>,
}

impl SipLeg {
    /// Runs the user agent until the INVITE is answered (the negotiated media) or fails.
    async fn await_answer(&mut self) -> Result<Negotiated, OpenError> {
        loop {
            self.flush().await;
            while let Some(event) = self.ua.poll_event() {
                match event {
                    UaEvent::Answered { call, answer } if call == self.call => {
                        let answer = answer.unwrap_or_default();
                        let text = String::from_utf8_lossy(&answer);
                        return sdp::accept_answer(&text).map_err(|e| {
                            OpenError::Refused(format!("the SDP answer cannot be used: {e}"))
                        });
                    }
                    UaEvent::Ended { call, reason } if call == self.call => {
                        return Err(match reason {
                            EndReason::Failed(status) => OpenError::Refused(format!(
                                "the call was refused: {status} {}",
                                reason_phrase(status)
                            )),
                            EndReason::Timeout => {
                                OpenError::Connect("no response to the INVITE".into())
                            }
                            other => OpenError::Connect(format!("the call failed: {other:?}")),
                        });
                    }
                    _ => {}
                }
            }
            self.step().await;
        }
    }

    /// Waits for one input (a datagram or a timer) and hands it to the user agent.
    async fn step(&mut self) {
        let wake = self.ua.poll_timeout();
        tokio::select! {
            got = self.sockets.sip.recv_from(&mut self.buf) => {
                if let Ok((n, source)) = got {
                    self.receive(n, source);
                }
            }
            _ = sleep_until(wake), if wake.is_some() => self.ua.handle_timeout(Instant::now()),
        }
    }

    /// Hands the datagram in `buf[..n]` to the user agent; returns the `Refer-To` of a REFER
    /// in our dialog.
    fn receive(&mut self, n: usize, source: SocketAddr) -> Option<String> {
        let bytes = self.buf.get(..n)?;
        let message = match message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%source, error = %e, "unparseable SIP datagram");
                return None;
            }
        };
        let refer_to = match &message {
            Message::Request(r) if r.method == Method::Refer => r
                .headers
                .get("Refer-To")
                .and_then(|v| NameAddr::parse(v).ok()),
            _ => None,
        };
        self.ua
            .receive(Instant::now(), message, source, Transport::Udp);
        refer_to.map(|to| to.uri.to_string())
    }

    /// Sends what the user agent has to send.
    async fn flush(&mut self) {
        while let Some(t) = self.ua.poll_transmit() {
            let bytes = t.message.to_bytes();
            if let Err(e) = self.sockets.sip.send_to(&bytes, t.dest).await {
                tracing::warn!(dest = %t.dest, error = %e, "sending SIP");
            }
        }
    }

    /// Ends the call (CANCEL or BYE) and waits up to [`BYE_WAIT`] for the far end's answer.
    async fn hang_up(&mut self) {
        if self.ua.hangup(Instant::now(), self.call).is_err() {
            // Already over: nothing to end.
            return;
        }
        let _ = tokio::time::timeout(BYE_WAIT, async {
            while self.ua.calls() > 0 {
                self.flush().await;
                self.step().await;
            }
        })
        .await;
        self.flush().await;
    }
}

/// The RTP side of one call.
struct Media {
    negotiated: Negotiated,
    law: Law,
    sender: RtpSender,
    dtmf: DtmfSender,
    /// Far-end audio on its way to the ticks.
    jitter: JitterBuffer,
    /// The SSRC of the far end's stream, latched on its first packet.
    far_ssrc: Option<Ssrc>,
}

impl Media {
    fn new(rng: &mut StdRng, negotiated: Negotiated) -> Self {
        Media {
            law: law(negotiated.codec),
            sender: RtpSender::new(rng, negotiated.codec_pt),
            dtmf: DtmfSender::new(),
            jitter: JitterBuffer::new(),
            far_ssrc: None,
            negotiated,
        }
    }

    /// The address RTP goes to, unless the far end has us on hold.
    fn destination(&self) -> Option<SocketAddr> {
        let remote = self.negotiated.remote;
        let sends = matches!(
            self.negotiated.direction,
            Direction::SendRecv | Direction::SendOnly
        );
        (sends && !remote.ip().is_unspecified() && remote.port() != 0).then_some(remote)
    }

    /// The packet for one caller audio frame (`None` while a key is being sent).
    fn audio(&mut self, pcm16: &[u8]) -> Option<Vec<u8>> {
        let payload: Vec<u8> = pcm16
            .chunks_exact(2)
            .map(|b| self.law.encode_sample(i16::from_le_bytes([b[0], b[1]])))
            .collect();
        let samples = payload.len() as u32;
        if self.dtmf.is_active() {
            self.sender.silence(samples);
            return None;
        }
        Some(self.sender.audio(&payload, samples))
    }

    /// Starts sending `key` for `duration`; false when the far end takes no telephone-event
    /// or the key is not one.
    fn start_key(&mut self, now: Instant, key: &str, duration: Duration) -> bool {
        let key = key.chars().next().and_then(DtmfKey::from_char);
        match (key, self.negotiated.dtmf_pt) {
            (Some(key), Some(_)) => {
                let ts = self.sender.timestamp();
                // A key while the previous one is going out waits for the next Dtmf message
                // (the robot spaces its keys, so this does not happen).
                self.dtmf.start(now, key, duration, ts);
                true
            }
            _ => false,
        }
    }

    /// The telephone-event packets due at `now`.
    fn key_packets(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let Some(pt) = self.negotiated.dtmf_pt else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Some(p) = self.dtmf.poll(now) {
            out.push(self.sender.event(pt, p.marker, p.timestamp, &p.payload));
        }
        out
    }

    /// Takes one RTP datagram from the far end: audio of the negotiated codec goes into the
    /// jitter buffer, anything else (RTCP, telephone-events) is dropped.
    fn handle_rtp(&mut self, now: Instant, datagram: &[u8]) {
        if is_rtcp(datagram) {
            return;
        }
        let Ok(packet) = RtpPacket::parse(datagram) else {
            return;
        };
        if packet.payload_type != self.negotiated.codec_pt {
            return;
        }
        if *self.far_ssrc.get_or_insert(packet.ssrc) != packet.ssrc {
            // A new stream (the far end restarted its sender): follow it.
            self.far_ssrc = Some(packet.ssrc);
            self.jitter.reset();
        }
        let samples = packet
            .payload
            .iter()
            .map(|&c| self.law.decode_sample(c))
            .collect();
        self.jitter.push(
            now,
            packet.sequence,
            packet.timestamp,
            packet.marker,
            samples,
        );
    }

    /// The next 20 ms of far-end audio (concealment or silence where none arrived).
    fn frame(&mut self, now: Instant) -> Vec<i16> {
        self.jitter.pop(now).into_samples()
    }
}

/// A job for the transcription thread, done in order.
enum Job {
    /// Transcribe segment `mark` and send its `Event.Prompt`.
    Transcribe { mark: u64, audio: Vec<i16> },
    /// Send this once the segments before it are transcribed.
    Pass(Result<pb::Down, String>),
}

/// The transcription thread: runs until the call drops its job queue.
fn transcribe_segments(
    stt: &dyn Transcriber,
    mut jobs: mpsc::Receiver<Job>,
    downs: mpsc::Sender<Result<pb::Down, String>>,
) {
    while let Some(job) = jobs.blocking_recv() {
        let down = match job {
            Job::Transcribe { mark, audio } => {
                let pcm = Pcm::from_i16(SampleRate::HZ_8000, &audio);
                let text = match super::transcribe(stt, &pcm) {
                    Ok(text) => text.trim().to_owned(),
                    Err(e) => format!("[not transcribed: {e}]"),
                };
                Ok(prompt_down(mark, text))
            }
            Job::Pass(down) => down,
        };
        if downs.blocking_send(down).is_err() {
            // The robot has finished with the call.
            return;
        }
    }
}

/// One answered call: the caller's messages out as RTP and SIP, the line in as `Down`.
struct Call {
    leg: SipLeg,
    media: Media,
    session: SessionVersion,
    segmenter: Segmenter,
    down_tx: mpsc::Sender<Result<pb::Down, String>>,
    /// The transcription queue; `None` once the call is over for the far end.
    jobs: Option<mpsc::Sender<Job>>,
    seq: u64,
    transferred: bool,
}

impl Call {
    async fn run(mut self, mut ups: mpsc::Receiver<pb::Up>) {
        let mut ticks = tokio::time::interval(FRAME);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut rtp_buf = vec![0u8; 2048];
        loop {
            self.leg.flush().await;
            while let Some(event) = self.leg.ua.poll_event() {
                self.handle_event(event).await;
            }
            if self.jobs.is_none() && ups.is_closed() {
                break;
            }
            let wake = self.leg.ua.poll_timeout();
            tokio::select! {
                up = ups.recv() => match up {
                    Some(pb::Up { msg: Some(msg) }) => {
                        if self.handle_up(msg).await.is_break() {
                            break;
                        }
                    }
                    Some(_) => {}
                    None => {
                        // The robot is done without a Hangup (after a transfer, or it
                        // stopped): end the call if it is still up.
                        self.leg.hang_up().await;
                        break;
                    }
                },
                got = self.leg.sockets.sip.recv_from(&mut self.leg.buf) => {
                    if let Ok((n, source)) = got {
                        if let Some(target) = self.leg.receive(n, source) {
                            self.transfer(target).await;
                        }
                    }
                }
                got = self.leg.sockets.rtp.recv_from(&mut rtp_buf) => {
                    if let Ok((n, _)) = got {
                        if let Some(datagram) = rtp_buf.get(..n) {
                            self.media.handle_rtp(Instant::now(), datagram);
                        }
                    }
                }
                _ = ticks.tick() => self.handle_tick().await,
                _ = sleep_until(wake), if wake.is_some() => {
                    self.leg.ua.handle_timeout(Instant::now());
                }
            }
        }
        self.end_line();
    }

    /// One caller message.
    async fn handle_up(&mut self, msg: up::Msg) -> ControlFlow<()> {
        match msg {
            up::Msg::Audio(audio) => {
                if let (Some(packet), Some(dest)) =
                    (self.media.audio(&audio.pcm16), self.media.destination())
                {
                    self.send_rtp(&packet, dest).await;
                }
            }
            up::Msg::Dtmf(d) => {
                let duration = Duration::from_millis(u64::from(d.duration_ms));
                if !self.media.start_key(Instant::now(), &d.key, duration) {
                    self.fail(format!(
                        "key {:?} cannot be sent: the far end took no telephone-event",
                        d.key
                    ))
                    .await;
                }
                self.send_keys().await;
            }
            up::Msg::Hangup(_) => {
                self.leg.hang_up().await;
                return ControlFlow::Break(());
            }
            // Marks mean nothing on a phone line; the CallStart has been used.
            up::Msg::Playout(_) | up::Msg::Start(_) => {}
        }
        ControlFlow::Continue(())
    }

    /// Every 20 ms: the due telephone-event packets out, one frame of far-end audio in.
    async fn handle_tick(&mut self) {
        self.send_keys().await;
        let frame = self.media.frame(Instant::now());
        if self.jobs.is_none() {
            return;
        }
        for segment in self.segmenter.push(&frame) {
            self.segment(segment).await;
        }
    }

    async fn handle_event(&mut self, event: UaEvent) {
        match event {
            UaEvent::Ended { call, reason } if call == self.leg.call => {
                let down = match reason {
                    EndReason::RemoteBye | EndReason::LocalBye => Ok(pb::Down {
                        msg: Some(down::Msg::Hangup(pb::Hangup {
                            reason: "the far end sent BYE".into(),
                        })),
                    }),
                    other => Err(format!("the SIP call ended: {other:?}")),
                };
                if !(self.transferred && matches!(reason, EndReason::LocalBye)) {
                    self.pass(down).await;
                }
                self.end_line();
            }
            UaEvent::Reoffer { call, offer } if call == self.leg.call => {
                self.reoffer(offer);
            }
            UaEvent::ReofferAnswer { call, answer } if call == self.leg.call => {
                if let Ok(n) = sdp::accept_answer(&String::from_utf8_lossy(&answer)) {
                    self.renegotiated(n);
                }
            }
            _ => {}
        }
    }

    /// A re-INVITE (hold, unhold, codec change): answered from our RTP address.
    fn reoffer(&mut self, offer: Option<Vec<u8>>) {
        let now = Instant::now();
        let call = self.leg.call;
        let rtp_addr = self.leg.sockets.rtp_addr;
        let result = match offer {
            Some(offer) => {
                match sdp::answer(
                    &String::from_utf8_lossy(&offer),
                    rtp_addr,
                    &mut self.session,
                ) {
                    Ok((n, answer)) => {
                        self.renegotiated(n);
                        self.leg.ua.answer_reoffer(now, call, answer.into_bytes())
                    }
                    Err(_) => self.leg.ua.reject_reoffer(now, call, 488),
                }
            }
            // An offerless re-INVITE: our offer goes in the 200, the answer in the ACK.
            None => {
                let offer = sdp::offer(rtp_addr, &mut self.session);
                self.leg.ua.answer_reoffer(now, call, offer.into_bytes())
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "the re-INVITE went away");
        }
    }

    fn renegotiated(&mut self, n: Negotiated) {
        if n.codec_pt != self.media.negotiated.codec_pt {
            self.media.sender.set_payload_type(n.codec_pt);
            self.media.law = law(n.codec);
            self.media.jitter.reset();
        }
        self.media.negotiated = n;
    }

    /// A REFER in our dialog: the assistant hands the caller over (the core answers it).
    async fn transfer(&mut self, target: String) {
        if std::mem::replace(&mut self.transferred, true) {
            return;
        }
        self.pass(Ok(pb::Down {
            msg: Some(down::Msg::Transfer(pb::Transfer { target })),
        }))
        .await;
        self.end_line();
    }

    /// What the segmenter found: audio goes down now, a finished segment to the transcriber.
    async fn segment(&mut self, segment: Segment) {
        match segment {
            Segment::Audio { mark, samples } => {
                let down = audio_down(mark, self.seq, &samples);
                self.seq += 1;
                // A closed stream: the robot has finished; the call ends with its up stream.
                let _ = self.down_tx.send(Ok(down)).await;
            }
            Segment::End { mark, audio } => {
                if let Some(jobs) = &self.jobs {
                    let _ = jobs.send(Job::Transcribe { mark, audio }).await;
                }
            }
        }
    }

    /// Sends `down` after the transcripts of the segments so far.
    async fn pass(&mut self, down: Result<pb::Down, String>) {
        if let Some(segment) = self.segmenter.finish() {
            self.segment(segment).await;
        }
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Pass(down)).await;
        }
    }

    /// Fails the call from the robot's side.
    async fn fail(&mut self, why: String) {
        self.pass(Err(why)).await;
        self.end_line();
    }

    /// Nothing more goes down: the transcription thread finishes its queue and the stream
    /// ends when it has.
    fn end_line(&mut self) {
        self.jobs = None;
    }

    async fn send_keys(&mut self) {
        let now = Instant::now();
        let packets = self.media.key_packets(now);
        if let Some(dest) = self.media.destination() {
            for packet in packets {
                self.send_rtp(&packet, dest).await;
            }
        }
    }

    async fn send_rtp(&self, packet: &[u8], dest: SocketAddr) {
        if let Err(e) = self.leg.sockets.rtp.send_to(packet, dest).await {
            tracing::debug!(%dest, error = %e, "sending RTP");
        }
    }
}

/// Sleeps until `at` (forever for `None`; the caller guards the branch).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The G.711 law of `codec`.
fn law(codec: Codec) -> Law {
    match codec {
        Codec::Pcmu => Law::Mu,
        Codec::Pcma => Law::A,
    }
}

/// `number` as a SIP URI user part: digits and the characters RFC 3261 §25.1 allows
/// unescaped; anything else is dropped ("anonymous" when nothing is left).
fn user_part(number: &str) -> String {
    let user: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(*c))
        .collect();
    if user.is_empty() {
        "anonymous".into()
    } else {
        user
    }
}

fn rng() -> StdRng {
    StdRng::try_from_rng(&mut SysRng).unwrap_or_else(|_| {
        // Without OS randomness, a time-based seed still keeps concurrent robots apart.
        StdRng::seed_from_u64(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        )
    })
}

/// `Down::Audio` of `samples` for `mark`.
fn audio_down(mark: u64, seq: u64, samples: &[i16]) -> pb::Down {
    pb::Down {
        msg: Some(down::Msg::Audio(pb::Audio {
            pcm16: samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            seq,
            mark,
        })),
    }
}

/// `Down::Event{Prompt}`: what was heard in segment `mark`.
fn prompt_down(mark: u64, text: String) -> pb::Down {
    pb::Down {
        msg: Some(down::Msg::Event(pb::Event {
            kind: Some(event::Kind::Prompt(pb::Prompt {
                mark,
                prompt_id: String::new(),
                text,
                locale: "en".into(),
            })),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use speech::stt::{SttRequest, Transcript};
    use speech::tts::Speaker;
    use speech::Locale;

    use crate::robot::report::Failure;
    use crate::robot::{caller_voices, prepare, run_call, Script, Target};
    use crate::rtp::dtmf::TelephoneEvent;

    /// Hears the same words in any audio.
    struct FixedTranscriber(&'static str);

    impl Transcriber for FixedTranscriber {
        fn transcribe(&self, _audio: &Pcm, _request: &SttRequest) -> speech::Result<Transcript> {
            Ok(Transcript {
                outcome: speech::stt::Outcome::Heard,
                text: self.0.into(),
                confidence: 0.9,
                no_speech_probability: 0.0,
                language: "en".into(),
                timings: Default::default(),
            })
        }
    }

    /// What the far end does once the call is up.
    #[derive(Clone, Copy, PartialEq)]
    enum Plan {
        /// Speaks 300 ms, then waits for the robot's BYE.
        Speak,
        /// Speaks 300 ms, then transfers the caller with REFER.
        Transfer,
        /// Refuses the INVITE with 486.
        Busy,
        /// Speaks 300 ms, then hangs up.
        HangUp,
    }

    /// What the far end saw.
    #[derive(Debug, Default)]
    struct Seen {
        audio_packets: usize,
        /// (event, end) of each telephone-event packet.
        keys: Vec<(u8, bool)>,
        robot_hung_up: bool,
    }

    /// A SIP phone on 127.0.0.1 built from the same cores, playing the hotline's part once.
    async fn far_end(plan: Plan) -> (SocketAddr, tokio::task::JoinHandle<Seen>) {
        let sip = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let sip_addr = sip.local_addr().expect("bound");
        let rtp_addr = rtp.local_addr().expect("bound");
        let contact = Uri::parse(&format!("sip:hotline@{sip_addr}")).expect("uri");
        let mut ua = Ua::new(
            UaConfig {
                contact,
                user_agent: "far-end".into(),
                timers: Timers::default(),
            },
            7,
        );
        let task = tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut buf = vec![0u8; MAX_MESSAGE];
            let mut rtp_buf = vec![0u8; 2048];
            let mut session = SessionVersion::new(1);
            let mut media: Option<(CallRef, Negotiated, RtpSender)> = None;
            let mut voiced_left = 0usize;
            let mut ticks = tokio::time::interval(FRAME);
            let mut after_speech = None;
            let mut rng = StdRng::seed_from_u64(3);
            let mut done = false;
            loop {
                while let Some(t) = ua.poll_transmit() {
                    let _ = sip.send_to(&t.message.to_bytes(), t.dest).await;
                }
                while let Some(event) = ua.poll_event() {
                    let now = Instant::now();
                    match event {
                        UaEvent::Incoming { call, offer, .. } if plan == Plan::Busy => {
                            let _ = offer;
                            ua.reject(now, call, 486, &[]).expect("reject");
                        }
                        UaEvent::Incoming { call, offer, .. } => {
                            let offer = String::from_utf8(offer.unwrap_or_default()).expect("sdp");
                            let (n, answer) =
                                sdp::answer(&offer, rtp_addr, &mut session).expect("answer");
                            assert_eq!(n.codec, Codec::Pcmu, "the robot prefers PCMU");
                            let sender = RtpSender::new(&mut rng, n.codec_pt);
                            media = Some((call, n, sender));
                            ua.answer(now, call, answer.into_bytes()).expect("answer");
                        }
                        UaEvent::Established { .. } => voiced_left = 15,
                        UaEvent::Ended { reason, .. } => {
                            seen.robot_hung_up = reason == EndReason::RemoteBye;
                            done = plan != Plan::Transfer || seen.robot_hung_up;
                        }
                        _ => {}
                    }
                }
                while let Some(t) = ua.poll_transmit() {
                    let _ = sip.send_to(&t.message.to_bytes(), t.dest).await;
                }
                if done {
                    return seen;
                }
                let wake = ua.poll_timeout();
                tokio::select! {
                    got = sip.recv_from(&mut buf) => {
                        let (n, source) = got.expect("recv");
                        let msg = message::parse(&buf[..n]).expect("the robot sends valid SIP");
                        ua.receive(Instant::now(), msg, source, Transport::Udp);
                    }
                    got = rtp.recv_from(&mut rtp_buf) => {
                        let (n, _) = got.expect("recv");
                        let p = RtpPacket::parse(&rtp_buf[..n]).expect("valid RTP");
                        match media.as_ref().map(|(_, n, _)| n) {
                            Some(neg) if Some(p.payload_type) == neg.dtmf_pt => {
                                let e = TelephoneEvent::parse(p.payload).expect("event");
                                seen.keys.push((e.event, e.end));
                            }
                            Some(neg) if p.payload_type == neg.codec_pt => {
                                assert_eq!(p.payload.len(), FRAME_LEN);
                                seen.audio_packets += 1;
                            }
                            _ => panic!("unexpected RTP payload type {}", p.payload_type),
                        }
                    }
                    _ = ticks.tick() => {
                        let Some((call, n, sender)) = media.as_mut() else { continue };
                        if voiced_left > 0 {
                            voiced_left -= 1;
                            let frame: Vec<u8> = (0..FRAME_LEN)
                                .map(|i| Law::Mu.encode_sample(if i % 8 < 4 { 3000 } else { -3000 }))
                                .collect();
                            let packet = sender.audio(&frame, FRAME_LEN as u32);
                            let _ = rtp.send_to(&packet, n.remote).await;
                            if voiced_left == 0 {
                                after_speech = Some(Instant::now());
                            }
                        } else if after_speech.is_some_and(|t| t.elapsed() >= Duration::from_secs(1)) {
                            after_speech = None;
                            let call = *call;
                            match plan {
                                Plan::Transfer => {
                                    let to = Uri::parse("sip:operators@hotline.example").expect("uri");
                                    ua.transfer(Instant::now(), call, &to).expect("REFER");
                                }
                                Plan::HangUp => ua.hangup(Instant::now(), call).expect("BYE"),
                                Plan::Speak | Plan::Busy => {}
                            }
                        }
                    }
                    _ = sleep_until(wake), if wake.is_some() => ua.handle_timeout(Instant::now()),
                }
            }
        });
        (sip_addr, task)
    }

    async fn call_far_end(src: &str, plan: Plan) -> (super::super::CallReport, Seen) {
        let (addr, far) = far_end(plan).await;
        let script = prepare(
            &Script::parse(src, "t.call").expect("valid script"),
            SampleRate::HZ_8000,
            Locale::En,
            &Speaker::new(caller_voices()),
        )
        .expect("prepares without synthesis");
        let uri = format!("sip:1111@{addr}");
        let mut options = CallOptions::new(Target::Sip {
            dest: destination(&uri).expect("valid"),
            uri,
        });
        options.timeout = Duration::from_secs(5);
        options.transcriber = Some(Arc::new(FixedTranscriber(
            "Hello, you reached the hotline.",
        )));
        let report = tokio::time::timeout(Duration::from_secs(20), run_call(&script, &options))
            .await
            .expect("the call ends");
        let seen = tokio::time::timeout(Duration::from_secs(5), far)
            .await
            .expect("the far end finishes")
            .expect("the far end does not panic");
        (report, seen)
    }

    #[tokio::test]
    async fn the_line_is_heard_as_a_prompt_and_keys_go_as_rfc4733_events_before_a_bye() {
        let (report, seen) = call_far_end(
            "wait-prompt\nexpect (?i)hotline\nkey 5\nhangup\n",
            Plan::Speak,
        )
        .await;
        assert!(report.passed(), "{:?}", report.failure);
        let prompts: Vec<(u64, &str)> = report
            .prompts
            .iter()
            .map(|p| (p.mark, p.text.as_str()))
            .collect();
        assert_eq!(prompts, [(1, "Hello, you reached the hotline.")]);
        assert!(seen.audio_packets > 10, "{seen:?}");
        assert!(seen.keys.contains(&(5, false)), "{seen:?}");
        assert_eq!(
            seen.keys.iter().filter(|k| **k == (5, true)).count(),
            3,
            "{seen:?}"
        );
        assert!(seen.robot_hung_up, "no BYE from the robot");
    }

    #[tokio::test]
    async fn a_refer_is_a_transfer_to_its_refer_to() {
        let (report, seen) = call_far_end(
            "wait-prompt\nexpect-transfer ^sip:operators@\n",
            Plan::Transfer,
        )
        .await;
        assert!(report.passed(), "{:?}", report.failure);
        assert_eq!(
            report.transfer.as_deref(),
            Some("sip:operators@hotline.example")
        );
        assert!(seen.robot_hung_up, "the robot leaves the call with BYE");
    }

    #[tokio::test]
    async fn a_bye_from_the_far_end_ends_the_call_after_its_words() {
        let (report, _) = call_far_end(
            "wait-prompt\nexpect hotline\nwait-prompt\nsilence 5\n",
            Plan::HangUp,
        )
        .await;
        assert!(
            matches!(&report.failure, Some(Failure::EndedEarly { message, .. }) if message.contains("hung up")),
            "{:?}",
            report.failure
        );
        assert_eq!(report.prompts.len(), 1);
    }

    #[tokio::test]
    async fn a_refused_invite_fails_the_call_with_its_status() {
        let (report, _) = call_far_end("hangup\n", Plan::Busy).await;
        let failure = report.failure.map(|f| f.to_string()).unwrap_or_default();
        assert!(failure.contains("486 Busy Here"), "{failure}");
    }

    fn voiced() -> Vec<i16> {
        (0..FRAME_LEN)
            .map(|i| if i % 2 == 0 { 2000 } else { -2000 })
            .collect()
    }

    fn quiet() -> Vec<i16> {
        vec![20; FRAME_LEN]
    }

    fn marks_and_lens(out: &[Segment]) -> Vec<(char, u64, usize)> {
        out.iter()
            .map(|s| match s {
                Segment::Audio { mark, samples } => ('a', *mark, samples.len()),
                Segment::End { mark, audio } => ('e', *mark, audio.len()),
            })
            .collect()
    }

    #[test]
    fn silence_before_speech_is_not_sent() {
        let mut s = Segmenter::default();
        for _ in 0..100 {
            assert!(s.push(&quiet()).is_empty());
        }
        assert_eq!(marks_and_lens(&s.push(&voiced())), [('a', 1, FRAME_LEN)]);
    }

    #[test]
    fn a_short_pause_stays_inside_the_utterance_and_goes_down_with_the_next_word() {
        let mut s = Segmenter::default();
        s.push(&voiced());
        // 400 ms pause: held back, not the end.
        for _ in 0..20 {
            assert!(s.push(&quiet()).is_empty());
        }
        assert_eq!(
            marks_and_lens(&s.push(&voiced())),
            [('a', 1, 21 * FRAME_LEN)]
        );
    }

    #[test]
    fn a_long_pause_ends_the_utterance_with_all_its_audio_and_the_next_word_starts_another() {
        let mut s = Segmenter::default();
        s.push(&voiced());
        s.push(&voiced());
        let mut out = Vec::new();
        for _ in 0..30 {
            out.extend(s.push(&quiet()));
        }
        // The end comes on the 30th quiet frame (600 ms) and carries the voiced audio only.
        assert_eq!(marks_and_lens(&out), [('e', 1, 2 * FRAME_LEN)]);
        for _ in 0..50 {
            assert!(s.push(&quiet()).is_empty());
        }
        assert_eq!(marks_and_lens(&s.push(&voiced())), [('a', 2, FRAME_LEN)]);
        assert_eq!(
            s.finish().map(|e| marks_and_lens(&[e])),
            Some(vec![('e', 2, FRAME_LEN)])
        );
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn endless_speech_is_cut_into_bounded_segments() {
        let mut s = Segmenter::default();
        let mut ends = Vec::new();
        for _ in 0..(2 * 1500 + 10) {
            for seg in s.push(&voiced()) {
                if let Segment::End { mark, audio } = seg {
                    ends.push((mark, audio.len()));
                }
            }
        }
        assert_eq!(ends, [(1, 1500 * FRAME_LEN), (2, 1500 * FRAME_LEN)]);
    }

    #[test]
    fn sip_uris_name_their_destination() {
        assert_eq!(
            destination("sip:1111@127.0.0.1:5070").as_deref(),
            Ok("127.0.0.1:5070")
        );
        assert_eq!(
            destination("sip:1111@hotline.example;transport=udp?subject=x").as_deref(),
            Ok("hotline.example:5060")
        );
        assert_eq!(destination("sip:[::1]:5062").as_deref(), Ok("[::1]:5062"));
        assert_eq!(destination("sip:1111@[::1]").as_deref(), Ok("[::1]:5060"));
        for bad in [
            "sip:",
            "sip:1111@",
            "sip:1111@host:0",
            "sip:1111@host:99999",
            "sip:1111@ho st",
            "sip:1111@[::1",
            "tel:1111",
        ] {
            assert!(destination(bad).is_err(), "{bad}");
        }
    }
}
