//! Sharded indexing: which videos one worker of `N` decodes and embeds.
//!
//! Every worker is given the same input list, assigns the same video ids
//! (`inputs::collect`), and keeps the videos whose id hashes to its index.
//! The partition depends only on the id, so it needs no coordination, does
//! not move when the list is reordered, and costs no I/O: partitioning by the
//! file's content would have every worker read the whole archive first.
//! A Kubernetes Indexed Job gives each pod `JOB_COMPLETION_INDEX`; the
//! number of shards comes from the job's manifest (`BUSCA_SHARDS`).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Worker `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker, `0..count`.
    pub index: u32,
    /// Workers in all, at least 1.
    pub count: u32,
}

/// Why a shard specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not of the form `I/N`.
    #[error("shard {0:?}: expected I/N, e.g. 0/8 (worker I of N, from 0)")]
    Syntax(String),
    /// `I` is not below `N`, or `N` is 0.
    #[error("shard {index}/{count}: the index must be below the count, and the count at least 1")]
    OutOfRange {
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
}

impl Shard {
    /// Checks `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// The shard a video id belongs to among `count`.
    pub fn of(video_id: &str, count: u32) -> u32 {
        let digest = Sha256::digest(video_id.as_bytes());
        let prefix = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes of a sha256"));
        (prefix % u64::from(count.max(1))) as u32
    }

    /// Whether this worker indexes `video_id`.
    pub fn owns(&self, video_id: &str) -> bool {
        Shard::of(video_id, self.count) == self.index
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (index, count) = s.split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_video_has_exactly_one_owner_and_the_parts_are_even() {
        let ids: Vec<String> = (0..3000).map(|i| format!("archive_1987_tape_{i}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        let mut sizes = [0usize; 3];
        for id in &ids {
            let owners: Vec<u32> = shards.iter().filter(|s| s.owns(id)).map(|s| s.index).collect();
            assert_eq!(owners.len(), 1, "{id}: {owners:?}");
            sizes[owners[0] as usize] += 1;
        }
        // 1,000 expected per shard; a binomial's sd is about 26.
        assert!(sizes.iter().all(|&n| (880..=1120).contains(&n)), "{sizes:?}");
    }

    #[test]
    fn the_partition_is_fixed_by_the_id_alone() {
        // The first 8 bytes of sha256(id), big-endian, modulo the count (the
        // values Python's hashlib gives). Changing the hash would move the
        // videos of an archive half indexed by the old one to other workers.
        let spread: Vec<u32> = ["rgb", "warm", "news_1987_tele"].iter().map(|id| Shard::of(id, 1000)).collect();
        assert_eq!(spread, [386, 78, 130]);
        assert_eq!(Shard::of("anything", 1), 0);
    }

    #[test]
    fn bad_specifications_are_named() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("3/3".parse::<Shard>(), Err(ShardError::OutOfRange { index: 3, count: 3 }));
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::OutOfRange { index: 0, count: 0 }));
        let err = "half".parse::<Shard>().unwrap_err().to_string();
        assert!(err.contains("\"half\"") && err.contains("I/N"), "{err}");
    }
}
