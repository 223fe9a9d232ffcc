//! Parser for the supported subset of W3C SRGS 1.0 ABNF (section 4 of the SRGS spec).
//!
//! Owns lexing and parsing of grammar text into [`crate::ast`]; semantic checks (undefined
//! rules, recursion, DTMF keys) are done by [`crate::Grammar`]. No IO. Positions are 1-based
//! line and column in characters.
//!
//! Supported: the self-identifying header `#ABNF 1.0 [encoding];`, the declarations
//! `language`, `mode voice|dtmf`, `root $rule` and `tag-format <...>` (accepted, ignored), rule
//! definitions `[public|private] $rule = expansion;`, alternatives `|` with weights `/2.0/`,
//! sequences, `( )`, `[ ]`, repeats `<m-n>`, `<m->`, `<n>`, local rule references, `$NULL`,
//! `$VOID`, `$GARBAGE`, bare and quoted tokens, `//` and `/* */` comments and tags.
//!
//! Tags use a small subset of SISR: statements separated by `;`, each `out = VALUE` or
//! `out.slot = VALUE`, where VALUE is a quoted string, a number, `$rule` or `rules.rule`
//! (the value of the latest match of that rule in the current rule). A tag whose text does not
//! start with `out` is a literal (`{complaint}` means `out = "complaint"`), as with the
//! `semantics/1.0-literals` tag format.
//!
//! Not supported (an `Unsupported` error names them): `base`, `lexicon`, `meta` and `http-equiv`
//! declarations, external rule references (`$<uri>`), language attachments (`!en`) and repeat
//! probabilities (`<1-3 /0.5>`).

use crate::ast::{Alternative, Assignment, Expansion, GrammarFile, Mode, Rule, Scope, TagValue};
use crate::error::{Error, Position, Result};

/// Parses ABNF text. `origin` names the source in error messages (usually its path).
pub fn parse(src: &str, origin: &str) -> Result<GrammarFile> {
    let tokens = Lexer::new(src, origin, 1, 1).run()?;
    Parser {
        tokens,
        i: 0,
        depth: 0,
    }
    .file()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    RuleName(String),
    /// Tag content and the position of its first character.
    Tag(String, Position),
    Angle(String),
    Weight(String),
    Sym(char),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Quoted(q) => format!("\"{q}\""),
            Tok::RuleName(n) => format!("`${n}`"),
            Tok::Tag(..) => "a tag".to_string(),
            Tok::Angle(a) => format!("`<{a}>`"),
            Tok::Weight(w) => format!("`/{w}/`"),
            Tok::Sym(c) => format!("`{c}`"),
            Tok::Eof => "end of input".to_string(),
        }
    }
}

const SYMBOLS: &[char] = &[';', '=', '|', '(', ')', '[', ']'];

fn is_word_char(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            ';' | '=' | '|' | '(' | ')' | '[' | ']' | '<' | '>' | '{' | '}' | '"' | '/' | '$' | '!'
        )
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

struct Lexer<'a> {
    chars: Vec<char>,
    i: usize,
    line: u32,
    column: u32,
    origin: &'a str,
}

impl<'a> Lexer<'a> {
    fn new(src: &str, origin: &'a str, line: u32, column: u32) -> Self {
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        Lexer {
            chars: src.chars().collect(),
            i: 0,
            line,
            column,
            origin,
        }
    }

