//! One call over a `Converse` stream: the listener, the recogniser, the dialog engine and the
//! speaker, driven by the stream's messages and the engine's timers.
//!
//! The task owns everything of its call; shared parts (flow, directory, stores, models,
//! voices, metrics) come in an [`Shared`]. Blocking work (Whisper, TTS, SQLite) runs on
//! tokio's blocking pool and comes back through channels, so the call's loop never blocks and
//! one call cannot stall another. Audio is sent ahead of real time in the order the engine
//! asked for it; `Transfer` and `Hangup` follow the audio before them.

// A call driver reads the clock: it turns real time into the engine's inputs.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialogs::engine::{Engine, Hypothesis, Input, Listen, Output, Play, Record};
use dialogs::profiles::CallerId;
use grammars::Lang;
use ivr_proto::v1::{down, event, up, Down, Up};
use speech::audio::resample::Resampler;
use speech::listen::{EndpointConfig, EndpointEvent, ListenEvent, Listener};
use speech::stt::Transcript;
use speech::{Pcm, SampleRate};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tracing::Instrument;

use super::{hear, voice, Shared};

/// How long a stream may take to send its `CallStart`.
pub const CALL_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Audio is sent in messages of at most this much.
const AUDIO_CHUNK: Duration = Duration::from_millis(500);
/// The listener's own no-input time-out: the engine's timers decide no-input, this is only a
/// backstop far beyond them.
const LISTENER_BACKSTOP: Duration = Duration::from_secs(600);

type DownTx = mpsc::Sender<Result<Down, Status>>;

fn now() -> Instant {
    Instant::now()
}

fn event(kind: event::Kind) -> Down {
    Down {
        msg: Some(down::Msg::Event(ivr_proto::v1::Event { kind: Some(kind) })),
    }
}

/// A transcription finished.
struct SttDone {
    id: u64,
    result: Result<Transcript, String>,
}

/// A prompt rendered (or not).
struct Rendered {
    order: u64,
    generation: u64,
    play: Play,
    audio: Result<Pcm, String>,
}

/// Something to send in order: a prompt's audio (once rendered) or a control message.
enum Queued {
    Audio { play: Play, generation: u64 },
    Ready { audio: Option<(Play, Pcm)> },
    Control(Down),
}

/// When the stages of a spoken turn happened.
#[derive(Debug, Clone, Copy)]
struct TurnTimes {
    speech_end: Instant,
    endpoint: Instant,
    transcript: Option<Instant>,
    decision: Option<Instant>,
    speculative: bool,
}

/// A transcription started at a pause, kept if the pause becomes the end of the turn.
struct Speculative {
    id: u64,
    result: Option<Transcript>,
}

/// Why a call ended early with a status for the gateway.
pub type CallResult = Result<(), Status>;

pub(super) struct Call {
    shared: Arc<Shared>,
    tx: DownTx,
    call_id: String,
    caller: Option<CallerId>,
    rate: SampleRate,
    engine: Engine,
    ear: Listener,
    resampler: Option<Resampler>,
    last_seq: Option<u64>,
    engine_timer: Option<Instant>,
    listen: Option<Listen>,
    recording: Option<Record>,
    deferred_listen: Option<EndpointConfig>,
    /// Marks queued for playout and not yet reported heard, with their barge-in flag.
    playing: VecDeque<(u64, bool)>,
    prompt_active: bool,
    queue: BTreeMap<u64, Queued>,
    next_order: u64,
    next_to_send: u64,
    generation: u64,
    render_tx: mpsc::UnboundedSender<Rendered>,
    stt_tx: mpsc::UnboundedSender<SttDone>,
    next_stt: u64,
    speculative: Option<Speculative>,
    /// The transcription the current turn waits for, and whether it is a recording.
    awaiting: Option<(u64, bool, Option<PathBuf>)>,
    turn: Option<TurnTimes>,
    recordings: u32,
    ending: bool,
}

pub(super) async fn run(shared: Arc<Shared>, mut inbound: Streaming<Up>, tx: DownTx) {
    shared.metrics.calls.inc();
    shared.metrics.active_calls.inc();
    let span = tracing::info_span!(
        "call",
        id = tracing::field::Empty,
        caller = tracing::field::Empty
    );
    let result = run_inner(Arc::clone(&shared), &mut inbound, tx.clone())
        .instrument(span)
        .await;
    shared.metrics.active_calls.dec();
    if let Err(status) = result {
        tracing::warn!(code = ?status.code(), message = status.message(), "call ended with an error");
        shared
            .metrics
            .stream_errors
            .with_label_values(&[&format!("{:?}", status.code())])
            .inc();
        let _ = tx.send(Err(status)).await;
    }
}

