//! The lexer: statement text to tokens with byte spans.
//!
//! Keywords are not a separate token kind: a keyword is a [`Token::Word`] that
//! the parser compares case-insensitively with a [`Keyword`], so that a word
//! reserved in one place (`ON`) can still name a field elsewhere. Double-quoted
//! words never match a keyword, which is how a schema item named like one is
//! written. Every keyword is a variant of [`Keyword`], so the parser cannot ask
//! for a misspelled one.

use crate::error::{ParseError, Span};

macro_rules! keywords {
    ($($variant:ident => $text:literal,)*) => {
        /// Every keyword of the language.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Keyword {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )*
        }

        impl Keyword {
            /// Every keyword.
            pub const ALL: &'static [Keyword] = &[$(Keyword::$variant,)*];

            /// The keyword as written, in upper case.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Keyword::$variant => $text,)*
                }
            }
        }
    };
}

keywords! {
    Add => "ADD",
    And => "AND",
    As => "AS",
    Alter => "ALTER",
    Analyze => "ANALYZE",
    Asc => "ASC",
    Attribute => "ATTRIBUTE",
    Beta => "BETA",
    Between => "BETWEEN",
    Bool => "BOOL",
    Bucket => "BUCKET",
    Buckets => "BUCKETS",
    Case => "CASE",
    By => "BY",
    Cluster => "CLUSTER",
    Count => "COUNT",
    CountDistinct => "COUNT_DISTINCT",
    Create => "CREATE",
    Database => "DATABASE",
    Default => "DEFAULT",
    DecayedAvg => "DECAYED_AVG",
    DecayedCount => "DECAYED_COUNT",
    DecayedSum => "DECAYED_SUM",
    Delete => "DELETE",
    Desc => "DESC",
    Distinct => "DISTINCT",
    Describe => "DESCRIBE",
    Dim => "DIM",
    Drop => "DROP",
    Else => "ELSE",
    End => "END",
    Ewma => "EWMA",
    Event => "EVENT",
    Events => "EVENTS",
    Exists => "EXISTS",
    Explain => "EXPLAIN",
    False => "FALSE",
    FirstSeen => "FIRST_SEEN",
    Feature => "FEATURE",
    Field => "FIELD",
    Fill => "FILL",
    For => "FOR",
    Float => "FLOAT",
    From => "FROM",
    Group => "GROUP",
    HalfLife => "HALF_LIFE",
    Having => "HAVING",
    If => "IF",
    Ilike => "ILIKE",
    History => "HISTORY",
    In => "IN",
    Index => "INDEX",
    Indexes => "INDEXES",
    Insert => "INSERT",
    Int => "INT",
    Into => "INTO",
    Is => "IS",
    L2 => "L2",
    Last => "LAST",
    LastSeen => "LAST_SEEN",
    LearningRate => "LEARNING_RATE",
    Like => "LIKE",
    Limit => "LIMIT",
    Max => "MAX",
    Min => "MIN",
    Not => "NOT",
    Null => "NULL",
    Of => "OF",
    Offset => "OFFSET",
    On => "ON",
    Or => "OR",
    Order => "ORDER",
    Over => "OVER",
    Prior => "PRIOR",
    Rate => "RATE",
    Replace => "REPLACE",
    Retain => "RETAIN",
    Seed => "SEED",
    Segment => "SEGMENT",
    Segments => "SEGMENTS",
    Select => "SELECT",
    Set => "SET",
    Sgd => "SGD",
    Show => "SHOW",
    String => "STRING",
    Sum => "SUM",
    Tags => "TAGS",
    Then => "THEN",
    Top => "TOP",
    True => "TRUE",
    Ttl => "TTL",
    Update => "UPDATE",
    User => "USER",
    Users => "USERS",
    Using => "USING",
    Vacuum => "VACUUM",
    Values => "VALUES",
    Vector => "VECTOR",
    When => "WHEN",
    Where => "WHERE",
    Window => "WINDOW",
    With => "WITH",
    Zeros => "ZEROS",
}

