//! The shell: statements from `-c`, `-f` or piped stdin, or an interactive
//! prompt with history, multi-line statements and backslash commands.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use profiledb::{Column, Output, Rows, Type, Value};
use std::cell::RefCell;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::backend::{Backend, Failure};
use crate::format::{self, Expanded, Format, Style};

const HELP: &str = "\
Statements end with ';' and may span lines. Backslash commands:
  \\d           list the schema: attributes, features, windows, vectors, segments, event types, indexes
  \\d NAME      describe one item
  \\timing      print how long each statement takes (\\timing on|off)
  \\format F    print rows as table, csv or json
  \\x [on|off|auto]  expanded display: a record at a time (auto: when a row is too wide)
  \\precision N  significant digits of floats in tables (\\precision off: exact; csv and json are exact)
  \\copy (SELECT ...) TO 'FILE'  write a statement's rows to FILE: .parquet as Parquet, .csv as CSV,
               anything else as JSON Lines
  \\help        this help
  \\q           quit
Examples:
  CREATE ATTRIBUTE region STRING ON signup;
  CREATE FEATURE spend_7d ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
  INSERT INTO purchase (user, ts, amount) VALUES ('u1', '2026-11-01T10:00:00Z', 35.0);
  SELECT id, spend_7d FROM users WHERE spend_7d > 10 ORDER BY spend_7d DESC LIMIT 10;
The whole language: docs/query-language.md";

/// A shell over a backend.
#[derive(Debug)]
pub struct Shell {
    backend: Backend,
    format: Format,
    timing: bool,
    /// Bind parameters for the next statement (`\bind`).
    params: Vec<Value>,
    /// How tables read (`\x`, `\precision`).
    style: Style,
    /// Print each statement of a script before running it (`-e`).
    pub echo: bool,
    /// Said when the database was made by this run (`--db` named none): at
    /// the interactive prompt's start, and after a statement that names
    /// something unknown (in a new, empty database, the likely cause).
    pub new_db: Option<String>,
}

impl Shell {
    pub fn new(backend: Backend, format: Format) -> Shell {
        Shell {
            backend,
            format,
            timing: false,
            params: Vec::new(),
            style: Style::default(),
            echo: false,
            new_db: None,
        }
    }

    /// Runs every statement of `src` in order, stopping at the first error,
    /// which goes to stderr. `origin` names a file the text came from. Returns
    /// whether every statement succeeded.
    pub fn run_script(&mut self, src: &str, origin: Option<&str>) -> bool {
        let (spans, lex_error) = profiledb::split_statements(src);
        for span in spans {
            if !self.run_statement(src, span.start, &src[span.start..span.end], origin) {
                return false;
            }
        }
        if let Some(e) = lex_error {
            let failure = Failure {
                message: format!("syntax error: {}", e.message),
                at: None,
            };
            let at = position(src, e.span.start, 1, 1);
            // The caret underlines the bad text up to the end of its line.
            let rest = src
                .get(e.span.start..e.span.end.min(src.len()))
                .unwrap_or_default();
            let width = rest.lines().next().unwrap_or_default().chars().count();
            print_failure(src, &failure, Some((at, width)), origin);
            return false;
        }
        true
    }

    /// Runs one `-c` argument: a backslash command or statements.
    pub fn run_command(&mut self, text: &str) -> bool {
        match text.trim_start().strip_prefix('\\') {
            Some(cmd) => self.meta(cmd).unwrap_or(true),
            None => self.run_script(text, None),
        }
    }

    /// Runs the statement `stmt`, found at byte `offset` of `src`, and prints its
    /// output or its error.
    fn run_statement(
        &mut self,
        src: &str,
        offset: usize,
        stmt: &str,
        origin: Option<&str>,
    ) -> bool {
        if self.echo {
            println!("{};", stmt.trim());
        }
        let start = Instant::now();
        // Parameters bind the next statement only, as psql's \bind does.
        let params = std::mem::take(&mut self.params);
        let result = self.backend.run_params(stmt, &params);
        let elapsed = start.elapsed();
        let ok = match result {
            Ok(output) => {
                self.print(&output);
                true
            }
            Err(f) => {
                let at =
                    f.at.map(|a| (position(src, offset, a.line, a.column), a.width));
                print_failure(src, &f, at, origin);
                if f.message.contains("unknown")
                    && let Some(note) = self.new_db.take()
                {
                    eprintln!("{note}");
                }
                false
            }
        };
        if self.timing {
            eprintln!("Time: {:.3} ms", elapsed.as_secs_f64() * 1e3);
        }
        ok
    }

