//! The bilingual service directory behind the hotline's "service information" menu.
//!
//! This module owns the catalog of government services ([`Directory`], [`Service`]): where each
//! service can be obtained ([`Channel`]), its [`Fee`] in tugrik (MNT), processing time and
//! documents in English and Mongolian, and how each fact was verified ([`Verification`]). On
//! top of the catalog it builds the topic menus ([`Directory::topics`],
//! [`Directory::services_in`]), a spoken-query search ([`Directory::search`]) and the short
//! sentences read to the caller ([`read_out`]).
//!
//! What it does not do: no clock, no threads, no sockets. Only [`Directory::load`] touches the
//! file system (one blocking read); [`Directory::parse`] and [`Directory::builtin`] are pure.
//! Sentences carry amounts as digits and the sign `₮` or the word "tugrik"; the speech
//! verbalizer turns them into words later.
//!
//! The catalog format (tab-separated, one service a line) is documented at the top of
//! `dialogs/data/services.tsv`, which is also the built-in catalog.
//!
//! ```
//! use dialogs::directory::{read_out, Directory, Topic};
//! use grammars::Lang;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let directory = Directory::builtin()?;
//! let pages = directory.services_in(Topic::Tax);
//! assert!(pages.iter().all(|page| page.choices() <= 5));
//! let best = directory.search(Lang::En, "I need a birth certificate");
//! let service = directory.service(best[0].0).expect("search returns known ids");
//! for sentence in read_out(service, Lang::En) {
//!     println!("{sentence}");
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod parse;
mod read_out;
mod search;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use grammars::Lang;

pub use error::{Error, LineProblem, Result};
pub use read_out::read_out;

/// The most choices a menu offers at once (the "next" choice included).
pub const MENU_CHOICES: usize = 5;

/// The built-in catalog, compiled into the program.
const BUILTIN: &str = include_str!("../../data/services.tsv");
/// The origin named in errors about the built-in catalog.
const BUILTIN_ORIGIN: &str = "dialogs/data/services.tsv (built in)";

/// The identifier of a service in the catalog (the `id` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub u32);

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A topic of the information menu, in the order and with the keys the menu announces
/// (prompt `INFO_MENU`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Topic {
    /// 1: civil registration and the national ID card.
    CivilRegistration,
    /// 2: social insurance and pension.
    SocialInsurance,
    /// 3: tax.
    Tax,
    /// 4: welfare and allowances.
    Welfare,
    /// 5: anything else.
    Other,
}

impl Topic {
    /// Every topic, in menu order.
    pub const ALL: [Topic; 5] = [
        Topic::CivilRegistration,
        Topic::SocialInsurance,
        Topic::Tax,
        Topic::Welfare,
        Topic::Other,
    ];

    /// The menu key of this topic (1–5), also its code in the catalog.
    pub fn key(self) -> u8 {
        match self {
            Topic::CivilRegistration => 1,
            Topic::SocialInsurance => 2,
            Topic::Tax => 3,
            Topic::Welfare => 4,
            Topic::Other => 5,
        }
    }

    /// The topic with this menu key; `None` outside 1–5.
    pub fn from_key(key: u8) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.key() == key)
    }

    /// The topic's name as the menu says it.
    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Topic::CivilRegistration, Lang::Mn) => "Иргэний бүртгэл, иргэний үнэмлэх",
            (Topic::SocialInsurance, Lang::Mn) => "Нийгмийн даатгал, тэтгэвэр",
            (Topic::Tax, Lang::Mn) => "Татвар",
            (Topic::Welfare, Lang::Mn) => "Халамж, тэтгэмж",
            (Topic::Other, Lang::Mn) => "Бусад асуудал",
            (Topic::CivilRegistration, _) => "Civil registration and ID card",
            (Topic::SocialInsurance, _) => "Social insurance and pension",
            (Topic::Tax, _) => "Tax",
            (Topic::Welfare, _) => "Welfare and allowances",
            (Topic::Other, _) => "Anything else",
        }
    }
}

/// A text in both languages of the hotline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bilingual {
    /// English.
    pub en: String,
    /// Mongolian (Cyrillic).
    pub mn: String,
}

impl Bilingual {
    /// The text in this language.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Mn => &self.mn,
            _ => &self.en,
        }
    }
}

/// A bilingual fact the catalog may not know (processing time, documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// The fact, in both languages.
    Text(Bilingual),
    /// The catalog does not know it; the caller is told to ask the agency.
    Unknown,
}

/// Where a service can be obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// Online (e-mongolia, the agency's site or app). Catalog letter `O`.
    Online,
    /// A self-service kiosk. Catalog letter `K`.
    Kiosk,
    /// A front office of the agency. Catalog letter `F`.
    Office,
}