    fn pos(&self) -> Position {
        Position {
            origin: self.origin.to_string(),
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek2(&self) -> Option<char> {
        self.chars.get(self.i + 1).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn err(&self, at: Position, expected: &str, found: &str) -> Error {
        Error::Syntax {
            at,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    fn found_here(&self) -> String {
        self.peek()
            .map_or_else(|| "end of input".to_string(), |c| format!("`{c}`"))
    }

    /// Skips whitespace and comments.
    fn skip_trivia(&mut self) -> Result<()> {
        loop {
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match (self.peek(), self.peek2()) {
                            (Some('*'), Some('/')) => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            (Some(_), _) => {
                                self.bump();
                            }
                            (None, _) => {
                                return Err(self.err(
                                    start,
                                    "`*/` closing this comment",
                                    "end of input",
                                ));
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn run(mut self) -> Result<Vec<(Tok, Position)>> {
        let mut out = Vec::new();
        loop {
            self.skip_trivia()?;
            let at = self.pos();
            let Some(c) = self.peek() else {
                out.push((Tok::Eof, at));
                return Ok(out);
            };
            let tok = match c {
                c if SYMBOLS.contains(&c) => {
                    self.bump();
                    Tok::Sym(c)
                }
                '"' => {
                    self.bump();
                    let mut s = String::new();
                    loop {
                        match self.bump() {
                            Some('"') => break,
                            Some('\\') if self.peek() == Some('"') => {
                                self.bump();
                                s.push('"');
                            }
                            Some(c) => s.push(c),
                            None => {
                                return Err(self.err(at, "`\"` closing this token", "end of input"))
                            }
                        }
                    }
                    Tok::Quoted(s)
                }
                '$' => {
                    self.bump();
                    if self.peek() == Some('<') {
                        return Err(Error::Unsupported {
                            at,
                            what: "external rule reference `$<uri>`".to_string(),
                        });
                    }
                    let mut name = String::new();
                    while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
                        self.bump();
                        name.push(c);
                    }
                    if name.is_empty() {
                        return Err(self.err(
                            self.pos(),
                            "a rule name after `$`",
                            &self.found_here(),
                        ));
                    }
                    Tok::RuleName(name)
                }
                '{' => {
                    self.bump();
                    let content_at = self.pos();
                    let mut s = String::new();
                    loop {
                        match self.bump() {
                            Some('}') => break,
                            Some(c) => s.push(c),
                            None => {
                                return Err(self.err(at, "`}` closing this tag", "end of input"))
                            }
                        }
                    }
                    Tok::Tag(s, content_at)
                }
                '<' => {
                    self.bump();
                    let mut s = String::new();
                    loop {
                        match self.bump() {
                            Some('>') => break,
                            Some('\n') | None => {
                                return Err(self.err(
                                    at,
                                    "`>` closing `<` on the same line",
                                    "end of line",
                                ))
                            }
                            Some(c) => s.push(c),
                        }
                    }
                    Tok::Angle(s)
                }
                '/' => {
                    self.bump();
                    let mut s = String::new();
                    loop {
                        match self.bump() {
                            Some('/') => break,
                            Some('\n') | None => {
                                return Err(self.err(
                                    at,
                                    "`/` closing the weight on the same line",
                                    "end of line",
                                ))
                            }
                            Some(c) => s.push(c),
                        }
                    }
                    Tok::Weight(s)
                }
                '!' => {
                    return Err(Error::Unsupported {
                        at,
                        what: "language attachment `!lang`".to_string(),
                    })
                }
                '>' | '}' => {
                    return Err(self.err(
                        at,
                        "a token, rule reference, `(`, `[` or `;`",
                        &format!("`{c}`"),
                    ))
                }
                _ => {
                    let mut s = String::new();
                    while let Some(c) = self.peek().filter(|&c| is_word_char(c)) {
                        self.bump();
                        s.push(c);
                    }
                    Tok::Word(s)
                }
            };
            out.push((tok, at));
        }
    }
}

/// The deepest nesting of `( )` and `[ ]` accepted, so that matching stays well within the
/// stack.
pub const MAX_NESTING: usize = 16;
/// The largest repeat count accepted in `<m-n>`.
pub const MAX_REPEAT: u32 = 255;

struct Parser {
    tokens: Vec<(Tok, Position)>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        // The lexer always ends the list with `Eof`, and `bump` never moves past it.
        &self.tokens[self.i.min(self.tokens.len() - 1)].0
    }

    fn at(&self) -> Position {
        self.tokens[self.i.min(self.tokens.len() - 1)].1.clone()
    }

    fn bump(&mut self) -> (Tok, Position) {
        let t = self.tokens[self.i.min(self.tokens.len() - 1)].clone();
        if self.i + 1 < self.tokens.len() {
            self.i += 1;
        }
        t
    }

    fn expected(&self, what: &str) -> Error {
        Error::Syntax {
            at: self.at(),
            expected: what.to_string(),
            found: self.peek().describe(),
        }
    }

    fn expect_sym(&mut self, c: char) -> Result<()> {
        if *self.peek() == Tok::Sym(c) {
            self.bump();
            Ok(())
        } else {
            Err(self.expected(&format!("`{c}`")))
        }
    }

    fn file(mut self) -> Result<GrammarFile> {
        // Header: #ABNF 1.0 [encoding];
        if *self.peek() != Tok::Word("#ABNF".to_string()) {
            return Err(self.expected("the header `#ABNF 1.0 UTF-8;`"));
        }
        self.bump();
        let version = match self.peek().clone() {
            Tok::Word(v) if v == "1.0" => {
                self.bump();
                v
            }
            _ => return Err(self.expected("ABNF version `1.0`")),
        };
        let encoding = match self.peek().clone() {
            Tok::Word(e) => {
                self.bump();
                Some(e)
            }
            _ => None,
        };
        self.expect_sym(';')?;

        let mut file = GrammarFile {
            version,
            encoding,
            language: None,
            mode: Mode::Voice,
            root: None,
            rules: Vec::new(),
        };
        // Declarations, then rules.
        loop {
            let at = self.at();
            match self.peek().clone() {
                Tok::Word(w) if w == "language" => {
                    self.bump();
                    let at = self.at();
                    match self.peek().clone() {
                        Tok::Word(l) => {
                            self.bump();
                            file.language = Some((l, at));
                        }
                        _ => return Err(self.expected("a language tag such as `en` or `mn`")),
                    }
                    self.expect_sym(';')?;
                }
                Tok::Word(w) if w == "mode" => {
                    self.bump();
                    file.mode = match self.peek() {
                        Tok::Word(m) if m == "voice" => Mode::Voice,
                        Tok::Word(m) if m == "dtmf" => Mode::Dtmf,
                        _ => return Err(self.expected("`voice` or `dtmf`")),
                    };
                    self.bump();
                    self.expect_sym(';')?;
                }
                Tok::Word(w) if w == "root" => {
                    self.bump();
                    let at = self.at();
                    match self.peek().clone() {
                        Tok::RuleName(n) => {
                            self.bump();
                            file.root = Some((n, at));
                        }
                        _ => return Err(self.expected("a rule name such as `$main`")),
                    }
                    self.expect_sym(';')?;
                }
                Tok::Word(w) if w == "tag-format" => {
                    self.bump();
                    match self.peek() {
                        Tok::Angle(_) | Tok::Word(_) => {
                            self.bump();
                        }
                        _ => return Err(self.expected("a tag format such as `<semantics/1.0>`")),
                    }
                    self.expect_sym(';')?;
                }
                Tok::Word(w)
                    if matches!(w.as_str(), "base" | "lexicon" | "meta" | "http-equiv") =>
                {
                    return Err(Error::Unsupported {
                        at,
                        what: format!("the `{w}` declaration"),
                    });
                }
                _ => break,
            }
        }
        loop {
            let at = self.at();
            let scope = match self.peek() {
                Tok::Word(w) if w == "public" => {
                    self.bump();
                    Scope::Public
                }
                Tok::Word(w) if w == "private" => {
                    self.bump();
                    Scope::Private
                }
                Tok::Eof => break,
                _ => Scope::Private,
            };
            let name = match self.peek().clone() {
                Tok::RuleName(n) => {
                    if matches!(n.as_str(), "NULL" | "VOID" | "GARBAGE") {
                        return Err(self.expected("a rule name other than a special rule"));
                    }
                    self.bump();
                    n
                }
                _ => return Err(self.expected("a rule definition such as `public $name = ...;`")),
            };
            self.expect_sym('=')?;
            let body = self.alternatives()?;
            self.expect_sym(';')?;
            file.rules.push(Rule {
                name,
                scope,
                body,
                at,
            });
        }
        Ok(file)
    }

    /// Alternatives after an opening `(` or `[`, within [`MAX_NESTING`].
    fn nested(&mut self) -> Result<Expansion> {
        if self.depth >= MAX_NESTING {
            return Err(Error::Unsupported {
                at: self.at(),
                what: format!("nesting deeper than {MAX_NESTING}"),
            });
        }
        self.bump();
        self.depth += 1;
        let inner = self.alternatives();
        self.depth -= 1;
        inner
    }

    fn alternatives(&mut self) -> Result<Expansion> {
        let mut alts = vec![self.alternative()?];
        while *self.peek() == Tok::Sym('|') {
            self.bump();
            alts.push(self.alternative()?);
        }
        if alts.len() == 1 && alts[0].weight == 1.0 {
            // Checked non-empty just above.
            return Ok(alts.pop().map(|a| a.expansion).unwrap_or(Expansion::Null));
        }
        Ok(Expansion::Alternatives(alts))
    }

    fn alternative(&mut self) -> Result<Alternative> {
        let mut weight = 1.0;
        if let Tok::Weight(w) = self.peek().clone() {
            let at = self.at();
            weight = match w.trim().parse::<f32>() {
                Ok(x) if x.is_finite() && x >= 0.0 => x,
                _ => {
                    return Err(Error::Syntax {
                        at,
                        expected: "a non-negative number as weight".to_string(),
                        found: format!("`/{w}/`"),
                    })
                }
            };
            self.bump();
        }
        let mut items = Vec::new();
        while let Some(item) = self.item()? {
            items.push(item);
        }
        if items.is_empty() {
            return Err(self.expected("a token, rule reference, tag, `(` or `[`"));
        }
        let expansion = if items.len() == 1 {
            items.pop().unwrap_or(Expansion::Null)
        } else {
            Expansion::Sequence(items)
        };
        Ok(Alternative { weight, expansion })
    }

    /// One item with its repeat suffix, or `None` where the sequence ends.
    fn item(&mut self) -> Result<Option<Expansion>> {
        let at = self.at();
        let primary = match self.peek().clone() {
            Tok::Word(w) => {
                self.bump();
                Expansion::Token { text: w, at }
            }
            Tok::Quoted(q) => {
                self.bump();
                Expansion::Token { text: q, at }
            }
            Tok::RuleName(n) => {
                self.bump();
                match n.as_str() {
                    "NULL" => Expansion::Null,
                    "VOID" => Expansion::Void,
                    "GARBAGE" => Expansion::Garbage,
                    _ => Expansion::RuleRef { name: n, at },
                }
            }
            Tok::Tag(content, content_at) => {
                self.bump();
                return Ok(Some(Expansion::Tag(parse_tag(&content, content_at)?)));
            }
            Tok::Sym('(') => {
                let inner = self.nested()?;
                self.expect_sym(')')?;
                inner
            }
            Tok::Sym('[') => {
                let inner = self.nested()?;
                self.expect_sym(']')?;
                Expansion::Repeat {
                    item: Box::new(inner),
                    min: 0,
                    max: Some(1),
                }
            }
            _ => return Ok(None),
        };
        let mut item = primary;
        while let Tok::Angle(spec) = self.peek().clone() {
            let at = self.at();
            self.bump();
            let (min, max) = parse_repeat(&spec, at)?;
            item = Expansion::Repeat {
                item: Box::new(item),
                min,
                max,
            };
        }
        Ok(Some(item))
    }
}

fn parse_repeat(spec: &str, at: Position) -> Result<(u32, Option<u32>)> {
    if spec.contains('/') {
        return Err(Error::Unsupported {
            at,
            what: "repeat probability".to_string(),
        });
    }
    let bad = |at: Position| Error::Syntax {
        at,
        expected: "a repeat `<n>`, `<m-n>` or `<m->`".to_string(),
        found: format!("`<{spec}>`"),
    };
    let num = |s: &str| s.trim().parse::<u32>().ok();
    let (min, max) = match spec.split_once('-') {
        None => {
            let n = num(spec).ok_or_else(|| bad(at.clone()))?;
            (n, Some(n))
        }
        Some((a, b)) if b.trim().is_empty() => (num(a).ok_or_else(|| bad(at.clone()))?, None),
        Some((a, b)) => (
            num(a).ok_or_else(|| bad(at.clone()))?,
            Some(num(b).ok_or_else(|| bad(at.clone()))?),
        ),
    };
    if max.is_some_and(|m| m < min) || max == Some(0) {
        return Err(bad(at));
    }
    if min.max(max.unwrap_or(0)) > MAX_REPEAT {
        return Err(Error::Unsupported {
            at,
            what: format!("repeat counts above {MAX_REPEAT}"),
        });
    }
    Ok((min, max))
}

/// Parses the content of a tag; `at` is the position of its first character.
fn parse_tag(content: &str, at: Position) -> Result<Vec<Assignment>> {
    let trimmed = content.trim();
    if !trimmed.starts_with("out")
        || trimmed[3..]
            .chars()
            .next()
            .is_some_and(|c| is_name_char(c) && c != '.')
    {
        // semantics/1.0-literals: the whole tag is the value.
        if trimmed.is_empty() {
            return Ok(Vec::new());
        }
        return Ok(vec![Assignment {
            slot: None,
            value: TagValue::Literal(trimmed.to_string()),
        }]);
    }
    let mut cur = TagCursor {
        lx: Lexer::new(content, &at.origin, at.line, at.column),
    };
    let mut out = Vec::new();
    loop {
        cur.skip_ws();
        if cur.lx.peek().is_none() {
            break;
        }
        out.push(cur.statement()?);
        cur.skip_ws();
        match cur.lx.peek() {
            Some(';') => {
                cur.lx.bump();
            }
            None => break,
            Some(_) => return Err(cur.err("`;` or the end of the tag")),
        }
    }
    Ok(out)
}

struct TagCursor<'a> {
    lx: Lexer<'a>,
}

impl TagCursor<'_> {
    fn pos(&self) -> Position {
        self.lx.pos()
    }

    fn err(&self, expected: &str) -> Error {
        let found = self
            .lx
            .peek()
            .map_or_else(|| "the end of the tag".to_string(), |c| format!("`{c}`"));
        Error::Syntax {
            at: self.pos(),
            expected: expected.to_string(),
            found,
        }
    }

    fn skip_ws(&mut self) {
        while self.lx.peek().is_some_and(char::is_whitespace) {
            self.lx.bump();
        }
    }

    fn name(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.lx.peek().filter(|&c| is_name_char(c) && c != '.') {
            self.lx.bump();
            s.push(c);
        }
        s
    }

    fn statement(&mut self) -> Result<Assignment> {
        if self.name() != "out" {
            return Err(self.err("`out`"));
        }
        let slot = if self.lx.peek() == Some('.') {
            self.lx.bump();
            let s = self.name();
            if s.is_empty() {
                return Err(self.err("a slot name after `out.`"));
            }
            Some(s)
        } else {
            None
        };
        self.skip_ws();
        if self.lx.peek() != Some('=') {
            return Err(self.err("`=`"));
        }
        self.lx.bump();
        self.skip_ws();
        let at = self.pos();
        let value = match self.lx.peek() {
            Some(q @ ('"' | '\'')) => {
                self.lx.bump();
                let mut s = String::new();
                loop {
                    match self.lx.bump() {
                        Some(c) if c == q => break,
                        Some(c) => s.push(c),
                        None => {
                            return Err(Error::Syntax {
                                at,
                                expected: format!("`{q}` closing this string"),
                                found: "the end of the tag".to_string(),
                            })
                        }
                    }
                }
                TagValue::Literal(s)
            }
            Some('$') => {
                self.lx.bump();
                let name = self.name();
                if name.is_empty() {
                    return Err(self.err("a rule name after `$`"));
                }
                TagValue::Rule { name, at }
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let mut s = String::new();
                while let Some(c) = self
                    .lx
                    .peek()
                    .filter(|c| c.is_ascii_digit() || matches!(c, '-' | '.'))
                {
                    self.lx.bump();
                    s.push(c);
                }
                if s.parse::<f64>().is_err() {
                    return Err(Error::Syntax {
                        at,
                        expected: "a number".to_string(),
                        found: format!("`{s}`"),
                    });
                }
                TagValue::Literal(s)
            }
            Some(_) => {
                let word = self.name();
                if word != "rules" || self.lx.peek() != Some('.') {
                    return Err(Error::Syntax {
                        at,
                        expected: "a string, a number, `$rule` or `rules.rule`".to_string(),
                        found: format!("`{word}`"),
                    });
                }
                self.lx.bump();
                let at = self.pos();
                let name = self.name();
                if name.is_empty() {
                    return Err(self.err("a rule name after `rules.`"));
                }
                TagValue::Rule { name, at }
            }
            None => return Err(self.err("a value")),
        };
        Ok(Assignment { slot, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(src: &str) -> String {
        match parse(src, "t.abnf") {
            Ok(g) => panic!("expected an error, parsed {g:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_header_declarations_and_rules() {
        let src = "#ABNF 1.0 UTF-8;\nlanguage en-US;\nmode voice;\nroot $yes;\ntag-format <semantics/1.0>;\n\
                   // a comment\npublic $yes = /2/ yes {out = \"yes\";} | (yeah | \"of course\") [please];\n\
                   private $d = /* inline */ 1<2-3> $NULL $GARBAGE;\n";
        let g = parse(src, "t.abnf").expect("valid grammar");
        assert_eq!(g.encoding.as_deref(), Some("UTF-8"));
        assert_eq!(g.language.as_ref().map(|l| l.0.as_str()), Some("en-US"));
        assert_eq!(g.mode, Mode::Voice);
        assert_eq!(g.root.as_ref().map(|r| r.0.as_str()), Some("yes"));
        assert_eq!(g.rules.len(), 2);
        assert_eq!(g.rules[0].scope, Scope::Public);
        assert_eq!(g.rules[1].scope, Scope::Private);
        let Expansion::Alternatives(alts) = &g.rules[0].body else {
            panic!("alternatives expected")
        };
        assert_eq!(alts.len(), 2);
        assert_eq!(alts[0].weight, 2.0);
        let Expansion::Sequence(items) = &alts[0].expansion else {
            panic!("sequence expected")
        };
        assert_eq!(
            items[1],
            Expansion::Tag(vec![Assignment {
                slot: None,
                value: TagValue::Literal("yes".into())
            }])
        );
        let Expansion::Sequence(items) = &g.rules[1].body else {
            panic!("sequence expected")
        };
        assert!(matches!(
            &items[0],
            Expansion::Repeat {
                min: 2,
                max: Some(3),
                ..
            }
        ));
        assert_eq!(items[1], Expansion::Null);
        assert_eq!(items[2], Expansion::Garbage);
    }

    #[test]
    fn parses_repeat_forms_and_dtmf_mode() {
        let g = parse("#ABNF 1.0;\nmode dtmf;\n$a = 1<3> 2<1-> [3];", "t").expect("valid");
        assert_eq!(g.mode, Mode::Dtmf);
        let Expansion::Sequence(items) = &g.rules[0].body else {
            panic!("sequence expected")
        };
        assert!(matches!(
            &items[0],
            Expansion::Repeat {
                min: 3,
                max: Some(3),
                ..
            }
        ));
        assert!(matches!(
            &items[1],
            Expansion::Repeat {
                min: 1,
                max: None,
                ..
            }
        ));
        assert!(matches!(
            &items[2],
            Expansion::Repeat {
                min: 0,
                max: Some(1),
                ..
            }
        ));
    }

    #[test]
    fn parses_tag_forms() {
        let g = parse(
            "#ABNF 1.0;\n$a = $b {out.kind = $b; out.n = 3; out.c = rules.b} {thanks};\n$b = x;",
            "t",
        )
        .expect("valid");
        let Expansion::Sequence(items) = &g.rules[0].body else {
            panic!("sequence expected")
        };
        let Expansion::Tag(stmts) = &items[1] else {
            panic!("tag expected")
        };
        assert_eq!(stmts.len(), 3);
        assert_eq!(stmts[0].slot.as_deref(), Some("kind"));
        assert!(matches!(&stmts[0].value, TagValue::Rule { name, .. } if name == "b"));
        assert_eq!(stmts[1].value, TagValue::Literal("3".into()));
        assert!(matches!(&stmts[2].value, TagValue::Rule { name, .. } if name == "b"));
        assert_eq!(
            items[2],
            Expansion::Tag(vec![Assignment {
                slot: None,
                value: TagValue::Literal("thanks".into())
            }])
        );
    }

    #[test]
    fn cyrillic_tokens_are_words() {
        let g = parse(
            "#ABNF 1.0 UTF-8;\nlanguage mn;\n$a = гомдол | \"санал хүсэлт\";",
            "t",
        )
        .expect("valid");
        let Expansion::Alternatives(alts) = &g.rules[0].body else {
            panic!("alternatives expected")
        };
        assert!(matches!(&alts[0].expansion, Expansion::Token { text, .. } if text == "гомдол"));
        assert!(
            matches!(&alts[1].expansion, Expansion::Token { text, .. } if text == "санал хүсэлт")
        );
    }

    #[test]
    fn broken_grammars_report_line_column_and_expectation() {
        let cases: &[(&str, &str)] = &[
            (
                "$a = x;",
                "t.abnf:1:1: expected the header `#ABNF 1.0 UTF-8;`, found `$a`",
            ),
            (
                "#ABNF 2.0;",
                "t.abnf:1:7: expected ABNF version `1.0`, found `2.0`",
            ),
            (
                "#ABNF 1.0;\n$a = x",
                "t.abnf:2:7: expected `;`, found end of input",
            ),
            (
                "#ABNF 1.0;\n$a = ;",
                "t.abnf:2:6: expected a token, rule reference, tag, `(` or `[`, found `;`",
            ),
            (
                "#ABNF 1.0;\n$a = (x | y;",
                "t.abnf:2:12: expected `)`, found `;`",
            ),
            (
                "#ABNF 1.0;\n$a = x |;",
                "t.abnf:2:9: expected a token, rule reference, tag, `(` or `[`, found `;`",
            ),
            (
                "#ABNF 1.0;\nmode phone;",
                "t.abnf:2:6: expected `voice` or `dtmf`, found `phone`",
            ),
            (
                "#ABNF 1.0;\n$a = x<3-1>;",
                "t.abnf:2:7: expected a repeat `<n>`, `<m-n>` or `<m->`, found `<3-1>`",
            ),
            (
                "#ABNF 1.0;\n$a = x<a>;",
                "t.abnf:2:7: expected a repeat `<n>`, `<m-n>` or `<m->`, found `<a>`",
            ),
            (
                "#ABNF 1.0;\n$a = \"open;",
                "t.abnf:2:6: expected `\"` closing this token, found end of input",
            ),
            (
                "#ABNF 1.0;\n/* never closed\n$a = x;",
                "t.abnf:2:1: expected `*/` closing this comment, found end of input",
            ),
            (
                "#ABNF 1.0;\n$a = /x/ y;",
                "t.abnf:2:6: expected a non-negative number as weight, found `/x/`",
            ),
            (
                "#ABNF 1.0;\n$a = x {out = ;};",
                "t.abnf:2:15: expected a string, a number, `$rule` or `rules.rule`, found ``",
            ),
            (
                "#ABNF 1.0;\n$a = x {out.k \"v\"};",
                "t.abnf:2:15: expected `=`, found `\"`",
            ),
            (
                "#ABNF 1.0;\n$a = x {out = 'v' out = 'w'};",
                "t.abnf:2:19: expected `;` or the end of the tag, found `o`",
            ),
            (
                "#ABNF 1.0;\n$a = x {out = \"v};",
                "t.abnf:2:15: expected `\"` closing this string, found the end of the tag",
            ),
            (
                "#ABNF 1.0;\nroot main;",
                "t.abnf:2:6: expected a rule name such as `$main`, found `main`",
            ),
            (
                "#ABNF 1.0;\n$NULL = x;",
                "t.abnf:2:1: expected a rule name other than a special rule, found `$NULL`",
            ),
            (
                "#ABNF 1.0;\n$a = x $;",
                "t.abnf:2:9: expected a rule name after `$`, found `;`",
            ),
            (
                "#ABNF 1.0;\na = x;",
                "t.abnf:2:1: expected a rule definition such as `public $name = ...;`, found `a`",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(&err_of(src), want, "source: {src:?}");
        }
    }

    #[test]
    fn hostile_nesting_and_repeats_are_refused_not_overflowed() {
        let deep = format!(
            "#ABNF 1.0;\n$a = {}x{};",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert_eq!(
            err_of(&deep),
            "t.abnf:2:22: unsupported: nesting deeper than 16"
        );
        assert_eq!(
            err_of("#ABNF 1.0;\n$a = x<256>;"),
            "t.abnf:2:7: unsupported: repeat counts above 255"
        );
        assert_eq!(
            err_of("#ABNF 1.0;\n$a = x<1-99999999999>;"),
            "t.abnf:2:7: expected a repeat `<n>`, `<m-n>` or `<m->`, found `<1-99999999999>`"
        );
        assert_eq!(
            err_of("#ABNF 1.0;\nlanguage"),
            "t.abnf:2:9: expected a language tag such as `en` or `mn`, found end of input"
        );
    }

    #[test]
    fn unsupported_constructs_are_named() {
        assert_eq!(
            err_of("#ABNF 1.0;\nbase <http://x>;"),
            "t.abnf:2:1: unsupported: the `base` declaration"
        );
        assert_eq!(
            err_of("#ABNF 1.0;\n$a = $<other.abnf>;"),
            "t.abnf:2:6: unsupported: external rule reference `$<uri>`"
        );
        assert_eq!(
            err_of("#ABNF 1.0;\n$a = x!en;"),
            "t.abnf:2:7: unsupported: language attachment `!lang`"
        );
        assert_eq!(
            err_of("#ABNF 1.0;\n$a = x<1-2 /0.5>;"),
            "t.abnf:2:7: unsupported: repeat probability"
        );
    }
}
