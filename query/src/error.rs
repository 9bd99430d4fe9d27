//! Errors of the query crate, each pointing at the text it is about where it can.

use std::fmt;

/// A byte range of the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `[start, end)`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Span {
        Span::new(r.start, r.end)
    }
}

/// Where in the statement an error is: a span and, once the source is known, the
/// line and column it starts at and the line's text, for drawing a caret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct At {
    /// The offending bytes, when known.
    pub span: Option<Span>,
    /// Line (1-based), column (1-based, in characters) and the line's text.
    pub position: Option<Box<Position>>,
}

/// A line and column in the source, with the text of that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The whole line.
    pub text: String,
    /// How many characters the caret underlines.
    pub width: usize,
}

impl At {
    /// A location in the current statement.
    pub fn span(span: Span) -> At {
        At {
            span: Some(span),
            position: None,
        }
    }

    /// Nowhere in particular.
    pub fn none() -> At {
        At::default()
    }

    /// Resolves the span against `src`, the text it indexes.
    fn locate(&mut self, src: &str) {
        let Some(span) = self.span else { return };
        let start = span.start.min(src.len());
        let Some(before) = src.get(..start) else {
            return;
        };
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let text = &src[line_start..line_end];
        let column = src[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_end);
        let width = src.get(start..end).map_or(1, |s| s.chars().count().max(1));
        self.position = Some(Box::new(Position {
            line: before.matches('\n').count() + 1,
            column,
            text: text.to_owned(),
            width,
        }));
    }
}

/// Lines up to this many characters are drawn whole.
const LONG_LINE: usize = 200;
/// How many characters of a longer line are drawn on each side of the span.
const CONTEXT: usize = 80;

impl fmt::Display for At {
    /// Nothing without a position; otherwise the line, and a caret under the span.
    /// A long line is drawn as a window around the span, with `…` where it is cut.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(p) = &self.position else {
            return Ok(());
        };
        // One character for one, so the caret stays aligned; a control character
        // (a tab, or an escape sequence a terminal would act on) prints as a space.
        let chars: Vec<char> = p
            .text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let at = p.column - 1;
        let long = chars.len() > LONG_LINE;
        let from = if long { at.saturating_sub(CONTEXT) } else { 0 };
        let width = if long {
            p.width.min(2 * CONTEXT)
        } else {
            p.width
        };
        let to = if long {
            (at + width + CONTEXT).min(chars.len())
        } else {
            chars.len()
        };
        let mut line: String = chars.get(from..to).unwrap_or_default().iter().collect();
        let mut caret_at = at - from;
        if from > 0 {
            line.insert(0, '…');
            caret_at += 1;
        }
        if to < chars.len() {
            line.push('…');
        }
        write!(
            f,
            " (line {}, column {})\n  {}\n  {}{}",
            p.line,
            p.column,
            line.trim_end(),
            " ".repeat(caret_at),
            "^".repeat(width)
        )
    }
}

/// A statement that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error: {message}{at}")]
pub struct ParseError {
    /// What was wrong.
    pub message: String,
    /// Where.
    pub span: Span,
    /// The position, once the source is attached.
    pub at: At,
}

impl ParseError {
    /// An error at `span`.
    pub fn new(message: impl Into<String>, span: impl Into<Span>) -> ParseError {
        let span = span.into();
        ParseError {
            message: message.into(),
            span,
            at: At::span(span),
        }
    }

    /// 1-based line and column, once located.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        self.at.position.as_ref().map(|p| (p.line, p.column))
    }
}