    fn print(&self, output: &Output) {
        let (stdout, stderr) = (io::stdout(), io::stderr());
        let (mut out, mut info) = (stdout.lock(), stderr.lock());
        if let Err(e) = format::print_styled(output, self.format, self.style, &mut out, &mut info)
            .and_then(|()| out.flush())
        {
            // A closed pipe (`| head`) is not an error worth a message.
            if e.kind() != io::ErrorKind::BrokenPipe {
                let _ = writeln!(info, "error: writing output: {e}");
            }
        }
    }

    /// Runs a backslash command (without its `\`). `None` asks to quit.
    fn meta(&mut self, cmd: &str) -> Option<bool> {
        let mut words = cmd.split_whitespace();
        let name = words.next().unwrap_or_default();
        let arg = words.next();
        let ok = match (name, arg) {
            ("q" | "quit", _) => return None,
            ("x", arg) => {
                let next = match arg {
                    None if self.style.expanded == Expanded::Off => Some(Expanded::On),
                    None => Some(Expanded::Off),
                    Some("on") => Some(Expanded::On),
                    Some("off") => Some(Expanded::Off),
                    Some("auto") => Some(Expanded::Auto),
                    Some(_) => None,
                };
                match next {
                    Some(x) => {
                        self.style.expanded = x;
                        let state = match x {
                            Expanded::On => "on",
                            Expanded::Off => "off",
                            Expanded::Auto => "auto",
                        };
                        eprintln!("Expanded display is {state}.");
                        true
                    }
                    None => {
                        eprintln!("error: \\x takes on, off or auto");
                        false
                    }
                }
            }
            ("precision", Some(p)) => match (p, p.parse::<usize>()) {
                ("off", _) => {
                    self.style.precision = None;
                    eprintln!("Floats print exactly.");
                    true
                }
                (_, Ok(n)) if (1..=17).contains(&n) => {
                    self.style.precision = Some(n);
                    eprintln!("Floats print with {n} significant digits.");
                    true
                }
                _ => {
                    eprintln!("error: \\precision takes 1 to 17 digits, or off");
                    false
                }
            },
            ("bind", _) => {
                let rest = cmd.trim_start()["bind".len()..].trim();
                match bind_params(rest) {
                    Ok(params) => {
                        self.params = params;
                        true
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        false
                    }
                }
            }
            ("copy", _) => {
                let rest = cmd.trim_start()["copy".len()..].trim();
                match parse_copy(rest) {
                    Ok((stmt, path)) => self.copy(stmt, Path::new(path)),
                    Err(e) => {
                        eprintln!("error: {e}");
                        false
                    }
                }
            }
            ("help" | "?" | "h", _) => {
                println!("{HELP}");
                true
            }
            ("d", None) => self.list_schema(),
            ("d", Some(item)) => {
                let stmt = format!("DESCRIBE {}", quote_ident(item));
                self.run_statement(&stmt, 0, &stmt, None)
            }
            ("timing", arg) => {
                let next = match arg {
                    None => Some(!self.timing),
                    Some("on") => Some(true),
                    Some("off") => Some(false),
                    Some(_) => None,
                };
                match next {
                    Some(on) => {
                        self.timing = on;
                        eprintln!("Timing is {}.", if on { "on" } else { "off" });
                        true
                    }
                    None => {
                        eprintln!("error: \\timing takes on or off");
                        false
                    }
                }
            }
            ("format", Some(f)) => match <Format as clap::ValueEnum>::from_str(f, true) {
                Ok(f) => {
                    self.format = f;
                    true
                }
                Err(_) => {
                    eprintln!("error: unknown format '{f}': use table, csv or json");
                    false
                }
            },
            _ => {
                eprintln!("error: unknown command '\\{cmd}'; \\help lists the commands");
                false
            }
        };
        Some(ok)
    }

