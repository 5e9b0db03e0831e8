//! Store processes sharing one journal, one primary at a time (`conductor store --journal FILE`
//! started twice on the same FILE): the primary holds an exclusive OS lock on the journal
//! (`flock`, through std's `File::lock`); a standby blocks on that lock, holding its port but
//! not listening (a connection to it is refused), so that the api and the conductors (`--store A,B`) find only the primary; when the primary
//! dies the kernel releases its lock at once, and the standby takes it, replays the journal
//! (everything the primary acknowledged was written to it before the answer) and listens.
//!
//! Two writers can never append to the journal at once: the lock is the kernel's and goes
//! with the process, so a killed primary frees it and a paused one (SIGSTOP) keeps it — and is
//! not replaced while paused. The lock holds on one machine, or on a shared filesystem whose
//! `flock` is coherent across machines (a local one; NFS's is not to be trusted for this).

use anyhow::Context;
use std::fs::{File, OpenOptions, TryLockError};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

/// The journal's lock, held for the life of the process (dropping it would let a standby in).
pub struct Primary {
    _file: File,
    /// When it took the lock after waiting as a standby (`None`: it was free at start).
    pub took_over: Option<Instant>,
}

/// Takes the journal at `path` as its one writer, waiting as a standby while another process
/// holds it. A standby says so on stdout (`standby ADDR`, where `listen` is the port it holds
/// and will listen on once primary: a parent waiting for `listening ADDR` learns that it
/// started, and where) and on stderr, and says on stderr when it took over (the store says
/// how long its replay took before it listened: [`Primary::took_over`]).
pub async fn take(path: &Path, listen: SocketAddr, sync: bool) -> anyhow::Result<Primary> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot open the journal {}", path.display()))?;
    if sync && !existed {
        // The journal no longer sees the file as new: make its name durable here.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot sync the directory {}", dir.display()))?;
        }
    }
    match file.try_lock() {
        Ok(()) => {
            return Ok(Primary {
                _file: file,
                took_over: None,
            })
        }
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock the journal {}", path.display()))
        }
    }
    crate::service::announce(&format!("standby {listen}"))?;
    eprintln!(
        "conductor: standby: another store process holds the journal {}; waiting to take over",
        path.display()
    );
    let since = Instant::now();
    // `lock` blocks its thread until the holder's lock is gone (it exited, or was killed). A
    // thread of its own, not the runtime's blocking pool: a standby told to stop exits without
    // waiting for it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(file.lock().map(|()| file));
    });
    let file = rx
        .await
        .context("the standby's wait for the journal failed")?
        .with_context(|| format!("cannot lock the journal {}", path.display()))?;
    eprintln!(
        "conductor: primary: took over the journal {} after {:.3} s as standby",
        path.display(),
        since.elapsed().as_secs_f64()
    );
    Ok(Primary {
        _file: file,
        took_over: Some(Instant::now()),
    })
}