impl std::fmt::Display for Keyword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// An identifier or keyword; `quoted` when written in double quotes.
    Word {
        /// The text, unescaped.
        value: String,
        /// Whether it was double-quoted.
        quoted: bool,
    },
    /// A numeric literal as written: digits, an optional fraction and exponent.
    Number(String),
    /// A single-quoted string, unescaped.
    String(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `;`
    Semicolon,
    /// `*`
    Star,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `/`
    Slash,
    /// `%`
    Percent,
    /// `=`
    Eq,
    /// `!=` or `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `$n`: bind parameter `n`, from 1, replaced by its value before
    /// parsing ([`crate::parser::parse_script_with`]).
    Param(u32),
    /// End of input.
    Eof,
}

impl Token {
    /// Whether this is the unquoted keyword `kw`, in any case.
    pub fn is_keyword(&self, kw: Keyword) -> bool {
        matches!(self, Token::Word { value, quoted: false } if value.eq_ignore_ascii_case(kw.as_str()))
    }

    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Word {
                value,
                quoted: true,
            } => format!("\"{value}\""),
            Token::Word { value, .. } => format!("'{value}'"),
            Token::Number(n) => format!("number {n}"),
            Token::String(s) => format!("string '{s}'"),
            Token::Param(n) => format!("parameter ${n}"),
            Token::Eof => "end of input".to_owned(),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Semicolon => ";",
            Token::Star => "*",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Slash => "/",
            Token::Percent => "%",
            Token::Eq => "=",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::LtEq => "<=",
            Token::Gt => ">",
            Token::GtEq => ">=",
            Token::Word { .. }
            | Token::Number(_)
            | Token::String(_)
            | Token::Param(_)
            | Token::Eof => "",
        }
    }
}

/// A token and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    /// The token.
    pub token: Token,
    /// Its byte range in the source.
    pub span: Span,
}

/// The highest bind parameter, `$65535`.
pub const MAX_PARAMS: u32 = 65_535;

/// How many tokens one statement may hold. It bounds the work and memory of
/// every later pass, which are linear in the statement's size.
pub const MAX_STATEMENT_TOKENS: usize = 1_000_000;

/// Splits `src` into tokens, ending with [`Token::Eof`]. Comments run from `--`
/// to the end of the line.
///
/// # Errors
/// A [`ParseError`] at an unterminated string or quoted name, a character that
/// starts no token, or a statement of more than [`MAX_STATEMENT_TOKENS`] tokens.
pub fn tokenize(src: &str) -> Result<Vec<Spanned>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Where the current statement's tokens start in `out`.
    let mut statement_start = 0;
    while i < bytes.len() {
        match out.last() {
            Some(Spanned {
                token: Token::Semicolon,
                ..
            }) => statement_start = out.len(),
            Some(last) if out.len() - statement_start > MAX_STATEMENT_TOKENS => {
                return Err(ParseError::new(
                    format!(
                        "statement too long: more than {MAX_STATEMENT_TOKENS} tokens; split it into several statements"
                    ),
                    last.span,
                ));
            }
            _ => {}
        }
        let c = bytes[i];
        let start = i;
        let single = |t: Token| Some((t, 1));
        let next = bytes.get(i + 1).copied();
        let simple = match c {
            b'(' => single(Token::LParen),
            b')' => single(Token::RParen),
            b'[' => single(Token::LBracket),
            b']' => single(Token::RBracket),
            b',' => single(Token::Comma),
            b';' => single(Token::Semicolon),
            b'*' => single(Token::Star),
            b'+' => single(Token::Plus),
            b'/' => single(Token::Slash),
            b'%' => single(Token::Percent),
            b'=' => single(Token::Eq),
            b'!' if next == Some(b'=') => Some((Token::NotEq, 2)),
            b'<' if next == Some(b'=') => Some((Token::LtEq, 2)),
            b'<' if next == Some(b'>') => Some((Token::NotEq, 2)),
            b'<' => single(Token::Lt),
            b'>' if next == Some(b'=') => Some((Token::GtEq, 2)),
            b'>' => single(Token::Gt),
            b'-' if next == Some(b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| i + p);
                continue;
            }
            b'-' => single(Token::Minus),
            _ => None,
        };
        if let Some((token, len)) = simple {
            i += len;
            out.push(Spanned {
                token,
                span: Span::new(start, i),
            });
            continue;
        }
        let token = match c {
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'\'' => {
                let (s, end) = quoted(src, i, b'\'', "string")?;
                i = end;
                Token::String(s)
            }
            b'"' => {
                let (s, end) = quoted(src, i, b'"', "quoted name")?;
                i = end;
                if s.is_empty() {
                    return Err(ParseError::new("a quoted name cannot be empty", start..i));
                }
                Token::Word {
                    value: s,
                    quoted: true,
                }
            }
            c if c.is_ascii_digit() || (c == b'.' && next.is_some_and(|d| d.is_ascii_digit())) => {
                i = number_end(bytes, i);
                Token::Number(src[start..i].to_owned())
            }
            b'$' => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                match src[start + 1..i].parse::<u32>() {
                    Ok(n) if (1..=MAX_PARAMS).contains(&n) => Token::Param(n),
                    _ => {
                        return Err(ParseError::new(
                            format!("a parameter is $1 to ${MAX_PARAMS}"),
                            start..i.max(start + 1),
                        ));
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                Token::Word {
                    value: src[start..i].to_owned(),
                    quoted: false,
                }
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ParseError::new(
                    format!("unexpected character '{ch}'"),
                    i..i + ch.len_utf8(),
                ));
            }
        };
        out.push(Spanned {
            token,
            span: Span::new(start, i),
        });
    }
    out.push(Spanned {
        token: Token::Eof,
        span: Span::new(src.len(), src.len()),
    });
    Ok(out)
}

