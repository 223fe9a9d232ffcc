//! The robot caller's call state: the script's progress, the playout buffer, the timeline.
//!
//! Sans-IO: it never reads the clock, sleeps or spawns. The driver ([`super::run_call`]) feeds
//! it a tick every [`FRAME`](super::prepare::FRAME) (`handle_tick`), every `Down` message
//! (`handle_down`), the end of the stream (`handle_stream_end`) and transcription results
//! (`handle_transcript`), each with `now`; after each input it drains `poll_output` (`Up`
//! messages to send, the up stream to close, audio to transcribe) and stops once `is_finished`.
//!
//! Each tick sends one frame (the current step's audio, or silence, as a gateway sends RTP
//! continuously) and plays one frame of the assistant's queued audio ([`Playout`]); a mark
//! whose last sample was in the frame is reported on the next tick, once that frame has had
//! its 20 ms on the line.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use ivr_proto::v1::{self as pb, down, event, up};
use speech::stt::word_error_rate;
use speech::{Pcm, SampleRate};

use super::prepare::{Action, PreparedStep, Tick, FRAME, KEY_TONE};
use super::report::{
    CallReport, Failure, PromptRecord, Recording, TimelineEntry, TimelineEvent, TurnLatency,
};

/// `wait-prompt` passes once no audio has arrived for this long and all of it has played
/// (the default over gRPC, where prompts arrive faster than they play).
pub const QUIET: Duration = Duration::from_millis(300);
/// The largest word error rate of Whisper's transcript of a prompt's audio against the
/// prompt's text (after `normalize_words`) for the audio to count as saying the text. Flite
/// through a telephone line and `tiny.en` mishear a word in ten or so; a wrong or silent
/// prompt scores near 100 %.
pub const MAX_AUDIO_WER: f64 = 0.4;
/// After the script's end the robot hangs up and waits this long for the stream to end.
const END_GRACE: Duration = Duration::from_secs(2);

/// What the driver must do.
#[derive(Debug)]
pub(crate) enum Output {
    /// Send this message.
    Send(pb::Up),
    /// Close the up stream: nothing more will be sent.
    Close,
    /// Transcribe this audio (call rate) and answer with `handle_transcript(id, ..)`.
    Transcribe { id: u64, audio: Pcm },
}

/// Settings of one call.
#[derive(Clone, Debug)]
pub(crate) struct CallerConfig {
    pub rate: SampleRate,
    pub timeout: Duration,
    /// Check matched prompts' audio with a transcriber.
    pub audio_check: bool,
    pub record: bool,
    /// How long the line must be quiet for `wait-prompt` to pass.
    pub quiet: Duration,
}

#[derive(Debug)]
enum State {
    NotStarted,
    Sending { next: usize },
    Waiting,
    Expect(ExpectState),
}

#[derive(Debug)]
enum ExpectState {
    Matching,
    AwaitPlayout { marks: Vec<u64>, since: Instant },
    AwaitTranscript { id: u64, marks: Vec<u64> },
    Checked(Result<(String, f64), Failure>),
}

enum Progress {
    Pending,
    Done,
    Failed(Failure),
}

/// How the assistant ended the call.
#[derive(Clone, Debug)]
enum Ended {
    Hangup(String),
    Transfer(String),
    Closed,
}

impl Ended {
    fn describe(&self) -> String {
        match self {
            Ended::Hangup(reason) if reason.is_empty() => "the assistant hung up".into(),
            Ended::Hangup(reason) => format!("the assistant hung up ({reason})"),
            Ended::Transfer(target) => format!("the assistant transferred the call to {target}"),
            Ended::Closed => "the assistant ended the stream without a Hangup".into(),
        }
    }
}

/// One robot call.
#[derive(Debug)]
pub(crate) struct Caller<'a> {
    steps: &'a [PreparedStep],
    config: CallerConfig,
    frame_len: usize,
    start: Instant,
    call_id: String,

    pc: usize,
    state: State,
    step_started: Instant,

    seq: u64,
    up_closed: bool,
    hangup_sent_at: Option<Instant>,
    stream_closed: bool,
    ended: Option<Ended>,
    finished: bool,

    playout: Playout,
    /// Marks whose last sample was in the frame played on the last tick.
    finishing: Vec<u64>,
    played: BTreeSet<u64>,
    cleared: BTreeSet<u64>,
    received: HashMap<u64, Vec<i16>>,
    last_audio_at: Option<Instant>,
    /// Since when the playout buffer has been empty (`None` while it plays).
    idle_since: Option<Instant>,
    /// Audio arrived since the caller's last say/play/key (or the start of the call).
    spoke_since_action: bool,

    prompts: Vec<PromptRecord>,
    expect_from: usize,
    next_transcript: u64,

    timeline: Vec<TimelineEntry>,
    turns: Vec<TurnLatency>,
    transfer: Option<String>,
    failure: Option<Failure>,
    recording: Option<Recording>,
    out: VecDeque<Output>,
}