    /// `\copy (STATEMENT) TO 'FILE'`: the statement's rows written to FILE
    /// in the format its extension names.
    fn copy(&mut self, stmt: &str, path: &Path) -> bool {
        let params = std::mem::take(&mut self.params);
        let rows = match self.backend.run_params(stmt, &params) {
            Ok(Output::Rows(rows)) => rows,
            Ok(Output::Done { .. }) => {
                eprintln!("error: \\copy takes a statement that returns rows");
                return false;
            }
            Err(f) => {
                print_failure(stmt, &f, f.at.map(|a| ((a.line, a.column), a.width)), None);
                return false;
            }
        };
        let count = rows.rows.len();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let written = std::fs::File::create(path)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                let mut f = io::BufWriter::new(f);
                match ext.as_deref() {
                    Some("parquet") => {
                        profiledb::parquet::write_rows(&rows, f).map_err(|e| e.to_string())
                    }
                    Some("csv") => write_rows(&rows, Format::Csv, &mut f),
                    _ => write_rows(&rows, Format::Json, &mut f),
                }
            });
        match written {
            Ok(()) => {
                eprintln!("COPY {count} rows to {}", path.display());
                true
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                false
            }
        }
    }

    /// `\d`: every schema item, by kind.
    fn list_schema(&mut self) -> bool {
        let col = |name: &str| Column {
            name: name.into(),
            ty: Type::String,
        };
        let mut all = Rows {
            columns: vec![col("kind"), col("name"), col("definition")],
            rows: Vec::new(),
        };
        for (kind, plural) in [
            ("attribute", "ATTRIBUTES"),
            ("feature", "FEATURES"),
            ("window", "WINDOWS"),
            ("vector", "VECTORS"),
            ("segment", "SEGMENTS"),
        ] {
            match self.backend.run(&format!("SHOW {plural}")) {
                Ok(Output::Rows(rows)) => all.rows.extend(rows.rows.into_iter().map(|r| {
                    std::iter::once(Value::String(kind.into()))
                        .chain(r)
                        .collect()
                })),
                Ok(Output::Done { .. }) => {}
                Err(f) => {
                    eprintln!("error: {}", f.message);
                    return false;
                }
            }
        }
        // Declared event types: name and declaration.
        if let Ok(Output::Rows(rows)) = self.backend.run("SHOW EVENTS") {
            all.rows.extend(rows.rows.into_iter().filter_map(|r| {
                let (Some(name), Some(Value::String(definition))) = (r.first(), r.get(3)) else {
                    return None;
                };
                Some(vec![
                    Value::String("event type".into()),
                    name.clone(),
                    Value::String(definition.clone()),
                ])
            }));
        }
        // Indexes: name and the settings they were made with.
        if let Ok(Output::Rows(rows)) = self.backend.run("SHOW INDEXES") {
            all.rows.extend(rows.rows.into_iter().filter_map(|r| {
                let [
                    name,
                    Value::String(vector),
                    Value::String(method),
                    Value::Int(lists),
                    Value::Int(probes),
                    Value::Int(rerank),
                    ..,
                ] = r.as_slice()
                else {
                    return None;
                };
                Some(vec![
                    Value::String("index".into()),
                    name.clone(),
                    Value::String(format!(
                        "USING {method} ({vector}) WITH (lists = {lists}, probes = {probes}, rerank = {rerank})"
                    )),
                ])
            }));
        }
        self.print(&Output::Rows(all));
        true
    }

    /// The names completion offers beside keywords: every schema item and
    /// declared event type.
    fn schema_names(&self) -> Vec<String> {
        match &self.backend {
            Backend::Local(db) => {
                let c = db.catalog();
                c.attributes
                    .iter()
                    .map(|d| d.name.clone())
                    .chain(c.features.iter().map(|d| d.name.clone()))
                    .chain(c.windows.iter().map(|d| d.name.clone()))
                    .chain(c.vectors.iter().map(|d| d.name.clone()))
                    .chain(c.segments.iter().map(|d| d.name.clone()))
                    .chain(c.segment_groups.iter().map(|d| d.name.clone()))
                    .chain(c.events.iter().map(|d| d.name.clone()))
                    .chain(c.indexes.iter().map(|d| d.name.clone()))
                    .collect()
            }
            Backend::Remote(_) => {
                let mut names = Vec::new();
                for kind in [
                    "ATTRIBUTES",
                    "FEATURES",
                    "WINDOWS",
                    "VECTORS",
                    "SEGMENTS",
                    "EVENTS",
                    "INDEXES",
                ] {
                    if let Ok(out) = self.backend.run(&format!("SHOW {kind}")) {
                        names.extend(
                            out.rows()
                                .map(|r| r.rows.as_slice())
                                .unwrap_or_default()
                                .iter()
                                .filter_map(|r| match r.first() {
                                    Some(Value::String(n)) => Some(n.clone()),
                                    _ => None,
                                }),
                        );
                    }
                }
                names
            }
        }
    }

    /// The interactive prompt. Returns the process exit code.
    pub fn interactive(&mut self) -> u8 {
        let names = Rc::new(RefCell::new(self.schema_names()));
        let mut editor: Editor<Completion, DefaultHistory> = match Editor::new() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: cannot start the line editor: {e}");
                return 1;
            }
        };
        editor.set_helper(Some(Completion {
            names: Rc::clone(&names),
        }));
        // Ctrl-C while a statement of this process runs cancels it (while a
        // line is typed, the editor takes Ctrl-C as a key and clears it).
        if matches!(self.backend, Backend::Local(_)) {
            std::thread::spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    while tokio::signal::ctrl_c().await.is_ok() {
                        profiledb::interrupt();
                    }
                });
            });
        }
        let history = history_path();
        if let Some(h) = &history {
            // A missing history file is the normal first run.
            let _ = editor.load_history(h);
        }
        eprintln!("ProfileDB shell. End statements with ';'. \\help for help, \\q to quit.");
        if let Some(note) = self.new_db.take() {
            eprintln!("{note}");
        }
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                "profiledb> "
            } else {
                "       ...> "
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    // A backslash command runs at any point, a statement
                    // under way or not (which it leaves as it was): `\q`
                    // quits even after a missing ';'.
                    if line.trim_start().starts_with('\\') {
                        let _ = editor.add_history_entry(line.as_str());
                        let cmd = line.trim_start().trim_start_matches('\\').to_owned();
                        if self.meta(&cmd).is_none() {
                            break;
                        }
                        continue;
                    }
                    if buffer.is_empty() && line.trim().is_empty() {
                        continue;
                    }
                    if !buffer.is_empty() {
                        buffer.push('\n');
                    }
                    buffer.push_str(&line);
                    if profiledb::ends_statement(&buffer) {
                        let _ = editor.add_history_entry(buffer.as_str());
                        let script = std::mem::take(&mut buffer);
                        profiledb::clear_interrupt();
                        self.run_script(&script, None);
                        // A statement may have changed the schema.
                        *names.borrow_mut() = self.schema_names();
                    }
                }
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    eprintln!("error: reading input: {e}");
                    break;
                }
            }
        }
        if let Some(h) = &history
            && let Err(e) = editor.save_history(h)
        {
            eprintln!("warning: cannot save history to {}: {e}", h.display());
        }
        0
    }
}

