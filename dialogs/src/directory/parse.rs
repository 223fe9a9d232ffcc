//! The catalog's text format: tab-separated lines under a fixed header, `#` comments and blank
//! lines ignored. Pure: no IO. See `dialogs/data/services.tsv` for the column reference.

use std::collections::{BTreeMap, HashMap};

use super::{
    Bilingual, Channel, Error, Fee, Known, LineProblem, Mark, Result, Service, ServiceId, Topic,
    Verification,
};

/// The header line every catalog starts with (after comments).
pub(super) const HEADER: &str = "id\ttopic\tname_en\tname_mn\tagency\tchannels\tchannels_mark\t\
fee_mnt\tfee_mark\ttime_en\ttime_mn\ttime_mark\tdocuments_en\tdocuments_mn\tnotes";

/// Columns per line.
const COLUMNS: usize = 15;

/// The word for a value the catalog does not know.
const UNKNOWN: &str = "unknown";

/// Parses a whole catalog into services keyed by id.
pub(super) fn parse(text: &str, origin: &str) -> Result<BTreeMap<ServiceId, Service>> {
    let mut services = BTreeMap::new();
    let mut first_lines: HashMap<ServiceId, usize> = HashMap::new();
    let mut header_seen = false;
    // Editors on some systems save UTF-8 with a byte-order mark; it is not part of the header.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let at = |problem| Error::Line {
            origin: origin.to_owned(),
            line,
            problem,
        };
        if !header_seen {
            if raw.split('\t').map(str::trim).ne(HEADER.split('\t')) {
                return Err(at(LineProblem::BadHeader {
                    expected: HEADER.to_owned(),
                }));
            }
            header_seen = true;
            continue;
        }
        let service = parse_line(raw).map_err(at)?;
        match first_lines.get(&service.id) {
            Some(&first_line) => {
                return Err(at(LineProblem::DuplicateId {
                    id: service.id.0,
                    first_line,
                }))
            }
            None => {
                first_lines.insert(service.id, line);
            }
        }
        services.insert(service.id, service);
    }
    if services.is_empty() {
        return Err(Error::Empty {
            origin: origin.to_owned(),
        });
    }
    Ok(services)
}

/// Parses one service line.
fn parse_line(raw: &str) -> std::result::Result<Service, LineProblem> {
    let fields: Vec<&str> = raw.split('\t').map(str::trim).collect();
    let [id, topic, name_en, name_mn, agency, channels, channels_mark, fee, fee_mark, time_en, time_mn, time_mark, documents_en, documents_mn, notes] =
        fields[..]
    else {
        return Err(LineProblem::ColumnCount {
            expected: COLUMNS,
            found: fields.len(),
        });
    };
    let id = match id.parse::<u32>() {
        Ok(n) if n > 0 => ServiceId(n),
        _ => return Err(LineProblem::BadId(id.to_owned())),
    };
    let topic = topic
        .parse::<u8>()
        .ok()
        .and_then(Topic::from_key)
        .ok_or_else(|| LineProblem::UnknownTopic(topic.to_owned()))?;
    Ok(Service {
        id,
        topic,
        name: Bilingual {
            en: required("name_en", name_en)?,
            mn: required("name_mn", name_mn)?,
        },
        agency: required("agency", agency)?,
        channels: parse_channels(channels)?,
        fee: parse_fee(fee)?,
        processing_time: known("time", time_en, time_mn)?,
        documents: known("documents", documents_en, documents_mn)?,
        verification: Verification {
            channels: parse_mark("channels_mark", channels_mark)?,
            fee: parse_mark("fee_mark", fee_mark)?,
            processing_time: parse_mark("time_mark", time_mark)?,
        },
        notes: notes.to_owned(),
    })
}

fn required(column: &'static str, value: &str) -> std::result::Result<String, LineProblem> {
    if value.is_empty() {
        Err(LineProblem::EmptyColumn { column })
    } else {
        Ok(value.to_owned())
    }
}

fn known(column: &'static str, en: &str, mn: &str) -> std::result::Result<Known, LineProblem> {
    if en.is_empty() || mn.is_empty() {
        return Err(LineProblem::EmptyColumn { column });
    }
    match (en == UNKNOWN, mn == UNKNOWN) {
        (true, true) => Ok(Known::Unknown),
        (false, false) => Ok(Known::Text(Bilingual {
            en: en.to_owned(),
            mn: mn.to_owned(),
        })),
        _ => Err(LineProblem::HalfUnknown { column }),
    }
}

fn parse_channels(value: &str) -> std::result::Result<Vec<Channel>, LineProblem> {
    let mut channels = Vec::new();
    for letter in value.split([' ', ',']).filter(|s| !s.is_empty()) {
        let channel = match letter {
            "O" => Channel::Online,
            "K" => Channel::Kiosk,
            "F" => Channel::Office,
            other => return Err(LineProblem::UnknownChannel(other.to_owned())),
        };
        if channels.contains(&channel) {
            return Err(LineProblem::DuplicateChannel(letter.to_owned()));
        }
        channels.push(channel);
    }
    if channels.is_empty() {
        return Err(LineProblem::EmptyColumn { column: "channels" });
    }
    Ok(channels)
}

fn parse_fee(value: &str) -> std::result::Result<Fee, LineProblem> {
    match value {
        "free" => Ok(Fee::Free),
        UNKNOWN => Ok(Fee::Unknown),
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits
            .parse::<u64>()
            .map(Fee::Amount)
            .map_err(|_| LineProblem::BadFee(value.to_owned())),
        _ => Err(LineProblem::BadFee(value.to_owned())),
    }
}