impl<'a> Caller<'a> {
    /// A call that starts at `now` by sending `start`.
    pub fn new(
        steps: &'a [PreparedStep],
        config: CallerConfig,
        start: pb::CallStart,
        now: Instant,
    ) -> Self {
        let frame_len = config.rate.samples_in(FRAME);
        let recording = config.record.then(|| Recording {
            rate: config.rate,
            caller: Vec::new(),
            assistant: Vec::new(),
        });
        let mut out = VecDeque::new();
        let call_id = start.call_id.clone();
        out.push_back(Output::Send(pb::Up {
            msg: Some(up::Msg::Start(start)),
        }));
        Caller {
            steps,
            config,
            frame_len,
            start: now,
            call_id,
            pc: 0,
            state: State::NotStarted,
            step_started: now,
            seq: 0,
            up_closed: false,
            hangup_sent_at: None,
            stream_closed: false,
            ended: None,
            finished: false,
            playout: Playout::default(),
            finishing: Vec::new(),
            played: BTreeSet::new(),
            cleared: BTreeSet::new(),
            received: HashMap::new(),
            last_audio_at: None,
            idle_since: Some(now),
            spoke_since_action: false,
            prompts: Vec::new(),
            expect_from: 0,
            next_transcript: 0,
            timeline: Vec::new(),
            turns: Vec::new(),
            transfer: None,
            failure: None,
            recording,
            out,
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// True once the call is over for the robot: nothing more will be output.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// One frame time has passed: send a frame, play a frame.
    pub fn handle_tick(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        for mark in std::mem::take(&mut self.finishing) {
            if self.played.insert(mark) && !self.cleared.contains(&mark) {
                self.send(up::Msg::Playout(pb::PlayoutMark {
                    mark,
                    interrupted: false,
                }));
            }
        }
        self.advance(now);
        if self.finished {
            return;
        }
        let tick = self.next_tick();
        let mut sent = vec![0i16; self.frame_len];
        if !self.up_closed {
            match tick {
                Some(Tick::Audio(frame)) => sent.copy_from_slice(&frame[..self.frame_len]),
                Some(Tick::Key(key)) => self.send(up::Msg::Dtmf(pb::Dtmf {
                    key: key.to_string(),
                    duration_ms: KEY_TONE.as_millis() as u32,
                })),
                Some(Tick::Silence) | None => {}
            }
            let pcm16 = sent.iter().flat_map(|s| s.to_le_bytes()).collect();
            let seq = self.seq;
            self.seq += 1;
            self.send(up::Msg::Audio(pb::Audio {
                pcm16,
                seq,
                mark: 0,
            }));
        }
        let mut played = Vec::with_capacity(self.frame_len);
        self.finishing = self.playout.advance(self.frame_len, &mut played);
        if self.playout.is_empty() && self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
        if let Some(rec) = &mut self.recording {
            rec.caller.extend_from_slice(&sent);
            rec.assistant.extend_from_slice(&played);
        }
        self.advance(now);
    }

    /// A message from the assistant.
    pub fn handle_down(&mut self, now: Instant, down: pb::Down) {
        if self.finished {
            return;
        }
        match down.msg {
            Some(down::Msg::Audio(audio)) => {
                // Odd trailing bytes are not a whole sample; the rest is still audio.
                let samples: Vec<i16> = audio
                    .pcm16
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                if !self.cleared.contains(&audio.mark) {
                    self.playout.push(audio.mark, &samples);
                    self.last_audio_at = Some(now);
                    self.idle_since = None;
                    self.spoke_since_action = true;
                }
                self.received
                    .entry(audio.mark)
                    .or_default()
                    .extend_from_slice(&samples);
            }
            Some(down::Msg::Clear(clear)) => {
                let dropped = self.playout.clear();
                self.finishing.retain(|m| !dropped.contains(m));
                for &mark in &dropped {
                    self.cleared.insert(mark);
                    for p in self.prompts.iter_mut().filter(|p| p.mark == mark) {
                        p.interrupted = true;
                    }
                    self.send(up::Msg::Playout(pb::PlayoutMark {
                        mark,
                        interrupted: true,
                    }));
                }
                self.log(
                    now,
                    TimelineEvent::BargeIn {
                        mark: clear.mark,
                        dropped,
                    },
                );
            }
            Some(down::Msg::Transfer(t)) => {
                self.transfer = Some(t.target.clone());
                self.log(
                    now,
                    TimelineEvent::Transfer {
                        target: t.target.clone(),
                    },
                );
                self.end_by_assistant(Ended::Transfer(t.target));
            }
            Some(down::Msg::Hangup(h)) => {
                self.log(
                    now,
                    TimelineEvent::AssistantHangup {
                        reason: h.reason.clone(),
                    },
                );
                self.end_by_assistant(Ended::Hangup(h.reason));
            }
            Some(down::Msg::Event(e)) => match e.kind {
                Some(event::Kind::Heard(h)) => self.log(
                    now,
                    TimelineEvent::Heard {
                        text: h.text,
                        keys: h.keys,
                        meaning: h.meaning,
                        decision: h.decision,
                        confidence: h.confidence,
                    },
                ),
                Some(event::Kind::Prompt(p)) => {
                    self.log(
                        now,
                        TimelineEvent::Prompt {
                            mark: p.mark,
                            text: p.text.clone(),
                        },
                    );
                    self.prompts.push(PromptRecord {
                        at: now.saturating_duration_since(self.start),
                        mark: p.mark,
                        prompt_id: p.prompt_id,
                        text: p.text,
                        locale: p.locale,
                        interrupted: false,
                    });
                }
                Some(event::Kind::Latency(l)) => self.turns.push(TurnLatency {
                    endpoint_ms: l.endpoint_ms,
                    transcript_ms: l.transcript_ms,
                    decision_ms: l.decision_ms,
                    first_audio_ms: l.first_audio_ms,
                    speculative: l.speculative,
                }),
                Some(event::Kind::Listening(_)) | None => {}
            },
            None => {}
        }
        self.advance(now);
    }

    /// The assistant's stream ended: cleanly (`None`) or with an error status.
    pub fn handle_stream_end(&mut self, now: Instant, error: Option<String>) {
        self.stream_closed = true;
        if self.finished {
            return;
        }
        match error {
            Some(status) if self.hangup_sent_at.is_none() => {
                self.fail(
                    now,
                    Failure::Protocol(format!("the assistant failed the call: {status}")),
                );
                return;
            }
            Some(_) => {}
            None if self.ended.is_none() && self.hangup_sent_at.is_none() => {
                self.log(
                    now,
                    TimelineEvent::AssistantHangup {
                        reason: "the stream ended without a Hangup".into(),
                    },
                );
                self.end_by_assistant(Ended::Closed);
            }
            None => {}
        }
        self.advance(now);
    }

    /// What the transcriber heard in the audio of request `id` (or why it could not).
    pub fn handle_transcript(&mut self, now: Instant, id: u64, heard: Result<String, String>) {
        let (State::Expect(ExpectState::AwaitTranscript { id: want, marks }), Some(step)) =
            (&self.state, self.steps.get(self.pc))
        else {
            return;
        };
        if *want != id {
            return;
        }
        let reference = self.prompt_text(marks);
        let checked = match heard {
            Ok(heard) => {
                let wer = word_error_rate(&reference, &heard).rate();
                if wer <= MAX_AUDIO_WER {
                    Ok((heard, wer))
                } else {
                    Err(Failure::Expectation {
                        at: step.at.clone(),
                        message: format!(
                            "`{}`: the prompt text matched but its audio does not say it: \
                             Whisper heard {heard:?} for {reference:?} (word error rate {:.0} % \
                             > {:.0} %)",
                            step.command,
                            wer * 100.0,
                            MAX_AUDIO_WER * 100.0
                        ),
                    })
                }
            }
            Err(e) => Err(Failure::Robot(format!(
                "{}: transcribing the prompt audio: {e}",
                step.at
            ))),
        };
        self.state = State::Expect(ExpectState::Checked(checked));
        self.advance(now);
    }

    /// The report; `now` is the end of the call.
    pub fn into_report(self, now: Instant) -> CallReport {
        CallReport {
            call_id: self.call_id,
            timeline: self.timeline,
            turns: self.turns,
            prompts: self.prompts,
            transfer: self.transfer,
            failure: self.failure,
            recording: self.recording,
            duration: now.saturating_duration_since(self.start),
        }
    }

    /// Runs steps until one has to wait.
    fn advance(&mut self, now: Instant) {
        if self.failure.is_some() {
            self.wind_down(now, "script failed");
            return;
        }
        while !self.finished {
            let Some(step) = self.steps.get(self.pc) else {
                self.end_of_script(now);
                return;
            };
            if matches!(self.state, State::NotStarted) {
                self.start_step(now, step);
            }
            match self.progress(now, step) {
                Progress::Pending => return,
                Progress::Done => {
                    self.pc += 1;
                    self.state = State::NotStarted;
                }
                Progress::Failed(f) => {
                    self.fail(now, f);
                    return;
                }
            }
        }
    }

    fn start_step(&mut self, now: Instant, step: &PreparedStep) {
        self.step_started = now;
        self.state = match &step.action {
            Action::Send { said, .. } => {
                if self.ended.is_none() {
                    self.log(
                        now,
                        TimelineEvent::Caller {
                            command: step.command.clone(),
                            said: said.clone(),
                        },
                    );
                    if !matches!(said, super::report::Said::Nothing) {
                        self.spoke_since_action = false;
                    }
                }
                State::Sending { next: 0 }
            }
            Action::Expect(_) => State::Expect(ExpectState::Matching),
            Action::Hangup => {
                if self.ended.is_none() {
                    self.hang_up(now, "caller hung up");
                }
                State::Waiting
            }
            Action::WaitPrompt | Action::ExpectTransfer(_) => State::Waiting,
        };
    }

    fn progress(&mut self, now: Instant, step: &PreparedStep) -> Progress {
        let waited = now.saturating_duration_since(self.step_started);
        let timeout = self.config.timeout;
        let secs = timeout.as_secs_f64();
        match &step.action {
            Action::Send { ticks, .. } => {
                if let Some(ended) = &self.ended {
                    return Progress::Failed(Failure::EndedEarly {
                        at: step.at.clone(),
                        message: format!("{} before `{}`", ended.describe(), step.command),
                    });
                }
                match self.state {
                    State::Sending { next } if next < ticks.len() => Progress::Pending,
                    _ => Progress::Done,
                }
            }
            Action::WaitPrompt => {
                if self.ended.is_some() || self.stream_closed {
                    return Progress::Done;
                }
                let quiet = self.config.quiet;
                let quiet_since = |t: Option<Instant>| {
                    t.is_some_and(|t| now.saturating_duration_since(t) >= quiet)
                };
                if self.spoke_since_action
                    && quiet_since(self.last_audio_at)
                    && quiet_since(self.idle_since)
                {
                    Progress::Done
                } else if waited >= timeout {
                    let what = if self.spoke_since_action {
                        "did not stop speaking"
                    } else {
                        "did not speak"
                    };
                    Progress::Failed(Failure::Expectation {
                        at: step.at.clone(),
                        message: format!("wait-prompt: the assistant {what} within {secs} s"),
                    })
                } else {
                    Progress::Pending
                }
            }
            Action::Expect(re) => self.progress_expect(now, step, re),
            Action::ExpectTransfer(re) => {
                if let Some(target) = &self.transfer {
                    if re.as_ref().is_none_or(|re| re.is_match(target)) {
                        self.log(
                            now,
                            TimelineEvent::Met {
                                command: step.command.clone(),
                                audio_check: None,
                            },
                        );
                        Progress::Done
                    } else {
                        Progress::Failed(Failure::Expectation {
                            at: step.at.clone(),
                            message: format!(
                                "`{}`: the assistant transferred the call to {target}",
                                step.command
                            ),
                        })
                    }
                } else if let Some(ended) = &self.ended {
                    Progress::Failed(Failure::EndedEarly {
                        at: step.at.clone(),
                        message: format!(
                            "`{}`: {} without a transfer",
                            step.command,
                            ended.describe()
                        ),
                    })
                } else if waited >= timeout {
                    Progress::Failed(Failure::Expectation {
                        at: step.at.clone(),
                        message: format!("`{}`: no transfer within {secs} s", step.command),
                    })
                } else {
                    Progress::Pending
                }
            }
            Action::Hangup => {
                if self.stream_closed || self.ended.is_some() {
                    Progress::Done
                } else if waited >= timeout {
                    Progress::Failed(Failure::Protocol(format!(
                        "the assistant did not end the stream within {secs} s of the caller's \
                         Hangup"
                    )))
                } else {
                    Progress::Pending
                }
            }
        }
    }

    fn progress_expect(
        &mut self,
        now: Instant,
        step: &PreparedStep,
        re: &regex::Regex,
    ) -> Progress {
        let timeout = self.config.timeout;
        let State::Expect(state) = &mut self.state else {
            return Progress::Pending;
        };
        match state {
            ExpectState::Matching => {
                let pending = &self.prompts[self.expect_from..];
                let said = pending
                    .iter()
                    .map(|p| p.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                if re.is_match(&said) {
                    let check =
                        self.config.audio_check && !pending.iter().any(|p| p.locale == "mn");
                    let marks: Vec<u64> = pending
                        .iter()
                        .filter(|p| !p.interrupted)
                        .map(|p| p.mark)
                        .collect();
                    self.expect_from = self.prompts.len();
                    if !check || marks.is_empty() {
                        self.log(
                            now,
                            TimelineEvent::Met {
                                command: step.command.clone(),
                                audio_check: None,
                            },
                        );
                        return Progress::Done;
                    }
                    *state = ExpectState::AwaitPlayout { marks, since: now };
                    return self.progress_expect(now, step, re);
                }
                let heard = if said.is_empty() {
                    "said nothing since the previous expect".to_string()
                } else {
                    format!("said {said:?}")
                };
                let waited = now.saturating_duration_since(self.step_started);
                if let Some(ended) = &self.ended {
                    Progress::Failed(Failure::EndedEarly {
                        at: step.at.clone(),
                        message: format!("`{}`: {}; it {heard}", step.command, ended.describe()),
                    })
                } else if waited >= timeout {
                    Progress::Failed(Failure::Expectation {
                        at: step.at.clone(),
                        message: format!(
                            "`{}` not met within {} s: the assistant {heard}",
                            step.command,
                            timeout.as_secs_f64()
                        ),
                    })
                } else {
                    Progress::Pending
                }
            }
            ExpectState::AwaitPlayout { marks, since } => {
                let all_played = marks
                    .iter()
                    .all(|m| self.played.contains(m) || self.cleared.contains(m));
                let over = self.ended.is_some() || self.stream_closed;
                if !(all_played || over || now.saturating_duration_since(*since) >= timeout) {
                    return Progress::Pending;
                }
                // A prompt cut short by a barge-in cannot say all its text.
                marks.retain(|m| !self.cleared.contains(m));
                if marks.is_empty() {
                    self.log(
                        now,
                        TimelineEvent::Met {
                            command: step.command.clone(),
                            audio_check: None,
                        },
                    );
                    return Progress::Done;
                }
                let mut samples = Vec::new();
                for m in marks.iter() {
                    if let Some(audio) = self.received.get(m) {
                        samples.extend_from_slice(audio);
                    }
                }
                let id = self.next_transcript;
                self.next_transcript += 1;
                self.out.push_back(Output::Transcribe {
                    id,
                    audio: Pcm::from_i16(self.config.rate, &samples),
                });
                *state = ExpectState::AwaitTranscript {
                    id,
                    marks: std::mem::take(marks),
                };
                Progress::Pending
            }
            ExpectState::AwaitTranscript { .. } => Progress::Pending,
            ExpectState::Checked(result) => match result {
                Ok((heard, wer)) => {
                    let event = TimelineEvent::Met {
                        command: step.command.clone(),
                        audio_check: Some((heard.clone(), *wer)),
                    };
                    self.log(now, event);
                    Progress::Done
                }
                Err(f) => Progress::Failed(f.clone()),
            },
        }
    }

    fn end_of_script(&mut self, now: Instant) {
        self.wind_down(now, "end of script");
    }

    /// Ends the call: hangs up unless the assistant already ended it, then waits (up to
    /// [`END_GRACE`]) for the stream to end so that the Hangup is delivered.
    fn wind_down(&mut self, now: Instant, reason: &str) {
        if self.ended.is_some() || self.stream_closed {
            self.close();
            self.finished = true;
            return;
        }
        match self.hangup_sent_at {
            None => self.hang_up(now, reason),
            Some(at) if now.saturating_duration_since(at) >= END_GRACE => self.finished = true,
            Some(_) => {}
        }
    }

    /// The next frame of the current step, if it is sending.
    fn next_tick(&mut self) -> Option<Tick> {
        let step = self.steps.get(self.pc)?;
        let (Action::Send { ticks, .. }, State::Sending { next }) = (&step.action, &mut self.state)
        else {
            return None;
        };
        let tick = ticks.get(*next).cloned();
        *next += 1;
        tick
    }

    fn prompt_text(&self, marks: &[u64]) -> String {
        self.prompts
            .iter()
            .filter(|p| marks.contains(&p.mark))
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn hang_up(&mut self, now: Instant, reason: &str) {
        if self.hangup_sent_at.is_some() || self.up_closed {
            return;
        }
        self.send(up::Msg::Hangup(pb::Hangup {
            reason: reason.to_owned(),
        }));
        self.log(
            now,
            TimelineEvent::CallerHangup {
                reason: reason.to_owned(),
            },
        );
        self.hangup_sent_at = Some(now);
        self.close();
    }

    fn end_by_assistant(&mut self, how: Ended) {
        if self.ended.is_none() && self.hangup_sent_at.is_none() {
            self.ended = Some(how);
        }
        self.close();
    }

    fn fail(&mut self, now: Instant, failure: Failure) {
        self.log(
            now,
            TimelineEvent::Failed {
                reason: failure.to_string(),
            },
        );
        self.failure = Some(failure);
        self.wind_down(now, "script failed");
    }

    fn send(&mut self, msg: up::Msg) {
        if !self.up_closed {
            self.out.push_back(Output::Send(pb::Up { msg: Some(msg) }));
        }
    }

    fn close(&mut self) {
        if !self.up_closed {
            self.up_closed = true;
            self.out.push_back(Output::Close);
        }
    }

    fn log(&mut self, now: Instant, event: TimelineEvent) {
        self.timeline.push(TimelineEntry {
            at: now.saturating_duration_since(self.start),
            event,
        });
    }
}

/// The gateway's playout buffer: the assistant's audio queued per mark, played in order.
#[derive(Debug, Default)]
pub(crate) struct Playout {
    queue: VecDeque<(u64, VecDeque<i16>)>,
}

impl Playout {
    /// Queues audio of `mark`.
    pub fn push(&mut self, mark: u64, samples: &[i16]) {
        if samples.is_empty() {
            return;
        }
        match self.queue.back_mut() {
            Some((m, buf)) if *m == mark => buf.extend(samples),
            _ => self
                .queue
                .push_back((mark, samples.iter().copied().collect())),
        }
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Plays `n` samples into `out` (silence where nothing is queued); returns the marks whose
    /// last queued sample was among them.
    pub fn advance(&mut self, n: usize, out: &mut Vec<i16>) -> Vec<u64> {
        out.clear();
        let mut finished = Vec::new();
        while out.len() < n {
            let Some((mark, buf)) = self.queue.front_mut() else {
                break;
            };
            let take = (n - out.len()).min(buf.len());
            out.extend(buf.drain(..take));
            if buf.is_empty() {
                let mark = *mark;
                self.queue.pop_front();
                if !self.queue.iter().any(|(m, _)| *m == mark) {
                    finished.push(mark);
                }
            }
        }
        out.resize(n, 0);
        finished
    }

    /// Drops everything queued; returns the marks that lost audio, the playing one first.
    pub fn clear(&mut self) -> Vec<u64> {
        let mut marks: Vec<u64> = Vec::new();
        for (mark, _) in self.queue.drain(..) {
            if !marks.contains(&mark) {
                marks.push(mark);
            }
        }
        marks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playout_reports_a_mark_when_its_last_sample_plays() {
        let mut p = Playout::default();
        p.push(1, &[1; 250]);
        p.push(1, &[2; 50]);
        p.push(2, &[3; 100]);
        let mut out = Vec::new();
        assert_eq!(p.advance(160, &mut out), Vec::<u64>::new());
        assert_eq!(out, [1; 160]);
        assert_eq!(p.advance(160, &mut out), [1]);
        assert_eq!(&out[..90], &[1; 90]);
        assert_eq!(&out[90..140], &[2; 50]);
        assert_eq!(&out[140..], &[3; 20]);
        assert_eq!(p.advance(160, &mut out), [2]);
        assert_eq!(&out[..80], &[3; 80]);
        assert_eq!(&out[80..], &[0; 80]);
        assert!(p.is_empty());
    }

    #[test]
    fn playout_clear_drops_everything_and_names_the_marks() {
        let mut p = Playout::default();
        p.push(4, &[1; 100]);
        p.push(5, &[1; 100]);
        let mut out = Vec::new();
        p.advance(40, &mut out);
        assert_eq!(p.clear(), [4, 5]);
        assert!(p.is_empty());
        assert_eq!(p.advance(40, &mut out), Vec::<u64>::new());
        assert_eq!(out, [0; 40]);
    }
}