/// `~/.profiledb_history`, when the home directory is known.
/// Tab completion: backslash commands, keywords (in the case typed) and
/// the schema's names.
struct Completion {
    names: Rc<RefCell<Vec<String>>>,
}

/// The backslash commands, for completion.
const COMMANDS: &[&str] = &[
    "\\d",
    "\\timing",
    "\\format",
    "\\x",
    "\\precision",
    "\\bind",
    "\\help",
    "\\q",
];

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\\'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if word.is_empty() {
            return Ok((start, Vec::new()));
        }
        let pair = |s: String| Pair {
            display: s.clone(),
            replacement: s,
        };
        let mut out: Vec<Pair> = Vec::new();
        if word.starts_with('\\') {
            out.extend(
                COMMANDS
                    .iter()
                    .filter(|c| c.starts_with(word))
                    .map(|c| pair((*c).to_owned())),
            );
            return Ok((start, out));
        }
        let lower = word.chars().all(|c| !c.is_uppercase());
        let upper = word.to_ascii_uppercase();
        out.extend(
            profiledb_query::lexer::Keyword::ALL
                .iter()
                .map(|k| k.as_str())
                .filter(|k| k.len() > word.len() && k.starts_with(&upper))
                .map(|k| {
                    pair(if lower {
                        k.to_ascii_lowercase()
                    } else {
                        k.to_owned()
                    })
                }),
        );
        out.extend(
            self.names
                .borrow()
                .iter()
                .filter(|n| n.starts_with(word) && n.len() > word.len())
                .map(|n| pair(n.clone())),
        );
        out.sort_by(|a, b| a.replacement.cmp(&b.replacement));
        out.dedup_by(|a, b| a.replacement == b.replacement);
        Ok((start, out))
    }
}

impl Hinter for Completion {
    type Hint = String;
}

impl Highlighter for Completion {}

impl Validator for Completion {}

impl Helper for Completion {}

/// The parameters of `\bind`: a JSON array of values (`["u1", 5, null]`);
/// nothing clears them.
fn bind_params(text: &str) -> Result<Vec<Value>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("\\bind takes a JSON array of values, such as [\"u1\", 5]: {e}"))?;
    let serde_json::Value::Array(items) = json else {
        return Err("\\bind takes a JSON array of values, such as [\"u1\", 5]".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| Value::from_json(v).map_err(|e| format!("parameter ${}: {e}", i + 1)))
        .collect()
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".profiledb_history"))
}

