//! `profiledb`: the shell, the server, bulk import and the demo.
//!
//! ```text
//! profiledb shell --db DIR [-c STATEMENT]... [-f FILE] [--format table|csv|json]
//! profiledb shell --connect http://HOST:PORT [--token TOKEN] [-c STATEMENT]... [-f FILE] [--format …]
//! profiledb serve --db DIR [--listen 127.0.0.1:7070] [--token TOKEN] [--read-token TOKEN] [limits…]
//! profiledb serve --db DIR --nats URL --node NAME [--listen ADDR]
//! profiledb import --db DIR [--skip-bad] [--format jsonl|csv|parquet] FILE...
//! profiledb export --db DIR --at PAIRS.csv --select ITEMS [--format csv|jsonl|parquet] [-o FILE]
//! profiledb cluster init --nats URL [--partitions 64] [--replicas 1]
//! profiledb cluster status --nats URL
//! profiledb demo [--db DIR] [--users N] [--days N]
//! ```

#![forbid(unsafe_code)]

mod backend;
mod cluster;
mod demo;
mod export;
mod format;
mod import;
mod server;
mod shell;

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::backend::{Backend, Client, open_local, open_local_with};
use crate::format::Format;
use crate::shell::Shell;

/// ProfileDB: an embedded database engine for dynamic user profiles.
#[derive(Debug, Parser)]
#[command(name = "profiledb", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run statements: from -c, -f or piped stdin, or at an interactive prompt.
    Shell(ShellArgs),
    /// Serve a database over HTTP.
    Serve(ServeArgs),
    /// Load events from JSON Lines, CSV or Parquet files (also gzipped), into a database
    /// or, with --connect, a running server in batches of 10,000 (one request
    /// and one atomic write each).
    Import(ImportArgs),
    /// Write point-in-time rows: selected items of each (user, ts) pair of a
    /// CSV file, as of its own time.
    Export(ExportArgs),
    /// Build a demo database from a synthetic event stream and tour it.
    Demo(DemoArgs),
    /// Make or inspect a cluster on NATS JetStream.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Serve the HTTP API in front of a cluster: ingest publishes to its log,
    /// reads and statements go to its nodes.
    Router(RouterArgs),
}

#[derive(Debug, Args)]
struct RouterArgs {
    /// NATS server(s) of the cluster, as nats://HOST:PORT (comma-separated).
    #[arg(long, value_name = "URL")]
    nats: String,
    #[command(flatten)]
    http: HttpArgs,
    /// Longest a request passed on to a node may take.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_timeout)]
    timeout: Duration,
}

/// How a server listens: `profiledb serve` and `profiledb router` alike (a
/// router passes requests on with the client's token, so its nodes take the
/// same tokens).
#[derive(Debug, Args)]
struct HttpArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070", value_parser = parse_listen)]
    listen: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on every endpoint but /healthz.
    #[arg(long, value_name = "TOKEN", env = "PROFILEDB_TOKEN")]
    token: Option<String>,
    /// A second token that may query but not write, define or delete.
    #[arg(
        long,
        value_name = "TOKEN",
        requires = "token",
        env = "PROFILEDB_READ_TOKEN"
    )]
    read_token: Option<String>,
    /// Largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_body: usize,
    /// Longest a connection may go without sending a complete request header,
    /// idle between requests or sending headers slowly; then it is closed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    idle_timeout: Duration,
    /// Longest a request body may take to arrive; then the request answers 408.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    body_timeout: Duration,
    /// Most connections open at once; more are closed as they arrive.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Make the cluster's stream and settings (again with the same settings: nothing changes).
    Init {
        /// NATS server(s), as nats://HOST:PORT (comma-separated).
        #[arg(long, value_name = "URL")]
        nats: String,
        /// Partitions users are spread over; fixed for the cluster's life.
        #[arg(long, value_name = "N", default_value_t = profiledb::cluster::DEFAULT_PARTITIONS, value_parser = clap::value_parser!(u32).range(1..=65_536))]
        partitions: u32,
        /// Standby nodes per partition besides its owner.
        #[arg(long, value_name = "N", default_value_t = 1)]
        replicas: u32,
        /// Copies JetStream keeps of the stream (3 on a cluster of three or more servers).
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
        stream_replicas: u32,
    },
    /// Partitions, the end of each in the log, and what each node applied of it.
    Status {
        /// NATS server(s), as nats://HOST:PORT (comma-separated).
        #[arg(long, value_name = "URL")]
        nats: String,
    },
}