/// The fee a citizen pays for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fee {
    /// No fee.
    Free,
    /// A fixed fee in tugrik (MNT).
    Amount(u64),
    /// The catalog does not know the fee, or it depends on the case.
    Unknown,
}

/// How a catalog fact was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mark {
    /// Verified on a current official source (`V`).
    Verified,
    /// Verified on an older official source; may have changed (`V-old`).
    VerifiedOld,
    /// Not verified (`U`).
    Unverified,
    /// From a third-party source (`3P`).
    ThirdParty,
}

/// How each fact of a service was verified; `None` where the fact is unknown (`-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The channels.
    pub channels: Option<Mark>,
    /// The fee.
    pub fee: Option<Mark>,
    /// The processing time.
    pub processing_time: Option<Mark>,
}

/// One government service of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its identifier.
    pub id: ServiceId,
    /// The information-menu topic it is listed under.
    pub topic: Topic,
    /// Its name as read out.
    pub name: Bilingual,
    /// The responsible agency (free text, not read out).
    pub agency: String,
    /// Where it can be obtained, in catalog order, at least one.
    pub channels: Vec<Channel>,
    /// What it costs.
    pub fee: Fee,
    /// How long it takes (or when it is paid or filed).
    pub processing_time: Known,
    /// What to bring.
    pub documents: Known,
    /// How the facts above were verified.
    pub verification: Verification,
    /// Notes for staff, not read out (may be empty).
    pub notes: String,
}

/// One page of a topic menu: at most [`MENU_CHOICES`] choices, the last of them "next" when
/// more pages follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuPage {
    /// The services offered, keyed 1, 2, … in this order.
    pub services: Vec<ServiceId>,
    /// Whether a "next" choice (the key after the last service) leads to another page.
    pub has_next: bool,
}

impl MenuPage {
    /// How many choices the page offers, "next" included.
    pub fn choices(&self) -> usize {
        self.services.len() + usize::from(self.has_next)
    }
}

/// The service catalog. Immutable once loaded; share it between calls by reference.
#[derive(Debug, Clone)]
pub struct Directory {
    services: BTreeMap<ServiceId, Service>,
    index: search::Index,
}

impl Directory {
    /// Parses a catalog. `origin` names the text in errors (usually its path).
    ///
    /// Fails on the first malformed line with [`Error::Line`], or with [`Error::Empty`] when
    /// the text lists no services.
    pub fn parse(text: &str, origin: &str) -> Result<Directory> {
        let services = parse::parse(text, origin)?;
        let index = search::Index::new(services.values());
        Ok(Directory { services, index })
    }

