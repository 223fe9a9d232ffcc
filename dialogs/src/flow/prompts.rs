//! Prompt texts per locale, with `{name}` placeholders the engine fills.
//!
//! The file is tab-separated UTF-8: a header line `id<TAB>mn<TAB>en` (columns in any order,
//! named by locale tag), then one prompt a line. Lines starting with `#` and blank lines are
//! ignored. Every prompt needs a text in every locale. A placeholder is `{name}` with `name`
//! made of ASCII letters, digits and `_`; a prompt whose placeholder has no value when it is
//! spoken is left out (so `STAT_ANSWER {answer}` is said only when there is an answer).

use std::collections::BTreeMap;
use std::fmt;

use grammars::Lang;
use time::Date;

use super::error::Problem;

/// Both locales, in the order prompt texts are stored.
pub const LOCALES: [Lang; 2] = [Lang::Mn, Lang::En];

fn slot(lang: Lang) -> usize {
    match lang {
        Lang::Mn => 0,
        Lang::En => 1,
    }
}

/// A piece of a prompt template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A prompt text with its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; the error says what is wrong and at which character (1-based).
    pub fn parse(text: &str) -> Result<Template, (usize, String)> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err((i + 1, "`{` without a closing `}`".into()));
                    }
                    let name = name.trim();
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err((
                            i + 1,
                            format!(
                                "placeholder `{{{name}}}` must be a name of ASCII letters, digits and `_`"
                            ),
                        ));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Var(name.to_string()));
                }
                '}' => return Err((i + 1, "`}` without an opening `{`".into())),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }

    /// The placeholder names, in order of appearance.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// The parts to speak with `vars` filled in, or `None` when a placeholder has no value.
    pub fn fill(&self, vars: &Vars) -> Option<Vec<Part>> {
        let mut parts = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => parts.push(Part::Text(t.clone())),
                Piece::Var(name) => parts.push(vars.get(name)?.clone()),
            }
        }
        Some(parts)
    }
}

/// A value filled into a placeholder: the same pieces a prompt is spoken in (words, a code in
/// groups, a date, a number, a key).
pub type Value = Part;

/// Values of placeholders by name.
pub type Vars = BTreeMap<String, Value>;

/// A piece of what is to be said: text to synthesize, or a value the speaker reads in the
/// locale's way (the verbalizer, or recorded digit clips).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Words.
    Text(String),
    /// Digits read one by one, with a pause between groups.
    Digits {
        /// The digits.
        digits: String,
        /// Group lengths.
        groups: Vec<usize>,
    },
    /// A date.
    Date(Date),
    /// A number.
    Number(i64),
    /// A key in "press N".
    Key(char),
}

impl Part {
    /// The part as display text in `lang` (what `ivr chat` prints and logs show).
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Part::Text(t) => t.clone(),
            Part::Digits { digits, groups } => group_digits(digits, groups),
            Part::Date(d) => date_text(*d, lang),
            Part::Number(n) => n.to_string(),
            Part::Key(k) => key_text(*k, lang),
        }
    }
}

/// `digits` split into `groups` (any rest in a last group), joined by spaces.
pub fn group_digits(digits: &str, groups: &[usize]) -> String {
    let chars: Vec<char> = digits.chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    for &g in groups {
        if at >= chars.len() {
            break;
        }
        let end = (at + g).min(chars.len());
        out.push(chars[at..end].iter().collect::<String>());
        at = end;
    }
    if at < chars.len() {
        out.push(chars[at..].iter().collect());
    }
    out.join(" ")
}

fn date_text(d: Date, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{} {} {}", d.day(), d.month(), d.year()),
        Lang::Mn => format!("{} оны {} сарын {}", d.year(), u8::from(d.month()), d.day()),
    }
}

fn key_text(k: char, lang: Lang) -> String {
    match (lang, k) {
        (Lang::En, '*') => "star".into(),
        (Lang::En, '#') => "the hash key".into(),
        (Lang::En, k) => k.to_string(),
        (Lang::Mn, '*') => "одтой товчийг".into(),
        (Lang::Mn, '#') => "тортой товчийг".into(),
        (Lang::Mn, k) => match k {
            '0' => "тэгийг",
            '1' => "нэгийг",
            '2' => "хоёрыг",
            '3' => "гурвыг",
            '4' => "дөрвийг",
            '5' => "тавыг",
            '6' => "зургааг",
            '7' => "долоог",
            '8' => "наймыг",
            '9' => "есийг",
            _ => return k.to_string(),
        }
        .into(),
    }
}

/// One prompt: its id and text in each locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The id (`MAIN`, `CMP_DONE`).
    pub id: String,
    texts: [Template; 2],
    /// The line of the prompts file it came from.
    pub line: usize,
}

impl Prompt {
    /// The text in `lang`.
    pub fn template(&self, lang: Lang) -> &Template {
        &self.texts[slot(lang)]
    }
}

/// Every prompt of a flow, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompts {
    by_id: BTreeMap<String, Prompt>,
    origin: String,
}

impl fmt::Display for Prompts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} prompts)", self.origin, self.by_id.len())
    }
}

