//! Zun's periodic sync: every `reconcile_interval`, the records of the containers on the hosts
//! this conductor owns are compared with what the hosts hold, and a record that disagrees (and
//! has no op running) takes the host's truth.

use super::Conductor;
use crate::cluster;
use crate::op::{Status, Truth};
use crate::proto::{RecordView, StoreCmd, StoreResp};
use crate::recorder::Event;
use crate::rpc::Unavailable;
use std::sync::Arc;

/// Records and truths are read this many at a time.
const PAGE: u32 = 512;

impl Conductor {
    /// Reconciles this conductor's hosts for ever, one pass every `reconcile_interval`.
    pub(super) async fn reconciler(self: Arc<Self>) {
        let n = self.cfg.hosts.len() as u32;
        loop {
            tokio::time::sleep(self.cfg.reconcile_interval).await;
            for h in
                (0..n).filter(|&h| cluster::host_owner(h, self.cfg.conductors) == self.cfg.index)
            {
                let _ = self.reconcile_host(h, PAGE).await;
            }
        }
    }

    async fn reconcile_host(&self, h: u32, page: u32) -> Result<(), Unavailable> {
        // Records first, then the host: a record read before the truth can only be older than
        // it, and any op that begins after the read bumps the record's version, so the
        // compare-and-swap below refuses to write a truth that an op has moved past.
        let store = self.coord.get().await?;
        // The pages are kept as they came (no copy into one list): the truths, read after all
        // of them, are matched against them in one merge.
        let mut recs: Vec<Vec<RecordView>> = Vec::new();
        read_pages(
            page,
            |r: &RecordView| r.id,
            |after| store.list_records(h, after, page),
            |got| recs.push(got),
        )
        .await?;
        let host = self
            .scan_hosts
            .get(h as usize)
            .ok_or(Unavailable)?
            .get()
            .await?;
        // Both listings are in id order: a merge-join, page by page, pairs each record with its
        // container's truth (none listed: absent) without building a map of either.
        let mut recs = recs.iter().flatten().peekable();
        let mut fixes = Vec::new();
        read_pages(
            page,
            |(k, _): &(u64, Truth)| *k,
            |after| host.list_truths(after, page),
            |got| {
                for &(k, truth) in &got {
                    while let Some(r) = recs.next_if(|r| r.id < k) {
                        judge(r, Truth::Absent, &mut fixes);
                    }
                    if let Some(r) = recs.next_if(|r| r.id == k) {
                        judge(r, truth, &mut fixes);
                    }
                }
            },
        )
        .await?;
        for r in recs {
            judge(r, Truth::Absent, &mut fixes);
        }
        for (r, want) in fixes {
            let set = StoreCmd::SetStatus {
                container: r.id,
                version: r.version,
                status: want,
            };
            if store.store(set).await? == StoreResp::Ok {
                self.rec.record(Event::Reconciled {
                    conductor: self.cfg.index,
                    container: r.id,
                    from: r.status,
                    to: want,
                });
            }
        }
        Ok(())
    }
}

/// Notes a record that disagrees with its container's `truth` and has no op running (one
/// running, or a create or delete under way, owns the record): it is to take the truth.
fn judge(r: &RecordView, truth: Truth, fixes: &mut Vec<(RecordView, Status)>) {
    if r.busy || matches!(r.status, Status::Creating | Status::Deleting) {
        return;
    }
    let want = truth.status();
    if r.status != want {
        fixes.push((*r, want));
    }
}

/// Reads a listing page by page, handing each page to `each` as it comes: `fetch(after)` gives
/// up to `page` items following the key `after` (`None`: from the start), in key order; a short
/// page is the last.
async fn read_pages<T, Fut>(
    page: u32,
    key: impl Fn(&T) -> u64,
    fetch: impl Fn(Option<u64>) -> Fut,
    mut each: impl FnMut(Vec<T>),
) -> Result<(), Unavailable>
where
    Fut: std::future::Future<Output = Result<Vec<T>, Unavailable>>,
{
    let mut after = None;
    loop {
        let got = fetch(after).await?;
        after = got.last().map(&key);
        let last = got.len() < page as usize;
        each(got);
        if last {
            return Ok(());
        }
    }
}
