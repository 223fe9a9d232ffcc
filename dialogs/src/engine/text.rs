//! Words the engine fills into prompts: case types, statuses, phone numbers.

use grammars::Lang;

use crate::flow::Value;
use crate::registry::{CaseStatus, CaseType};

/// A case type as the prompts name it.
pub(super) fn case_type(t: CaseType, lang: Lang) -> &'static str {
    match (t, lang) {
        (CaseType::Complaint, Lang::En) => "complaint",
        (CaseType::Suggestion, Lang::En) => "suggestion or request",
        (CaseType::Petition, Lang::En) => "petition",
        (CaseType::Criticism, Lang::En) => "criticism",
        (CaseType::Thanks, Lang::En) => "message of thanks",
        (CaseType::Complaint, Lang::Mn) => "гомдол",
        (CaseType::Suggestion, Lang::Mn) => "санал хүсэлт",
        (CaseType::Petition, Lang::Mn) => "өргөдөл",
        (CaseType::Criticism, Lang::Mn) => "шүүмжлэл",
        (CaseType::Thanks, Lang::Mn) => "талархал",
    }
}

/// A case status as the prompts say it.
pub(super) fn status(s: CaseStatus, lang: Lang) -> &'static str {
    match (s, lang) {
        (CaseStatus::Received, Lang::En) => "received, waiting to be sent to the agency",
        (CaseStatus::Forwarded, Lang::En) => "with the agency, waiting for its answer",
        (CaseStatus::Answered, Lang::En) => "answered",
        (CaseStatus::Closed, Lang::En) => "closed",
        (CaseStatus::Extended, Lang::En) => "the deadline was extended",
        (CaseStatus::Received, Lang::Mn) => "хүлээн авсан",
        (CaseStatus::Forwarded, Lang::Mn) => "байгууллагад шилжүүлсэн, хариу хүлээж байна",
        (CaseStatus::Answered, Lang::Mn) => "хариу өгсөн",
        (CaseStatus::Closed, Lang::Mn) => "хаагдсан",
        (CaseStatus::Extended, Lang::Mn) => "хугацааг сунгасан",
    }
}

/// Who holds a case before an agency is named.
pub(super) fn default_agency(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "the 11-11 Centre",
        Lang::Mn => "11-11 төв",
    }
}

/// A phone number read in groups: a Mongolian number without its +976, 4-4.
pub(super) fn phone_value(raw: &str) -> Value {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let local = match digits.strip_prefix("976") {
        Some(rest) if rest.len() == 8 && raw.trim_start().starts_with('+') => rest.to_string(),
        _ => digits,
    };
    let groups = if local.len() == 8 {
        vec![4, 4]
    } else {
        vec![3, 3, 4]
    };
    Value::Digits {
        digits: local,
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mongolian_numbers_lose_the_country_code() {
        assert_eq!(
            phone_value("+97699112233"),
            Value::Digits {
                digits: "99112233".into(),
                groups: vec![4, 4]
            }
        );
        assert_eq!(
            phone_value("0044 20 7946 0000"),
            Value::Digits {
                digits: "00442079460000".into(),
                groups: vec![3, 3, 4]
            }
        );
    }
}
