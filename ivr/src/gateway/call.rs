//! One phone call's task: its RTP socket, its `Converse` stream to the assistant, and the
//! sans-IO [`MediaLeg`] between them.
//!
//! The task opens the stream first (`CallStart` with the SIP Call-ID, the caller's and the
//! dialled user parts, 8000 Hz, channel SIP) and only then asks the signalling task for the
//! 200 OK, so a caller is never answered by a gateway whose assistant is away (503 instead).
//! Then it runs one loop: the 20 ms playout schedule, RTP/RTCP from the socket, messages from
//! the assistant, and events from signalling (INFO digits, a new offer, the end of the call).
//! The assistant's `Transfer` and `Hangup` go to signalling once the audio before them has
//! played. When the caller's side refuses REFER, the call is bridged: a second leg is placed
//! to the operator and audio is relayed between the two until either side hangs up.

// The driver paces audio against the monotonic clock.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_proto::v1::media_gateway_client::MediaGatewayClient;
use ivr_proto::v1::{self as pb, up};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::sip::sdp::Negotiated;
use crate::sip::ua::CallRef;

use super::media::{MediaLeg, MediaOut};
use super::GatewayStats;

/// How long the assistant may take to accept a call's stream.
const ASSISTANT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a transfer may take (REFER to final NOTIFY, or the bridged call's answer)
/// before the call is ended.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages queued towards the assistant before audio is dropped (10 s of frames).
const UP_QUEUE: usize = 512;

/// Everything a call task needs, handed over by signalling.
#[derive(Debug)]
pub struct CallSetup {
    /// The call in the user agent core.
    pub call: CallRef,
    /// Its SIP Call-ID (the assistant's call id).
    pub call_id: String,
    /// The caller's user part (number), empty when withheld.
    pub caller: String,
    /// The dialled user part.
    pub called: String,
    /// "mn", "en" or empty: the caller's language from Accept-Language.
    pub locale_hint: String,
    /// The negotiated media.
    pub media: Negotiated,
    /// The SDP answer to send in the 200.
    pub answer: Vec<u8>,
    /// The call's RTP socket (RTCP is multiplexed on it).
    pub socket: UdpSocket,
    /// The assistant's gRPC channel.
    pub channel: tonic::transport::Channel,
    /// Where transfers go, when configured (otherwise the assistant's target).
    pub operator: Option<String>,
    /// The gateway's counters.
    pub stats: Arc<GatewayStats>,
    /// When to answer (the call rings until then).
    pub answer_at: Instant,
}

/// What signalling tells a call task.
#[derive(Debug)]
pub enum CallEvent {
    /// The caller's ACK arrived.
    Established,
    /// A re-INVITE changed the media (hold, unhold, codec, address).
    Media(Negotiated),
    /// A digit by SIP INFO.
    Dtmf {
        /// The key.
        key: char,
        /// How long it was held.
        duration_ms: u32,
    },
    /// The caller's side refused or failed the REFER.
    TransferFailed {
        /// The status it gave.
        status: u16,
    },
    /// The operator answered the bridged transfer: its media and RTP socket.
    Bridged {
        /// The operator leg's negotiated media.
        media: Negotiated,
        /// Its RTP socket.
        socket: UdpSocket,
    },
    /// The operator's leg ended (or could not be placed).
    BridgeEnded,
    /// The call is over (BYE either way, CANCEL, no ACK, transport failure).
    Ended {
        /// Why, for the log and the assistant.
        why: &'static str,
    },
}

/// What a call task asks of signalling.
#[derive(Debug)]
pub enum CallCommand {
    /// Send the 200 OK with this SDP.
    Answer(Vec<u8>),
    /// Refuse the call with this status.
    Reject(u16),
    /// End the call (BYE).
    Hangup,
    /// Transfer the caller by REFER to this URI.
    Transfer(String),
    /// Place a call to this URI and bridge the caller to it (REFER was refused).
    Bridge(String),
}

/// The operator's leg of a bridged transfer.
#[derive(Debug)]
struct Relay {
    leg: MediaLeg,
    socket: UdpSocket,
}

impl Relay {
    /// What the caller's leg produced goes to the operator: audio and keys.
    fn relay_from_caller(&mut self, msg: up::Msg) {
        match msg {
            up::Msg::Audio(audio) => self.leg.on_down(
                Instant::now(),
                pb::Down {
                    msg: Some(pb::down::Msg::Audio(audio)),
                },
            ),
            up::Msg::Dtmf(d) => {
                if let Some(key) = d.key.chars().next() {
                    let held = Duration::from_millis(u64::from(d.duration_ms.max(40)));
                    self.leg.send_digit(Instant::now(), key, held);
                }
            }
            _ => {}
        }
    }
}

/// Sleeps until `deadline`; forever when there is none.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Receives on the operator leg's socket; pending while there is none.
async fn relay_recv(
    relay: &Option<Relay>,
    buf: &mut [u8],
) -> std::io::Result<(usize, std::net::SocketAddr)> {
    match relay {
        Some(r) => r.socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Starts the task of one call.
pub fn spawn(
    setup: CallSetup,
    events: mpsc::Receiver<CallEvent>,
    commands: mpsc::Sender<(CallRef, CallCommand)>,
) {
    let call = setup.call;
    let span = tracing::info_span!("call", %call, id = %setup.call_id);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            if let Err(e) = run(setup, events, commands.clone()).await {
                tracing::warn!(error = %e, "call task failed");
                let _ = commands.send((call, CallCommand::Hangup)).await;
            }
        },
        span,
    ));
}

