//! The nodes answering for the partitions a query's node does not: each is
//! asked its part over HTTP (`POST /v1/cluster/partial`), all at once, and
//! a node that fails fails the query by name. A node that cannot be
//! reached (it just died, and its reports are not stale yet) has its
//! partitions asked of the next node answering for each. `ureq` is the blocking HTTP
//! client the command line already uses; a query's parts run on the
//! blocking pool, where a thread per peer is the simple, bounded choice.

use std::time::{Duration, Instant};

use profiledb_query::{Error, Limits, Peers};

/// The endpoint a node answers its part of a query at.
pub const PARTIAL_PATH: &str = "/v1/cluster/partial";
/// Where a node answers once it applied a statement of the log, with the
/// statement's outcome ([`StatementRequest`]).
pub const STATEMENT_PATH: &str = "/v1/cluster/statement";
/// Where a node answers its database's schema, as bytes
/// ([`crate::Schema::to_bytes`]): what a router checks events against.
pub const SCHEMA_PATH: &str = "/v1/cluster/schema";

/// A wait for a statement of the log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatementRequest {
    /// The statement's sequence number in the statements' log.
    pub seq: u64,
    /// How long to wait for it, ms.
    pub timeout_ms: u64,
}
/// The largest partial result a node accepts from a peer.
pub const MAX_PARTIAL_BYTES: u64 = 512 << 20;
/// Nodes a part is tried at in all when they cannot be reached.
const MAX_REACHES: usize = 3;
/// How long a part may take when the query has no deadline.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// One peer: its name, address and the partitions it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node's name.
    pub name: String,
    /// Where it serves HTTP (`HOST:PORT`).
    pub addr: String,
    /// The partitions it answers for in this query.
    pub partitions: Vec<u32>,
}

/// What a node is asked: `select` at time `now` over `partitions`, once it
/// has applied each of them up to `min_seq`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PartialRequest {
    /// One `SELECT`, parameters in place.
    pub select: String,
    /// The query's time, epoch ms.
    pub now: i64,
    /// The partitions to answer for.
    pub partitions: Vec<u32>,
    /// Apply the partitions up to this stream sequence first.
    #[serde(default)]
    pub min_seq: Option<u64>,
    /// The most the part may take, ms.
    pub timeout_ms: u64,
}

/// Peers reached over HTTP with the cluster's token.
#[derive(Debug)]
pub struct HttpPeers {
    targets: Vec<Target>,
    token: Option<String>,
    min_seq: Option<u64>,
    /// The cluster the targets were chosen from, to choose again from
    /// when one cannot be reached.
    membership: Option<super::membership::Membership>,
}

/// Why a peer gave no part.
enum Failed {
    /// It could not be reached: another node may answer in its place.
    Unreachable(String),
    /// It answered with an error, which is the query's.
    Answered(String),
}

impl Failed {
    fn message(self) -> String {
        match self {
            Failed::Unreachable(m) | Failed::Answered(m) => m,
        }
    }
}

impl HttpPeers {
    /// Asks `targets` with `token` (the nodes share one), each after
    /// applying up to `min_seq`.
    pub fn new(targets: Vec<Target>, token: Option<String>, min_seq: Option<u64>) -> HttpPeers {
        HttpPeers {
            targets,
            token,
            min_seq,
            membership: None,
        }
    }

    /// Chooses again from `membership` (skipping the nodes that could not
    /// be reached) for the partitions of a target that could not be.
    pub fn choosing_again_from(mut self, membership: super::membership::Membership) -> HttpPeers {
        self.membership = Some(membership);
        self
    }

    /// The targets answering for `partitions` in place of the nodes in
    /// `skip`; `None` when some partition has no other live follower.
    fn again(&self, partitions: &[u32], skip: &[String]) -> Option<Vec<Target>> {
        let membership = self.membership.as_ref()?;
        let mut out: Vec<Target> = Vec::new();
        for &p in partitions {
            let m = membership.answering_except(p, self.min_seq, skip)?;
            match out.iter_mut().find(|t| t.name == m.name) {
                Some(t) => t.partitions.push(p),
                None => out.push(Target {
                    name: m.name.clone(),
                    addr: m.addr.clone(),
                    partitions: vec![p],
                }),
            }
        }
        Some(out)
    }

    /// `target`'s part, or, when it cannot be reached, the parts of the
    /// nodes answering for its partitions in its place (at most
    /// [`MAX_REACHES`] nodes tried in all).
    fn part_of(
        &self,
        target: &Target,
        select: &str,
        now: i64,
        timeout: Duration,
        skip: &mut Vec<String>,
    ) -> Result<Vec<Vec<u8>>, Failed> {
        let body = PartialRequest {
            select: select.to_owned(),
            now,
            partitions: target.partitions.clone(),
            min_seq: self.min_seq,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        match self.ask(target, &body, timeout) {
            Ok(bytes) => Ok(vec![bytes]),
            Err(Failed::Unreachable(why)) if skip.len() < MAX_REACHES => {
                skip.push(target.name.clone());
                let Some(others) = self.again(&target.partitions, skip) else {
                    return Err(Failed::Unreachable(why));
                };
                let mut out = Vec::new();
                for other in &others {
                    out.extend(self.part_of(other, select, now, timeout, skip)?);
                }
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }

    fn ask(
        &self,
        target: &Target,
        body: &PartialRequest,
        timeout: Duration,
    ) -> Result<Vec<u8>, Failed> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        let mut req = agent.post(format!("http://{}{PARTIAL_PATH}", target.addr));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req
            .send_json(body)
            .map_err(|e| Failed::Unreachable(format!("cannot reach it at {}: {e}", target.addr)))?;
        let status = resp.status();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_PARTIAL_BYTES)
            .read_to_vec()
            .map_err(|e| Failed::Answered(format!("reading its answer: {e}")))?;
        if status.is_success() {
            return Ok(bytes);
        }
        // The server's one error shape: {"error": {"message": ...}}.
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|j| j["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Err(Failed::Answered(format!("it answered {status}: {message}")))
    }
}

impl Peers for HttpPeers {
    fn partials(&self, select: &str, now: i64, limits: &Limits) -> Result<Vec<Vec<u8>>, Error> {
        let timeout = limits.deadline.map_or(DEFAULT_TIMEOUT, |d| {
            d.saturating_duration_since(Instant::now())
        });
        std::thread::scope(|s| {
            let asks: Vec<_> = self
                .targets
                .iter()
                .map(|t| {
                    (
                        t,
                        s.spawn(move || self.part_of(t, select, now, timeout, &mut Vec::new())),
                    )
                })
                .collect();
            let mut out = Vec::with_capacity(asks.len());
            for (t, h) in asks {
                let parts = h
                    .join()
                    .unwrap_or_else(|_| Err(Failed::Answered("its request panicked".into())))
                    .map_err(|e| Error::Peer {
                        node: t.name.clone(),
                        message: e.message(),
                    })?;
                out.extend(parts);
            }
            Ok(out)
        })
    }
}