/// Where a command runs: a database opened by this process, or a server.
#[derive(Debug, Args)]
struct Where {
    /// Database directory, opened by this process (created if missing).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "connect",
        conflicts_with = "connect"
    )]
    db: Option<PathBuf>,
    /// A running server, as http://HOST:PORT.
    #[arg(long, value_name = "URL")]
    connect: Option<String>,
    /// Bearer token for the server (with --connect).
    #[arg(long, value_name = "TOKEN", env = "PROFILEDB_TOKEN")]
    token: Option<String>,
}

#[derive(Debug, Args)]
struct ShellArgs {
    #[command(flatten)]
    at: Where,
    /// A statement (or backslash command) to run; repeat for several. Runs before -f.
    #[arg(short = 'c', value_name = "STATEMENT")]
    command: Vec<String>,
    /// A file of statements to run.
    #[arg(short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// How rows are printed.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print each statement of -c, -f and stdin before its output.
    #[arg(short = 'e', long)]
    echo: bool,
    /// Create the database when --db names none, without saying so.
    #[arg(long, requires = "db")]
    create: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Database directory (created if missing).
    #[arg(long, value_name = "DIR")]
    db: PathBuf,
    /// Run as a node of the cluster at these NATS server(s): the database
    /// follows the cluster's log (writes come only from it).
    #[arg(long, value_name = "URL", requires = "node")]
    nats: Option<String>,
    /// This node's name in the cluster (with --nats).
    #[arg(long, value_name = "NAME", requires = "nats")]
    node: Option<String>,
    #[command(flatten)]
    http: HttpArgs,
    /// Longest a statement may run before it is cancelled (`500ms`, `30s`, `2m`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    statement_timeout: Duration,
    /// Most rows a query may return.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_rows: usize,
    /// How long after a delete the server purges deleted users from disk by
    /// itself, as the VACUUM statement does.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_timeout)]
    purge_delay: Duration,
    /// Largest RocksDB block cache, in bytes: the table blocks profile reads
    /// found, and those flushes and compactions write. Blocks outside it are
    /// read through the operating system's page cache, which not every host
    /// keeps; give it room for the data that reads touch.
    #[arg(long, value_name = "BYTES", default_value_t = profiledb::Options::new("").block_cache_bytes)]
    block_cache_bytes: usize,
    /// Most memory the row table that scans read may take, in bytes; a
    /// database whose users take more is scanned from disk (0: always).
    #[arg(long, value_name = "BYTES", default_value_t = profiledb::Options::new("").row_table_bytes)]
    row_table_bytes: usize,
    /// As a node: how long the database keeps its copy of a partition the
    /// node no longer follows (it was handed over) before dropping it; one
    /// taken back sooner resumes from where it was, later it is read anew
    /// from the log.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_timeout, requires = "nats")]
    drop_after: Duration,
}

impl From<HttpArgs> for server::Http {
    fn from(a: HttpArgs) -> server::Http {
        server::Http {
            listen: a.listen,
            token: a.token,
            read_token: a.read_token,
            max_body: a.max_body,
            idle_timeout: a.idle_timeout,
            body_timeout: a.body_timeout,
            max_connections: a.max_connections as usize,
        }
    }
}