async fn run(
    setup: CallSetup,
    mut events: mpsc::Receiver<CallEvent>,
    commands: mpsc::Sender<(CallRef, CallCommand)>,
) -> anyhow::Result<()> {
    let CallSetup {
        call,
        call_id,
        caller,
        called,
        locale_hint,
        media,
        answer,
        socket,
        channel,
        operator,
        stats,
        answer_at,
    } = setup;
    let (up_tx, up_rx) = mpsc::channel::<pb::Up>(UP_QUEUE);
    let start = pb::CallStart {
        call_id: call_id.clone(),
        caller,
        called,
        format: Some(pb::AudioFormat {
            sample_rate_hz: 8000,
        }),
        locale_hint,
        channel: pb::Channel::Sip as i32,
    };
    up_tx
        .send(pb::Up {
            msg: Some(up::Msg::Start(start)),
        })
        .await?;
    let mut client = MediaGatewayClient::new(channel);
    let opened = tokio::time::timeout(
        ASSISTANT_TIMEOUT,
        client.converse(ReceiverStream::new(up_rx)),
    )
    .await;
    let mut downs = match opened {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "the assistant refused the call");
            commands.send((call, CallCommand::Reject(503))).await?;
            return Ok(());
        }
        Err(_) => {
            tracing::warn!("the assistant did not take the call in time");
            commands.send((call, CallCommand::Reject(503))).await?;
            return Ok(());
        }
    };
    // Ring until it is time to answer, unless the caller gives up first.
    let ringing = tokio::time::sleep_until(tokio::time::Instant::from_std(answer_at));
    tokio::pin!(ringing);
    loop {
        tokio::select! {
            _ = &mut ringing => break,
            event = events.recv() => match event {
                Some(CallEvent::Ended { why }) => {
                    tracing::info!(why, "call over before it was answered");
                    return Ok(());
                }
                None => return Ok(()),
                Some(other) => tracing::debug!(?other, "event while ringing"),
            },
        }
    }
    commands.send((call, CallCommand::Answer(answer))).await?;

    let mut leg = MediaLeg::new(
        media,
        Instant::now(),
        std::time::SystemTime::now(),
        rand::RngExt::random(&mut super::rng()),
    );
    let mut buf = vec![0u8; 2048];
    let mut relay_buf = vec![0u8; 2048];
    let mut downs_open = true;
    let mut ended = false;
    let mut dropped_up = 0u64;
    let mut spacing = super::signalling::Spacing::default();
    let mut last_rtp: Option<Instant> = None;
    // Where the assistant last asked to transfer the caller (for the bridged fallback).
    let mut transfer_to: Option<String> = None;
    // The operator's leg once a bridged transfer is up; the assistant is gone by then.
    let mut relay: Option<Relay> = None;
    let mut up_tx = Some(up_tx);
    // Set while a transfer is under way: when to give up on it.
    let mut transfer_deadline: Option<tokio::time::Instant> = None;
    loop {
        let mut next = leg.next_tick();
        if let Some(r) = &relay {
            next = next.min(r.leg.next_tick());
        }
        let tick = tokio::time::Instant::from_std(next);
        tokio::select! {
            _ = sleep_until_some(transfer_deadline) => {
                tracing::warn!("the transfer did not complete in time; ending the call");
                transfer_deadline = None;
                commands.send((call, CallCommand::Hangup)).await?;
            }
            _ = tokio::time::sleep_until(tick) => {
                let now = Instant::now();
                leg.on_tick(now);
                if let Some(r) = &mut relay {
                    r.leg.on_tick(now);
                }
            }
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => leg.on_packet(Instant::now(), &buf[..n], source),
                Err(e) => tracing::debug!(error = %e, "RTP receive"),
            },
            r = relay_recv(&relay, &mut relay_buf) => match (r, &mut relay) {
                (Ok((n, source)), Some(relay)) => {
                    relay.leg.on_packet(Instant::now(), &relay_buf[..n], source)
                }
                (Err(e), _) => tracing::debug!(error = %e, "operator RTP receive"),
                _ => {}
            },
            msg = downs.message(), if downs_open && relay.is_none() => match msg {
                Ok(Some(down)) => leg.on_down(Instant::now(), down),
                Ok(None) => {
                    downs_open = false;
                    tracing::info!("the assistant closed the call's stream");
                    if transfer_to.is_none() {
                        leg.hang_up_after_playout("assistant closed the stream");
                    }
                }
                Err(status) => {
                    downs_open = false;
                    tracing::warn!(code = ?status.code(), message = status.message(), "the assistant's stream failed");
                    if transfer_to.is_none() {
                        leg.hang_up_after_playout("assistant stream failed");
                    }
                }
            },
            event = events.recv() => match event {
                Some(CallEvent::Established) => tracing::debug!("call established"),
                Some(CallEvent::Media(media)) => leg.set_media(Instant::now(), media),
                Some(CallEvent::Dtmf { key, duration_ms }) => leg.on_signalled_digit(key, duration_ms),
                Some(CallEvent::TransferFailed { status }) => match transfer_to.take() {
                    Some(target) => {
                        tracing::info!(status, target, "the caller's side refused REFER; bridging to the operator");
                        commands.send((call, CallCommand::Bridge(target))).await?;
                    }
                    None => {
                        tracing::info!(status, "transfer failed; ending the call");
                        commands.send((call, CallCommand::Hangup)).await?;
                    }
                },
                Some(CallEvent::Bridged { media, socket }) => {
                    transfer_deadline = None;
                    // The assistant's part is over: the caller now talks to a person.
                    if let Some(tx) = up_tx.take() {
                        let _ = tx.try_send(pb::Up {
                            msg: Some(up::Msg::Hangup(pb::Hangup {
                                reason: "transferred to the operator".to_owned(),
                            })),
                        });
                    }
                    downs_open = false;
                    let now = Instant::now();
                    relay = Some(Relay {
                        leg: MediaLeg::new(
                            media,
                            now,
                            std::time::SystemTime::now(),
                            rand::RngExt::random(&mut super::rng()),
                        ),
                        socket,
                    });
                }
                Some(CallEvent::BridgeEnded) => {
                    tracing::info!("the operator's leg ended; ending the call");
                    commands.send((call, CallCommand::Hangup)).await?;
                }
                Some(CallEvent::Ended { why }) => {
                    tracing::info!(why, "call over");
                    ended = true;
                }
                None => ended = true,
            },
        }
        while let Some(out) = leg.poll() {
            match out {
                MediaOut::Send { bytes, dest } => {
                    if !crate::rtp::rtcp::is_rtcp(&bytes) {
                        let now = Instant::now();
                        if let Some(last) = last_rtp.replace(now) {
                            spacing.record(now - last);
                        }
                    }
                    if let Err(e) = socket.send_to(&bytes, dest).await {
                        tracing::debug!(%dest, error = %e, "RTP send");
                    }
                }
                MediaOut::Up(msg) => {
                    if let up::Msg::Dtmf(_) = &msg {
                        stats.digits.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(r) = &mut relay {
                        r.relay_from_caller(msg);
                    } else if let Some(tx) = &up_tx {
                        if tx.try_send(pb::Up { msg: Some(msg) }).is_err() {
                            dropped_up += 1;
                        }
                    }
                }
                MediaOut::Transfer(target) => {
                    // A configured operator URI overrides the flow's target.
                    let target = operator.clone().unwrap_or(target);
                    transfer_to = Some(target.clone());
                    transfer_deadline = Some(tokio::time::Instant::now() + TRANSFER_TIMEOUT);
                    commands.send((call, CallCommand::Transfer(target))).await?;
                }
                MediaOut::Hangup(reason) => {
                    tracing::info!(reason, "hanging up");
                    commands.send((call, CallCommand::Hangup)).await?;
                }
            }
        }
        if let Some(r) = &mut relay {
            while let Some(out) = r.leg.poll() {
                match out {
                    MediaOut::Send { bytes, dest } => {
                        if let Err(e) = r.socket.send_to(&bytes, dest).await {
                            tracing::debug!(%dest, error = %e, "operator RTP send");
                        }
                    }
                    MediaOut::Up(up::Msg::Audio(audio)) => leg.on_down(
                        Instant::now(),
                        pb::Down {
                            msg: Some(pb::down::Msg::Audio(audio)),
                        },
                    ),
                    // The operator's keys, marks and the like are not for the caller.
                    _ => {}
                }
            }
        }
        if ended {
            if let Some(tx) = &up_tx {
                let _ = tx.try_send(pb::Up {
                    msg: Some(up::Msg::Hangup(pb::Hangup {
                        reason: "caller hung up".to_owned(),
                    })),
                });
            }
            break;
        }
    }
    if let Ok(mut all) = stats.spacing.lock() {
        all.merge(&spacing);
    }
    let stats_line = leg.stats();
    stats
        .rtp_received
        .fetch_add(stats_line.received, Ordering::Relaxed);
    stats.rtp_lost.fetch_add(stats_line.lost, Ordering::Relaxed);
    stats.rtp_late.fetch_add(stats_line.late, Ordering::Relaxed);
    stats.rtp_sent.fetch_add(stats_line.sent, Ordering::Relaxed);
    tracing::info!(
        received = stats_line.received,
        lost = stats_line.lost,
        concealed = stats_line.concealed,
        late = stats_line.late,
        jitter_ms = stats_line.jitter_ms,
        sent = stats_line.sent,
        dropped_up,
        "media of the call"
    );
    Ok(())
}
