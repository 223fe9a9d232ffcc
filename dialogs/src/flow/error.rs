//! What is wrong with a flow, with file, line and column.

use std::fmt;

/// One problem found while loading a flow, its prompts or its grammars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (as given to the loader, or a `(built in)` name).
    pub origin: String,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based column in characters; 0 when unknown.
    pub column: usize,
    /// What is wrong, in words a flow author can act on.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            _ if self.origin.is_empty() => f.write_str(&self.message),
            (0, _) => write!(f, "{}: {}", self.origin, self.message),
            (line, 0) => write!(f, "{}:{line}: {}", self.origin, self.message),
            (line, column) => write!(f, "{}:{line}:{column}: {}", self.origin, self.message),
        }
    }
}

/// Why a flow could not be loaded: every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FlowError {
    /// The problems, at least one.
    pub problems: Vec<Problem>,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "the flow has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.problems.iter().enumerate() {
            if i + 1 == n {
                write!(f, "  {p}")?;
            } else {
                writeln!(f, "  {p}")?;
            }
        }
        Ok(())
    }
}

/// Line and column (1-based, columns in characters) of a byte offset in `src`.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let mut start = offset;
    while !src.is_char_boundary(start) {
        start -= 1;
    }
    let before = &src[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let src = "ab\nсайн x\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 3), (2, 1));
        // "сайн " is 9 bytes; x is the 6th character of line 2.
        assert_eq!(line_col(src, 3 + 9), (2, 6));
        assert_eq!(line_col(src, 1000), (3, 1));
    }

    #[test]
    fn display_lists_every_problem() {
        let e = FlowError {
            problems: vec![
                Problem {
                    origin: "f.toml".into(),
                    line: 3,
                    column: 7,
                    message: "unknown state `x`".into(),
                },
                Problem {
                    origin: "p.tsv".into(),
                    line: 0,
                    column: 0,
                    message: "empty".into(),
                },
            ],
        };
        let text = e.to_string();
        assert!(text.contains("2 problems"));
        assert!(text.contains("f.toml:3:7: unknown state `x`"));
        assert!(text.contains("p.tsv: empty"));
    }
}
