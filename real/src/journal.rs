//! Opening a service's journal (`--journal FILE`, the store's and the host's): a torn tail cut
//! off with a warning on stderr, a corrupt journal refused as bad input (exit 2, naming the file
//! and the line) — starting from a damaged journal would lose what it acknowledged.

use crate::command::BadInput;
use conductor::journal::{JournalError, Recovered};
use std::path::Path;

/// Opens the journal at `path` with `open`, warning about a torn tail it cut off.
pub fn open<T>(
    path: &Path,
    open: impl FnOnce(&Path) -> Result<(T, Recovered), JournalError>,
) -> anyhow::Result<T> {
    match open(path) {
        Ok((state, recovered)) => {
            if let Some(w) = recovered.warning(&path.display().to_string()) {
                eprintln!("warning: {w}");
            }
            Ok(state)
        }
        Err(e @ JournalError::Corrupt { .. }) => Err(BadInput(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}