/// A name as a quoted identifier unless it is a plain one.
fn quote_ident(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The 1-based line and column in `src` of (`line`, `column`) counted within
/// the statement that starts at byte `offset`.
fn position(src: &str, offset: usize, line: usize, column: usize) -> (usize, usize) {
    let before = src.get(..offset).unwrap_or(src);
    let line0 = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col0 = before[line_start..].chars().count() + 1;
    if line <= 1 {
        (line0, col0 + column - 1)
    } else {
        (line0 + line - 1, column)
    }
}

/// Prints a failure to stderr: the message and, when located, the line of
/// `src` with a caret under the offending text.
fn print_failure(
    src: &str,
    f: &Failure,
    at: Option<((usize, usize), usize)>,
    origin: Option<&str>,
) {
    let mut msg = String::from("error: ");
    if let Some(file) = origin {
        msg.push_str(file);
        msg.push_str(": ");
    }
    msg.push_str(&f.message);
    if let Some(((line, column), width)) = at {
        let text = src
            .lines()
            .nth(line - 1)
            .unwrap_or_default()
            .replace('\t', " ");
        msg.push_str(&format!(
            " (line {line}, column {column})\n  {}\n  {}{}",
            text.trim_end(),
            " ".repeat(column.saturating_sub(1)),
            "^".repeat(width.max(1))
        ));
    }
    eprintln!("{msg}");
}

/// Rows as CSV or JSON Lines into `out`, flushed.
fn write_rows(rows: &Rows, format: Format, out: &mut impl Write) -> Result<(), String> {
    format::print(&Output::Rows(rows.clone()), format, out, &mut io::sink())
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())
}

/// `(STATEMENT) TO 'FILE'` (the quotes optional) as the statement and the
/// file.
fn parse_copy(rest: &str) -> Result<(&str, &str), String> {
    const USAGE: &str = "\\copy takes (STATEMENT) TO 'FILE', such as \\copy (SELECT id, spend FROM users) TO 'spend.parquet'";
    let inner = rest.strip_prefix('(').ok_or(USAGE)?;
    // The last `) TO` ends the statement (a file name may hold a `)`).
    let (close, tail) = inner
        .char_indices()
        .rev()
        .filter(|&(_, c)| c == ')')
        .find_map(|(i, _)| {
            let tail = inner[i + 1..].trim_start();
            let word = tail.get(..2)?;
            let after = tail[2..].chars().next()?;
            (word.eq_ignore_ascii_case("to") && after.is_whitespace())
                .then(|| (i, tail[2..].trim()))
        })
        .ok_or(USAGE)?;
    let stmt = inner[..close].trim().trim_end_matches(';').trim_end();
    let file = tail
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(tail);
    if stmt.is_empty() || file.is_empty() {
        return Err(USAGE.into());
    }
    Ok((stmt, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_takes_a_statement_and_a_file() {
        assert_eq!(
            parse_copy("(SELECT id FROM users WHERE f(x) > 1) TO 'out (1).parquet'"),
            Ok(("SELECT id FROM users WHERE f(x) > 1", "out (1).parquet"))
        );
        assert_eq!(
            parse_copy("(SELECT 1;) to out.csv"),
            Ok(("SELECT 1", "out.csv"))
        );
        assert!(parse_copy("SELECT 1 TO 'x.csv'").is_err());
        assert!(parse_copy("(SELECT 1)").is_err());
        assert!(parse_copy("() TO 'x.csv'").is_err());
        assert!(parse_copy("(SELECT 1) TO ''").is_err());
    }

    #[test]
    fn positions_in_a_statement_map_to_the_script() {
        let src = "SHOW FEATURES;\n  SELECT x\n  FROM y;";
        let offset = src.find("SELECT").expect("present");
        // Line 1 of the statement starts at its own column in the script.
        assert_eq!(position(src, offset, 1, 8), (2, 10));
        // Later lines keep their column.
        assert_eq!(position(src, offset, 2, 3), (3, 3));
        assert_eq!(position("SELECT 1", 0, 1, 8), (1, 8));
    }

    #[test]
    fn identifiers_are_quoted_when_needed() {
        assert_eq!(quote_ident("spend_7d"), "spend_7d");
        assert_eq!(quote_ident("a b\""), "\"a b\"\"\"");
    }
}