    /// Reads and parses a catalog file (blocking IO).
    pub fn load(path: impl AsRef<Path>) -> Result<Directory> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Directory::parse(&text, &path.display().to_string())
    }

    /// The catalog compiled into the program (`dialogs/data/services.tsv`).
    pub fn builtin() -> Result<Directory> {
        Directory::parse(BUILTIN, BUILTIN_ORIGIN)
    }

    /// The service with this id.
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(&id)
    }

    /// Every service, by id.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    /// How many services the catalog lists.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether the catalog is empty (never true for a parsed catalog).
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The topics that list at least one service, in menu order (at most five).
    pub fn topics(&self) -> Vec<Topic> {
        Topic::ALL
            .into_iter()
            .filter(|topic| self.services.values().any(|s| s.topic == *topic))
            .collect()
    }

    /// The menu pages of a topic, services in id order. Every page offers at most
    /// [`MENU_CHOICES`] choices: a page followed by another holds one service less and ends
    /// with "next". An empty topic has no pages.
    pub fn services_in(&self, topic: Topic) -> Vec<MenuPage> {
        let ids: Vec<ServiceId> = self
            .services
            .values()
            .filter(|s| s.topic == topic)
            .map(|s| s.id)
            .collect();
        let mut pages = Vec::new();
        let mut rest = ids.as_slice();
        while !rest.is_empty() {
            if rest.len() <= MENU_CHOICES {
                pages.push(MenuPage {
                    services: rest.to_vec(),
                    has_next: false,
                });
                break;
            }
            let (page, tail) = rest.split_at(MENU_CHOICES - 1);
            pages.push(MenuPage {
                services: page.to_vec(),
                has_next: true,
            });
            rest = tail;
        }
        pages
    }

    /// The services whose names best match a spoken or typed query, best first, with a score
    /// in (0, 1]. Tolerates word order, case, punctuation, filler words and small typos;
    /// matches the names in both languages. Empty when nothing matches well enough.
    pub fn search(&self, lang: Lang, query: &str) -> Vec<(ServiceId, f32)> {
        self.index.search(lang, query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Directory {
        Directory::builtin().expect("the built-in catalog parses")
    }

    #[test]
    fn builtin_catalog_lists_34_services() {
        let directory = builtin();
        assert_eq!(directory.len(), 34);
        assert_eq!(
            directory.services().map(|s| s.id.0).collect::<Vec<_>>(),
            (1..=34).collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_builtin_service_is_on_exactly_one_menu_page() {
        let directory = builtin();
        let mut seen = Vec::new();
        for topic in directory.topics() {
            for page in directory.services_in(topic) {
                seen.extend(page.services);
            }
        }
        seen.sort();
        assert_eq!(seen, directory.services().map(|s| s.id).collect::<Vec<_>>());
    }

    #[test]
    fn builtin_has_all_five_topics() {
        assert_eq!(builtin().topics(), Topic::ALL.to_vec());
    }

    #[test]
    fn no_menu_page_offers_more_than_five_choices() {
        let directory = builtin();
        for topic in directory.topics() {
            let pages = directory.services_in(topic);
            assert!(!pages.is_empty());
            for (i, page) in pages.iter().enumerate() {
                assert!(page.choices() <= MENU_CHOICES, "{topic:?} page {i}");
                assert!(!page.services.is_empty());
                assert_eq!(page.has_next, i + 1 < pages.len());
            }
        }
    }

    #[test]
    fn long_topic_pages_with_next() {
        let directory = builtin();
        let civil = directory.services_in(Topic::CivilRegistration);
        // 16 services: 4 + next, 4 + next, 4 + next, 4.
        let sizes: Vec<usize> = civil.iter().map(|p| p.services.len()).collect();
        assert_eq!(sizes, vec![4, 4, 4, 4]);
        assert_eq!(civil[0].services[0], ServiceId(1));
        assert_eq!(civil[3].services[3], ServiceId(16));
    }

    #[test]
    fn topic_of_exactly_five_services_fits_one_page() {
        let mut text = String::from(parse::HEADER);
        text.push('\n');
        for id in 1..=5 {
            text.push_str(&format!(
                "{id}\t3\tT{id}\tТ{id}\tA\tO\tU\tfree\tU\tunknown\tunknown\t-\tunknown\tunknown\t\n"
            ));
        }
        let directory = Directory::parse(&text, "five.tsv").expect("valid");
        let pages = directory.services_in(Topic::Tax);
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].choices(), 5);
        assert!(directory.services_in(Topic::Welfare).is_empty());
        assert_eq!(directory.topics(), vec![Topic::Tax]);
    }

    #[test]
    fn topic_keys_round_trip() {
        for topic in Topic::ALL {
            assert_eq!(Topic::from_key(topic.key()), Some(topic));
        }
        assert_eq!(Topic::from_key(0), None);
        assert_eq!(Topic::from_key(6), None);
    }

    #[test]
    fn builtin_facts_survive_parsing() {
        let directory = builtin();
        let reissue = directory.service(ServiceId(4)).expect("listed");
        assert_eq!(reissue.fee, Fee::Amount(10_000));
        assert_eq!(reissue.channels, vec![Channel::Office]);
        assert_eq!(reissue.verification.fee, Some(Mark::Verified));
        let address = directory.service(ServiceId(1)).expect("listed");
        assert_eq!(
            address.channels,
            vec![Channel::Online, Channel::Kiosk, Channel::Office]
        );
        assert_eq!(address.fee, Fee::Free);
        assert_eq!(address.verification.fee, Some(Mark::VerifiedOld));
        assert_eq!(address.verification.channels, Some(Mark::ThirdParty));
        let id_card = directory.service(ServiceId(13)).expect("listed");
        assert_eq!(id_card.fee, Fee::Unknown);
        assert_eq!(id_card.verification.fee, None);
        assert_eq!(id_card.processing_time, Known::Unknown);
    }

    #[test]
    fn load_reads_a_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("catalog.tsv");
        std::fs::write(&path, BUILTIN).expect("write");
        assert_eq!(Directory::load(&path).expect("loads").len(), 34);

        std::fs::write(&path, format!("{}\n1\t9\n", parse::HEADER)).expect("write");
        let err = Directory::load(&path).expect_err("short line");
        assert!(err
            .to_string()
            .starts_with(&format!("{}:2: ", path.display())));

        let missing = dir.path().join("missing.tsv");
        assert!(matches!(Directory::load(&missing), Err(Error::Io { .. })));
    }
}
