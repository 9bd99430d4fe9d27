//! The partitions a node answers for in one query, as a test of a user id:
//! a node also holds partitions it stands by for, and ones it is handing
//! over, so its reads for a query keep only the users of the partitions it
//! was asked for. Used with [`profiledb_query::Part`], which applies it to
//! every read of the query.

use std::num::NonZeroU32;

use super::partition_of;

/// A set of partitions among a cluster's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    partitions: NonZeroU32,
    keep: Vec<bool>,
}

impl Shard {
    /// The partitions `keep` among `partitions` (those beyond it are ignored).
    pub fn new(partitions: NonZeroU32, keep: &[u32]) -> Shard {
        let mut mask = vec![false; partitions.get() as usize];
        for p in keep {
            if let Some(k) = mask.get_mut(*p as usize) {
                *k = true;
            }
        }
        Shard {
            partitions,
            keep: mask,
        }
    }

    /// Whether `user`'s partition is one of the shard's.
    pub fn keeps(&self, user: &str) -> bool {
        self.keep
            .get(partition_of(user, self.partitions) as usize)
            .copied()
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_keeps_the_users_of_its_partitions() {
        let n = NonZeroU32::new(8).expect("non-zero");
        let shard = Shard::new(n, &[1, 5, 99]);
        for i in 0..500 {
            let user = format!("user{i}");
            let p = partition_of(&user, n);
            assert_eq!(shard.keeps(&user), p == 1 || p == 5, "{user} in {p}");
        }
    }
}
