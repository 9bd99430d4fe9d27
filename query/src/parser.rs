//! A recursive-descent parser, with Pratt parsing for expressions.

use profiledb_storage::time::parse_duration;
use profiledb_storage::{AttrType, Value};

use crate::ast::{
    AlterSetting, BinaryOp, Cluster, DEFAULT_TOP, Duration, Expr, FeatureFunc, FieldSpec,
    FunctionArg, Ident, KeyedSpec, Literal, Loc, ObjectKind, OrderBy, Select, SelectItem,
    Statement, UnaryOp, VectorSpec, prec,
};
use crate::error::{ParseError, Span};
use crate::lexer::{Keyword, Spanned, Token, tokenize};
use profiledb_storage::catalog::FieldType;

/// How deeply expressions and statements may nest. Deeper input is refused, so
/// that no input can exhaust the stack.
pub const RECURSION_LIMIT: usize = 64;

/// How many levels an expression tree may have. Every pass over expressions
/// (binding, planning, evaluation, printing) recurses over the tree, so this
/// bound, enforced here and again by the binder on expressions with segments
/// inlined, is what keeps each of them within a thread's stack. A flat chain
/// such as `a OR b OR c …` is as deep as it is long.
pub const MAX_EXPR_DEPTH: usize = 256;

/// Parses one statement, with an optional trailing `;`.
///
/// # Errors
/// A [`ParseError`] at the first token that does not fit, or at more than one statement.
pub fn parse_statement(src: &str) -> Result<Statement, ParseError> {
    let mut stmts = parse_script(src)?;
    match stmts.len() {
        1 => Ok(stmts.remove(0).0),
        0 => Err(ParseError::new(
            "expected a statement",
            src.len()..src.len(),
        )),
        _ => Err(ParseError::new(
            "expected one statement, found several",
            stmts[1].1,
        )),
    }
}

/// Parses statements separated by `;`, each with the span of its text.
///
/// # Errors
/// A [`ParseError`] at the first token that does not fit.
pub fn parse_script(src: &str) -> Result<Vec<(Statement, Span)>, ParseError> {
    parse_script_with(src, &[])
}

/// [`parse_script`] with bind parameters: `$1` is `params[0]`, and so on.
/// Each parameter is put in place of its `$n` as a value (a string stays a
/// string literal, however it reads), never as text to parse.
///
/// # Errors
/// As [`parse_script`]; a `$n` past the parameters given, parameters the
/// script does not use all of, or a parameter that is not a string, number,
/// boolean, NULL or vector, named in the message.
pub fn parse_script_with(
    src: &str,
    params: &[Value],
) -> Result<Vec<(Statement, Span)>, ParseError> {
    let mut p = Parser {
        tokens: bind_params(tokenize(src)?, params, src.len())?,
        pos: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    loop {
        while p.eat(&Token::Semicolon) {}
        if p.peek() == &Token::Eof {
            return Ok(out);
        }
        let start = p.span().start;
        let stmt = p.statement()?;
        let end = p.tokens[p.pos.saturating_sub(1)].span.end;
        out.push((stmt, Span::new(start, end)));
        if !p.eat(&Token::Semicolon) && p.peek() != &Token::Eof {
            return Err(p.unexpected(
                "';' or the end of the statement (or a clause: WHERE, GROUP, HAVING, ORDER, LIMIT, OFFSET, AS OF)",
            ));
        }
    }
}

/// `tokens` with each `$n` replaced by the tokens of `params[n - 1]`, at
/// the span of the `$n`.
fn bind_params(
    tokens: Vec<Spanned>,
    params: &[Value],
    end: usize,
) -> Result<Vec<Spanned>, ParseError> {
    let mut used = vec![false; params.len()];
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        let Token::Param(n) = t.token else {
            out.push(t);
            continue;
        };
        let span = t.span;
        let i = n as usize - 1;
        let Some(value) = params.get(i) else {
            return Err(ParseError::new(
                format!(
                    "there is no parameter ${n}: {} {} given",
                    params.len(),
                    if params.len() == 1 {
                        "parameter was"
                    } else {
                        "parameters were"
                    }
                ),
                span,
            ));
        };
        used[i] = true;
        let push = |out: &mut Vec<Spanned>, token: Token| out.push(Spanned { token, span });
        let number = |out: &mut Vec<Spanned>, x: f64, text: String| {
            if x.is_sign_negative() && x != 0.0 {
                push(out, Token::Minus);
                push(out, Token::Number(text.trim_start_matches('-').to_owned()));
            } else {
                push(out, Token::Number(text));
            }
        };
        let word = |w: &str| Token::Word {
            value: w.to_owned(),
            quoted: false,
        };
        match value {
            Value::Null => push(&mut out, word("NULL")),
            Value::Bool(b) => push(&mut out, word(if *b { "TRUE" } else { "FALSE" })),
            Value::Int(x) => {
                if *x < 0 {
                    push(&mut out, Token::Minus);
                    push(&mut out, Token::Number(x.unsigned_abs().to_string()));
                } else {
                    push(&mut out, Token::Number(x.to_string()));
                }
            }
            Value::Float(x) if x.is_finite() => number(&mut out, *x, format!("{x:?}")),
            Value::String(s) => push(&mut out, Token::String(s.clone())),
            Value::Vector(v) if v.iter().all(|x| x.is_finite()) => {
                push(&mut out, Token::LBracket);
                for (k, x) in v.iter().enumerate() {
                    if k > 0 {
                        push(&mut out, Token::Comma);
                    }
                    number(&mut out, f64::from(*x), format!("{:?}", f64::from(*x)));
                }
                push(&mut out, Token::RBracket);
            }
            other => {
                return Err(ParseError::new(
                    format!(
                        "parameter ${n} is a {}: a parameter is a string, number, boolean, NULL or vector of finite numbers",
                        other.type_name()
                    ),
                    span,
                ));
            }
        }
    }
    if let Some(unused) = used.iter().position(|u| !u) {
        return Err(ParseError::new(
            format!(
                "parameter ${} was given but the statement does not use it",
                unused + 1
            ),
            end..end,
        ));
    }
    Ok(out)
}

/// Parses an expression alone, as stored in a segment definition.
///
/// # Errors
/// A [`ParseError`] where the text is not exactly one expression.
pub fn parse_expr(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        tokens: tokenize(src)?,
        pos: 0,
        depth: 0,
    };
    let e = p.expr(0)?;
    if p.peek() != &Token::Eof {
        return Err(p.unexpected("the end of the expression"));
    }
    Ok(e)
}

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
    depth: usize,
}

type PResult<T> = Result<T, ParseError>;

impl Parser {
    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Token {
        let i = (self.pos + n).min(self.tokens.len() - 1);
        &self.tokens[i].token
    }

    fn span(&self) -> Span {
        self.tokens[self.pos.min(self.tokens.len() - 1)].span
    }

