//! The nodes of the world that faults name: `api`, `bus`, `store`, `conductor-1…N`,
//! `host-1…M`, and with `cluster.coordination = "etcd"` the etcd members `etcd-1…K` (the
//! `client` is not a fault target and has no [`Node`]).
//!
//! A node is a typed value everywhere inside the program; its name is only written (`Display`,
//! serde) and read once, at the input boundary, by [`NodeSet::parse`], which validates it
//! against the cluster's size.

use std::cmp::Ordering;
use std::fmt;

/// A node of the world, as faults and the nemesis name it. Indices are 0-based inside and
/// 1-based in names (`Conductor(0)` is `conductor-1`).
///
/// Nodes order by name, as strings compare (`conductor-10` before `conductor-2`, `host-…`
/// before `store`): the order the world's node table, the nemesis's partitions and the heal
/// have always iterated in, kept so that every seed replays byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// The API.
    Api,
    /// The message bus.
    Bus,
    /// The store.
    Store,
    /// A conductor, by 0-based index.
    Conductor(u32),
    /// A container host, by 0-based index.
    Host(u32),
    /// A member of the simulated etcd cluster (`cluster.coordination = "etcd"`), by 0-based
    /// index.
    Etcd(u32),
}

impl Node {
    /// Whether this is a container host (`host-N`).
    pub fn is_host(&self) -> bool {
        matches!(self, Node::Host(_))
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Api => f.write_str("api"),
            Node::Bus => f.write_str("bus"),
            Node::Store => f.write_str("store"),
            Node::Conductor(i) => write!(f, "conductor-{}", u64::from(*i) + 1),
            Node::Host(i) => write!(f, "host-{}", u64::from(*i) + 1),
            Node::Etcd(i) => write!(f, "etcd-{}", u64::from(*i) + 1),
        }
    }
}

impl Ord for Node {
    fn cmp(&self, other: &Self) -> Ordering {
        // Name order (see the type's doc); names are distinct, so this agrees with `Eq`.
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A node serialises as its name (`"conductor-3"`), in `[[faults]]` echoes and in reports.
impl serde::Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The nodes a cluster has, for reading node names: `api`, `bus`, `store`,
/// `conductor-1…conductors`, `host-1…hosts`, `etcd-1…etcd` (none without etcd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSet {
    /// The number of conductors.
    pub conductors: u32,
    /// The number of hosts.
    pub hosts: u32,
    /// The number of etcd members (0: the store coordinates).
    pub etcd: u32,
}

/// A 1-based index as names write it (digits, no leading zero), in `1..=max`.
fn index_of(s: &str, max: u32) -> Option<u32> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|i| (1..=max).contains(i))
}

impl NodeSet {
    /// Every node name is accepted whatever its index: for reading back a recorded schedule,
    /// whose names were validated when it was drawn or loaded.
    pub const ANY: NodeSet = NodeSet {
        conductors: u32::MAX,
        hosts: u32::MAX,
        etcd: u32::MAX,
    };

    /// What the set holds, for messages: `this scenario has conductor-1..conductor-N, …`.
    pub fn describe(&self) -> String {
        let etcd = match self.etcd {
            0 => String::new(),
            n => format!(", etcd-1..etcd-{n}"),
        };
        format!(
            "this scenario has conductor-1..conductor-{}, host-1..host-{}, api, bus, store{etcd}",
            self.conductors, self.hosts
        )
    }

    /// The node named `name`.
    ///
    /// # Errors
    /// `unknown node `name` (this scenario has …)` when the set has no such node.
    pub fn parse(&self, name: &str) -> Result<Node, String> {
        let node = match name {
            "api" => Some(Node::Api),
            "bus" => Some(Node::Bus),
            "store" => Some(Node::Store),
            _ => {
                if let Some(n) = name.strip_prefix("conductor-") {
                    index_of(n, self.conductors).map(|i| Node::Conductor(i - 1))
                } else if let Some(n) = name.strip_prefix("host-") {
                    index_of(n, self.hosts).map(|i| Node::Host(i - 1))
                } else if let Some(n) = name.strip_prefix("etcd-") {
                    index_of(n, self.etcd).map(|i| Node::Etcd(i - 1))
                } else {
                    None
                }
            }
        };
        node.ok_or_else(|| format!("unknown node `{name}` ({})", self.describe()))
    }

    /// `node` if it is a host.
    ///
    /// # Errors
    /// `expected a host node (host-1..host-M), got `node`` otherwise.
    pub fn host(&self, node: Node) -> Result<Node, String> {
        if node.is_host() {
            Ok(node)
        } else {
            Err(format!(
                "expected a host node (host-1..host-{}), got `{node}`",
                self.hosts
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_validated() {
        let set = NodeSet {
            conductors: 12,
            hosts: 2,
            etcd: 3,
        };
        for (name, node) in [
            ("api", Node::Api),
            ("bus", Node::Bus),
            ("store", Node::Store),
            ("conductor-1", Node::Conductor(0)),
            ("conductor-12", Node::Conductor(11)),
            ("host-2", Node::Host(1)),
            ("etcd-3", Node::Etcd(2)),
        ] {
            assert_eq!(set.parse(name), Ok(node));
            assert_eq!(node.to_string(), name);
        }
        for bad in [
            "conductor-0",
            "conductor-13",
            "conductor-01",
            "conductor-",
            "conductor-+1",
            "host-3",
            "etcd-0",
            "etcd-4",
            "client",
            "API",
        ] {
            let e = set.parse(bad).unwrap_err();
            assert!(e.starts_with(&format!("unknown node `{bad}`")), "{e}");
        }
        assert_eq!(set.host(Node::Host(0)), Ok(Node::Host(0)));
        assert_eq!(
            set.host(Node::Api).unwrap_err(),
            "expected a host node (host-1..host-2), got `api`"
        );
        assert_eq!(
            NodeSet::ANY.parse("conductor-4294967295"),
            Ok(Node::Conductor(u32::MAX - 1))
        );
    }

    #[test]
    fn nodes_order_by_name() {
        let mut v: Vec<Node> = vec![
            Node::Store,
            Node::Host(0),
            Node::Conductor(1),
            Node::Conductor(9),
            Node::Conductor(0),
            Node::Bus,
            Node::Api,
        ];
        v.sort();
        let names: Vec<String> = v.iter().map(Node::to_string).collect();
        assert_eq!(
            names,
            [
                "api",
                "bus",
                "conductor-1",
                "conductor-10",
                "conductor-2",
                "host-1",
                "store"
            ]
        );
        assert_eq!(
            serde_json::to_string(&Node::Conductor(2)).unwrap(),
            "\"conductor-3\""
        );
    }
}