impl Prompts {
    /// Parses a prompts file; every problem is reported with its line.
    pub fn parse(src: &str, origin: &str) -> Result<Prompts, Vec<Problem>> {
        let problem = |line: usize, column: usize, message: String| Problem {
            origin: origin.to_string(),
            line,
            column,
            message,
        };
        let mut problems = Vec::new();
        let mut by_id: BTreeMap<String, Prompt> = BTreeMap::new();
        let mut columns: Option<(usize, [usize; 2], usize)> = None;
        for (index, raw) in src.lines().enumerate() {
            let line = index + 1;
            let text = raw.strip_suffix('\r').unwrap_or(raw);
            if text.trim().is_empty() || text.starts_with('#') {
                continue;
            }
            let cells: Vec<&str> = text.split('\t').collect();
            let Some((id_col, lang_cols, width)) = columns else {
                let find = |name: &str| cells.iter().position(|c| c.trim() == name);
                match (find("id"), find("mn"), find("en")) {
                    (Some(i), Some(m), Some(e)) => columns = Some((i, [m, e], cells.len())),
                    _ => {
                        problems.push(problem(
                            line,
                            1,
                            "the header must name the columns `id`, `mn` and `en`, tab-separated"
                                .into(),
                        ));
                        return Err(problems);
                    }
                }
                continue;
            };
            if cells.len() != width {
                problems.push(problem(
                    line,
                    1,
                    format!(
                        "expected {width} tab-separated columns, found {}",
                        cells.len()
                    ),
                ));
                continue;
            }
            let id = cells[id_col].trim();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problems.push(problem(
                    line,
                    1,
                    format!("prompt id `{id}` must be ASCII letters, digits, `_` or `-`"),
                ));
                continue;
            }
            let mut texts = Vec::with_capacity(2);
            for (k, lang) in LOCALES.iter().enumerate() {
                let raw_cell = cells[lang_cols[k]];
                let cell = raw_cell.trim();
                let leading = raw_cell.chars().count() - raw_cell.trim_start().chars().count();
                let column = cells[..lang_cols[k]]
                    .iter()
                    .map(|c| c.chars().count() + 1)
                    .sum::<usize>()
                    + 1
                    + leading;
                if cell.is_empty() {
                    problems.push(problem(
                        line,
                        column,
                        format!("prompt {id} has no {} text", lang.tag()),
                    ));
                    continue;
                }
                match Template::parse(cell) {
                    Ok(t) => texts.push(t),
                    Err((at, message)) => problems.push(problem(
                        line,
                        column + at - 1,
                        format!("prompt {id} ({}): {message}", lang.tag()),
                    )),
                }
            }
            let Ok(texts) = <[Template; 2]>::try_from(texts) else {
                continue;
            };
            if let Some(first) = by_id.get(id) {
                problems.push(problem(
                    line,
                    1,
                    format!(
                        "prompt {id} is defined twice (first on line {})",
                        first.line
                    ),
                ));
                continue;
            }
            by_id.insert(
                id.to_string(),
                Prompt {
                    id: id.to_string(),
                    texts,
                    line,
                },
            );
        }
        if columns.is_none() {
            problems.push(problem(0, 0, "no header line and no prompts".into()));
        }
        if problems.is_empty() {
            Ok(Prompts {
                by_id,
                origin: origin.to_string(),
            })
        } else {
            Err(problems)
        }
    }

    /// The prompt with this id.
    pub fn get(&self, id: &str) -> Option<&Prompt> {
        self.by_id.get(id)
    }

    /// Every prompt, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Prompt> {
        self.by_id.values()
    }

    /// The file the prompts came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_and_skip_when_a_value_is_missing() {
        let t = Template::parse("Your number is {number}. Due {due}.").expect("parses");
        assert_eq!(t.placeholders().collect::<Vec<_>>(), ["number", "due"]);
        let mut vars = Vars::new();
        vars.insert(
            "number".into(),
            Value::Digits {
                digits: "4821935567".into(),
                groups: vec![3, 3, 4],
            },
        );
        assert!(t.fill(&vars).is_none());
        vars.insert(
            "due".into(),
            Value::Date(Date::from_calendar_date(2026, time::Month::December, 27).expect("date")),
        );
        let parts = t.fill(&vars).expect("filled");
        let text: String = parts.iter().map(|p| p.text(Lang::En)).collect();
        assert_eq!(text, "Your number is 482 193 5567. Due 27 December 2026.");
        let mn: String = parts.iter().map(|p| p.text(Lang::Mn)).collect();
        assert!(mn.contains("2026 оны 12 сарын 27"));
    }

    #[test]
    fn bad_placeholders_are_reported_with_their_column() {
        assert_eq!(Template::parse("ab {x").unwrap_err().0, 4);
        assert_eq!(Template::parse("ab } x").unwrap_err().0, 4);
        assert!(Template::parse("a {дугаар} b").is_err());
        assert!(Template::parse("a {} b").is_err());
    }

    #[test]
    fn keys_read_in_each_language() {
        assert_eq!(Part::Key('3').text(Lang::Mn), "гурвыг");
        assert_eq!(Part::Key('#').text(Lang::En), "the hash key");
        assert_eq!(group_digits("12345678", &[4, 4]), "1234 5678");
        assert_eq!(group_digits("123456789", &[4, 4]), "1234 5678 9");
    }

    #[test]
    fn prompt_files_report_every_bad_line() {
        let src = "# comment\nid\tmn\ten\nA\tа\ta\nB\t\tb\nA\tа\ta\nC\tв {x\tc\nD\tonly two\n";
        let problems = Prompts::parse(src, "p.tsv").unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(text[0].starts_with("p.tsv:4:"), "{text:?}");
        assert!(text[0].contains("no mn text"));
        assert!(text[1].contains("defined twice (first on line 3)"));
        assert!(text[2].starts_with("p.tsv:6:"), "{text:?}");
        assert!(text[3].contains("expected 3 tab-separated columns"));
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let p = Prompts::parse("en\tid\tmn\nhello\tHI\tсайн\n", "p.tsv").expect("parses");
        let t = p.get("HI").expect("prompt");
        let text: String = t
            .template(Lang::Mn)
            .fill(&Vars::new())
            .expect("no vars")
            .iter()
            .map(|p| p.text(Lang::Mn))
            .collect();
        assert_eq!(text, "сайн");
    }
}
