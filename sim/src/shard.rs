//! `--shard I/N`: one of N machines takes the work items whose index `% N == I − 1`
//! (a sweep's (row, seed) jobs; `explore`'s seeds). Interleaving keeps the shards balanced
//! when work items grow in cost along the grid.

/// A shard specification, `I/N` with `1 <= I <= N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// This shard, 1-based.
    pub index: u64,
    /// How many shards there are.
    pub count: u64,
}

/// The most shards a run can be cut into.
pub const MAX_SHARDS: u64 = 100_000;

impl Shard {
    /// The whole run, unsharded.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Parses `I/N`.
    ///
    /// # Errors
    /// A message saying what was expected, for the caller to prefix with the flag.
    pub fn parse(spec: &str) -> Result<Shard, String> {
        let expected = || format!("expected I/N with 1 <= I <= N <= {MAX_SHARDS}, got `{spec}`");
        let (i, n) = spec.split_once('/').ok_or_else(expected)?;
        let index: u64 = i.trim().parse().map_err(|_| expected())?;
        let count: u64 = n.trim().parse().map_err(|_| expected())?;
        if index == 0 || count == 0 || index > count || count > MAX_SHARDS {
            return Err(expected());
        }
        Ok(Shard { index, count })
    }

    /// True when work item `i` (0-based) belongs to this shard.
    pub fn takes(&self, i: u64) -> bool {
        i % self.count == self.index - 1
    }

    /// True for the whole run.
    pub fn is_all(&self) -> bool {
        self.count == 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_partitions() {
        let a = Shard::parse("1/3").unwrap();
        let b = Shard::parse(" 2 / 3 ").unwrap();
        let c = Shard::parse("3/3").unwrap();
        for i in 0..30 {
            let owners = [a, b, c].iter().filter(|s| s.takes(i)).count();
            assert_eq!(owners, 1, "item {i}");
        }
        assert!(a.takes(0) && b.takes(1) && c.takes(2) && a.takes(3));
        for bad in ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", ""] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains("expected I/N"), "{bad}: {e}");
        }
        assert!(Shard::ALL.takes(5) && Shard::ALL.is_all());
    }
}
