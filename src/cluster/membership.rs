//! Who holds what: the nodes' last reports (each node's HTTP address and the
//! position it applied in each partition it follows), and the choices made
//! from them. Every node and router computes the same choices from the same
//! reports.
//!
//! No lease is needed to answer reads safely: no node writes anything
//! another node reads. Every node's state is derived from the log alone,
//! so any live node that follows a partition answers it consistently as of
//! the position it reports; the choice only decides who answers, and it
//! prefers the most current holder.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;

use super::assignment;

/// A node whose last report is older than this is not live.
pub const LIVE_WITHIN_MS: i64 = 3_000;

/// One node as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// Where it serves HTTP (`HOST:PORT`).
    pub addr: String,
    /// Partition → last applied sequence number, for the partitions it follows.
    pub positions: BTreeMap<u32, u64>,
    /// When it reported, epoch ms.
    pub at: i64,
}

/// The cluster as its reports describe it at one moment.
#[derive(Debug, Clone)]
pub struct Membership {
    /// Partitions users are spread over.
    pub partitions: NonZeroU32,
    /// Standby nodes per partition besides its owner.
    pub replicas: u32,
    /// Every node that ever reported, by name.
    pub members: Vec<Member>,
    /// When the reports were read, epoch ms.
    pub now: i64,
}

impl Membership {
    /// The nodes that reported within [`LIVE_WITHIN_MS`] of `now`.
    pub fn live(&self) -> Vec<&Member> {
        self.members
            .iter()
            .filter(|m| self.now - m.at <= LIVE_WITHIN_MS)
            .collect()
    }

    /// The live nodes that should hold `partition`: its owner, then its
    /// standbys ([`assignment`]).
    pub fn holders(&self, partition: u32) -> Vec<&str> {
        let live: Vec<&str> = self.live().iter().map(|m| m.name.as_str()).collect();
        assignment(partition, &live, self.replicas as usize)
    }

    /// The live node that answers for `partition`: of those following it,
    /// the one that applied the most, its owner first among equals. `None`
    /// when no live node follows it.
    pub fn answering(&self, partition: u32) -> Option<&Member> {
        self.answering_except(partition, None, &[])
    }

    /// As [`Membership::answering`], among the live nodes not in `skip`
    /// (those that just failed to answer), for a read that must see the log
    /// up to `min_seq` when given: a follower that reported it applied that
    /// far answers at once; failing one, the most current holder does,
    /// which follows the partition until it gets there (a node that
    /// follows it only until its holders caught up with it may stop before,
    /// and would wait in vain); failing that, the most current follower.
    pub fn answering_except(
        &self,
        partition: u32,
        min_seq: Option<u64>,
        skip: &[String],
    ) -> Option<&Member> {
        let holders = self.holders(partition);
        let rank = |name: &str| {
            holders
                .iter()
                .position(|h| *h == name)
                .unwrap_or(usize::MAX)
        };
        let followers: Vec<(&Member, u64)> = self
            .live()
            .into_iter()
            .filter(|m| !skip.contains(&m.name))
            .filter_map(|m| m.positions.get(&partition).map(|at| (m, *at)))
            .collect();
        let best = |admit: &dyn Fn(&Member, u64) -> bool| {
            followers
                .iter()
                .filter(|(m, at)| admit(m, *at))
                .max_by(|(a, pa), (b, pb)| {
                    pa.cmp(pb)
                        .then_with(|| rank(&b.name).cmp(&rank(&a.name)))
                        .then_with(|| b.name.cmp(&a.name))
                })
                .map(|(m, _)| *m)
        };
        if let Some(min_seq) = min_seq {
            let found = best(&|_, at| at >= min_seq)
                .or_else(|| best(&|m, _| holders.contains(&m.name.as_str())));
            if found.is_some() {
                return found;
            }
        }
        best(&|_, _| true)
    }

    /// Every partition's answering node ([`Membership::answering_except`]
    /// for a read that must see the log up to `min_seq`), grouped: node
    /// name → (address, partitions).
    ///
    /// # Errors
    /// The first partition no live node follows.
    pub fn plan(&self, min_seq: Option<u64>) -> Result<BTreeMap<String, (String, Vec<u32>)>, u32> {
        let mut out: BTreeMap<String, (String, Vec<u32>)> = BTreeMap::new();
        for p in 0..self.partitions.get() {
            let m = self.answering_except(p, min_seq, &[]).ok_or(p)?;
            out.entry(m.name.clone())
                .or_insert_with(|| (m.addr.clone(), Vec::new()))
                .1
                .push(p);
        }
        Ok(out)
    }