    /// Consumes the current token and returns it. The parser never looks back,
    /// so the token is moved out rather than cloned; the final `Eof` stays put.
    fn next(&mut self) -> Spanned {
        let last = self.tokens.len() - 1;
        if self.pos >= last {
            return self.tokens[last].clone();
        }
        let t = &mut self.tokens[self.pos];
        self.pos += 1;
        Spanned {
            token: std::mem::replace(&mut t.token, Token::Eof),
            span: t.span,
        }
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.peek() == t {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Token, what: &str) -> PResult<Span> {
        if self.peek() == t {
            Ok(self.next().span)
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        // A misspelt keyword (`SELEC`, `LIMT`) gets a did-you-mean.
        let hint = match self.peek() {
            Token::Word {
                value,
                quoted: false,
            } if !Keyword::ALL
                .iter()
                .any(|k| k.as_str().eq_ignore_ascii_case(value)) =>
            {
                crate::error::closest(value, Keyword::ALL.iter().map(|k| k.as_str()))
                    .filter(|k| k.len() > 2 && expected.contains(k.as_str()))
                    .map(|k| format!(" (did you mean {k}?)"))
            }
            _ => None,
        };
        ParseError::new(
            format!(
                "expected {expected}, found {}{}",
                self.peek().describe(),
                hint.unwrap_or_default()
            ),
            self.span(),
        )
    }

    fn at_keyword(&self, kw: Keyword) -> bool {
        self.peek().is_keyword(kw)
    }

    fn eat_keyword(&mut self, kw: Keyword) -> bool {
        if self.at_keyword(kw) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: Keyword) -> PResult<Span> {
        if self.at_keyword(kw) {
            Ok(self.next().span)
        } else {
            Err(self.unexpected(kw.as_str()))
        }
    }

    /// Runs `f` one level deeper, refusing to pass [`RECURSION_LIMIT`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Parser) -> PResult<T>) -> PResult<T> {
        if self.depth >= RECURSION_LIMIT {
            return Err(ParseError::new(
                format!("recursion limit exceeded: nesting deeper than {RECURSION_LIMIT} levels"),
                self.span(),
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// A name. A reserved word must be double-quoted to be one.
    fn ident(&mut self, what: &str) -> PResult<Ident> {
        match self.peek() {
            Token::Word { value, quoted }
                if *quoted
                    || !crate::ast::RESERVED
                        .iter()
                        .any(|r| r.eq_ignore_ascii_case(value)) =>
            {
                match self.next() {
                    Spanned {
                        token: Token::Word { value, .. },
                        span,
                    } => Ok(Ident {
                        value,
                        loc: Loc(span),
                    }),
                    other => Err(ParseError::new(format!("expected {what}"), other.span)),
                }
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn string(&mut self, what: &str) -> PResult<(String, Span)> {
        if !matches!(self.peek(), Token::String(_)) {
            return Err(self.unexpected(what));
        }
        match self.next() {
            Spanned {
                token: Token::String(s),
                span,
            } => Ok((s, span)),
            other => Err(ParseError::new(format!("expected {what}"), other.span)),
        }
    }

    /// A history horizon: a duration, or zero (`'0s'`, `'0d'`, …) for none.
    fn horizon(&mut self) -> PResult<Duration> {
        self.duration_or_zero(
            "a horizon such as '30d' ('0s' keeps no history)",
            "a history horizon",
        )
    }

    /// A duration, or zero in any unit (`'0s'`, `'0d'`, …) for none; `what`
    /// is the expectation an error states, `name` what the value is.
    fn duration_or_zero(&mut self, what: &str, name: &str) -> PResult<Duration> {
        let (text, span) = self.string(what)?;
        let t = text.trim();
        if t.starts_with('-') {
            return Err(ParseError::new(
                format!("{name} cannot be negative ('{text}')"),
                span,
            ));
        }
        let digits = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        let ms = if num.parse::<f64>().is_ok_and(|n| n == 0.0) {
            // Zero of a known unit: the unit is checked as one of it would be.
            parse_duration(&format!("1{unit}")).map_err(|e| {
                ParseError::new(
                    e.to_string()
                        .replace(&format!("'1{unit}'"), &format!("'{text}'")),
                    span,
                )
            })?;
            0
        } else {
            parse_duration(&text).map_err(|e| ParseError::new(e.to_string(), span))?
        };
        Ok(Duration { ms, loc: Loc(span) })
    }

    fn duration(&mut self) -> PResult<Duration> {
        let (text, span) = self.string("a duration such as '7d'")?;
        let ms = parse_duration(&text).map_err(|e| ParseError::new(e.to_string(), span))?;
        Ok(Duration { ms, loc: Loc(span) })
    }

    /// An optionally negative number.
    fn number(&mut self, what: &str) -> PResult<f64> {
        let neg = self.eat(&Token::Minus);
        let span = self.span();
        match self.peek() {
            Token::Number(n) => {
                let x: f64 = n
                    .parse()
                    .map_err(|_| ParseError::new(format!("'{n}' is not a number"), span))?;
                if !x.is_finite() {
                    return Err(ParseError::new(format!("{n} is out of range"), span));
                }
                self.next();
                Ok(if neg { -x } else { x })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn unsigned(&mut self, what: &str) -> PResult<u64> {
        match self.peek() {
            Token::Number(n) => {
                let span = self.span();
                let v = n.parse().map_err(|_| {
                    ParseError::new(format!("{what} must be a whole number, got {n}"), span)
                })?;
                self.next();
                Ok(v)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn statement(&mut self) -> PResult<Statement> {
        let t = self.peek().clone();
        if t.is_keyword(Keyword::Create) {
            self.next();
            self.create()
        } else if t.is_keyword(Keyword::Drop) {
            self.next();
            if self.eat_keyword(Keyword::Event) {
                let if_exists = self.if_exists()?;
                return Ok(Statement::DropEvent {
                    if_exists,
                    name: self.ident("an event type")?,
                });
            }
            if self.eat_keyword(Keyword::Index) {
                let if_exists = self.if_exists()?;
                return Ok(Statement::DropIndex {
                    if_exists,
                    name: self.ident("an index name")?,
                });
            }
            if self.eat_keyword(Keyword::Segments) {
                let if_exists = self.if_exists()?;
                return Ok(Statement::DropSegments {
                    if_exists,
                    name: self.ident("a segment group name")?,
                });
            }
            let kind = self.object_kind(false)?;
            let if_exists = self.if_exists()?;
            Ok(Statement::Drop {
                kind,
                if_exists,
                name: self.ident("a name")?,
            })
        } else if t.is_keyword(Keyword::Show) {
            self.next();
            if self.eat_keyword(Keyword::History) {
                return Ok(Statement::ShowHistory);
            }
            if self.eat_keyword(Keyword::Events) {
                return Ok(Statement::ShowEvents);
            }
            if self.eat_keyword(Keyword::Indexes) {
                return Ok(Statement::ShowIndexes);
            }
            Ok(Statement::Show {
                kind: self.object_kind(true)?,
            })
        } else if t.is_keyword(Keyword::Alter) {
            self.next();
            self.alter()
        } else if t.is_keyword(Keyword::Describe) {
            self.next();
            // `DESCRIBE EVENT name`; `DESCRIBE event` is an item named so.
            if self.peek().is_keyword(Keyword::Event)
                && matches!(self.peek_at(1), Token::Word { .. })
            {
                self.next();
                return Ok(Statement::DescribeEvent {
                    name: self.ident("an event type")?,
                });
            }
            Ok(Statement::Describe {
                name: self.ident("a name")?,
            })
        } else if t.is_keyword(Keyword::Insert) {
            self.next();
            self.insert()
        } else if t.is_keyword(Keyword::Update) {
            self.next();
            self.update()
        } else if t.is_keyword(Keyword::Delete) {
            self.next();
            self.delete()
        } else if t.is_keyword(Keyword::Select) {
            self.next();
            Ok(Statement::Select(Box::new(self.select()?)))
        } else if t.is_keyword(Keyword::Cluster) {
            self.next();
            Ok(Statement::Cluster(Box::new(self.cluster()?)))
        } else if t.is_keyword(Keyword::Vacuum) {
            self.next();
            Ok(Statement::Vacuum)
        } else if t.is_keyword(Keyword::Buckets) {
            self.next();
            let window = self.ident("a window name")?;
            self.expect_keyword(Keyword::For)?;
            let user = self.expr(prec::NEG)?;
            self.expect_keyword(Keyword::Over)?;
            let span = self.duration()?;
            let fill = if self.eat_keyword(Keyword::Fill) {
                self.expect_keyword(Keyword::Zeros)?;
                true
            } else {
                false
            };
            let mut as_of = None;
            if self.at_keyword(Keyword::As) && self.peek_at(1).is_keyword(Keyword::Of) {
                self.next();
                self.next();
                as_of = Some(self.expr(prec::NEG)?);
            }
            Ok(Statement::Buckets {
                window,
                user,
                span,
                fill,
                as_of,
            })
        } else if t.is_keyword(Keyword::Analyze) {
            self.next();
            self.expect_keyword(Keyword::Index)?;
            let name = self.ident("an index name")?;
            let with = if self.eat_keyword(Keyword::With) {
                self.with_options()?
            } else {
                Vec::new()
            };
            Ok(Statement::AnalyzeIndex { name, with })
        } else if t.is_keyword(Keyword::Explain) {
            self.next();
            let inner = self.nested(Parser::statement)?;
            Ok(Statement::Explain(Box::new(inner)))
        } else {
            Err(self.unexpected(
                "a statement (SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, SHOW, DESCRIBE, BUCKETS, CLUSTER, ANALYZE, EXPLAIN or VACUUM)",
            ))
        }
    }

    fn object_kind(&mut self, plural: bool) -> PResult<ObjectKind> {
        for kind in ObjectKind::ALL {
            let kw = kind.keyword().as_str();
            let matched = match self.peek() {
                Token::Word {
                    value,
                    quoted: false,
                } => {
                    if plural {
                        value.len() == kw.len() + 1
                            && value[..kw.len()].eq_ignore_ascii_case(kw)
                            && value[kw.len()..].eq_ignore_ascii_case("S")
                    } else {
                        value.eq_ignore_ascii_case(kw)
                    }
                }
                _ => false,
            };
            if matched {
                self.next();
                return Ok(kind);
            }
        }
        Err(self.unexpected(if plural {
            "ATTRIBUTES, FEATURES, WINDOWS, VECTORS, SEGMENTS, EVENTS, INDEXES or HISTORY"
        } else {
            "ATTRIBUTE, FEATURE, WINDOW, VECTOR or SEGMENT"
        }))
    }

    /// `ALTER DATABASE SET HISTORY 'd'`, or `ALTER FEATURE|VECTOR name SET
    /// HALF_LIFE 'd'`.
    fn alter(&mut self) -> PResult<Statement> {
        if self.eat_keyword(Keyword::Event) {
            let event = self.ident("an event type")?;
            self.expect_keyword(Keyword::Add)?;
            self.expect_keyword(Keyword::Field)?;
            return Ok(Statement::AlterEventAddField {
                event,
                field: self.field_spec()?,
            });
        }
        if self.eat_keyword(Keyword::Database) {
            self.expect_keyword(Keyword::Set)?;
            if self.eat_keyword(Keyword::User) {
                self.expect_keyword(Keyword::Ttl)?;
                // Zero in any unit turns it off, as a history horizon.
                return Ok(Statement::SetUserTtl {
                    ttl: self.duration_or_zero(
                        "a TTL such as '180d' ('0s' keeps every user)",
                        "a user TTL",
                    )?,
                });
            }
            self.expect_keyword(Keyword::History)?;
            return Ok(Statement::SetHistory {
                horizon: self.horizon()?,
            });
        }
        let kind = if self.eat_keyword(Keyword::Feature) {
            ObjectKind::Feature
        } else if self.eat_keyword(Keyword::Window) {
            ObjectKind::Window
        } else if self.eat_keyword(Keyword::Vector) {
            ObjectKind::Vector
        } else {
            return Err(self.unexpected("DATABASE, EVENT, FEATURE, WINDOW or VECTOR"));
        };
        let name = self.ident("a name")?;
        self.expect_keyword(Keyword::Set)?;
        let setting = if self.eat_keyword(Keyword::HalfLife) {
            AlterSetting::HalfLife(self.duration()?)
        } else if self.eat_keyword(Keyword::Prior) {
            self.expect(&Token::LParen, "'('")?;
            let a = self.number("the prior successes")?;
            self.expect(&Token::Comma, "','")?;
            let b = self.number("the prior failures")?;
            self.expect(&Token::RParen, "')'")?;
            AlterSetting::Prior(a, b)
        } else if self.eat_keyword(Keyword::Retain) {
            AlterSetting::Retain(self.duration()?)
        } else if self.eat_keyword(Keyword::LearningRate) {
            AlterSetting::LearningRate(self.number("the learning rate")?)
        } else if self.eat_keyword(Keyword::L2) {
            AlterSetting::L2(self.number("the L2 penalty")?)
        } else {
            return Err(self.unexpected("HALF_LIFE, PRIOR, RETAIN, LEARNING_RATE or L2"));
        };
        Ok(Statement::Alter {
            kind,
            name,
            setting,
        })
    }

    /// `, type2, …` after `ON event`: more event types an item is bound to.
    fn more_event_types(&mut self) -> PResult<Vec<Ident>> {
        let mut out = Vec::new();
        while self.eat(&Token::Comma) {
            out.push(self.ident("an event type")?);
        }
        Ok(out)
    }

    /// `WHERE predicate` after `ON event`: which events an item takes.
    fn event_filter(&mut self) -> PResult<Option<Expr>> {
        if self.eat_keyword(Keyword::Where) {
            Ok(Some(self.expr(0)?))
        } else {
            Ok(None)
        }
    }

    /// `IF EXISTS`, when it comes next (an item may still be named `if`).
    fn if_exists(&mut self) -> PResult<bool> {
        if !(self.peek().is_keyword(Keyword::If)
            && (self.peek_at(1).is_keyword(Keyword::Exists)
                || self.peek_at(1).is_keyword(Keyword::Not)))
        {
            return Ok(false);
        }
        self.next();
        self.expect_keyword(Keyword::Exists)?;
        Ok(true)
    }

    /// `IF NOT EXISTS`, when it comes next (an item may still be named `if`).
    fn if_not_exists(&mut self) -> PResult<bool> {
        if !(self.peek().is_keyword(Keyword::If)
            && (self.peek_at(1).is_keyword(Keyword::Not)
                || self.peek_at(1).is_keyword(Keyword::Exists)))
        {
            return Ok(false);
        }
        self.next();
        self.expect_keyword(Keyword::Not)?;
        self.expect_keyword(Keyword::Exists)?;
        Ok(true)
    }

    fn create(&mut self) -> PResult<Statement> {
        if self.eat_keyword(Keyword::Or) {
            self.expect_keyword(Keyword::Replace)?;
            let inner = self.create_item(false)?;
            return Ok(Statement::CreateOrReplace(Box::new(inner)));
        }
        if self.eat_keyword(Keyword::Event) {
            let if_not_exists = self.if_not_exists()?;
            let name = self.ident("an event type")?;
            self.expect(&Token::LParen, "'('")?;
            let mut fields = vec![self.field_spec()?];
            while self.eat(&Token::Comma) {
                fields.push(self.field_spec()?);
            }
            self.expect(&Token::RParen, "')'")?;
            let create = Statement::CreateEvent { name, fields };
            return Ok(if if_not_exists {
                Statement::CreateIfNotExists(Box::new(create))
            } else {
                create
            });
        }
        if self.eat_keyword(Keyword::Index) {
            let if_not_exists = self.if_not_exists()?;
            let name = self.ident("an index name")?;
            self.expect_keyword(Keyword::On)?;
            let table = self.ident("'users'")?;
            self.expect_keyword(Keyword::Using)?;
            let method = self.ident("an index method: ivf")?;
            self.expect(&Token::LParen, "'('")?;
            let vector = self.ident("a vector name")?;
            self.expect(&Token::RParen, "')'")?;
            let with = if self.eat_keyword(Keyword::With) {
                self.with_options()?
            } else {
                Vec::new()
            };
            let create = Statement::CreateIndex {
                name,
                table,
                method,
                vector,
                with,
            };
            return Ok(if if_not_exists {
                Statement::CreateIfNotExists(Box::new(create))
            } else {
                create
            });
        }
        if self.eat_keyword(Keyword::Segments) {
            let if_not_exists = self.if_not_exists()?;
            let name = self.ident("a segment group name")?;
            self.expect_keyword(Keyword::From)?;
            self.expect_keyword(Keyword::Cluster)?;
            let cluster = Box::new(self.cluster()?);
            let create = Statement::CreateSegments { name, cluster };
            return Ok(if if_not_exists {
                Statement::CreateIfNotExists(Box::new(create))
            } else {
                create
            });
        }
        self.create_item(true)
    }

    /// `CREATE` of an attribute, feature, window, vector or segment, after
    /// the `CREATE`; with `IF NOT EXISTS` when `may_skip`.
    fn create_item(&mut self, may_skip: bool) -> PResult<Statement> {
        let kind = self.object_kind(false)?;
        let skip_at = self.span();
        if self.if_not_exists()? {
            if !may_skip {
                return Err(ParseError::new(
                    "CREATE OR REPLACE replaces an item that exists: IF NOT EXISTS does not go with it",
                    skip_at,
                ));
            }
            let inner = self.create_kind(kind)?;
            return Ok(Statement::CreateIfNotExists(Box::new(inner)));
        }
        self.create_kind(kind)
    }

    /// The rest of a `CREATE kind …`.
    fn create_kind(&mut self, kind: ObjectKind) -> PResult<Statement> {
        match kind {
            ObjectKind::Attribute => {
                let name = self.ident("an attribute name")?;
                let ty = self.attr_type()?;
                let on = if self.eat_keyword(Keyword::On) {
                    Some(self.ident("an event type")?)
                } else {
                    None
                };
                Ok(Statement::CreateAttribute { name, ty, on })
            }
            ObjectKind::Feature => self.create_feature(),
            ObjectKind::Window => {
                let name = self.ident("a window name")?;
                self.expect_keyword(Keyword::On)?;
                let event = self.ident("an event type")?;
                let also_on = self.more_event_types()?;
                let filter = self.event_filter()?;
                let (field, arg) = if self.eat_keyword(Keyword::Of) {
                    match self.expr(0)? {
                        Expr::Column(c) => (Some(c), None),
                        e => (None, Some(e)),
                    }
                } else {
                    (None, None)
                };
                self.expect_keyword(Keyword::Bucket)?;
                let bucket = self.duration()?;
                self.expect_keyword(Keyword::Retain)?;
                let retain = self.duration()?;
                Ok(Statement::CreateWindow {
                    name,
                    event,
                    also_on,
                    filter,
                    field,
                    arg,
                    bucket,
                    retain,
                })
            }
            ObjectKind::Vector => self.create_vector(),
            ObjectKind::Segment => {
                let name = self.ident("a segment name")?;
                self.expect_keyword(Keyword::As)?;
                let predicate = self.expr(0)?;
                Ok(Statement::CreateSegment { name, predicate })
            }
        }
    }

    /// A declared field: `name TYPE [NOT NULL] [DEFAULT constant]`, the
    /// last two in either order.
    fn field_spec(&mut self) -> PResult<FieldSpec> {
        let name = self.ident("a field name")?;
        let ty =
            if self.eat_keyword(Keyword::Vector) {
                self.expect(&Token::LParen, "'('")?;
                let span = self.span();
                let dim = self.unsigned("the vector's dimension")?;
                self.expect(&Token::RParen, "')'")?;
                FieldType::Vector(u32::try_from(dim).map_err(|_| {
                    ParseError::new(format!("dimension {dim} is out of range"), span)
                })?)
            } else {
                match self.attr_type().map_err(|_| {
                    self.unexpected("a type: INT, FLOAT, STRING, BOOL, TAGS or VECTOR(n)")
                })? {
                    AttrType::Int => FieldType::Int,
                    AttrType::Float => FieldType::Float,
                    AttrType::String => FieldType::String,
                    AttrType::Bool => FieldType::Bool,
                    AttrType::Tags => FieldType::Tags,
                }
            };
        let mut spec = FieldSpec {
            name,
            ty,
            not_null: false,
            default: None,
        };
        loop {
            if self.eat_keyword(Keyword::Not) {
                self.expect_keyword(Keyword::Null)?;
                spec.not_null = true;
            } else if self.eat_keyword(Keyword::Default) {
                spec.default = Some(self.constant("a default value")?);
            } else {
                return Ok(spec);
            }
        }
    }

    /// A constant: an optionally negative number, a string, `TRUE`,
    /// `FALSE` or `NULL`.
    fn constant(&mut self, what: &str) -> PResult<(Literal, Loc)> {
        let start = self.span();
        let neg = self.eat(&Token::Minus);
        let span = self.span();
        let lit = match self.peek().clone() {
            Token::Number(n) => number_literal(&n, span)?,
            Token::String(s) if !neg => Literal::String(s),
            t if !neg && t.is_keyword(Keyword::True) => Literal::Bool(true),
            t if !neg && t.is_keyword(Keyword::False) => Literal::Bool(false),
            t if !neg && t.is_keyword(Keyword::Null) => Literal::Null,
            _ => return Err(self.unexpected(what)),
        };
        self.next();
        let lit = match (neg, lit) {
            (true, Literal::Int(i)) => Literal::Int(-i),
            (true, Literal::Float(x)) => Literal::Float(-x),
            (_, lit) => lit,
        };
        Ok((lit, Loc(start.to(self.prev_span()))))
    }

    fn attr_type(&mut self) -> PResult<AttrType> {
        const TYPES: [(Keyword, AttrType); 5] = [
            (Keyword::Int, AttrType::Int),
            (Keyword::Float, AttrType::Float),
            (Keyword::String, AttrType::String),
            (Keyword::Bool, AttrType::Bool),
            (Keyword::Tags, AttrType::Tags),
        ];
        for (kw, ty) in TYPES {
            if self.eat_keyword(kw) {
                return Ok(ty);
            }
        }
        Err(self.unexpected("a type: INT, FLOAT, STRING, BOOL or TAGS"))
    }

    fn create_feature(&mut self) -> PResult<Statement> {
        let name = self.ident("a feature name")?;
        self.expect_keyword(Keyword::On)?;
        let event = self.ident("an event type")?;
        let also_on = self.more_event_types()?;
        let filter = self.event_filter()?;
        self.expect_keyword(Keyword::As)?;
        let func_span = self.span();
        let func = FeatureFunc::ALL
            .into_iter()
            .find(|f| self.at_keyword(f.keyword()))
            .ok_or_else(|| {
                self.unexpected(
                    "COUNT, SUM, MIN, MAX, LAST, DECAYED_COUNT, DECAYED_SUM, DECAYED_AVG, BETA, RATE, COUNT_DISTINCT, FIRST_SEEN or LAST_SEEN",
                )
            })?;
        self.next();
        self.expect(&Token::LParen, "'('")?;
        // A field, or a number computed from fields (`SUM(price * qty)`).
        let (field, arg) = if func.takes_field() {
            match self.expr(0)? {
                Expr::Column(c) => (Some(c), None),
                e => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        self.expect(
            &Token::RParen,
            if func.takes_field() {
                "')'"
            } else {
                "')': this aggregate takes no field"
            },
        )?;
        let by_field = if self.eat_keyword(Keyword::By) {
            Some(self.ident("the event field the feature is kept per value of")?)
        } else {
            None
        };
        let half_life = if self.eat_keyword(Keyword::HalfLife) {
            Some(self.duration()?)
        } else {
            None
        };
        if func.decays() != half_life.is_some() {
            let msg = if func.decays() {
                format!("{} needs a HALF_LIFE", func.keyword())
            } else {
                format!("{} does not decay, so takes no HALF_LIFE", func.keyword())
            };
            let span = half_life.map_or(func_span, |h| h.loc.0);
            return Err(ParseError::new(msg, span));
        }
        let prior = if matches!(func, FeatureFunc::Beta | FeatureFunc::Rate)
            && self.eat_keyword(Keyword::Prior)
        {
            self.expect(&Token::LParen, "'('")?;
            let a = self.number("the prior successes")?;
            self.expect(&Token::Comma, "','")?;
            let b = self.number("the prior failures")?;
            self.expect(&Token::RParen, "')'")?;
            Some((a, b))
        } else {
            None
        };
        let by = match by_field {
            Some(field) => {
                let top = if self.eat_keyword(Keyword::Top) {
                    let span = self.span();
                    let n = self.unsigned("the number of keys kept")?;
                    match u32::try_from(n) {
                        Ok(n) if n > 0 && n <= profiledb_storage::catalog::MAX_TOP => n,
                        _ => {
                            return Err(ParseError::new(
                                format!(
                                    "TOP keeps 1 to {} keys per user, not {n}",
                                    profiledb_storage::catalog::MAX_TOP
                                ),
                                span,
                            ));
                        }
                    }
                } else {
                    DEFAULT_TOP
                };
                Some(KeyedSpec { field, top })
            }
            None if self.at_keyword(Keyword::Top) => {
                return Err(ParseError::new(
                    "TOP bounds a keyed feature's keys: it follows BY field",
                    self.span(),
                ));
            }
            None => None,
        };
        Ok(Statement::CreateFeature {
            name,
            event,
            also_on,
            filter,
            func,
            field,
            arg,
            half_life,
            prior,
            by,
        })
    }

    fn create_vector(&mut self) -> PResult<Statement> {
        let name = self.ident("a vector name")?;
        self.expect_keyword(Keyword::On)?;
        let event = self.ident("an event type")?;
        let also_on = self.more_event_types()?;
        let filter = self.event_filter()?;
        self.expect_keyword(Keyword::As)?;
        let rule_span = self.span();
        let ewma = if self.eat_keyword(Keyword::Ewma) {
            true
        } else if self.eat_keyword(Keyword::Sgd) {
            false
        } else {
            return Err(self.unexpected("EWMA or SGD"));
        };
        self.expect(&Token::LParen, "'('")?;
        let first = self.ident("a field")?;
        let second = if ewma {
            None
        } else {
            self.expect(&Token::Comma, "',' and the label field")?;
            Some(self.ident("the label field")?)
        };
        self.expect(&Token::RParen, "')'")?;
        let (mut dim, mut half_life, mut rate, mut l2) = (None, None, None, None);
        loop {
            let span = self.span();
            let dup = |seen: bool, kw: &str| {
                if seen {
                    Err(ParseError::new(format!("{kw} is given twice"), span))
                } else {
                    Ok(())
                }
            };
            if self.eat_keyword(Keyword::Dim) {
                dup(dim.is_some(), "DIM")?;
                let d = self.unsigned("the dimension")?;
                let d = u32::try_from(d)
                    .ok()
                    .filter(|d| *d > 0)
                    .ok_or_else(|| ParseError::new("DIM must be between 1 and 2^32-1", span))?;
                dim = Some(d);
            } else if ewma && self.eat_keyword(Keyword::HalfLife) {
                dup(half_life.is_some(), "HALF_LIFE")?;
                half_life = Some(self.duration()?);
            } else if !ewma && self.eat_keyword(Keyword::LearningRate) {
                dup(rate.is_some(), "LEARNING_RATE")?;
                rate = Some(self.number("the learning rate")?);
            } else if !ewma && self.eat_keyword(Keyword::L2) {
                dup(l2.is_some(), "L2")?;
                l2 = Some(self.number("the L2 penalty")?);
            } else {
                break;
            }
        }
        let dim = dim.ok_or_else(|| ParseError::new("a vector needs DIM n", rule_span))?;
        let spec = match second {
            None => VectorSpec::Ewma {
                field: first,
                half_life: half_life
                    .ok_or_else(|| ParseError::new("EWMA needs a HALF_LIFE", rule_span))?,
            },
            Some(label) => VectorSpec::Sgd {
                item: first,
                label,
                learning_rate: rate
                    .ok_or_else(|| ParseError::new("SGD needs a LEARNING_RATE", rule_span))?,
                l2: l2.unwrap_or(0.0),
            },
        };
        Ok(Statement::CreateVector {
            name,
            event,
            also_on,
            filter,
            dim,
            spec,
        })
    }

    /// `users BY vector INTO k [WHERE p] [SEED n]`, after `CLUSTER`.
    fn cluster(&mut self) -> PResult<Cluster> {
        self.users_table()?;
        self.expect_keyword(Keyword::By)?;
        let vector = self.ident("a vector name")?;
        self.expect_keyword(Keyword::Into)?;
        let span = self.span();
        let k = self.unsigned("the number of clusters")?;
        if k == 0 {
            return Err(ParseError::new(
                "the number of clusters must be at least 1",
                span,
            ));
        }
        let selection = if self.eat_keyword(Keyword::Where) {
            Some(self.expr(0)?)
        } else {
            None
        };
        let seed = if self.eat_keyword(Keyword::Seed) {
            Some(self.unsigned("a seed")?)
        } else {
            None
        };
        Ok(Cluster {
            vector,
            k,
            selection,
            seed,
        })
    }

    fn insert(&mut self) -> PResult<Statement> {
        self.expect_keyword(Keyword::Into)?;
        let event = self.ident("an event type")?;
        self.expect(&Token::LParen, "'(' and the column list")?;
        let mut columns = vec![self.ident("a column")?];
        while self.eat(&Token::Comma) {
            columns.push(self.ident("a column")?);
        }
        self.expect(&Token::RParen, "')'")?;
        self.expect_keyword(Keyword::Values)?;
        let mut rows = Vec::new();
        loop {
            self.expect(&Token::LParen, "'(' and a row of values")?;
            let mut row = vec![self.expr(0)?];
            while self.eat(&Token::Comma) {
                row.push(self.expr(0)?);
            }
            self.expect(&Token::RParen, "')'")?;
            rows.push(row);
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        Ok(Statement::Insert {
            event,
            columns,
            rows,
        })
    }

    fn users_table(&mut self) -> PResult<()> {
        if self.at_keyword(Keyword::Users) {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected("'users', the only table"))
        }
    }

    fn update(&mut self) -> PResult<Statement> {
        self.users_table()?;
        self.expect_keyword(Keyword::Set)?;
        let mut assignments = Vec::new();
        loop {
            let name = self.ident("an attribute")?;
            self.expect(&Token::Eq, "'='")?;
            assignments.push((name, self.expr(0)?));
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect_keyword(Keyword::Where)?;
        Ok(Statement::Update {
            assignments,
            selection: self.expr(0)?,
        })
    }

    fn delete(&mut self) -> PResult<Statement> {
        if self.eat_keyword(Keyword::User) {
            let (user, span) = self.string("the user id, as a string")?;
            return Ok(Statement::DeleteUser {
                user,
                loc: Loc(span),
            });
        }
        self.expect_keyword(Keyword::From)?;
        self.users_table()?;
        self.expect_keyword(Keyword::Where)?;
        Ok(Statement::Delete {
            selection: self.expr(0)?,
        })
    }

    fn select(&mut self) -> PResult<Select> {
        let mut select = Select {
            distinct: self.eat_keyword(Keyword::Distinct),
            ..Select::default()
        };
        loop {
            if self.peek() == &Token::Star {
                let span = self.next().span;
                select.projection.push(SelectItem::Wildcard(Loc(span)));
            } else {
                let expr = self.expr(0)?;
                let alias = if self.eat_keyword(Keyword::As) {
                    Some(self.ident("an alias")?)
                } else {
                    None
                };
                // `SELECT x v1`: a bare alias, which SQL allows and this
                // language asks to spell with AS.
                if alias.is_none()
                    && let Token::Word { value, .. } = self.peek()
                    && !Keyword::ALL
                        .iter()
                        .any(|k| k.as_str().eq_ignore_ascii_case(value))
                    && !crate::ast::RESERVED
                        .iter()
                        .any(|r| r.eq_ignore_ascii_case(value))
                {
                    return Err(ParseError::new(
                        format!(
                            "expected ',' or FROM, found '{value}': to name a column, write {} AS {value}",
                            expr
                        ),
                        self.span(),
                    ));
                }
                select.projection.push(SelectItem::Expr { expr, alias });
            }
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        if self.eat_keyword(Keyword::From) {
            select.from = Some(self.ident("'users'")?);
        }
        if self.eat_keyword(Keyword::Where) {
            select.selection = Some(self.expr(0)?);
        }
        self.as_of(&mut select)?;
        if self.eat_keyword(Keyword::Group) {
            self.expect_keyword(Keyword::By)?;
            loop {
                select.group_by.push(self.expr(0)?);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
        }
        if self.eat_keyword(Keyword::Having) {
            select.having = Some(self.expr(0)?);
        }
        if self.eat_keyword(Keyword::Order) {
            self.expect_keyword(Keyword::By)?;
            loop {
                let expr = self.expr(0)?;
                let desc = if self.eat_keyword(Keyword::Desc) {
                    true
                } else {
                    self.eat_keyword(Keyword::Asc);
                    false
                };
                select.order_by.push(OrderBy { expr, desc });
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
        }
        // LIMIT and OFFSET, in either order.
        for _ in 0..2 {
            if select.limit.is_none() && self.eat_keyword(Keyword::Limit) {
                select.limit = Some(self.unsigned("a row count")?);
            } else if select.offset.is_none() && self.eat_keyword(Keyword::Offset) {
                select.offset = Some(self.unsigned("a row count")?);
            }
        }
        self.as_of(&mut select)?;
        if self.eat_keyword(Keyword::With) {
            select.with = self.with_options()?;
        }
        Ok(select)
    }

    /// `(key = value, …)` after `WITH`.
    fn with_options(&mut self) -> PResult<Vec<crate::ast::WithOption>> {
        self.expect(&Token::LParen, "'('")?;
        let mut options = Vec::new();
        loop {
            let key = self.ident("a setting name")?;
            self.expect(&Token::Eq, "'='")?;
            let value = self.expr(prec::NEG)?;
            options.push(crate::ast::WithOption { key, value });
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen, "')'")?;
        Ok(options)
    }

    /// `AS OF t`, after `WHERE` or at the end of a select, once.
    fn as_of(&mut self, select: &mut Select) -> PResult<()> {
        if self.at_keyword(Keyword::As) && self.peek_at(1).is_keyword(Keyword::Of) {
            let span = self.span();
            if select.as_of.is_some() {
                return Err(ParseError::new("AS OF is given twice", span));
            }
            self.next();
            self.next();
            select.as_of = Some(self.expr(prec::NEG)?);
        }
        Ok(())
    }

    /// Parses an expression whose operators bind at least as tightly as `min`.
    fn expr(&mut self, min: u8) -> PResult<Expr> {
        self.nested(|p| {
            let start = p.span();
            let mut left = p.prefix()?;
            // `map['key']` binds tighter than any operator.
            while p.eat(&Token::LBracket) {
                let key = p.expr(0)?;
                p.expect(&Token::RBracket, "']'")?;
                left = Expr::Index {
                    expr: Box::new(left),
                    key: Box::new(key),
                    end: Loc(p.prev_span()),
                };
            }
            // The height is kept as the tree grows, so that a long flat chain is
            // refused before it is built (dropping it would recurse too).
            let mut height = left.height();
            check_depth(height, start)?;
            while let Some(infix) = p.peek_infix(min) {
                let op = p.span();
                left = p.infix(left, infix)?;
                height = 1 + left.children()[1..]
                    .iter()
                    .map(|c| c.height())
                    .fold(height, usize::max);
                check_depth(height, op)?;
            }
            Ok(left)
        })
    }

    /// The infix operator ahead, if it binds at least as tightly as `min`.
    fn peek_infix(&self, min: u8) -> Option<Infix> {
        let t = self.peek();
        let op = |op: BinaryOp| Some(Infix::Binary(op));
        let infix = match t {
            Token::Eq => op(BinaryOp::Eq),
            Token::NotEq => op(BinaryOp::NotEq),
            Token::Lt => op(BinaryOp::Lt),
            Token::LtEq => op(BinaryOp::LtEq),
            Token::Gt => op(BinaryOp::Gt),
            Token::GtEq => op(BinaryOp::GtEq),
            Token::Plus => op(BinaryOp::Add),
            Token::Minus => op(BinaryOp::Sub),
            Token::Star => op(BinaryOp::Mul),
            Token::Slash => op(BinaryOp::Div),
            Token::Percent => op(BinaryOp::Rem),
            t if t.is_keyword(Keyword::Or) => op(BinaryOp::Or),
            t if t.is_keyword(Keyword::And) => op(BinaryOp::And),
            t if t.is_keyword(Keyword::Between) => Some(Infix::Between),
            t if t.is_keyword(Keyword::Is) => Some(Infix::IsNull),
            t if t.is_keyword(Keyword::Like) || t.is_keyword(Keyword::Ilike) => Some(Infix::Like),
            t if t.is_keyword(Keyword::Not)
                && (self.peek_at(1).is_keyword(Keyword::Like)
                    || self.peek_at(1).is_keyword(Keyword::Ilike)) =>
            {
                Some(Infix::Like)
            }
            t if t.is_keyword(Keyword::In) && self.peek_at(1) == &Token::LParen => {
                Some(Infix::InList)
            }
            t if t.is_keyword(Keyword::Not)
                && (self.peek_at(1).is_keyword(Keyword::Between)
                    || (self.peek_at(1).is_keyword(Keyword::In)
                        && self.peek_at(2) == &Token::LParen)) =>
            {
                Some(if self.peek_at(1).is_keyword(Keyword::Between) {
                    Infix::Between
                } else {
                    Infix::InList
                })
            }
            _ => None,
        }?;
        (infix.precedence() >= min).then_some(infix)
    }

    fn infix(&mut self, left: Expr, infix: Infix) -> PResult<Expr> {
        let p = infix.precedence();
        match infix {
            Infix::Binary(op) => {
                self.next();
                let right = self.expr(p + 1)?;
                Ok(Expr::Binary {
                    left: Box::new(left),
                    op,
                    right: Box::new(right),
                })
            }
            Infix::Between => {
                let negated = self.eat_keyword(Keyword::Not);
                self.expect_keyword(Keyword::Between)?;
                let low = self.expr(prec::ADD)?;
                self.expect_keyword(Keyword::And)?;
                let high = self.expr(prec::ADD)?;
                Ok(Expr::Between {
                    expr: Box::new(left),
                    negated,
                    low: Box::new(low),
                    high: Box::new(high),
                })
            }
            Infix::InList => {
                let negated = self.eat_keyword(Keyword::Not);
                self.expect_keyword(Keyword::In)?;
                self.expect(&Token::LParen, "'('")?;
                let mut list = vec![self.expr(0)?];
                while self.eat(&Token::Comma) {
                    list.push(self.expr(0)?);
                }
                self.expect(&Token::RParen, "')'")?;
                Ok(Expr::InList {
                    expr: Box::new(left),
                    negated,
                    list,
                })
            }
            Infix::Like => {
                let not = self.span();
                let negated = self.eat_keyword(Keyword::Not);
                let op = if self.eat_keyword(Keyword::Ilike) {
                    BinaryOp::ILike
                } else {
                    self.expect_keyword(Keyword::Like)?;
                    BinaryOp::Like
                };
                let right = self.expr(p + 1)?;
                let like = Expr::Binary {
                    left: Box::new(left),
                    op,
                    right: Box::new(right),
                };
                // `a NOT LIKE b` is `NOT (a LIKE b)`.
                Ok(if negated {
                    Expr::Unary {
                        op: UnaryOp::Not,
                        expr: Box::new(like),
                        loc: Loc(not),
                    }
                } else {
                    like
                })
            }
            Infix::IsNull => {
                self.expect_keyword(Keyword::Is)?;
                let negated = self.eat_keyword(Keyword::Not);
                self.expect_keyword(Keyword::Null)?;
                Ok(Expr::IsNull {
                    expr: Box::new(left),
                    negated,
                })
            }
        }
    }

    fn prefix(&mut self) -> PResult<Expr> {
        let span = self.span();
        let loc = Loc(span);
        match self.peek() {
            Token::Minus | Token::Plus => {
                let neg = self.next().token == Token::Minus;
                let expr = self.expr(prec::NEG)?;
                Ok(if neg {
                    Expr::Unary {
                        op: UnaryOp::Neg,
                        expr: Box::new(expr),
                        loc,
                    }
                } else {
                    expr
                })
            }
            Token::LParen => {
                self.next();
                let e = self.expr(0)?;
                self.expect(&Token::RParen, "')'")?;
                Ok(e)
            }
            Token::LBracket => {
                self.next();
                let mut items = Vec::new();
                if !self.eat(&Token::RBracket) {
                    loop {
                        items.push(self.expr(0)?);
                        if !self.eat(&Token::Comma) {
                            break;
                        }
                    }
                    self.expect(&Token::RBracket, "']'")?;
                }
                Ok(Expr::Array(items, Loc(span.to(self.prev_span()))))
            }
            Token::Number(_) | Token::String(_) => match self.next().token {
                Token::Number(n) => Ok(Expr::Literal(number_literal(&n, span)?, loc)),
                Token::String(s) => Ok(Expr::Literal(Literal::String(s), loc)),
                _ => Err(ParseError::new("expected a literal", span)),
            },
            t if t.is_keyword(Keyword::Not) => {
                self.next();
                let expr = self.expr(prec::NOT)?;
                Ok(Expr::Unary {
                    op: UnaryOp::Not,
                    expr: Box::new(expr),
                    loc,
                })
            }
            t if t.is_keyword(Keyword::Null) => {
                self.next();
                Ok(Expr::Literal(Literal::Null, loc))
            }
            t if t.is_keyword(Keyword::Case) => {
                self.next();
                let operand = if self.at_keyword(Keyword::When) {
                    None
                } else {
                    Some(Box::new(self.expr(0)?))
                };
                let mut whens = Vec::new();
                while self.eat_keyword(Keyword::When) {
                    let w = self.expr(0)?;
                    self.expect_keyword(Keyword::Then)?;
                    whens.push((w, self.expr(0)?));
                }
                if whens.is_empty() {
                    return Err(self.unexpected("WHEN"));
                }
                let otherwise = if self.eat_keyword(Keyword::Else) {
                    Some(Box::new(self.expr(0)?))
                } else {
                    None
                };
                let end = self.expect_keyword(Keyword::End)?;
                Ok(Expr::Case {
                    operand,
                    whens,
                    otherwise,
                    loc: Loc(span.to(end)),
                })
            }
            t if t.is_keyword(Keyword::True) || t.is_keyword(Keyword::False) => {
                let value = self.next().token.is_keyword(Keyword::True);
                Ok(Expr::Literal(Literal::Bool(value), loc))
            }
            t if t.is_keyword(Keyword::In) && self.peek_at(1).is_keyword(Keyword::Segment) => {
                self.next();
                self.next();
                Ok(Expr::InSegment(self.ident("a segment name")?))
            }
            Token::Word { .. } if self.peek_at(1) == &Token::LParen => {
                let name = self.ident("a function name")?;
                self.next();
                let mut args = Vec::new();
                if !self.eat(&Token::RParen) {
                    loop {
                        if self.eat(&Token::Star) {
                            args.push(FunctionArg::Star);
                        } else if self.eat_keyword(Keyword::Distinct) {
                            args.push(FunctionArg::Distinct(self.expr(0)?));
                        } else {
                            args.push(FunctionArg::Expr(self.expr(0)?));
                        }
                        if !self.eat(&Token::Comma) {
                            break;
                        }
                    }
                    self.expect(&Token::RParen, "')'")?;
                }
                Ok(Expr::Function { name, args })
            }
            Token::Word { .. } => Ok(Expr::Column(self.ident("an expression")?)),
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }
}

/// An infix operator, as seen before it is consumed.
#[derive(Debug, Clone, Copy)]
enum Infix {
    Binary(BinaryOp),
    Between,
    InList,
    IsNull,
    /// `[NOT] LIKE` and `[NOT] ILIKE`.
    Like,
}

impl Infix {
    fn precedence(self) -> u8 {
        match self {
            Infix::Binary(op) => op.precedence(),
            Infix::Between | Infix::InList | Infix::IsNull | Infix::Like => prec::CMP,
        }
    }
}

/// Refuses an expression tree higher than [`MAX_EXPR_DEPTH`], at `span`.
fn check_depth(height: usize, span: Span) -> PResult<()> {
    if height > MAX_EXPR_DEPTH {
        return Err(ParseError::new(
            format!(
                "expression too deep: more than {MAX_EXPR_DEPTH} levels; split it, or write a long chain of OR'd equalities as IN (…)"
            ),
            span,
        ));
    }
    Ok(())
}

/// An integer when written without a fraction or exponent, else a float.
fn number_literal(text: &str, span: Span) -> PResult<Literal> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Literal::Int).map_err(|_| {
            ParseError::new(
                format!("integer {text} is out of range (at most 9223372036854775807)"),
                span,
            )
        });
    }
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Literal::Float(x)),
        _ => Err(ParseError::new(
            format!("number {text} is out of range"),
            span,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses, prints, parses again and checks both trees are equal.
    fn round_trip(src: &str) -> Result<Statement, ParseError> {
        let stmt = parse_statement(src)?;
        let printed = stmt.to_string();
        let again = parse_statement(&printed)?;
        assert_eq!(stmt, again, "{src}\nprinted as\n{printed}");
        assert_eq!(printed, again.to_string());
        Ok(stmt)
    }

    #[test]
    fn contract_statements_round_trip() -> Result<(), ParseError> {
        for src in [
            "CREATE ATTRIBUTE age INT;",
            "CREATE ATTRIBUTE region STRING ON signup;",
            "CREATE FEATURE purchases ON purchase AS COUNT();",
            "CREATE FEATURE revenue ON purchase AS SUM(amount);",
            "CREATE FEATURE visits ON view AS DECAYED_COUNT() HALF_LIFE '7d';",
            "CREATE FEATURE ctr ON impression AS BETA(clicked) HALF_LIFE '14d' PRIOR (1, 20);",
            "CREATE WINDOW spend ON purchase OF amount BUCKET '1d' RETAIN '365d';",
            "CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 8 HALF_LIFE '14d';",
            "CREATE VECTOR pref ON impression AS SGD(item_vec, clicked) DIM 8 LEARNING_RATE 0.05 L2 0.0001;",
            "CREATE SEGMENT big_spenders AS spend_7d > 100 AND purchases >= 2;",
            "DROP FEATURE spend_7d;",
            "SHOW FEATURES;",
            "INSERT INTO purchase (user, ts, amount) VALUES ('u1', '2026-11-01T10:00:00Z', 35.0), ('u2', 1761991200000, 12.5);",
            "INSERT INTO view (user, ts, item_vec) VALUES ('u1', '2026-11-01T10:05:00Z', [0.1, 0.0, 0.3, 0.0, 0.0, 0.2, 0.0, 0.4]);",
            "UPDATE users SET age = 31, region = 'north' WHERE id = 'u1';",
            "DELETE USER 'u1';",
            "VACUUM;",
            "DELETE FROM users WHERE IN SEGMENT big_spenders;",
            "SELECT * FROM users WHERE id = 'u1' AS OF '2026-11-10T00:00:00Z';",
            "SELECT id, spend_7d, window_sum(spend, '7d'), window_count(views, '24h') FROM users\n  WHERE region = 'north' AND spend_7d > 50 AND age BETWEEN 20 AND 40\n  ORDER BY spend_7d DESC LIMIT 10 AS OF '2026-11-10T00:00:00Z';",
            "SELECT count(*) FROM users WHERE IN SEGMENT big_spenders;",
            "SELECT region, count(*), avg(spend_7d), sum(revenue) FROM users GROUP BY region ORDER BY region;",
            "SELECT id, zscore(views, '1d', '30d') AS z FROM users WHERE zscore(views, '1d', '30d') > 3;",
            "EXPLAIN SELECT id FROM users WHERE spend_7d > 50;",
            "SELECT id FROM users WHERE NOT IN SEGMENT s OR NOT (a = 1 AND b IS NOT NULL) AND -(-x) < 2 * (3 + y) - 1",
            "SELECT - - -x, -(a + b), - -1.5, -count(*) FROM users",
            "SELECT DISTINCT region FROM users WHERE a LIKE 'x%' AND NOT b ILIKE '_y' GROUP BY region HAVING count(DISTINCT c) > 1 ORDER BY region LIMIT 5 OFFSET 2 AS OF '2026-11-01'",
            "SELECT CASE WHEN a > 1 THEN 'x' WHEN a IS NULL THEN 'y' ELSE 'z' END, CASE r WHEN 'n' THEN 1 END, m['k'][x] FROM users",
            "SELECT 1 + 1, round(2.5, 1), percentile(x, 0.9)",
            "CREATE EVENT view (item STRING NOT NULL, price FLOAT DEFAULT -1.5, v VECTOR(3), n INT NOT NULL DEFAULT 2)",
            "ALTER EVENT view ADD FIELD coupon STRING DEFAULT 'none'",
            "CREATE FEATURE cat ON view AS DECAYED_SUM(price) BY category HALF_LIFE '14d' TOP 20",
            "DROP EVENT IF EXISTS view",
            "DESCRIBE EVENT view",
            "SHOW EVENTS",
            "BUCKETS daily FOR 'u1' OVER '30d' FILL ZEROS AS OF '2026-11-01'",
            "SELECT id, cosine(taste, 'u1') AS score FROM users WHERE id != 'u1' AND region = 'north' ORDER BY score DESC LIMIT 10;",
            "SELECT id, dot(pref, [0.1, 0.0, 0.3, 0.0, 0.0, 0.2, 0.0, 0.4]) AS s FROM users ORDER BY s DESC LIMIT 10;",
            "SELECT id, l2_distance(taste, [0.1, 0.0, 0.3, 0.0, 0.0, 0.2, 0.0, 0.4]) AS d FROM users ORDER BY d ASC LIMIT 5;",
            "SELECT id, cosine(taste, centroid(taste, big_spenders)) AS s FROM users WHERE NOT IN SEGMENT big_spenders ORDER BY s DESC LIMIT 100;",
            "CLUSTER users BY taste INTO 8 WHERE region = 'north' SEED 7;",
            "CREATE SEGMENTS taste_group FROM CLUSTER users BY taste INTO 8 SEED 7;",
            "DROP SEGMENTS taste_group",
            "CLUSTER users BY taste INTO 3",
            "SELECT \"select\", \"a\"\"b\" FROM users WHERE x NOT IN (1, 2.5e300, 'z') AND y NOT BETWEEN -1 AND 1",
        ] {
            round_trip(src)?;
        }
        Ok(())
    }

    #[test]
    fn precedence() -> Result<(), ParseError> {
        let e = parse_expr("a OR b AND NOT c = 1 + 2 * 3")?;
        assert_eq!(e.to_string(), "a OR b AND NOT c = 1 + 2 * 3");
        let Expr::Binary { op, right, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*op, BinaryOp::Or);
        assert!(matches!(
            **right,
            Expr::Binary {
                op: BinaryOp::And,
                ..
            }
        ));
        assert_eq!(parse_expr("(a - b) - c")?.to_string(), "a - b - c");
        assert_eq!(parse_expr("a - (b - c)")?.to_string(), "a - (b - c)");
        assert_eq!(parse_expr("(a OR b) AND c")?.to_string(), "(a OR b) AND c");
        assert_eq!(parse_expr("-(-(x))")?.to_string(), "- -x");
        assert_eq!(parse_expr("-(a * b)")?.to_string(), "-(a * b)");
        Ok(())
    }

    #[test]
    fn errors_name_what_was_expected() {
        let cases = [
            ("SELEC id FROM users", 0, "expected a statement"),
            (
                "SELECT id FROM users WHERE",
                26,
                "expected an expression, found end of input",
            ),
            (
                "CREATE FEATURE f ON e AS DECAYED_SUM(x)",
                25,
                "DECAYED_SUM needs a HALF_LIFE",
            ),
            (
                "CREATE FEATURE f ON e AS COUNT(x)",
                31,
                "this aggregate takes no field",
            ),
            (
                "CREATE WINDOW w ON e BUCKET '1y' RETAIN '1d'",
                28,
                "unknown unit 'y'",
            ),
            ("SELECT 99999999999999999999 FROM users", 7, "out of range"),
            ("SELECT a FROM users; SELECT", 27, "expected an expression"),
            ("SELECT a FROM users LIMIT -1", 26, "expected a row count"),
        ];
        for (src, at, msg) in cases {
            match parse_script(src) {
                Err(e) => {
                    assert_eq!(e.span.start, at, "{src}: {e}");
                    assert!(e.message.contains(msg), "{src}: {e}");
                }
                Ok(s) => panic!("{src} parsed as {s:?}"),
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let src = format!("SELECT {}1{} FROM users", "(".repeat(500), ")".repeat(500));
        let e = parse_statement(&src).err();
        assert!(e.is_some_and(|e| e.message.contains("recursion limit")));
        let src = format!("SELECT {}1 FROM users", "NOT ".repeat(500));
        assert!(parse_statement(&src).is_err());
        let src = format!("SELECT {}1 FROM users", "- ".repeat(500));
        assert!(parse_statement(&src).is_err());
    }
}