async fn run_inner(shared: Arc<Shared>, inbound: &mut Streaming<Up>, tx: DownTx) -> CallResult {
    let first = match tokio::time::timeout(CALL_START_TIMEOUT, inbound.message()).await {
        Err(_) => {
            return Err(Status::deadline_exceeded(format!(
                "no CallStart within {} s of opening the stream",
                CALL_START_TIMEOUT.as_secs()
            )))
        }
        Ok(Err(status)) => return Err(status),
        Ok(Ok(None)) => return Ok(()),
        Ok(Ok(Some(up))) => up,
    };
    let Some(up::Msg::Start(start)) = first.msg else {
        return Err(Status::invalid_argument(
            "the first message of a Converse stream must be CallStart",
        ));
    };
    let hz = start.format.as_ref().map_or(0, |f| f.sample_rate_hz);
    if ![8000, 16000, 48000].contains(&hz) {
        return Err(Status::invalid_argument(format!(
            "audio format: sample rate {hz} Hz is not supported (8000, 16000 or 48000)"
        )));
    }
    let rate = SampleRate::new(hz).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let locale = match start.locale_hint.trim() {
        "" => None,
        tag => Some(Lang::from_tag(tag).ok_or_else(|| {
            Status::invalid_argument(format!("locale_hint must be mn, en or empty, not {tag:?}"))
        })?),
    };
    let caller = match start.caller.trim() {
        "" => None,
        raw => CallerId::parse(raw).ok(),
    };
    let call_id: String = start
        .call_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(64)
        .collect();
    let call_id = if call_id.is_empty() {
        format!("call{}", shared.metrics.calls.get())
    } else {
        call_id
    };
    let span = tracing::Span::current();
    span.record("id", call_id.as_str());
    if let Some(c) = &caller {
        // CallerId displays redacted.
        span.record("caller", tracing::field::display(c));
    }
    tracing::info!(rate = hz, channel = start.channel, "call started");

    let ear = Listener::new(Default::default(), Default::default())
        .map_err(|e| Status::internal(format!("listener: {e}")))?;
    let resampler = if hz == 16000 {
        None
    } else {
        Some(
            Resampler::new(rate, SampleRate::HZ_16000)
                .map_err(|e| Status::internal(format!("resampler: {e}")))?,
        )
    };
    let (render_tx, mut render_rx) = mpsc::unbounded_channel();
    let (stt_tx, mut stt_rx) = mpsc::unbounded_channel();
    let mut call = Call {
        engine: Engine::new(Arc::clone(&shared.flow), Arc::clone(&shared.directory)),
        shared,
        tx,
        call_id,
        caller,
        rate,
        ear,
        resampler,
        last_seq: None,
        engine_timer: None,
        listen: None,
        recording: None,
        deferred_listen: None,
        playing: VecDeque::new(),
        prompt_active: false,
        queue: BTreeMap::new(),
        next_order: 0,
        next_to_send: 0,
        generation: 0,
        render_tx,
        stt_tx,
        next_stt: 0,
        speculative: None,
        awaiting: None,
        turn: None,
        recordings: 0,
        ending: false,
    };

    let wall = OffsetDateTime::now_utc();
    let backend = call.shared.backend.clone();
    let who = call.caller.clone();
    let (profile, session) =
        tokio::task::spawn_blocking(move || backend.call_started(who.as_ref(), wall))
            .await
            .map_err(|e| Status::internal(format!("profile lookup: {e}")))?;
    call.feed(Input::CallStarted {
        caller: call.caller.as_ref().map(|c| c.as_str().to_string()),
        locale,
        profile,
        session,
        wall,
    })
    .await?;

    loop {
        if call.ending && call.queue.is_empty() {
            break;
        }
        let deadline = call.deadline();
        tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(up)) => {
                    if !call.on_up(up).await? {
                        break;
                    }
                }
                Ok(None) | Err(_) => {
                    // The gateway closed the stream or vanished: the caller is gone.
                    call.feed(Input::Hangup).await?;
                    tracing::info!("the caller's side closed the stream");
                    return Ok(());
                }
            },
            Some(done) = stt_rx.recv() => call.on_stt(done).await?,
            Some(rendered) = render_rx.recv() => call.on_rendered(rendered).await?,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(now).into()), if deadline.is_some() => {
                call.on_deadline().await?;
            }
        }
    }
    tracing::info!("call ended");
    Ok(())
}