    /// The partitions node `me` should follow: those it holds, and those it
    /// follows (`current`) while some holder of theirs has not yet applied
    /// what `me` had applied a report earlier (`behind`), so that a
    /// partition changing hands is never left without a current copy.
    pub fn to_follow(&self, me: &str, behind: &BTreeMap<u32, u64>) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        for p in 0..self.partitions.get() {
            let holders = self.holders(p);
            if holders.contains(&me) || holders.is_empty() {
                out.insert(p);
                continue;
            }
            let Some(mine) = behind.get(&p) else { continue };
            let caught_up = holders.iter().all(|h| {
                self.members
                    .iter()
                    .find(|m| m.name == *h)
                    .and_then(|m| m.positions.get(&p))
                    .is_some_and(|at| at >= mine)
            });
            if !caught_up {
                out.insert(p);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, positions: &[(u32, u64)], at: i64) -> Member {
        Member {
            name: name.into(),
            addr: format!("{name}:1"),
            positions: positions.iter().copied().collect(),
            at,
        }
    }

    fn cluster(members: Vec<Member>) -> Membership {
        Membership {
            partitions: NonZeroU32::new(8).expect("non-zero"),
            replicas: 1,
            members,
            now: 10_000,
        }
    }

    #[test]
    fn the_most_current_live_holder_answers() {
        let all: Vec<(u32, u64)> = (0..8).map(|p| (p, 100)).collect();
        let mut behind = all.clone();
        behind[3].1 = 50;
        let c = cluster(vec![
            member("a", &all, 9_500),
            member("b", &behind, 9_900),
            // Dead: its report is too old, however current it was.
            member("c", &(0..8).map(|p| (p, 500)).collect::<Vec<_>>(), 5_000),
        ]);
        let a = c.answering(3).map(|m| m.name.as_str());
        assert_eq!(a, Some("a"));
        // Equal positions: the owner by rendezvous answers.
        for p in [0u32, 1, 2, 4, 5, 6, 7] {
            let owner = c.holders(p)[0];
            assert_eq!(c.answering(p).map(|m| m.name.as_str()), Some(owner), "{p}");
        }
        // Without the best, the next best.
        assert_eq!(
            c.answering_except(3, None, &["a".into()])
                .map(|m| m.name.as_str()),
            Some("b")
        );
        assert!(
            c.answering_except(3, None, &["a".into(), "b".into()])
                .is_none()
        );
        let plan = c.plan(None).expect("every partition is followed");
        let covered: usize = plan.values().map(|(_, ps)| ps.len()).sum();
        assert_eq!(covered, 8);
        assert!(!plan.contains_key("c"));
    }

    /// A partition of the eight that node "c" does not hold.
    fn not_cs(names: &[&str]) -> u32 {
        (0..8u32)
            .find(|p| !assignment(*p, names, 1).contains(&"c"))
            .expect("some partition is not c's")
    }

    #[test]
    fn a_read_that_must_see_a_position_goes_to_a_follower_that_gets_there() {
        // "c" follows a partition it does not hold (handing it over), ahead
        // of its holders: it may stop following it at any report.
        let names = ["a", "b", "c"];
        let p = not_cs(&names);
        let holders = assignment(p, &names, 1);
        let at = |name: &str| if holders.contains(&name) { 95 } else { 103 };
        let c = cluster(
            names
                .iter()
                .map(|n| member(n, &[(p, at(n))], 9_900))
                .collect(),
        );
        let name = |m: Option<&Member>| m.map(|m| m.name.clone());
        // Any read: the most current copy.
        assert_eq!(name(c.answering(p)), Some("c".into()));
        // A read c has already applied far enough for: c, at once.
        assert_eq!(
            name(c.answering_except(p, Some(100), &[])),
            Some("c".into())
        );
        // Further: a holder, which goes on following the partition.
        let chosen = name(c.answering_except(p, Some(114), &[])).expect("a node");
        assert!(holders.contains(&chosen.as_str()), "{chosen}");
        assert_eq!(
            name(c.answering_except(p, Some(114), std::slice::from_ref(&chosen))),
            Some(
                holders
                    .iter()
                    .find(|h| **h != chosen)
                    .expect("two holders")
                    .to_string()
            )
        );
        // No holder left to ask: the most current follower after all.
        let both: Vec<String> = holders.iter().map(|h| h.to_string()).collect();
        assert_eq!(
            name(c.answering_except(p, Some(114), &both)),
            Some("c".into())
        );
        // A plan over every partition chooses alike.
        let everywhere = |n: &str| -> Vec<(u32, u64)> {
            (0..8)
                .map(|q| (q, if q == p { at(n) } else { 95 }))
                .collect()
        };
        let c = cluster(
            names
                .iter()
                .map(|n| member(n, &everywhere(n), 9_900))
                .collect(),
        );
        let has_p = |plan: &BTreeMap<String, (String, Vec<u32>)>| {
            plan.get("c").is_some_and(|(_, ps)| ps.contains(&p))
        };
        assert!(has_p(&c.plan(None).expect("every partition is followed")));
        assert!(!has_p(
            &c.plan(Some(114)).expect("every partition is followed")
        ));
    }

    #[test]
    fn a_partition_nobody_live_follows_is_named() {
        let c = cluster(vec![member("a", &[(0, 1), (1, 1)], 9_000)]);
        assert_eq!(c.plan(None).err(), Some(2));
    }

    #[test]
    fn a_node_lets_go_of_a_partition_once_its_holders_caught_up() {
        // Three live nodes; find a partition "c" does not hold.
        let names = ["a", "b", "c"];
        let p = not_cs(&names);
        let holders = assignment(p, &names, 1);
        let mine: BTreeMap<u32, u64> = [(p, 70)].into_iter().collect();
        let with = |at: u64| {
            cluster(
                names
                    .iter()
                    .map(|n| {
                        let pos = if holders.contains(n) { at } else { 70 };
                        member(n, &[(p, pos)], 9_900)
                    })
                    .collect(),
            )
        };
        assert!(with(60).to_follow("c", &mine).contains(&p));
        assert!(!with(70).to_follow("c", &mine).contains(&p));
        // What c holds it always follows.
        let own: Vec<u32> = (0..8)
            .filter(|q| with(70).holders(*q).contains(&"c"))
            .collect();
        let follows = with(70).to_follow("c", &mine);
        assert!(own.iter().all(|q| follows.contains(q)));
    }
}