/// Reads a literal quoted by `q` starting at `start`, where a doubled quote stands
/// for one. Returns the text and the index just past the closing quote.
fn quoted(src: &str, start: usize, q: u8, what: &str) -> Result<(String, usize), ParseError> {
    let bytes = src.as_bytes();
    let mut out = String::new();
    let mut i = start + 1;
    let mut run = i;
    while i < bytes.len() {
        if bytes[i] == q {
            out.push_str(&src[run..i]);
            if bytes.get(i + 1) == Some(&q) {
                out.push(q as char);
                i += 2;
                run = i;
                continue;
            }
            return Ok((out, i + 1));
        }
        i += 1;
    }
    Err(ParseError::new(
        format!("unterminated {what}"),
        start..src.len(),
    ))
}

/// The end of the number starting at `i`: digits, `.digits`, then `e[+-]digits`.
fn number_end(bytes: &[u8], mut i: usize) -> usize {
    let digits = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    i = digits(i);
    if bytes.get(i) == Some(&b'.') {
        i = digits(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            i = digits(j);
        }
    }
    i
}

/// Splits a script at its top-level `;` into the spans of its statements, so that
/// they can be run one at a time (a `;` inside a string or comment does not split).
/// Text after the last `;` is a statement when it holds a token.
///
/// A lexing error ends the split: the statements complete before it are returned
/// with the error, so a caller can run those and then report it.
pub fn split_statements(src: &str) -> (Vec<Span>, Option<ParseError>) {
    let (tokens, error) = match tokenize(src) {
        Ok(t) => (t, None),
        Err(e) => {
            // Everything before the bad token lexes; keep only statements ended by `;`.
            let before = src.get(..e.span.start).unwrap_or_default();
            let mut t = tokenize(before).unwrap_or_default();
            let last_semi = t.iter().rposition(|t| t.token == Token::Semicolon);
            t.truncate(last_semi.map_or(0, |i| i + 1));
            (t, Some(e))
        }
    };
    let mut spans = Vec::new();
    let mut start: Option<Span> = None;
    let mut end = Span::default();
    for t in &tokens {
        match t.token {
            Token::Semicolon | Token::Eof => {
                if let Some(s) = start.take() {
                    spans.push(s.to(end));
                }
            }
            _ => {
                start.get_or_insert(t.span);
                end = t.span;
            }
        }
    }
    if let Some(s) = start {
        spans.push(s.to(end));
    }
    (spans, error)
}