#[derive(Debug, Args)]
struct ImportArgs {
    #[command(flatten)]
    at: Where,
    /// Rename a field (a CSV column or a JSON key) as it is read: --map
    /// userId=user --map event=type; repeatable.
    #[arg(long, value_name = "FROM=TO")]
    map: Vec<String>,
    /// The unit of numeric times; by default milliseconds, and numbers that
    /// look like epoch seconds are refused with a hint.
    #[arg(long, value_enum, value_name = "UNIT")]
    ts_unit: Option<import::TsUnit>,
    /// Write the good lines even when some are bad (the bad ones are listed).
    #[arg(long)]
    skip_bad: bool,
    /// The inputs' format; by default `.csv` files are CSV, `.parquet` Parquet, the rest JSON Lines.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<import::Kind>,
    /// JSON Lines files (one event per line), CSV files (`.csv`) or Parquet files
    /// (`.parquet`), each also gzip-compressed (`.gz`); `-` reads stdin.
    /// Inputs that are not regular files (pipes) are copied to a temporary file first.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Database directory (it must exist).
    #[arg(long, value_name = "DIR")]
    db: PathBuf,
    /// A CSV file whose header names `user` and `ts` (epoch ms or RFC 3339);
    /// its other columns are copied through.
    #[arg(long, value_name = "PAIRS.csv")]
    at: PathBuf,
    /// The items to read, as in a SELECT list (`spend, window_count(views, '1d')`).
    #[arg(long, value_name = "ITEMS")]
    select: String,
    /// How rows are written.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "csv")]
    format: export::ExportFormat,
    /// Where to write (stdout by default).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Database directory to create.
    #[arg(long, value_name = "DIR", default_value = "profiledb-demo")]
    db: PathBuf,
    /// Number of users.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    users: u32,
    /// Number of simulated days.
    #[arg(long, value_name = "N", default_value_t = 30)]
    days: u32,
}

/// An address to listen on: `IP:PORT`, or `HOST:PORT` resolved to its first address.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    text.to_socket_addrs()
        .map_err(|e| format!("'{text}' is not an address to listen on: {e}"))?
        .next()
        .ok_or_else(|| format!("'{text}' resolves to no address"))
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let ms = profiledb::parse_duration(text).map_err(|e| e.to_string())?;
    u64::try_from(ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{text}' is not a positive duration"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PROFILEDB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,profiledb=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Before any database opens: opening may already read on the pool, and
    // malloc's settings apply to the heaps made after them.
    if !profiledb::tune_malloc() {
        tracing::debug!("malloc left as it is (not glibc)");
    }
    match profiledb::pin_threads() {
        Ok(true) => {}
        Ok(false) => tracing::debug!("rayon's pool is not pinned (one core, or a CPU quota)"),
        Err(e) => tracing::warn!("{e}"),
    }
    let code = match cli.command {
        Command::Shell(args) => shell(args),
        Command::Serve(args) => serve(args),
        Command::Router(args) => router(args),
        Command::Import(args) => {
            match profiledb::import::Shape::new(&args.map, args.ts_unit.map(Into::into)) {
                Err(e) => fail(&e),
                Ok(shape) => match (&args.at.db, &args.at.connect) {
                    (Some(dir), _) => match open_local(dir) {
                        Ok(db) => import::run(
                            import::Target::Local(&db),
                            &args.files,
                            args.format,
                            &shape,
                            args.skip_bad,
                        ),
                        Err(e) => fail(&e),
                    },
                    (None, Some(url)) => import::run(
                        import::Target::Remote(&Client::new(url, args.at.token.clone())),
                        &args.files,
                        args.format,
                        &shape,
                        args.skip_bad,
                    ),
                    (None, None) => fail("give --db DIR or --connect URL"),
                },
            }
        }
        Command::Export(args) => {
            let mut options = profiledb::Options::new(&args.db);
            options.create_if_missing = false;
            match open_local_with(options) {
                Ok(db) => export::run(
                    &db,
                    &args.at,
                    &args.select,
                    args.format,
                    args.output.as_ref(),
                ),
                Err(e) => fail(&e),
            }
        }
        Command::Demo(args) => demo::run(&args.db, args.users, args.days),
        Command::Cluster(ClusterCommand::Init {
            nats,
            partitions,
            replicas,
            stream_replicas,
        }) => match std::num::NonZeroU32::new(partitions) {
            Some(p) => match cluster::init(&nats, p, replicas, stream_replicas) {
                Ok(()) => 0,
                Err(e) => fail(&e),
            },
            None => fail("--partitions must be at least 1"),
        },
        Command::Cluster(ClusterCommand::Status { nats }) => match cluster::status(&nats) {
            Ok(()) => 0,
            Err(e) => fail(&e),
        },
    };
    ExitCode::from(code)
}

