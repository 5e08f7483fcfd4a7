//! Diagnostics that point at a place in a unit file.
//!
//! Every error about a unit file's content names the file, the line and the column, quotes the
//! offending line and, where one is possible, says what to do instead. Positions are computed
//! from byte offsets so the parser and the validator can both report them.

use std::fmt;
use std::ops::Range;

/// One problem in one unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
    /// The source line the diagnostic points at (empty when `line` is 0).
    pub source_line: String,
    /// How many characters to underline from `column`.
    pub width: usize,
}

impl Diagnostic {
    /// A diagnostic about the whole file (bad file name, unreadable file).
    pub fn file_level(file: &str, message: impl Into<String>, hint: Option<String>) -> Self {
        Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            message: message.into(),
            hint,
            source_line: String::new(),
            width: 0,
        }
    }

    /// A diagnostic at a byte range of `text`.
    pub fn at(
        file: &str,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let start = span.start.min(text.len());
        let end = span.end.clamp(start, text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let source_line = text[line_start..line_end].trim_end_matches('\r').to_owned();
        let width = text[start..end.min(line_end)].chars().count().max(1);
        Diagnostic { file: file.to_owned(), line, column, message: message.into(), hint, source_line, width }
    }

    /// `file:line:col` (or just `file` for file-level diagnostics).
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)?;
        if self.line > 0 {
            let n = self.line.to_string();
            let pad = " ".repeat(n.len());
            write!(f, "\n{pad} |\n{n} | {}\n{pad} | ", self.source_line)?;
            write!(f, "{}{}", " ".repeat(self.column.saturating_sub(1)), "^".repeat(self.width))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_is_line_and_character_column() {
        let text = "a = 1\nbé = \"x\"\n";
        let start = text.find("\"x\"").expect("literal present");
        let d = Diagnostic::at("u.toml", text, start..start + 3, "bad", None);
        assert_eq!((d.line, d.column, d.width), (2, 6, 3));
        assert_eq!(d.source_line, "bé = \"x\"");
        assert_eq!(d.location(), "u.toml:2:6");
    }

    #[test]
    fn rendering_underlines_the_span_and_shows_the_hint() {
        let text = "imgae = 1\n";
        let d =
            Diagnostic::at("w.toml", text, 0..5, "unknown key `imgae`", Some("did you mean `image`?".into()));
        let shown = d.to_string();
        assert!(shown.starts_with("w.toml:1:1: unknown key `imgae`"), "{shown}");
        assert!(shown.contains("1 | imgae = 1"), "{shown}");
        assert!(shown.contains("  | ^^^^^"), "{shown}");
        assert!(shown.ends_with("= hint: did you mean `image`?"), "{shown}");
    }
}