fn parse_mark(column: &'static str, value: &str) -> std::result::Result<Option<Mark>, LineProblem> {
    match value {
        "V" => Ok(Some(Mark::Verified)),
        "V-old" => Ok(Some(Mark::VerifiedOld)),
        "U" => Ok(Some(Mark::Unverified)),
        "3P" => Ok(Some(Mark::ThirdParty)),
        "-" => Ok(None),
        _ => Err(LineProblem::BadMark {
            column,
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "1\t1\tBirth registration\tТөрсний бүртгэл\tGASR\tF\tV\tfree\tV\tunknown\tunknown\t-\tunknown\tunknown\t";

    fn catalog(lines: &[&str]) -> String {
        let mut text = String::from("# a comment\n\n");
        text.push_str(HEADER);
        text.push('\n');
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn line_error(lines: &[&str]) -> (usize, LineProblem, String) {
        match parse(&catalog(lines), "test.tsv") {
            Err(err @ Error::Line { .. }) => {
                let message = err.to_string();
                let Error::Line { line, problem, .. } = err else {
                    unreachable!("matched Error::Line above")
                };
                (line, problem, message)
            }
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    fn with_column(index: usize, value: &str) -> String {
        let mut fields: Vec<&str> = GOOD.split('\t').collect();
        fields[index] = value;
        fields.join("\t")
    }

    #[test]
    fn a_good_line_parses_after_comments_and_header() {
        let services = parse(&catalog(&[GOOD]), "test.tsv").expect("valid");
        let service = &services[&ServiceId(1)];
        assert_eq!(service.topic, Topic::CivilRegistration);
        assert_eq!(service.name.mn, "Төрсний бүртгэл");
        assert_eq!(service.fee, Fee::Free);
        assert_eq!(service.notes, "");
    }

    #[test]
    fn wrong_column_count_names_file_and_line() {
        let (line, problem, message) = line_error(&[GOOD, "2\t1\tToo short"]);
        assert_eq!(line, 5);
        assert_eq!(
            problem,
            LineProblem::ColumnCount {
                expected: 15,
                found: 3
            }
        );
        assert_eq!(
            message,
            "test.tsv:5: expected 15 tab-separated columns, found 3"
        );
    }

    #[test]
    fn unknown_topic_is_reported() {
        let (line, problem, message) = line_error(&[&with_column(1, "6")]);
        assert_eq!(line, 4);
        assert_eq!(problem, LineProblem::UnknownTopic("6".into()));
        assert_eq!(message, "test.tsv:4: unknown topic \"6\", expected 1 to 5");
    }

    #[test]
    fn duplicate_id_names_both_lines() {
        let (line, problem, message) = line_error(&[GOOD, &with_column(2, "Other"), GOOD]);
        assert_eq!(line, 5);
        assert_eq!(
            problem,
            LineProblem::DuplicateId {
                id: 1,
                first_line: 4
            }
        );
        assert_eq!(
            message,
            "test.tsv:5: duplicate service id 1, first used on line 4"
        );
    }

    #[test]
    fn unknown_channel_letter_is_reported() {
        let (line, problem, _) = line_error(&[&with_column(5, "O X")]);
        assert_eq!(line, 4);
        assert_eq!(problem, LineProblem::UnknownChannel("X".into()));
        let (_, problem, _) = line_error(&[&with_column(5, "F, F")]);
        assert_eq!(problem, LineProblem::DuplicateChannel("F".into()));
        let (_, problem, _) = line_error(&[&with_column(5, "")]);
        assert_eq!(problem, LineProblem::EmptyColumn { column: "channels" });
    }

    #[test]
    fn bad_values_are_reported_per_column() {
        let cases = [
            (0, "0", LineProblem::BadId("0".into())),
            (0, "x1", LineProblem::BadId("x1".into())),
            (2, "", LineProblem::EmptyColumn { column: "name_en" }),
            (7, "10,000", LineProblem::BadFee("10,000".into())),
            (7, "-5", LineProblem::BadFee("-5".into())),
            (
                7,
                "99999999999999999999999",
                LineProblem::BadFee("99999999999999999999999".into()),
            ),
            (
                8,
                "maybe",
                LineProblem::BadMark {
                    column: "fee_mark",
                    value: "maybe".into(),
                },
            ),
            (9, "same day", LineProblem::HalfUnknown { column: "time" }),
        ];
        for (column, value, expected) in cases {
            let (_, problem, _) = line_error(&[&with_column(column, value)]);
            assert_eq!(problem, expected, "column {column} = {value:?}");
        }
    }

    #[test]
    fn fee_amounts_and_crlf_lines_parse() {
        let line = format!("{}\r", with_column(7, "2500"));
        let services = parse(&catalog(&[&line]), "test.tsv").expect("valid");
        assert_eq!(services[&ServiceId(1)].fee, Fee::Amount(2500));
    }

    #[test]
    fn wrong_header_is_reported_on_its_line() {
        let text = format!("# c\nid\ttopic\n{GOOD}\n");
        let err = parse(&text, "h.tsv").expect_err("bad header");
        assert!(matches!(
            err,
            Error::Line {
                line: 2,
                problem: LineProblem::BadHeader { .. },
                ..
            }
        ));
    }

    #[test]
    fn catalog_without_services_is_empty() {
        assert!(matches!(
            parse(&catalog(&[]), "e.tsv"),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(parse("", "e.tsv"), Err(Error::Empty { .. })));
        let with_bom = format!("\u{feff}{}", catalog(&[GOOD]));
        assert_eq!(parse(&with_bom, "bom.tsv").expect("valid").len(), 1);
    }

    #[test]
    fn arbitrary_text_never_panics() {
        for text in ["\t\t\t", "id", "\u{feff}id\n", "#\n\n\t", "1\t\u{0}\t\n\n"] {
            assert!(parse(text, "junk").is_err());
        }
    }
}
