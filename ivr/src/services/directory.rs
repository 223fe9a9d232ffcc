//! `ivr.v1.DirectoryService`: the public service directory over gRPC.
//!
//! [`Services`] answers from a shared, immutable [`Directory`]: `Search` runs the same
//! spoken-query search as the information menu, `GetService` looks a service up by id. Each
//! service carries the sentences the hotline reads to a caller ([`read_out`]) in the requested
//! locale, and its fee, processing time and documents in that locale. No IO, no clock, no lock:
//! every request is answered on the calling task.
//!
//! Locales: `en` or `mn` (a BCP 47 tag such as `mn-MN` is read by its language); anything
//! else, the empty string included, is `INVALID_ARGUMENT`. Facts the catalog does not know
//! (fee, time, documents) are empty strings; the read-out says "ask the agency" for them.

use std::sync::Arc;

use dialogs::directory::{self, read_out, Directory, Fee, Known, ServiceId};
use grammars::Lang;
use ivr_proto::v1 as pb;
use ivr_proto::v1::directory_service_server::DirectoryService;
use tonic::{Request, Response, Status};

/// How many hits `Search` returns when the request sets no limit.
pub const DEFAULT_SEARCH_LIMIT: u32 = 5;
/// The most hits one `Search` answer holds; larger limits are lowered to this.
pub const MAX_SEARCH_LIMIT: u32 = 20;

/// The `DirectoryService` implementation over a shared catalog.
#[derive(Debug, Clone)]
pub struct Services {
    directory: Arc<Directory>,
}

impl Services {
    /// A service answering from `directory`.
    pub fn new(directory: Arc<Directory>) -> Self {
        Self { directory }
    }
}

#[tonic::async_trait]
impl DirectoryService for Services {
    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let request = request.get_ref();
        let lang = parse_locale(&request.locale)?;
        let limit = hit_limit(request.limit);
        let hits = self
            .directory
            .search(lang, &request.query)
            .into_iter()
            .filter_map(|(id, score)| {
                self.directory.service(id).map(|service| pb::SearchHit {
                    service: Some(service_to_proto(service, lang)),
                    score,
                })
            })
            .take(limit)
            .collect();
        Ok(Response::new(pb::SearchResponse { hits }))
    }

    async fn get_service(
        &self,
        request: Request<pb::GetServiceRequest>,
    ) -> Result<Response<pb::Service>, Status> {
        let request = request.get_ref();
        let lang = parse_locale(&request.locale)?;
        let service = self
            .directory
            .service(ServiceId(request.id))
            .ok_or_else(|| Status::not_found(format!("no service has id {}", request.id)))?;
        Ok(Response::new(service_to_proto(service, lang)))
    }
}

/// How many hits to return for a request's `limit`: 0 is the default, above the maximum is
/// the maximum.
fn hit_limit(requested: u32) -> usize {
    let limit = match requested {
        0 => DEFAULT_SEARCH_LIMIT,
        limit => limit.min(MAX_SEARCH_LIMIT),
    };
    // At most MAX_SEARCH_LIMIT (20), which fits any usize.
    limit as usize
}

/// The language of a request's locale; `INVALID_ARGUMENT` unless English or Mongolian.
fn parse_locale(locale: &str) -> Result<Lang, Status> {
    Lang::from_tag(locale).ok_or_else(|| {
        Status::invalid_argument(format!("locale {locale:?} is not supported; use en or mn"))
    })
}

/// The wire form of a service, its texts in `lang`.
fn service_to_proto(service: &directory::Service, lang: Lang) -> pb::Service {
    pb::Service {
        id: service.id.0,
        topic: u32::from(service.topic.key()),
        name_en: service.name.en.clone(),
        name_mn: service.name.mn.clone(),
        agency: service.agency.clone(),
        channels: service
            .channels
            .iter()
            .map(|&channel| channel_name(channel).to_owned())
            .collect(),
        fee: fee_text(service.fee, lang),
        processing_time: known_text(&service.processing_time, lang),
        documents: known_text(&service.documents, lang),
        read_out: read_out(service, lang),
    }
}

/// The channel as the contract spells it: `online`, `kiosk`, `office`.
fn channel_name(channel: directory::Channel) -> &'static str {
    match channel {
        directory::Channel::Online => "online",
        directory::Channel::Kiosk => "kiosk",
        directory::Channel::Office => "office",
        // A channel added to the catalog before the contract knows it.
        _ => "",
    }
}

/// The fee as the read-out says it ("free", "10000 tugriks"); empty when unknown.
fn fee_text(fee: Fee, lang: Lang) -> String {
    match (fee, lang) {
        (Fee::Free, Lang::Mn) => "үнэгүй".to_owned(),
        (Fee::Free, Lang::En) => "free".to_owned(),
        (Fee::Amount(amount), Lang::Mn) => format!("{amount} төгрөг"),
        (Fee::Amount(amount), Lang::En) => format!("{amount} tugriks"),
        (Fee::Unknown, _) => String::new(),
    }
}