/// Every error a statement can give. Errors that concern part of the statement
/// carry an [`At`], whose `Display` draws the line with a caret under that part.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The statement does not parse. Fix the text at the caret.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A name that is not defined. Check the spelling against the suggestion, or
    /// define the item first.
    #[error("unknown {kind} '{name}'{}{at}", suggest(suggestion))]
    Unknown {
        /// What kind of name (attribute, column, segment, function …).
        kind: &'static str,
        /// The name as written.
        name: String,
        /// The closest defined name, if any is close.
        suggestion: Option<String>,
        /// Where it was written.
        at: At,
    },
    /// A value of the wrong type. Change the expression or the literal.
    #[error("type mismatch in {context}: expected {expected}, found {found}{at}")]
    TypeMismatch {
        /// Where the types met.
        context: String,
        /// The type required.
        expected: String,
        /// The type given.
        found: String,
        /// Where.
        at: At,
    },
    /// A vector literal whose length is not the vector's dimension.
    #[error("vector '{vector}' has dimension {expected}, but the value has {found} elements{at}")]
    Dimension {
        /// The vector definition.
        vector: String,
        /// Its dimension.
        expected: usize,
        /// The length given.
        found: usize,
        /// Where.
        at: At,
    },
    /// A definition whose name is taken. Choose another name or drop the old item.
    #[error("{kind} '{name}' already exists{at}")]
    AlreadyExists {
        /// Kind of the existing item.
        kind: &'static str,
        /// The name.
        name: String,
        /// Where.
        at: At,
    },
    /// An INSERT into an event type nothing is bound to: its events would change
    /// nothing. Define a feature, window, vector or attribute on it first.
    #[error("no attribute, feature, window or vector is bound to event type '{event_type}'{at}")]
    UnboundEvent {
        /// The event type.
        event_type: String,
        /// Where.
        at: At,
    },
    /// A statement that parses but cannot run as written.
    #[error("{message}{at}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// Where.
        at: At,
    },
    /// A statement that changes data or schema, sent where only reading is
    /// allowed (a read-only token). Nothing of the script ran; send it with a
    /// token that may write.
    #[error("this connection may only read, and the statement changes data or schema{at}")]
    ReadOnly {
        /// The first statement that writes.
        at: At,
    },
    /// The storage engine refused or failed.
    #[error(transparent)]
    Storage(#[from] profiledb_storage::Error),
    /// The statement was cancelled, by its deadline or by the caller.
    #[error("the statement was cancelled: {reason}")]
    Cancelled {
        /// Why.
        reason: String,
    },
    /// An integer computation in a result column passed the 64-bit range. Compute
    /// it in floating point instead (`1.0 * x`), or reduce the operands.
    #[error(
        "integer overflow in column '{column}': a value is outside the 64-bit integer range; compute it in floating point (1.0 * …) instead"
    )]
    Overflow {
        /// The column's name.
        column: String,
    },
    /// Another machine of a database spread over several (a cluster's
    /// node) did not answer its part of the query. Run it again once the
    /// node is back, or after its partitions have moved to another.
    #[error("node '{node}' did not answer its part of the query: {message}")]
    Peer {
        /// The machine, by name.
        node: String,
        /// Why.
        message: String,
    },
    /// The result would exceed the configured row limit. Add a LIMIT or a filter.
    #[error("the result has more than {limit} rows, the configured limit")]
    TooManyRows {
        /// The limit.
        limit: usize,
    },
}

fn suggest(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default()
}

/// The query crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A statement that cannot run as written.
    pub fn invalid(message: impl Into<String>, span: Option<Span>) -> Error {
        Error::Invalid {
            message: message.into(),
            at: At {
                span,
                position: None,
            },
        }
    }

    /// Attaches line, column and source line to the error's span, resolved in `src`.
    #[must_use]
    pub fn locate(mut self, src: &str) -> Error {
        if let Some(at) = self.at_mut() {
            at.locate(src);
        }
        self
    }

    /// The message alone, without the line, column and caret drawing that
    /// `Display` appends once the error is located.
    pub fn message(&self) -> String {
        let full = self.to_string();
        match self.at() {
            Some(at) if at.position.is_some() => {
                let suffix = at.to_string();
                full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
            }
            _ => full,
        }
    }

    /// The line, column and width of the offending text, once located.
    pub fn position(&self) -> Option<&Position> {
        self.at()?.position.as_deref()
    }

    /// Where the error is, if it concerns part of the statement.
    pub fn at(&self) -> Option<&At> {
        match self {
            Error::Parse(e) => Some(&e.at),
            Error::Unknown { at, .. }
            | Error::TypeMismatch { at, .. }
            | Error::Dimension { at, .. }
            | Error::AlreadyExists { at, .. }
            | Error::UnboundEvent { at, .. }
            | Error::ReadOnly { at }
            | Error::Invalid { at, .. } => Some(at),
            _ => None,
        }
    }

    fn at_mut(&mut self) -> Option<&mut At> {
        match self {
            Error::Parse(e) => Some(&mut e.at),
            Error::Unknown { at, .. }
            | Error::TypeMismatch { at, .. }
            | Error::Dimension { at, .. }
            | Error::AlreadyExists { at, .. }
            | Error::UnboundEvent { at, .. }
            | Error::ReadOnly { at }
            | Error::Invalid { at, .. } => Some(at),
            _ => None,
        }
    }
}

