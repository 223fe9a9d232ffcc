//! The hotline's gRPC services for staff and other systems: `ivr.v1.CaseService` ([`Cases`])
//! and `ivr.v1.DirectoryService` ([`Services`]), with standard gRPC health checking
//! (`grpc.health.v1.Health`) and server reflection (`grpc.reflection.v1` and `v1alpha`).
//!
//! [`add_services`] adds all of them to a tonic [`RoutesBuilder`], so that the server binary
//! composes them with its own services (the assistant's `MediaGateway`) and serves the lot on
//! one port:
//!
//! ```no_run
//! # async fn serve(
//! #     registry: std::sync::Arc<dyn dialogs::registry::CaseRegistry>,
//! #     directory: std::sync::Arc<dialogs::directory::Directory>,
//! # ) -> anyhow::Result<()> {
//! use ivr::services::{add_services, system_clock};
//! use time::UtcOffset;
//! use tonic::service::RoutesBuilder;
//! use tonic::transport::Server;
//!
//! let mut routes = RoutesBuilder::default();
//! let health = add_services(
//!     &mut routes,
//!     registry,
//!     directory,
//!     system_clock(UtcOffset::from_hms(8, 0, 0)?),
//! )
//! .await?;
//! // routes.add_service(MediaGatewayServer::new(assistant));
//! // health.set_serving::<MediaGatewayServer<Assistant>>().await;
//! # let _ = &health;
//! Server::builder()
//!     .add_routes(routes.routes())
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! Reflection describes `ivr.v1` ([`ivr_proto::FILE_DESCRIPTOR_SET`], the media gateway
//! included) and `grpc.health.v1`, so a client without the `.proto` files can build every
//! message it needs. Health reports the overall server (`""`), `ivr.v1.CaseService` and
//! `ivr.v1.DirectoryService` as `SERVING`; the returned [`HealthReporter`] lets the server add
//! its own services and report `NOT_SERVING` when it drains.
//!
//! This module opens no socket and spawns no task itself; the case service runs registry calls
//! on tokio's blocking pool (see [`cases`]).

pub mod cases;
pub mod directory;

use std::sync::Arc;

use dialogs::directory::Directory;
use dialogs::registry::CaseRegistry;
use ivr_proto::v1::case_service_server::CaseServiceServer;
use ivr_proto::v1::directory_service_server::DirectoryServiceServer;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

pub use cases::{system_clock, Cases, Clock};
pub use directory::Services;

/// Why the services could not be set up.
pub type Error = tonic_reflection::server::Error;

/// Adds `CaseService` over `registry`, `DirectoryService` over `directory`, health and
/// reflection (v1 and v1alpha) to `routes`, and reports both services as serving.
///
/// `clock` gives the current time to the case service (see [`cases`] for why it should be in
/// Ulaanbaatar's offset). Returns the health reporter for the caller's own services.
///
/// Fails only if a built-in descriptor set does not decode, which is a build defect.
pub async fn add_services(
    routes: &mut RoutesBuilder,
    registry: Arc<dyn CaseRegistry>,
    directory: Arc<Directory>,
    clock: Clock,
) -> Result<HealthReporter, Error> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ivr_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let (health, health_service) = tonic_health::server::health_reporter();
    let cases = CaseServiceServer::new(Cases::new(registry, clock));
    let services = DirectoryServiceServer::new(Services::new(directory));
    for name in [
        <CaseServiceServer<Cases> as NamedService>::NAME,
        <DirectoryServiceServer<Services> as NamedService>::NAME,
    ] {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }

    routes
        .add_service(cases)
        .add_service(services)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok(health)
}

#[cfg(test)]
mod tests {
    use dialogs::registry::{Deadlines, SqliteRegistry};
    use ivr_proto::v1::case_service_client::CaseServiceClient;
    use ivr_proto::v1::directory_service_client::DirectoryServiceClient;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use tokio::net::TcpListener;
    use tonic::transport::server::TcpIncoming;
    use tonic::transport::{Channel, Server};
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{health_check_response, HealthCheckRequest};
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    use super::*;

    /// Serves the routes on a free local port; returns a channel to it.
    async fn serve() -> (Channel, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let registry = SqliteRegistry::open(
            dir.path().join("cases.sqlite"),
            Deadlines::default(),
            StdRng::seed_from_u64(1),
        )
        .unwrap_or_else(|e| panic!("open registry: {e}"));
        let directory =
            Arc::new(Directory::builtin().unwrap_or_else(|e| panic!("built-in catalog: {e}")));
        let mut routes = RoutesBuilder::default();
        let clock: Clock = Arc::new(time::OffsetDateTime::now_utc);
        add_services(&mut routes, Arc::new(registry), directory, clock)
            .await
            .unwrap_or_else(|e| panic!("add services: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local address: {e}"));
        let router = Server::builder().add_routes(routes.routes());
        tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener)));
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap_or_else(|e| panic!("uri: {e}"))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        (channel, dir)
    }

    #[tokio::test]
    async fn one_port_serves_cases_directory_health_and_reflection() {
        let (channel, _dir) = serve().await;

        let mut health = HealthClient::new(channel.clone());
        for service in ["", "ivr.v1.CaseService", "ivr.v1.DirectoryService"] {
            let status = health
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
                .into_inner()
                .status;
            assert_eq!(
                status,
                i32::from(health_check_response::ServingStatus::Serving),
                "{service:?}"
            );
        }

        let mut reflection = ServerReflectionClient::new(channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = reflection
            .server_reflection_info(tokio_stream_once(request))
            .await
            .unwrap_or_else(|e| panic!("reflection: {e}"))
            .into_inner();
        let response = responses
            .message()
            .await
            .unwrap_or_else(|e| panic!("reflection answer: {e}"))
            .unwrap_or_else(|| panic!("reflection closed without answer"));
        let names: Vec<String> = match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect()
            }
            other => panic!("unexpected reflection answer {other:?}"),
        };
        for expected in [
            "ivr.v1.CaseService",
            "ivr.v1.DirectoryService",
            "grpc.health.v1.Health",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }

        let hits = DirectoryServiceClient::new(channel.clone())
            .search(ivr_proto::v1::SearchRequest {
                query: "birth certificate".to_owned(),
                locale: "en".to_owned(),
                limit: 0,
            })
            .await
            .unwrap_or_else(|e| panic!("search: {e}"))
            .into_inner()
            .hits;
        assert!(!hits.is_empty());

        let status = CaseServiceClient::new(channel)
            .get_case(ivr_proto::v1::GetCaseRequest {
                number: "4710395826".to_owned(),
            })
            .await
            .err()
            .unwrap_or_else(|| panic!("an empty registry found a case"));
        assert_eq!(status.code(), tonic::Code::NotFound);
    }

    /// A request stream of one message.
    fn tokio_stream_once<T: Send + 'static>(
        item: T,
    ) -> impl tonic::codegen::tokio_stream::Stream<Item = T> + Send + 'static {
        tonic::codegen::tokio_stream::iter([item])
    }
}
