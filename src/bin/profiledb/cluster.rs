//! `profiledb cluster init|status`, and the node half of `profiledb serve
//! --nats URL --node NAME`: the database follows the cluster's log
//! ([`profiledb::cluster::node`]) while the server answers reads.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use profiledb::Db;
use profiledb::cluster::jetstream::{ClusterConfig, JetStream, NodeReport};
use profiledb::cluster::log::Log;
use profiledb::cluster::membership::{Member, Membership};
use profiledb::cluster::node::{Node, Progress, Statements};

/// How often a node reports its positions (and reads everyone's).
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often a read that must see a sequence looks again.
const APPLIED_POLL: Duration = Duration::from_millis(5);

/// What a running node shares with its HTTP routes: its name, the cluster
/// as the last reports describe it, and the log (to tell whether a
/// partition has anything left to apply).
#[derive(Debug)]
pub struct NodeState {
    /// The node's name.
    pub name: String,
    membership: std::sync::RwLock<Option<Membership>>,
    log: std::sync::OnceLock<Arc<JetStream>>,
    statements: std::sync::OnceLock<Arc<Statements>>,
    progress: std::sync::OnceLock<Arc<std::sync::Mutex<Progress>>>,
}

impl NodeState {
    /// A node named `name` that has not read the cluster yet.
    pub fn new(name: String) -> NodeState {
        NodeState {
            name,
            membership: std::sync::RwLock::new(None),
            log: std::sync::OnceLock::new(),
            statements: std::sync::OnceLock::new(),
            progress: std::sync::OnceLock::new(),
        }
    }

    /// What the node applied and dropped so far; `None` before it joined.
    pub fn progress(&self) -> Option<Progress> {
        let p = self.progress.get()?;
        p.lock().ok().map(|p| p.clone())
    }

    /// The cluster's statements as this node applies them.
    ///
    /// # Errors
    /// Before the node has joined the cluster.
    pub fn statements(&self) -> Result<Arc<Statements>, String> {
        self.statements
            .get()
            .cloned()
            .ok_or_else(|| "this node has not joined the cluster yet; retry in a second".into())
    }

    /// The cluster as the last reports describe it.
    ///
    /// # Errors
    /// Before the node has read them once.
    pub fn membership(&self) -> Result<Membership, String> {
        let mut m = self
            .membership
            .read()
            .ok()
            .and_then(|m| m.clone())
            .ok_or_else(|| {
                "this node has not read the cluster's membership yet; retry in a second".to_owned()
            })?;
        // Judged live at this moment: reports not read again since grow old.
        m.now = profiledb::now_ms();
        Ok(m)
    }

    /// Waits until each of `partitions` is applied up to `min_seq`, or has
    /// nothing left in the log to apply, for at most `timeout`.
    ///
    /// # Errors
    /// The timeout passed first (naming the partition), or the log failed.
    pub async fn wait_applied(
        &self,
        db: &Db,
        partitions: &[u32],
        min_seq: u64,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let log = self
            .log
            .get()
            .ok_or("this node has not connected to the cluster yet; retry in a second")?;
        for &p in partitions {
            loop {
                let at = db.log_position(p).map_err(|e| e.to_string())?.unwrap_or(0);
                if at >= min_seq || log.last(p).await.map_err(|e| e.to_string())? <= at {
                    break;
                }
                // A partition handed over meanwhile moves no more here.
                if self.statements.get().is_some_and(|s| !s.follows(p)) {
                    return Err(format!(
                        "partition {p} is applied up to sequence {at} on node '{}', not yet {min_seq}, and the node no longer follows it; ask again",
                        self.name
                    ));
                }
                if tokio::time::Instant::now() >= deadline {
                    let parked = self
                        .statements
                        .get()
                        .and_then(|s| s.parked(p))
                        .map(|why| format!(" ({why})"))
                        .unwrap_or_default();
                    return Err(format!(
                        "partition {p} is applied up to sequence {at} on node '{}', not yet {min_seq}, after {timeout:?}{parked}",
                        self.name
                    ));
                }
                tokio::time::sleep(APPLIED_POLL).await;
            }
        }
        Ok(())
    }
}

