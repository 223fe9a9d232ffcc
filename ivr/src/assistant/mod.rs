//! The assistant: the conversation side of every call, reachable over `MediaGateway.Converse`.
//!
//! Per stream (one call): the caller's audio is resampled to 16 kHz and goes through the
//! listener (VAD, endpointer, barge-in); each utterance goes to Whisper with the dialog
//! state's hints (and its phrases as a decoding grammar where the state is a menu); the text
//! is matched by the dialog engine, whose prompts are verbalized, synthesized (cached) and
//! sent back as audio tagged with marks. Keys go straight to the engine. A pause in the
//! caller's speech starts a speculative transcription, kept if the pause becomes the end of
//! the turn and dropped if they go on; when its words already complete the menu, the turn
//! ends at once instead of waiting out the end silence. Complaints are recorded to WAV
//! (`<data>/recordings/`) and transcribed at background priority, behind menu answers.
//!
//! Every spoken turn is timed from the end of the caller's speech to the endpoint decision,
//! the transcript, the dialog decision and the first answer audio: a log line, an `Event`
//! to the gateway and the `ivr_turn_seconds` histogram ([`metrics`]).

mod call;
mod hear;
pub mod metrics;
mod voice;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use dialogs::backend::Backend;
use dialogs::directory::Directory;
use dialogs::flow::Flow;
use grammars::Lang;
use ivr_proto::v1::media_gateway_server::MediaGateway;
use ivr_proto::v1::{Down, Up};
use speech::stt::Transcriber;
use speech::tts::Speaker;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub use call::CALL_START_TIMEOUT;
pub use metrics::Metrics;

/// The recognisers per language; a language without one hears nothing (keypad only).
#[derive(Clone, Default)]
pub struct Recognisers {
    /// For English.
    pub en: Option<Arc<dyn Transcriber>>,
    /// For Mongolian (a multilingual model).
    pub mn: Option<Arc<dyn Transcriber>>,
}

impl std::fmt::Debug for Recognisers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognisers")
            .field("en", &self.en.is_some())
            .field("mn", &self.mn.is_some())
            .finish()
    }
}

impl Recognisers {
    fn for_lang(&self, lang: Lang) -> Option<Arc<dyn Transcriber>> {
        match lang {
            Lang::En => self.en.clone(),
            Lang::Mn => self.mn.clone(),
        }
    }
}

/// What every call shares.
pub struct Shared {
    /// The flow new calls run (a reload swaps it; calls in progress keep theirs).
    pub flow: Arc<Flow>,
    /// The service directory.
    pub directory: Arc<Directory>,
    /// Cases, profiles, sessions, call-backs.
    pub backend: Backend,
    /// The voices (with the render cache).
    pub speaker: Arc<Speaker>,
    /// Whisper per language.
    pub stt: Recognisers,
    /// Metrics.
    pub metrics: Metrics,
    /// Where complaint recordings go.
    pub recordings: PathBuf,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("flow", &self.flow.origin)
            .field("stt", &self.stt)
            .field("recordings", &self.recordings)
            .finish_non_exhaustive()
    }
}

/// The `MediaGateway` service: one task per `Converse` stream.
#[derive(Debug, Clone)]
pub struct Assistant {
    shared: Arc<Shared>,
}

impl Assistant {
    /// An assistant over these shared parts.
    pub fn new(shared: Shared) -> Assistant {
        Assistant {
            shared: Arc::new(shared),
        }
    }

    /// The metrics, for the HTTP endpoint.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The shared parts.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

type DownStream = Pin<Box<dyn Stream<Item = Result<Down, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl MediaGateway for Assistant {
    type ConverseStream = DownStream;

    async fn converse(
        &self,
        request: Request<Streaming<Up>>,
    ) -> Result<Response<Self::ConverseStream>, Status> {
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(256);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(call::run(shared, inbound, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
