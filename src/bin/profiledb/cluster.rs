//! `profiledb cluster init|status`, and the node half of `profiledb serve
//! --nats URL --node NAME`: the database follows the cluster's log
//! ([`profiledb::cluster::node`]) while the server answers reads.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use profiledb::Db;
use profiledb::cluster::jetstream::{ClusterConfig, JetStream, NodeReport};
use profiledb::cluster::log::Log;
use profiledb::cluster::node::Node;

/// How often a node reports its positions.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// A node whose last report is older than this is not live.
const LIVE_WITHIN_MS: i64 = 3_000;

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
        // Live nodes: those that reported within the last few seconds.
        let live: Vec<&str> = reports
            .iter()
            .filter(|(_, r)| now - r.at <= LIVE_WITHIN_MS)
            .map(|(name, _)| name.as_str())
            .collect();
        println!("partition  last  owner  standbys  node:applied(lag)");
        for p in 0..config.partitions {
            let last = log.last(p).await.map_err(|e| e.to_string())?;
            let holders = profiledb::cluster::assignment(p, &live, config.replicas as usize);
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

/// A node of the cluster at `nats`, named `name`, serving HTTP at `addr`,
/// following every partition into `db` and reporting its positions, until
/// `stop` resolves.
pub async fn run_node(
    db: Arc<Db>,
    nats: &str,
    name: &str,
    addr: std::net::SocketAddr,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let log = Arc::new(JetStream::connect(nats).await.map_err(|e| e.to_string())?);
    let config = log.config().await.map_err(|e| e.to_string())?;
    let partitions: Vec<u32> = (0..config.partitions).collect();
    let node = Node::start(db, log.clone(), &partitions);
    tracing::info!(
        "node {name} follows {} partitions of the cluster at {nats}",
        partitions.len()
    );
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(REPORT_EVERY);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                let p = node.progress();
                if let Some(e) = &p.last_error {
                    tracing::warn!("{e}");
                }
                let report = NodeReport {
                    addr: addr.to_string(),
                    positions: p.positions,
                    at: profiledb::now_ms(),
                };
                if let Err(e) = log.report(name, &report).await {
                    tracing::warn!("{e}");
                }
            }
        }
    }
    node.stop().await;
    Ok(())
}