/// The cluster as `reports` describe it now.
pub fn membership_of(
    config: &ClusterConfig,
    reports: Vec<(String, NodeReport)>,
) -> Option<Membership> {
    Some(Membership {
        partitions: NonZeroU32::new(config.partitions)?,
        replicas: config.replicas,
        members: reports
            .into_iter()
            .map(|(name, r)| Member {
                name,
                addr: r.addr,
                positions: r.positions,
                at: r.at,
            })
            .collect(),
        now: profiledb::now_ms(),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// `profiledb cluster init`: makes the stream and the settings.
pub fn init(
    nats: &str,
    partitions: NonZeroU32,
    replicas: u32,
    stream_replicas: u32,
) -> Result<(), String> {
    let config = ClusterConfig {
        partitions: partitions.get(),
        replicas,
        stream_replicas,
    };
    runtime()?.block_on(async {
        JetStream::init(nats, &config)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "cluster ready: {} partitions, {} standby node(s) per partition, stream kept {}x",
            config.partitions, config.replicas, config.stream_replicas
        );
        Ok(())
    })
}

/// `profiledb cluster status`: each partition's end of log, its owner and
/// standbys among the live nodes ([`profiledb::cluster::assignment`]), and
/// what each node applied of it (lag).
pub fn status(nats: &str) -> Result<(), String> {
    runtime()?.block_on(async {
        let log = JetStream::connect(nats).await.map_err(|e| e.to_string())?;
        let config = log.config().await.map_err(|e| e.to_string())?;
        let reports = log.reports().await.map_err(|e| e.to_string())?;
        let now = profiledb::now_ms();
        println!(
            "{} partitions, {} standby node(s) per partition, stream kept {}x",
            config.partitions, config.replicas, config.stream_replicas
        );
        for (name, r) in &reports {
            println!(
                "node {name} at {}: {} partitions, reported {:.1} s ago",
                r.addr,
                r.positions.len(),
                (now - r.at) as f64 / 1e3
            );
        }
        // Owners and standbys among the live nodes, as every node ranks them.
        let membership = membership_of(&config, reports.clone())
            .ok_or("the cluster's settings have 0 partitions")?;
        println!("partition  last  owner  standbys  node:applied(lag)");
        for p in 0..config.partitions {
            let last = log.last(p).await.map_err(|e| e.to_string())?;
            let holders = membership.holders(p);
            let owner = holders.first().copied().unwrap_or("-");
            let standbys = if holders.len() > 1 {
                holders[1..].join(",")
            } else {
                "-".into()
            };
            let nodes: Vec<String> = reports
                .iter()
                .filter_map(|(name, r)| {
                    r.positions
                        .get(&p)
                        .map(|at| format!("{name}:{at}({})", last.saturating_sub(*at)))
                })
                .collect();
            println!(
                "{p:>9}  {last:>4}  {owner}  {standbys}  {}",
                nodes.join(" ")
            );
        }
        Ok(())
    })
}

/// A node of the cluster at `nats`, named as `state` says, serving HTTP at
/// `addr`, following every partition into `db`, reporting its positions
/// and reading everyone's into `state`, until `stop` resolves.
pub async fn run_node(
    db: Arc<Db>,
    nats: &str,
    state: Arc<NodeState>,
    addr: std::net::SocketAddr,
    drop_after: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let name = state.name.as_str();
    let log = Arc::new(JetStream::connect(nats).await.map_err(|e| e.to_string())?);
    let _ = state.log.set(log.clone());
    let config = log.config().await.map_err(|e| e.to_string())?;
    // The partitions to follow come from the membership, read each tick:
    // those this node owns or stands by for, and those it hands over until
    // their new holders caught up with it.
    let total = std::num::NonZeroU32::new(config.partitions)
        .ok_or_else(|| "the cluster's settings have no partition".to_owned())?;
    let mut node = Node::start(db, log.clone(), total, &[]).map_err(|e| e.to_string())?;
    let _ = state.statements.set(node.statements());
    let _ = state.progress.set(node.progress_handle());
    tracing::info!("node {name} joins the cluster at {nats}");
    let mut reported = std::collections::BTreeMap::new();
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(REPORT_EVERY);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                if let Some(e) = node.take_error() {
                    tracing::warn!("{e}");
                }
                let p = node.progress();
                let report = NodeReport {
                    addr: addr.to_string(),
                    positions: p.positions.clone(),
                    at: profiledb::now_ms(),
                };
                // Together: each may wait for a server that just died.
                let (reported_now, reports) = tokio::join!(log.report(name, &report), log.reports());
                if let Err(e) = reported_now {
                    tracing::warn!("{e}");
                }
                match reports {
                    Ok(reports) => {
                        let membership = membership_of(&config, reports);
                        if let Some(m) = &membership {
                            let wanted = m.to_follow(name, &reported);
                            if wanted.len() != p.positions.len() {
                                tracing::info!("node {name} follows {} partitions", wanted.len());
                            }
                            node.follow(&wanted);
                            node.drop_stale(drop_after);
                        }
                        if let Ok(mut m) = state.membership.write() {
                            *m = membership;
                        }
                    }
                    Err(e) => tracing::warn!("{e}"),
                }
                reported = p.positions;
                if let Err(e) = node.settle().await {
                    tracing::warn!("{e}");
                }
            }
        }
    }
    node.stop().await;
    Ok(())
}