impl Call {
    fn deadline(&self) -> Option<Instant> {
        match (self.engine_timer, self.ear.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn send(&mut self, down: Down) -> CallResult {
        // A gateway that stopped reading is a caller who hung up; the loop notices the closed
        // stream next.
        let _ = self.tx.send(Ok(down)).await;
        Ok(())
    }

    /// Handles one message from the gateway; false ends the call.
    async fn on_up(&mut self, up: Up) -> Result<bool, Status> {
        match up.msg {
            Some(up::Msg::Start(_)) => Err(Status::invalid_argument(
                "CallStart may only be the first message of a stream",
            )),
            Some(up::Msg::Audio(audio)) => {
                if let Some(last) = self.last_seq {
                    if audio.seq <= last {
                        return Err(Status::invalid_argument(format!(
                            "audio frames out of order: seq {} after {last}",
                            audio.seq
                        )));
                    }
                }
                self.last_seq = Some(audio.seq);
                if audio.pcm16.len() % 2 != 0 {
                    return Err(Status::invalid_argument(
                        "audio: pcm16 must hold whole 16-bit samples",
                    ));
                }
                let samples: Vec<i16> = audio
                    .pcm16
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                if samples.len() > self.rate.samples_in(Duration::from_millis(200)) {
                    return Err(Status::invalid_argument(format!(
                        "audio: {} samples in one message; send 10 to 20 ms frames",
                        samples.len()
                    )));
                }
                self.on_audio(Pcm::from_i16(self.rate, &samples)).await?;
                Ok(true)
            }
            Some(up::Msg::Dtmf(dtmf)) => {
                if let Some(key) = dtmf.key.chars().next() {
                    self.on_key(key).await?;
                }
                Ok(true)
            }
            Some(up::Msg::Playout(mark)) => {
                self.on_playout(mark.mark, mark.interrupted).await?;
                Ok(true)
            }
            Some(up::Msg::Hangup(h)) => {
                tracing::info!(reason = %h.reason, "the caller hung up");
                self.feed(Input::Hangup).await?;
                Ok(false)
            }
            None => Err(Status::invalid_argument("an Up message with nothing in it")),
        }
    }

    async fn on_audio(&mut self, pcm: Pcm) -> CallResult {
        let t = now();
        let audio16 = match &mut self.resampler {
            Some(r) => r
                .process(&pcm)
                .map_err(|e| Status::internal(format!("resampling: {e}")))?,
            None => pcm,
        };
        if audio16.is_empty() {
            return Ok(());
        }
        let start = t.checked_sub(audio16.duration()).unwrap_or(t);
        if let Err(e) = self.ear.handle_audio(start, &audio16) {
            tracing::warn!(error = %e, "listener refused audio");
        }
        self.drain_ear().await
    }

    async fn on_key(&mut self, key: char) -> CallResult {
        if let Some(rec) = &self.recording {
            if key == rec.end_key {
                self.ear.finish(now());
                return self.drain_ear().await;
            }
        }
        // Keys interrupt a prompt that may be interrupted (not the `#` after a complete
        // number, which the engine ignores).
        if !self.engine.ignores_key(key)
            && self.playing.iter().all(|(_, b)| *b)
            && !self.playing.is_empty()
        {
            self.barge_in().await?;
        }
        self.discard_turn();
        self.feed(Input::Keyed(key)).await
    }

    async fn on_playout(&mut self, mark: u64, interrupted: bool) -> CallResult {
        let mut heard = Vec::new();
        while let Some(&(m, _)) = self.playing.front() {
            if m > mark {
                break;
            }
            self.playing.pop_front();
            heard.push(m);
        }
        if !interrupted {
            for m in heard {
                self.feed(Input::PlaybackFinished(m)).await?;
            }
        }
        self.after_playout();
        Ok(())
    }

    /// Once nothing is left to play: the prompt is over for the listener, and a turn deferred
    /// behind a prompt that may not be interrupted opens.
    fn after_playout(&mut self) {
        if !self.playing.is_empty() {
            return;
        }
        let t = now();
        if self.prompt_active {
            self.prompt_active = false;
            self.ear.prompt_playing(t, false);
        }
        if let Some(cfg) = self.deferred_listen.take() {
            if let Err(e) = self.ear.listen(t, cfg) {
                tracing::warn!(error = %e, "cannot open a listening turn");
            }
        }
    }

    async fn on_deadline(&mut self) -> CallResult {
        let t = now();
        if self.engine_timer.is_some_and(|at| at <= t) {
            self.engine_timer = None;
            self.feed(Input::Timeout).await?;
        }
        if self.ear.poll_timeout().is_some_and(|at| at <= t) {
            self.ear.handle_timeout(t);
            self.drain_ear().await?;
        }
        Ok(())
    }

    async fn barge_in(&mut self) -> CallResult {
        let Some(&(mark, _)) = self.playing.front() else {
            return Ok(());
        };
        self.shared.metrics.barge_ins.inc();
        self.generation += 1;
        self.playing.clear();
        // Prompts not yet sent are dropped; transfers and hang-ups stay in order.
        self.queue.retain(|_, q| matches!(q, Queued::Control(_)));
        self.prompt_active = false;
        self.send(Down {
            msg: Some(down::Msg::Clear(ivr_proto::v1::ClearPlayout { mark })),
        })
        .await?;
        self.flush_queue().await
    }

    async fn drain_ear(&mut self) -> CallResult {
        while let Some(ev) = self.ear.poll_event() {
            match ev {
                ListenEvent::BargeIn(_) => {
                    if self.playing.iter().all(|(_, b)| *b) {
                        self.barge_in().await?;
                    }
                    self.feed(Input::SpeechStarted).await?;
                }
                ListenEvent::Endpoint(EndpointEvent::SpeechStarted { .. }) => {
                    self.feed(Input::SpeechStarted).await?;
                }
                ListenEvent::Endpoint(EndpointEvent::Paused { audio, .. })
                    if self.recording.is_none() && self.speculative.is_none() =>
                {
                    let id = self.transcribe(audio, false, "speculative");
                    self.speculative = Some(Speculative { id, result: None });
                }
                ListenEvent::Endpoint(EndpointEvent::Resumed { .. })
                    if self.speculative.take().is_some() =>
                {
                    self.shared
                        .metrics
                        .speculative
                        .with_label_values(&["discarded"])
                        .inc();
                }
                ListenEvent::Endpoint(EndpointEvent::Utterance(u)) => {
                    let t = now();
                    self.turn = Some(TurnTimes {
                        speech_end: u.speech_ended.min(t),
                        endpoint: t,
                        transcript: None,
                        decision: None,
                        speculative: false,
                    });
                    if self.recording.is_some() {
                        let path = self.write_recording(&u.audio).await;
                        let id = self.transcribe(u.audio, true, "recording");
                        self.awaiting = Some((id, true, path));
                    } else if let Some(spec) = self.speculative.take() {
                        self.shared
                            .metrics
                            .speculative
                            .with_label_values(&["used"])
                            .inc();
                        if let Some(turn) = &mut self.turn {
                            turn.speculative = true;
                        }
                        match spec.result {
                            Some(t) => self.deliver(Ok(t), false, None).await?,
                            None => self.awaiting = Some((spec.id, false, None)),
                        }
                    } else {
                        let id = self.transcribe(u.audio, false, "turn");
                        self.awaiting = Some((id, false, None));
                    }
                }
                ListenEvent::Endpoint(EndpointEvent::NoInput { .. }) => {
                    self.feed(Input::NothingHeard).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Forgets a turn in progress (the caller answered with keys instead).
    fn discard_turn(&mut self) {
        self.speculative = None;
        self.awaiting = None;
        self.turn = None;
    }

    async fn write_recording(&mut self, audio: &Pcm) -> Option<PathBuf> {
        self.recordings += 1;
        let dir = self.shared.recordings.clone();
        let path = dir.join(format!("{}-{}.wav", self.call_id, self.recordings));
        let audio = audio.clone();
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            speech::audio::wav::write(&target, &audio).map_err(|e| e.to_string())
        })
        .await;
        match written {
            Ok(Ok(())) => Some(path),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot write the recording");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "recording task failed");
                None
            }
        }
    }

    /// Starts a transcription on the blocking pool; its result comes back as [`SttDone`].
    fn transcribe(&mut self, audio: Pcm, recording: bool, kind: &str) -> u64 {
        self.next_stt += 1;
        let id = self.next_stt;
        self.shared
            .metrics
            .transcriptions
            .with_label_values(&[kind])
            .inc();
        let lang = self
            .listen
            .as_ref()
            .map_or(self.engine.locale(), |l| l.locale);
        let request = hear::request(
            &self.shared.flow,
            self.listen.as_ref(),
            recording,
            audio.duration(),
        );
        let stt = self.shared.stt.for_lang(lang);
        let tx = self.stt_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = match stt {
                Some(stt) => stt.transcribe(&audio, &request).map_err(|e| e.to_string()),
                None => Err(format!("no speech model for {}", lang.tag())),
            };
            let _ = tx.send(SttDone { id, result });
        });
        id
    }

    async fn on_stt(&mut self, done: SttDone) -> CallResult {
        if let Some(spec) = &mut self.speculative {
            if spec.id == done.id {
                // The caller is still in their pause: keep it, and end the turn now if the
                // words already complete the menu.
                if let Ok(t) = &done.result {
                    spec.result = Some(t.clone());
                    let complete = t.is_heard()
                        && self.listen.as_ref().is_some_and(|l| {
                            hear::completes_menu(&self.shared.flow, l, &t.text, t.confidence)
                        });
                    if complete {
                        self.shared.metrics.early_ends.inc();
                        self.ear.finish(now());
                        return self.drain_ear().await;
                    }
                } else {
                    self.speculative = None;
                }
                return Ok(());
            }
        }
        match self.awaiting {
            Some((id, recording, ref path)) if id == done.id => {
                let path = path.clone();
                self.awaiting = None;
                self.deliver(done.result, recording, path).await
            }
            _ => Ok(()),
        }
    }

    async fn deliver(
        &mut self,
        result: Result<Transcript, String>,
        recording: bool,
        path: Option<PathBuf>,
    ) -> CallResult {
        if let Some(turn) = &mut self.turn {
            turn.transcript = Some(now());
        }
        let transcript = match result {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "transcription failed");
                None
            }
        };
        let input = if recording {
            Input::Recorded {
                transcript: transcript.filter(|t| t.is_heard()).map(|t| t.text),
                recording: path,
            }
        } else {
            match transcript.filter(|t| t.is_heard()) {
                Some(t) => Input::Heard(vec![Hypothesis::new(t.text, t.confidence)]),
                None => Input::NothingHeard,
            }
        };
        self.feed(input).await?;
        if let Some(turn) = &mut self.turn {
            turn.decision = Some(now());
        }
        Ok(())
    }

    /// Feeds an input to the engine and carries out everything that follows.
    async fn feed(&mut self, first: Input) -> CallResult {
        let mut inputs = VecDeque::from([first]);
        while let Some(input) = inputs.pop_front() {
            let outputs = self.engine.handle(now(), input);
            for output in outputs {
                if let Some(next) = self.effect(output).await? {
                    inputs.push_back(next);
                }
            }
        }
        self.flush_queue().await
    }

    async fn effect(&mut self, output: Output) -> Result<Option<Input>, Status> {
        match output {
            Output::Play(play) => {
                self.enqueue_play(play);
                Ok(None)
            }
            Output::Listen(listen) => {
                self.start_listen(listen).await?;
                Ok(None)
            }
            Output::Record(record) => {
                self.start_record(record);
                Ok(None)
            }
            Output::Timer(at) => {
                self.engine_timer = Some(at);
                Ok(None)
            }
            Output::CancelTimer => {
                self.engine_timer = None;
                Ok(None)
            }
            Output::Transfer { target } => {
                self.ending = true;
                self.enqueue(Queued::Control(Down {
                    msg: Some(down::Msg::Transfer(ivr_proto::v1::Transfer { target })),
                }));
                Ok(None)
            }
            Output::Hangup { reason } => {
                self.ending = true;
                self.enqueue(Queued::Control(Down {
                    msg: Some(down::Msg::Hangup(ivr_proto::v1::Hangup { reason })),
                }));
                Ok(None)
            }
            Output::Understood(u) => {
                self.send(event(event::Kind::Heard(ivr_proto::v1::Heard {
                    text: if u.input.chars().all(|c| "0123456789*#".contains(c)) {
                        String::new()
                    } else {
                        u.input.clone()
                    },
                    keys: if !u.input.is_empty()
                        && u.input.chars().all(|c| "0123456789*#".contains(c))
                    {
                        u.input.clone()
                    } else {
                        String::new()
                    },
                    confidence: u.confidence,
                    meaning: u.value.unwrap_or_default(),
                    decision: u.decision.to_string(),
                    state: u.state,
                })))
                .await?;
                Ok(None)
            }
            storage => {
                if matches!(storage, Output::StoreCase(_)) {
                    self.shared.metrics.cases_filed.inc();
                }
                let backend = self.shared.backend.clone();
                let caller = self.caller.clone();
                let wall = OffsetDateTime::now_utc();
                tokio::task::spawn_blocking(move || {
                    backend.perform(caller.as_ref(), &storage, wall)
                })
                .await
                .map_err(|e| Status::internal(format!("storage task: {e}")))
            }
        }
    }

    fn enqueue(&mut self, item: Queued) {
        self.queue.insert(self.next_order, item);
        self.next_order += 1;
    }

    fn enqueue_play(&mut self, play: Play) {
        let t = now();
        self.playing.push_back((play.mark, play.barge_in));
        if play.barge_in && !self.prompt_active {
            self.prompt_active = true;
            self.ear.prompt_playing(t, true);
        }
        let order = self.next_order;
        let generation = self.generation;
        let speaker = Arc::clone(&self.shared.speaker);
        let tx = self.render_tx.clone();
        let rate = self.rate;
        let to_render = play.clone();
        tokio::task::spawn_blocking(move || {
            let audio = voice::render(&speaker, &to_render, rate).map_err(|e| e.to_string());
            let _ = tx.send(Rendered {
                order,
                generation,
                play: to_render,
                audio,
            });
        });
        self.enqueue(Queued::Audio { play, generation });
    }

    async fn on_rendered(&mut self, r: Rendered) -> CallResult {
        if r.generation != self.generation {
            return Ok(());
        }
        match self.queue.get(&r.order) {
            Some(Queued::Audio { generation, .. }) if *generation == r.generation => {}
            _ => return Ok(()),
        }
        let audio = match r.audio {
            Ok(pcm) if !pcm.is_empty() => Some((r.play, pcm)),
            Ok(_) => None,
            Err(e) => {
                tracing::error!(error = %e, prompt = ?r.play.prompt, "cannot speak a prompt");
                None
            }
        };
        let mark = self.queue.get(&r.order).and_then(|q| match q {
            Queued::Audio { play, .. } => Some(play.mark),
            _ => None,
        });
        self.queue.insert(
            r.order,
            Queued::Ready {
                audio: audio.clone(),
            },
        );
        if audio.is_none() {
            // Nothing to play: the mark is over at once.
            if let Some(mark) = mark {
                self.playing.retain(|(m, _)| *m != mark);
                self.feed(Input::PlaybackFinished(mark)).await?;
                self.after_playout();
            }
        }
        self.flush_queue().await
    }

    /// Sends what is ready, in order, stopping at the first prompt still being rendered.
    async fn flush_queue(&mut self) -> CallResult {
        loop {
            let Some((&order, item)) = self.queue.iter().next() else {
                return Ok(());
            };
            match item {
                Queued::Audio { .. } => return Ok(()),
                Queued::Ready { .. } | Queued::Control(_) => {}
            }
            let Some(item) = self.queue.remove(&order) else {
                return Ok(());
            };
            self.next_to_send = order + 1;
            match item {
                Queued::Ready {
                    audio: Some((play, pcm)),
                } => self.send_audio(&play, &pcm).await?,
                Queued::Ready { audio: None } => {}
                Queued::Control(down) => self.send(down).await?,
                Queued::Audio { .. } => {}
            }
        }
    }

    async fn send_audio(&mut self, play: &Play, pcm: &Pcm) -> CallResult {
        self.send(event(event::Kind::Prompt(ivr_proto::v1::Prompt {
            mark: play.mark,
            prompt_id: play.prompt.clone().unwrap_or_default(),
            text: play.text(),
            locale: play.locale.tag().to_string(),
        })))
        .await?;
        let chunk = self.rate.samples_in(AUDIO_CHUNK).max(1);
        for (i, samples) in pcm.samples().chunks(chunk).enumerate() {
            let piece = Pcm::new(self.rate, samples.to_vec());
            self.send(Down {
                msg: Some(down::Msg::Audio(ivr_proto::v1::Audio {
                    pcm16: voice::pcm16_bytes(&piece),
                    seq: i as u64,
                    mark: play.mark,
                })),
            })
            .await?;
            if i == 0 {
                self.first_audio_sent().await?;
            }
        }
        Ok(())
    }

    /// The first answer audio after a spoken turn: the turn's latency is complete.
    async fn first_audio_sent(&mut self) -> CallResult {
        let Some(turn) = self.turn.take() else {
            return Ok(());
        };
        let (Some(transcript), Some(decision)) = (turn.transcript, turn.decision) else {
            // The answer to something else (a key): not a spoken turn's answer.
            self.turn = Some(turn);
            return Ok(());
        };
        let t = now();
        let since = |at: Instant| at.saturating_duration_since(turn.speech_end);
        let stages = [
            ("endpoint", since(turn.endpoint)),
            ("transcript", since(transcript)),
            ("decision", since(decision)),
            ("first_audio", since(t)),
        ];
        for (stage, d) in stages {
            self.shared
                .metrics
                .turn_seconds
                .with_label_values(&[stage])
                .observe(d.as_secs_f64());
        }
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        tracing::info!(
            endpoint_ms = ms(stages[0].1),
            transcript_ms = ms(stages[1].1),
            decision_ms = ms(stages[2].1),
            first_audio_ms = ms(stages[3].1),
            speculative = turn.speculative,
            "turn"
        );
        self.send(event(event::Kind::Latency(ivr_proto::v1::TurnLatency {
            endpoint_ms: ms(stages[0].1),
            transcript_ms: ms(stages[1].1),
            decision_ms: ms(stages[2].1),
            first_audio_ms: ms(stages[3].1),
            speculative: turn.speculative,
        })))
        .await
    }

    async fn start_listen(&mut self, listen: Listen) -> CallResult {
        self.recording = None;
        self.ear.cancel();
        self.discard_turn_keep_times();
        self.send(event(event::Kind::Listening(ivr_proto::v1::Listening {
            state: self.engine.state_name().to_string(),
            grammars: listen.grammars.clone(),
            voice: listen.modes.voice,
            dtmf: listen.modes.dtmf,
        })))
        .await?;
        let voice = listen.modes.voice;
        let mut cfg = EndpointConfig::menu();
        cfg.no_input_timeout = LISTENER_BACKSTOP;
        if listen.free_speech {
            cfg.end_silence = Duration::from_millis(1000);
            cfg.pause = Some(Duration::from_millis(500));
        }
        self.listen = Some(listen);
        if voice {
            self.open_turn(cfg);
        }
        Ok(())
    }

    fn start_record(&mut self, record: Record) {
        self.ear.cancel();
        let mut cfg = EndpointConfig::free_speech();
        cfg.no_input_timeout = self.shared.flow.settings.no_input + Duration::from_secs(2);
        cfg.end_silence = record.end_silence;
        cfg.max_utterance = record.max;
        cfg.pause = None;
        cfg.trailing_pad = cfg.trailing_pad.min(cfg.end_silence);
        self.listen = Some(Listen {
            modes: dialogs::flow::Modes::BOTH,
            grammars: Vec::new(),
            locale: record.locale,
            digits: None,
            free_speech: true,
            no_input: cfg.no_input_timeout,
        });
        self.recording = Some(record);
        self.open_turn(cfg);
    }

    /// Opens a listening turn now, or after prompts that may not be interrupted.
    fn open_turn(&mut self, cfg: EndpointConfig) {
        if self.playing.iter().any(|(_, b)| !*b) {
            self.deferred_listen = Some(cfg);
            return;
        }
        self.deferred_listen = None;
        if let Err(e) = self.ear.listen(now(), cfg) {
            tracing::warn!(error = %e, "cannot open a listening turn");
        }
    }

    /// A new turn begins: results of the old one no longer apply, but a turn whose answer
    /// is being spoken keeps its times until the first audio is out.
    fn discard_turn_keep_times(&mut self) {
        self.speculative = None;
        self.awaiting = None;
    }
}
