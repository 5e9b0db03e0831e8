//! A conductor's connections to its hosts, made on demand: a [`Redial`] for a host exists once
//! something asks for that host, and is kept (dialling again whenever it is lost) from then on.
//! A by-host conductor calls only the hosts it owns, so it holds links to those alone: a cluster
//! of N conductors and N hosts holds O(N) links, not N², and 1,000 × 1,000 fits in memory.

use crate::net::Net;
use crate::rpc::{lock, Redial};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// The links from one conductor to the hosts, by host index, each made on first use.
pub struct HostLinks {
    net: Net,
    from: IpAddr,
    /// The hosts' addresses, by index.
    addrs: Arc<[SocketAddr]>,
    /// The links asked for so far (a map: a conductor of a large cluster asks for few).
    open: Mutex<BTreeMap<u32, Arc<Redial>>>,
}

impl HostLinks {
    /// Links from `from` to the hosts at `addrs` (by index); none is made yet.
    pub fn new(net: &Net, from: IpAddr, addrs: &Arc<[SocketAddr]>) -> Self {
        HostLinks {
            net: net.clone(),
            from,
            addrs: addrs.clone(),
            open: Mutex::default(),
        }
    }

    /// The link to host `host`, made now if this is its first use (nothing is dialled until
    /// the caller asks the [`Redial`] for its connection); `None` for a host that does not
    /// exist.
    pub fn get(&self, host: usize) -> Option<Arc<Redial>> {
        let addr = *self.addrs.get(host)?;
        let key = u32::try_from(host).ok()?;
        Some(
            lock(&self.open)
                .entry(key)
                .or_insert_with(|| Arc::new(Redial::new(&self.net, self.from, addr)))
                .clone(),
        )
    }

    /// How many hosts there are (linked or not).
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether there are no hosts at all.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// How many links have been asked for.
    pub fn made(&self) -> usize {
        lock(&self.open).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{system_clock, task_timer, MemNet, MemNetConfig};
    use std::time::Duration;

    fn net() -> Net {
        Net::Mem(MemNet::new(
            MemNetConfig {
                latency_min: Duration::from_millis(1),
                latency_max: Duration::from_millis(2),
                loss: 0.0,
            },
            1,
            system_clock(),
            task_timer(),
        ))
    }

    #[test]
    fn links_are_made_on_first_use_and_kept() {
        let ip: IpAddr = "10.1.0.1".parse().unwrap();
        let addrs: Arc<[SocketAddr]> = (1..=1000)
            .map(|i| SocketAddr::new(IpAddr::from([10, 2, (i >> 8) as u8, i as u8]), 7000))
            .collect();
        let links = HostLinks::new(&net(), ip, &addrs);
        assert_eq!(links.len(), 1000);
        assert_eq!(links.made(), 0, "nothing is made before it is asked for");
        let a = links.get(7).expect("host 7 exists");
        let b = links.get(7).expect("host 7 exists");
        assert!(Arc::ptr_eq(&a, &b), "a second use gets the same link");
        assert_eq!(links.made(), 1);
        assert!(links.get(1000).is_none(), "no host 1000");
        assert_eq!(links.made(), 1);
    }
}