/// The defined name closest to `name`, if one is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_under_the_span() {
        let src = "SELECT a\nFROM usres WHERE x";
        let e = Error::Unknown {
            kind: "table",
            name: "usres".into(),
            suggestion: Some("users".into()),
            at: At::span(Span::new(14, 19)),
        }
        .locate(src);
        assert_eq!(
            e.to_string(),
            "unknown table 'usres' (did you mean 'users'?) (line 2, column 6)\n  FROM usres WHERE x\n       ^^^^^"
        );
    }

    #[test]
    fn control_characters_in_the_drawn_line_print_as_spaces() {
        // An escape sequence in a statement must not reach the terminal that
        // shows the error; the caret still lines up under the span.
        let src = "SELECT '\u{1b}[31m' + x";
        let e = Error::invalid("bad", Some(Span::new(17, 18))).locate(src);
        assert_eq!(
            e.to_string(),
            "bad (line 1, column 18)\n  SELECT ' [31m' + x\n                   ^"
        );
        assert!(!e.to_string().contains('\u{1b}'));
    }

    #[test]
    fn a_long_line_is_drawn_as_a_window_around_the_caret() {
        let src = format!("SELECT {} + oops FROM users", "1 + ".repeat(1000));
        let start = src.find("oops").unwrap_or(0);
        let e = Error::invalid("bad", Some(Span::new(start, start + 4))).locate(&src);
        let text = e.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("bad (line 1, column {})", start + 1));
        assert!(lines[1].starts_with("  …") && lines[1].ends_with("oops FROM users"));
        assert!(lines[1].chars().count() < 2 * CONTEXT + 30, "{}", lines[1]);
        // A line of ordinary length is drawn whole.
        let e = Error::invalid("bad", Some(Span::new(7, 8))).locate("SELECT x FROM users");
        assert!(
            e.to_string()
                .ends_with("\n  SELECT x FROM users\n         ^")
        );
        // The caret sits under the span in the window.
        let caret = lines[2].find('^').unwrap_or(0);
        let word: String = lines[1].chars().skip(caret).take(4).collect();
        assert_eq!(word, "oops");
    }

    #[test]
    fn the_message_leaves_out_the_location() {
        let src = "SELECT a\nFROM usres";
        let e = Error::Unknown {
            kind: "table",
            name: "usres".into(),
            suggestion: Some("users".into()),
            at: At::span(Span::new(14, 19)),
        };
        // Before and after locating, the message is the same.
        assert_eq!(e.message(), "unknown table 'usres' (did you mean 'users'?)");
        assert!(e.position().is_none());
        let e = e.locate(src);
        assert_eq!(e.message(), "unknown table 'usres' (did you mean 'users'?)");
        let p = e.position().map(|p| (p.line, p.column, p.width));
        assert_eq!(p, Some((2, 6, 5)));
        assert!(e.to_string().ends_with("^^^^^"));
        let e = Error::TooManyRows { limit: 5 };
        assert_eq!(e.message(), e.to_string());
    }

    #[test]
    fn read_only_statements() {
        let read_only = |sql: &str| {
            crate::parse_statement(sql)
                .map(|s| s.is_read_only())
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        };
        for sql in [
            "SELECT id FROM users",
            "EXPLAIN INSERT INTO e (user, ts) VALUES ('a', 0)",
            "SHOW FEATURES",
            "DESCRIBE x",
            "CLUSTER users BY v INTO 2",
        ] {
            assert!(read_only(sql), "{sql}");
        }
        for sql in [
            "INSERT INTO e (user, ts) VALUES ('a', 0)",
            "UPDATE users SET a = 1 WHERE id = 'u'",
            "DELETE USER 'u'",
            "DELETE FROM users WHERE a = 1",
            "CREATE FEATURE f ON e AS COUNT()",
            "DROP FEATURE f",
            "CREATE SEGMENTS g FROM CLUSTER users BY v INTO 2",
            "DROP SEGMENTS g",
        ] {
            assert!(!read_only(sql), "{sql}");
        }
    }

    #[test]
    fn closest_names() {
        let names = ["spend_7d", "purchases", "region"];
        assert_eq!(closest("spend_7", names), Some("spend_7d".into()));
        assert_eq!(closest("REGION", names), Some("region".into()));
        assert_eq!(closest("zzz", names), None);
    }
}
