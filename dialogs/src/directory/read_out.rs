//! The sentences that read a service to the caller, after the pattern of prompt `INFO_READ`:
//! name, where, fee, time, documents. Each sentence is short (under twelve words) so that the
//! caller can interrupt or ask for a repeat between facts. Amounts stay digits followed by the
//! currency word ("10000 tugriks", "10000 төгрөг"); the speech verbalizer expands them. Pure.

use grammars::Lang;

use super::{Channel, Fee, Known, Service};

/// The sentences that describe this service, in order: name, where, fee, time, documents.
pub fn read_out(service: &Service, lang: Lang) -> Vec<String> {
    let words = Words::of(lang);
    let name = service.name.get(lang).trim_end_matches('.');
    vec![
        format!("{name}."),
        format!("{} {}.", words.where_, channels(&service.channels, &words)),
        format!("{} {}.", words.fee, fee(service.fee, &words)),
        format!(
            "{} {}.",
            words.time,
            known(&service.processing_time, lang, words.unknown_time)
        ),
        match &service.documents {
            Known::Text(text) => format!("{} {}.", words.bring, text.get(lang)),
            Known::Unknown => words.unknown_documents.to_owned(),
        },
    ]
}

/// The fixed wording of one language.
struct Words {
    where_: &'static str,
    fee: &'static str,
    time: &'static str,
    bring: &'static str,
    online: &'static str,
    kiosk: &'static str,
    office: &'static str,
    or: &'static str,
    free: &'static str,
    currency: &'static str,
    unknown_fee: &'static str,
    unknown_time: &'static str,
    unknown_documents: &'static str,
}

impl Words {
    fn of(lang: Lang) -> Words {
        match lang {
            Lang::Mn => Words {
                where_: "Хаана:",
                fee: "Төлбөр:",
                time: "Хугацаа:",
                bring: "Авч очих бичиг баримт:",
                online: "цахимаар",
                kiosk: "киоск машинаар",
                office: "үйлчилгээний танхимд",
                or: "эсвэл",
                free: "үнэгүй",
                currency: "төгрөг",
                unknown_fee: "тодорхойгүй, байгууллагаас лавлана уу",
                unknown_time: "тодорхойгүй, байгууллагаас лавлана уу",
                unknown_documents: "Бичиг баримтын талаар байгууллагаас лавлана уу.",
            },
            _ => Words {
                where_: "Where:",
                fee: "Fee:",
                time: "Time:",
                bring: "Bring:",
                online: "online",
                kiosk: "at a kiosk",
                office: "at a front office",
                or: "or",
                free: "free",
                currency: "tugriks",
                unknown_fee: "not confirmed, please ask the agency",
                unknown_time: "not confirmed, please ask the agency",
                unknown_documents: "Please ask the agency which documents to bring.",
            },
        }
    }
}

fn channels(channels: &[Channel], words: &Words) -> String {
    let names: Vec<&str> = channels
        .iter()
        .map(|c| match c {
            Channel::Online => words.online,
            Channel::Kiosk => words.kiosk,
            Channel::Office => words.office,
        })
        .collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} {} {last}", rest.join(", "), words.or),
    }
}

fn fee(fee: Fee, words: &Words) -> String {
    match fee {
        Fee::Free => words.free.to_owned(),
        Fee::Amount(amount) => format!("{amount} {}", words.currency),
        Fee::Unknown => words.unknown_fee.to_owned(),
    }
}

fn known(fact: &Known, lang: Lang, unknown: &str) -> String {
    match fact {
        Known::Text(text) => text.get(lang).trim_end_matches('.').to_owned(),
        Known::Unknown => unknown.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Directory, ServiceId};
    use super::*;

    fn service(id: u32) -> Service {
        Directory::builtin()
            .expect("the built-in catalog parses")
            .service(ServiceId(id))
            .cloned()
            .expect("listed")
    }

    #[test]
    fn english_read_out_follows_info_read() {
        assert_eq!(
            read_out(&service(4), Lang::En),
            vec![
                "Birth certificate reissue.",
                "Where: at a front office.",
                "Fee: 10000 tugriks.",
                "Time: not confirmed, please ask the agency.",
                "Please ask the agency which documents to bring.",
            ]
        );
    }

    #[test]
    fn mongolian_read_out_follows_info_read() {
        let sentences = read_out(&service(1), Lang::Mn);
        assert_eq!(sentences[0], "Оршин суугаа хаягийн лавлагаа.");
        assert_eq!(
            sentences[1],
            "Хаана: цахимаар, киоск машинаар эсвэл үйлчилгээний танхимд."
        );
        assert_eq!(sentences[2], "Төлбөр: үнэгүй.");
        assert_eq!(sentences[3], "Хугацаа: тухайн өдөртөө.");
        assert_eq!(
            sentences[4],
            "Авч очих бичиг баримт: иргэний үнэмлэх, танхимд очвол."
        );
    }

    #[test]
    fn fees_read_as_digits_with_currency() {
        let en = read_out(&service(5), Lang::En);
        assert_eq!(en[2], "Fee: 2500 tugriks.");
        let mn = read_out(&service(5), Lang::Mn);
        assert_eq!(mn[2], "Төлбөр: 2500 төгрөг.");
        assert_eq!(read_out(&service(2), Lang::En)[2], "Fee: free.");
    }

    #[test]
    fn every_sentence_of_every_service_is_short() {
        let directory = Directory::builtin().expect("the built-in catalog parses");
        for service in directory.services() {
            for lang in [Lang::En, Lang::Mn] {
                let sentences = read_out(service, lang);
                assert_eq!(sentences.len(), 5);
                for sentence in sentences {
                    let words = sentence.split_whitespace().count();
                    assert!(
                        (1..12).contains(&words),
                        "service {} {lang}: {sentence:?} has {words} words",
                        service.id
                    );
                    assert!(sentence.ends_with('.'));
                }
            }
        }
    }
}