fn known_text(fact: &Known, lang: Lang) -> String {
    match fact {
        Known::Text(text) => text.get(lang).to_owned(),
        Known::Unknown => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn service() -> Services {
        Services::new(Arc::new(
            Directory::builtin().unwrap_or_else(|e| panic!("built-in catalog: {e}")),
        ))
    }

    fn search(query: &str, locale: &str, limit: u32) -> Request<pb::SearchRequest> {
        Request::new(pb::SearchRequest {
            query: query.to_owned(),
            locale: locale.to_owned(),
            limit,
        })
    }

    fn ok<T>(result: Result<Response<T>, Status>) -> T {
        result
            .unwrap_or_else(|status| panic!("unexpected {status:?}"))
            .into_inner()
    }

    fn hit_names(response: &pb::SearchResponse) -> Vec<&str> {
        response
            .hits
            .iter()
            .filter_map(|hit| hit.service.as_ref())
            .map(|service| service.name_en.as_str())
            .collect()
    }

    #[tokio::test]
    async fn search_finds_birth_certificate_with_english_read_out() {
        let response = ok(service()
            .search(search("I need a birth certificate", "en", 0))
            .await);
        let best = response
            .hits
            .first()
            .and_then(|hit| hit.service.as_ref())
            .unwrap_or_else(|| panic!("no hit"));
        let name = best.name_en.to_lowercase();
        assert!(
            name.contains("birth") && name.contains("certificate"),
            "{best:?}"
        );
        assert!(response.hits[0].score > 0.0 && response.hits[0].score <= 1.0);
        assert_eq!(best.read_out.len(), 5);
        assert!(
            best.read_out[1].starts_with("Where:"),
            "{:?}",
            best.read_out
        );
        // Hits come best first.
        assert!(response.hits.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[tokio::test]
    async fn search_reads_out_in_mongolian_when_asked() {
        let response = ok(service().search(search("төрсний гэрчилгээ", "mn", 0)).await);
        let best = response
            .hits
            .first()
            .and_then(|hit| hit.service.as_ref())
            .unwrap_or_else(|| panic!("no hit"));
        assert!(
            best.read_out[1].starts_with("Хаана:"),
            "{:?}",
            best.read_out
        );
    }

    #[test]
    fn search_limit_defaults_to_five_and_is_capped_at_twenty() {
        assert_eq!(hit_limit(0), 5);
        assert_eq!(hit_limit(7), 7);
        assert_eq!(hit_limit(20), 20);
        assert_eq!(hit_limit(21), 20);
        assert_eq!(hit_limit(u32::MAX), 20);
    }

    #[tokio::test]
    async fn search_returns_the_best_hits_up_to_the_limit() {
        let service = service();
        // Every "certificate" and every "reference" matches: more than five services.
        let wide = "certificate reference";
        let all = ok(service.search(search(wide, "en", 1000)).await);
        assert!(all.hits.len() > 5, "{:?}", hit_names(&all));
        let default = ok(service.search(search(wide, "en", 0)).await);
        assert_eq!(hit_names(&default), hit_names(&all)[..5]);
        let two = ok(service.search(search(wide, "en", 2)).await);
        assert_eq!(hit_names(&two), hit_names(&all)[..2]);
    }

    #[tokio::test]
    async fn unsupported_locales_are_invalid_argument() {
        let service = service();
        for locale in ["", "de", "english"] {
            let status = service
                .search(search("birth certificate", locale, 0))
                .await
                .err()
                .unwrap_or_else(|| panic!("{locale:?} accepted"));
            assert_eq!(status.code(), Code::InvalidArgument, "{locale:?}");
        }
        assert!(service
            .search(search("birth certificate", "mn-MN", 0))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn get_service_maps_every_field() {
        let got = ok(service()
            .get_service(Request::new(pb::GetServiceRequest {
                id: 5,
                locale: "mn".to_owned(),
            }))
            .await);
        let catalog = Directory::builtin().unwrap_or_else(|e| panic!("built-in catalog: {e}"));
        let expected = catalog
            .service(ServiceId(5))
            .unwrap_or_else(|| panic!("service 5 listed"));
        assert_eq!(got.id, 5);
        assert_eq!(got.topic, u32::from(expected.topic.key()));
        assert_eq!(got.name_en, expected.name.en);
        assert_eq!(got.name_mn, expected.name.mn);
        assert_eq!(got.agency, expected.agency);
        assert_eq!(got.fee, "2500 төгрөг");
        assert_eq!(got.read_out, read_out(expected, Lang::Mn));
        assert_eq!(got.read_out[2], format!("Төлбөр: {}.", got.fee));
        assert_eq!(
            got.processing_time,
            known_text(&expected.processing_time, Lang::Mn)
        );
        assert_eq!(got.documents, known_text(&expected.documents, Lang::Mn));
        assert_eq!(got.channels.len(), expected.channels.len());
    }

    #[tokio::test]
    async fn free_services_and_unknown_facts_read_as_the_caller_hears_them() {
        let service = service();
        let get = |id: u32| {
            service.get_service(Request::new(pb::GetServiceRequest {
                id,
                locale: "en".to_owned(),
            }))
        };
        let free = ok(get(2).await);
        assert_eq!(free.fee, "free");
        assert_eq!(free.read_out[2], "Fee: free.");
        // Service 4: a front office, 10000 tugriks, time and documents unknown.
        let reissue = ok(get(4).await);
        assert_eq!(reissue.channels, ["office"]);
        assert_eq!(reissue.fee, "10000 tugriks");
        assert_eq!(
            (reissue.processing_time.as_str(), reissue.documents.as_str()),
            ("", "")
        );
        // Service 1: online, kiosk and office.
        assert_eq!(ok(get(1).await).channels, ["online", "kiosk", "office"]);
    }

    #[tokio::test]
    async fn unknown_service_is_not_found() {
        let status = service()
            .get_service(Request::new(pb::GetServiceRequest {
                id: 999,
                locale: "en".to_owned(),
            }))
            .await
            .err()
            .unwrap_or_else(|| panic!("service 999 found"));
        assert_eq!(status.code(), Code::NotFound);
    }
}
