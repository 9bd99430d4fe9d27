//! Where the shell's statements run: a database opened in this process, or a
//! server reached over HTTP. Both give the same [`Output`], so the shell prints
//! the same either way.

use std::path::Path;
use std::time::Duration;

use profiledb::{Db, Error, Limits, Output, Permission, Value};

use profiledb::json::{JsonValue, output_from_json};

/// Where in a statement's text an error is: 1-based line and column (in
/// characters), and how many characters to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub column: usize,
    pub width: usize,
}

/// A statement that failed: the message and, when it concerns part of the
/// statement, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub at: Option<Located>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            at: None,
        }
    }

    /// The failure of a statement run by the library.
    pub fn from_error(e: &Error) -> Failure {
        match e {
            Error::Query(q) => Failure {
                message: q.message(),
                at: q.position().map(|p| Located {
                    line: p.line,
                    column: p.column,
                    width: p.width,
                }),
            },
            other => Failure::new(other.to_string()),
        }
    }
}

/// Opens the database at `dir` for this process, with a clear message when
/// another process holds it.
pub fn open_local(dir: &Path) -> Result<Db, String> {
    open_local_with(profiledb::Options::new(dir))
}

/// As [`open_local`], with explicit options.
pub fn open_local_with(options: profiledb::Options) -> Result<Db, String> {
    let dir = options.path.clone();
    Db::open_with(options).map_err(|e| match e.storage_kind() {
        Some(profiledb::ErrorKind::Locked) => format!(
            "the database at {} is already open in another process. If a server holds it, \
             connect to that server instead: profiledb shell --connect http://HOST:PORT",
            dir.display()
        ),
        _ => format!("cannot open the database at {}: {e}", dir.display()),
    })
}

/// Where statements run.
#[derive(Debug)]
pub enum Backend {
    /// A database opened by this process.
    Local(Db),
    /// A server.
    Remote(Client),
}

impl Backend {
    /// Runs the statements of `sql` and returns the last one's output.
    pub fn run(&self, sql: &str) -> Result<Output, Failure> {
        self.run_params(sql, &[])
    }

    /// [`Backend::run`] with bind parameters (`$1` is `params[0]`).
    pub fn run_params(&self, sql: &str, params: &[Value]) -> Result<Output, Failure> {
        match self {
            Backend::Local(db) => db
                .execute_params_as(sql, params, &Limits::default(), Permission::ReadWrite)
                .map_err(|e| Failure::from_error(&e))?
                .pop()
                .ok_or_else(|| Failure::new("expected a statement")),
            Backend::Remote(c) => c.query(sql, params),
        }
    }
}

/// A client of a ProfileDB server's query endpoint.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `url` (`http://HOST:PORT`).
    pub fn new(url: &str, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        let url = url.trim_end_matches('/');
        // `HOST:PORT` alone means plain HTTP.
        let base = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        Client { agent, base, token }
    }

    /// Posts a batch of events (a JSON array) to `POST /v1/events`, with
    /// `?skip_bad=true` when `skip_bad`: the status and the JSON answer.
    pub fn post_events(
        &self,
        body: String,
        skip_bad: bool,
    ) -> Result<(u16, serde_json::Value), String> {
        let url = format!(
            "{}/v1/events{}",
            self.base,
            if skip_bad { "?skip_bad=true" } else { "" }
        );
        let mut req = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req
            .send(body.as_bytes())
            .map_err(|e| format!("cannot reach the server at {}: {e}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("reading the server's answer: {e}"))?;
        let json = serde_json::from_str(&text)
            .map_err(|_| format!("the server answered {status}: {}", text.trim()))?;
        Ok((status, json))
    }

    /// Runs `sql` with bind parameters on the server: `POST /v1/query`.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Output, Failure> {
        let url = format!("{}/v1/query", self.base);
        let mut req = self.agent.post(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req
            .send_json(serde_json::json!({
                "sql": sql,
                "params": params.iter().map(JsonValue).collect::<Vec<_>>(),
            }))
            .map_err(|e| Failure::new(format!("cannot reach the server at {}: {e}", self.base)))?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| Failure::new(format!("reading the server's answer: {e}")))?;
        let json: serde_json::Value = serde_json::from_str(&body)
            .map_err(|_| Failure::new(format!("the server answered {status}: {}", body.trim())))?;
        if !status.is_success() {
            return Err(failure_from_json(&json, status.as_u16()));
        }
        output_from_json(&json)
            .ok_or_else(|| Failure::new(format!("unexpected answer from the server: {body}")))
    }
}

/// An error answer: `{"error": {"message", "line", "column", "width"}}`.
fn failure_from_json(json: &serde_json::Value, status: u16) -> Failure {
    let e = &json["error"];
    let Some(message) = e["message"].as_str() else {
        return Failure::new(format!("the server answered {status}: {json}"));
    };
    let num = |k: &str| e[k].as_u64().and_then(|n| usize::try_from(n).ok());
    let at = match (num("line"), num("column")) {
        (Some(line), Some(column)) => Some(Located {
            line,
            column,
            width: num("width").unwrap_or(1),
        }),
        _ => None,
    };
    Failure {
        message: message.to_owned(),
        at,
    }
}
