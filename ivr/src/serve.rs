//! `ivr serve` (and `ivr assistant`): the assistant's gRPC server and the HTTP endpoints.
//!
//! With no options it runs the embedded defaults: gRPC on 127.0.0.1:50051 (`MediaGateway`,
//! `CaseService`, `DirectoryService`, health, reflection), HTTP on 127.0.0.1:8080
//! (`/metrics`, `/healthz`), data in `./data`, Whisper `tiny.en` for English and `base` for
//! Mongolian when fetched (a language without a model is served keypad-only), the built-in
//! flow. Ctrl-C stops it; calls in progress end.

// The server reads the clock for logs and timestamps, and owns its runtime.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use dialogs::backend::Backend;
use dialogs::directory::Directory;
use dialogs::flow::{Flow, GrammarSet};
use dialogs::registry::Deadlines;
use ivr_proto::v1::media_gateway_server::MediaGatewayServer;
use rand::rngs::{StdRng, SysRng};
use rand::SeedableRng;
use speech::models::ModelStore;
use speech::stt::{Transcriber, WhisperConfig};
use speech::tts::VoiceConfig;

use crate::assistant::{Assistant, Metrics, Recognisers, Shared};
use crate::gateway::{Gateway, GatewayArgs};

/// Options of `ivr serve` / `ivr assistant`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Where the gRPC server listens.
    #[arg(long = "listen", alias = "grpc", default_value = "127.0.0.1:50051")]
    pub grpc: SocketAddr,
    /// Where the HTTP server (/metrics, /healthz) listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Whisper model for English callers.
    #[arg(long, default_value = "tiny.en")]
    pub model_en: String,
    /// Whisper model for Mongolian callers (multilingual); keypad only when not fetched.
    #[arg(long, default_value = "base")]
    pub model_mn: String,
    /// A flow file instead of the built-in hotline.
    #[arg(long)]
    pub flow: Option<PathBuf>,
    /// Grammar directory instead of the built-in grammars.
    #[arg(long)]
    pub grammars: Option<PathBuf>,
    /// The phone gateway.
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// Options of `ivr gateway`.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayOnlyArgs {
    /// The assistant's gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub assistant: String,
    /// The phone gateway.
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// Runs the phone gateway alone until Ctrl-C.
pub fn run_gateway(args: &GatewayOnlyArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let g = Gateway::start(&args.gateway, args.assistant.clone(), stop_rx).await?;
        println!(
            "ivr: phones call sip:1111@{} (udp, tcp), answered by the assistant at {}",
            g.local, args.assistant
        );
        println!("ivr: Ctrl-C stops the gateway");
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
        g.join().await;
        Ok(())
    })
}

/// Loads the flow, stores, voices and models.
pub fn shared(data: &Path, store: &ModelStore, args: &ServeArgs) -> anyhow::Result<Shared> {
    let flow = match (&args.flow, &args.grammars) {
        (Some(file), dir) => Flow::load(file, dir.as_deref())?,
        (None, Some(dir)) => Flow::builtin_with(GrammarSet::load(dir)?)?,
        (None, None) => Flow::builtin()?,
    };
    let directory = Directory::builtin().context("the built-in service directory")?;
    let rng = StdRng::try_from_rng(&mut SysRng).context("no randomness for case numbers")?;
    let backend = Backend::open(data, Deadlines::default(), rng)?;
    let speaker = crate::cli::speaker(data, VoiceConfig::default())?;
    let load = |name: &str, lang: &str| -> Option<Arc<dyn Transcriber>> {
        match crate::cli::load_whisper(store, name, WhisperConfig::default()) {
            Ok(t) => {
                tracing::info!(model = name, lang, "speech model loaded");
                Some(Arc::new(t))
            }
            Err(e) => {
                eprintln!(
                    "note: no speech model for {lang} ({e:#}); {lang} callers are served by keypad"
                );
                None
            }
        }
    };
    let stt = Recognisers {
        en: load(&args.model_en, "en"),
        mn: load(&args.model_mn, "mn"),
    };
    Ok(Shared {
        flow: Arc::new(flow),
        directory: Arc::new(directory),
        backend,
        speaker: Arc::new(speaker),
        stt,
        metrics: Metrics::new(),
        recordings: data.join("recordings"),
    })
}

/// Runs the servers until Ctrl-C.
pub fn run(data: &Path, store: &ModelStore, args: &ServeArgs) -> anyhow::Result<()> {
    let shared = shared(data, store, args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let gateway = (!args.gateway.no_sip).then(|| args.gateway.clone());
    runtime.block_on(serve(shared, args.grpc, args.http, gateway, async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}

/// Serves gRPC and HTTP (and the phone gateway, when given its options) until `shutdown`
/// completes.
pub async fn serve(
    shared: Shared,
    grpc: SocketAddr,
    http: SocketAddr,
    gateway: Option<GatewayArgs>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let assistant = Assistant::new(shared);
    let grpc_listener = tokio::net::TcpListener::bind(grpc)
        .await
        .with_context(|| format!("cannot listen for gRPC on {grpc}"))?;
    let http_listener = tokio::net::TcpListener::bind(http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {http}"))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The gateway reaches the assistant over loopback gRPC, as a gateway elsewhere would.
    let loopback = if grpc_addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), grpc_addr.port())
    } else {
        grpc_addr
    };
    // Every socket is bound before anything is announced: a port taken fails the start.
    let gateway = match gateway {
        Some(args) => {
            Some(Gateway::start(&args, format!("http://{loopback}"), stop_rx.clone()).await?)
        }
        None => None,
    };
    println!("ivr: the assistant listens on grpc://{grpc_addr} (MediaGateway, CaseService, DirectoryService, health, reflection)");
    println!("ivr: metrics on http://{http_addr}/metrics, health on http://{http_addr}/healthz");
    if let Some(g) = &gateway {
        println!(
            "ivr: phones call sip:1111@{} (udp, tcp); try: ivr call sip:1111@{} --lang en --script examples/complaint_sip.call",
            g.local, g.local
        );
    }
    println!(
        "ivr: place a call with: ivr call grpc://{grpc_addr} --script examples/complaint.call"
    );
    println!("ivr: Ctrl-C stops the server");

    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let metrics = assistant.metrics().clone();
    let gateway_stats = gateway.as_ref().map(|g| Arc::clone(&g.stats));
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                let gateway_stats = gateway_stats.clone();
                async move {
                    let mut text = metrics.render();
                    if let Some(g) = &gateway_stats {
                        text.push_str(&g.render());
                    }
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok\n" }));
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http_listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await
    });

    let shared = Arc::clone(assistant.shared());
    let mut routes = tonic::service::RoutesBuilder::default();
    let health = crate::services::add_services(
        &mut routes,
        Arc::clone(shared.backend.registry()),
        Arc::clone(&shared.directory),
        crate::services::system_clock(shared.flow.settings.hours.offset),
    )
    .await
    .context("setting up the gRPC services")?;
    routes.add_service(MediaGatewayServer::new(assistant));
    health.set_serving::<MediaGatewayServer<Assistant>>().await;
    let router = tonic::transport::Server::builder().add_routes(routes.routes());
    let mut grpc_stop = stop_rx;
    router
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            async move {
                let _ = grpc_stop.wait_for(|s| *s).await;
            },
        )
        .await
        .context("the gRPC server failed")?;
    http_task.await.context("the HTTP server task")??;
    if let Some(g) = gateway {
        g.join().await;
    }
    Ok(())
}