fn fail(message: &str) -> u8 {
    eprintln!("error: {message}");
    1
}

/// The note for a `--db DIR` that holds no database (one is made there),
/// so that a typo in it is not mistaken for an empty database; `None` when
/// it holds one, or `create` asked for a new one.
fn new_db_note(dir: &std::path::Path, create: bool) -> Option<String> {
    if create || dir.join("CURRENT").is_file() {
        return None;
    }
    let other_files = std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_some());
    Some(format!(
        "note: there was no database at {}{}: made a new, empty one (check --db; --create makes one without this note)",
        dir.display(),
        if other_files {
            " (only other files)"
        } else {
            ""
        }
    ))
}

fn shell(args: ShellArgs) -> u8 {
    let mut new_db = None;
    let backend = match (&args.at.db, &args.at.connect) {
        (Some(dir), _) => {
            new_db = new_db_note(dir, args.create);
            match open_local(dir) {
                Ok(db) => Backend::Local(db),
                Err(e) => return fail(&e),
            }
        }
        (None, Some(url)) => Backend::Remote(Client::new(url, args.at.token.clone())),
        (None, None) => return fail("give --db DIR or --connect URL"),
    };
    let mut shell = Shell::new(backend, args.format);
    shell.echo = args.echo;
    shell.new_db = new_db;
    if !args.command.is_empty() || args.file.is_some() {
        for c in &args.command {
            if !shell.run_command(c) {
                return 1;
            }
        }
        if let Some(f) = &args.file {
            let text = match std::fs::read_to_string(f) {
                Ok(t) => t,
                Err(e) => return fail(&format!("cannot read {}: {e}", f.display())),
            };
            if !shell.run_script(&text, Some(&f.display().to_string())) {
                return 1;
            }
        }
        return 0;
    }
    if std::io::stdin().is_terminal() {
        return shell.interactive();
    }
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        return fail(&format!("reading stdin: {e}"));
    }
    u8::from(!shell.run_script(&text, None))
}

fn router(args: RouterArgs) -> u8 {
    let config = server::router::RouterConfig {
        http: args.http.into(),
        nats: args.nats,
        timeout: args.timeout,
    };
    let ready = |addr: SocketAddr| {
        // The one line on stdout: the bound address, once the router accepts.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{addr}");
        let _ = out.flush();
    };
    match server::router::serve(config, ready) {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

fn serve(args: ServeArgs) -> u8 {
    let mut options = profiledb::Options::new(&args.db);
    options.purge_delay = Some(args.purge_delay);
    options.block_cache_bytes = args.block_cache_bytes;
    options.row_table_bytes = args.row_table_bytes;
    let db = match open_local_with(options) {
        Ok(db) => db,
        Err(e) => return fail(&e),
    };
    let config = server::Config {
        http: args.http.into(),
        statement_timeout: args.statement_timeout,
        max_rows: args.max_rows,
        node: args.nats.zip(args.node),
        drop_after: args.drop_after,
    };
    let ready = |addr: SocketAddr| {
        // The one line on stdout: the bound address, once the server accepts.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{addr}");
        let _ = out.flush();
    };
    match server::serve(db, config, ready) {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}