/// Whether `src` ends a statement: its last token is `;`. Inside an unterminated
/// string or quoted name, more input may follow, so it does not; other text that
/// does not lex ends one when it ends with `;`, so that its error is shown
/// rather than waited on.
pub fn ends_statement(src: &str) -> bool {
    match tokenize(src) {
        Ok(tokens) => tokens
            .iter()
            .rev()
            .find(|t| t.token != Token::Eof)
            .is_some_and(|t| t.token == Token::Semicolon),
        Err(e) => e.span.end < src.len() && src.trim_end().ends_with(';'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_matches_its_own_word_in_any_case_and_no_other() {
        for &k in Keyword::ALL {
            let word = |value: String, quoted: bool| Token::Word { value, quoted };
            let text = k.as_str();
            assert!(word(text.to_ascii_lowercase(), false).is_keyword(k));
            assert!(word(text.to_owned(), false).is_keyword(k));
            assert!(
                !word(text.to_owned(), true).is_keyword(k),
                "a quoted word is never a keyword"
            );
            for &other in Keyword::ALL.iter().filter(|o| **o != k) {
                assert!(
                    !word(text.to_owned(), false).is_keyword(other),
                    "{k} is {other}"
                );
            }
        }
    }

    fn kinds(src: &str) -> Result<Vec<Token>, ParseError> {
        Ok(tokenize(src)?.into_iter().map(|t| t.token).collect())
    }

    #[test]
    fn tokens_and_spans() -> Result<(), ParseError> {
        let toks = tokenize("SELECT a1, 'it''s' -- note\n >= 1.5e3;")?;
        let words: Vec<_> = toks.iter().map(|t| (t.token.clone(), t.span)).collect();
        assert_eq!(
            words,
            vec![
                (
                    Token::Word {
                        value: "SELECT".into(),
                        quoted: false
                    },
                    Span::new(0, 6)
                ),
                (
                    Token::Word {
                        value: "a1".into(),
                        quoted: false
                    },
                    Span::new(7, 9)
                ),
                (Token::Comma, Span::new(9, 10)),
                (Token::String("it's".into()), Span::new(11, 18)),
                (Token::GtEq, Span::new(28, 30)),
                (Token::Number("1.5e3".into()), Span::new(31, 36)),
                (Token::Semicolon, Span::new(36, 37)),
                (Token::Eof, Span::new(37, 37)),
            ]
        );
        Ok(())
    }

    #[test]
    fn operators_and_quoted_names() -> Result<(), ParseError> {
        assert_eq!(
            kinds("<> != <= < \"on\"\"x\" 7d")?,
            vec![
                Token::NotEq,
                Token::NotEq,
                Token::LtEq,
                Token::Lt,
                Token::Word {
                    value: "on\"x".into(),
                    quoted: true
                },
                Token::Number("7".into()),
                Token::Word {
                    value: "d".into(),
                    quoted: false
                },
                Token::Eof
            ]
        );
        Ok(())
    }

    #[test]
    fn errors_point_at_the_offence() {
        let e = tokenize("SELECT 'abc").err();
        assert_eq!(e.map(|e| e.span), Some(Span::new(7, 11)));
        let e = tokenize("SELECT #").err();
        assert_eq!(e.map(|e| e.span), Some(Span::new(7, 8)));
        let e = tokenize("x é").err();
        assert_eq!(e.map(|e| e.span), Some(Span::new(2, 4)));
    }

    #[test]
    fn statements_split_at_top_level_semicolons() {
        let src = "SELECT ';' FROM users; -- a; comment\nSHOW FEATURES;;\n  DESCRIBE x  ";
        let (spans, err) = split_statements(src);
        assert!(err.is_none());
        let texts: Vec<&str> = spans.iter().map(|s| &src[s.start..s.end]).collect();
        assert_eq!(
            texts,
            ["SELECT ';' FROM users", "SHOW FEATURES", "DESCRIBE x"]
        );
        assert_eq!(split_statements("  -- nothing\n").0, []);
    }

    #[test]
    fn a_lexing_error_keeps_the_complete_statements_before_it() {
        let src = "SHOW FEATURES; SELECT 1; SELECT 'open";
        let (spans, err) = split_statements(src);
        let texts: Vec<&str> = spans.iter().map(|s| &src[s.start..s.end]).collect();
        assert_eq!(texts, ["SHOW FEATURES", "SELECT 1"]);
        assert_eq!(err.map(|e| e.span.start), Some(32));
        // A bad token inside the first statement leaves nothing to run.
        let (spans, err) = split_statements("SELECT # FROM users; SHOW FEATURES;");
        assert!(spans.is_empty() && err.is_some());
    }

    #[test]
    fn statement_ends() {
        assert!(ends_statement("SELECT 1;"));
        assert!(ends_statement("SELECT 1; -- done\n"));
        assert!(!ends_statement("SELECT 1"));
        assert!(!ends_statement("SELECT ';"));
        assert!(!ends_statement("SELECT 1 -- ;"));
        assert!(ends_statement("SELECT # ;"));
        assert!(!ends_statement(""));
    }
}
