//! A write-ahead journal of checksummed JSON lines: the durability of the store and of the hosts,
//! in real mode on a file and under the simulator on an in-memory file that outlives a killed
//! node, so the simulated services restart from exactly what the real ones make durable.
//!
//! Each record is one line, `CRC32C JSON\n`: the CRC-32C (Castagnoli, as iSCSI, ext4 and
//! LevelDB's log use) of the JSON text, as 8 lowercase hex digits, a space, the record as JSON.
//! A record is appended in one write and flushed to the operating system before the caller acts
//! on it (a process crash loses nothing written); with `sync` it is also forced to disk (a
//! machine crash loses nothing either).
//!
//! Reading back, as every write-ahead log does (etcd's WAL, LevelDB's log):
//! - a last line without its newline is a **torn tail** (a crash or a full disk mid-write; it was
//!   never acknowledged): it is cut off, and the [`Recovered`] says how many bytes were dropped
//!   and where, for the caller to warn about;
//! - any complete line whose checksum does not match, or which is not a record, is **corruption**:
//!   an error naming the file and the 1-based line, and nothing is replayed past it.
//!
//! The journals of versions before checksums (plain JSON lines) are refused with a message
//! saying the format changed: replaying them would bring back the fencing-token bug they had.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// An in-memory journal file: what the simulator's services write, kept outside their nodes so
/// that it survives a simulated kill as a file survives a process crash. Everything appended
/// survives (a simulated kill is a process crash, not a machine crash: `sync` has nothing more
/// to keep).
#[derive(Debug, Clone, Default)]
pub struct MemFile(Arc<Mutex<Vec<u8>>>);

impl MemFile {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Replaces the file's bytes (tests: a torn or corrupted file).
    pub fn set_bytes(&self, bytes: Vec<u8>) {
        *self.lock() = bytes;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a journal's records go.
#[derive(Debug)]
enum Sink {
    File { file: std::fs::File, sync: bool },
    Memory(MemFile),
}

/// An open journal, appending records.
#[derive(Debug)]
pub struct Journal {
    sink: Sink,
    /// The line being assembled (kept: no allocation per record).
    line: Vec<u8>,
}

/// What reading a journal back found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovered {
    /// The records replayed.
    pub records: u64,
    /// A torn last record that was cut off.
    pub torn: Option<Torn>,
}

/// A torn last record, cut off at recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn {
    /// Where it began (bytes from the start of the file): the file's length now.
    pub offset: u64,
    /// How many bytes were dropped.
    pub bytes: u64,
}

impl Recovered {
    /// The warning to print about a torn tail, if there was one.
    pub fn warning(&self, name: &str) -> Option<String> {
        self.torn.map(|t| {
            format!(
                "journal {name}: dropped a torn last record ({} bytes at offset {}), \
                 written when the process stopped mid-write and never acknowledged",
                t.bytes, t.offset
            )
        })
    }
}

/// The journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing the file failed.
    #[error("journal {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A complete line is not an intact record: the journal is corrupt there.
    #[error("journal {path}, line {line}: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// The 1-based line.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
}

/// The length of a line's prefix: 8 hex digits and a space.
const PREFIX: usize = 9;

impl Journal {
    /// Opens (or creates) the journal file at `path`, replays each record through `each`, cuts
    /// off a torn tail, and returns the journal ready to append. With `sync`, every append is
    /// forced to disk before it returns (and a new file's directory entry too).
    pub fn open<T: DeserializeOwned>(
        path: &Path,
        sync: bool,
        each: impl FnMut(T),
    ) -> Result<(Journal, Recovered), JournalError> {
        let name = path.display().to_string();
        let io = |source| JournalError::Io {
            path: name.clone(),
            source,
        };
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let recovered = read(std::io::BufReader::new(&file), &name, each)?;
        if let Some(t) = recovered.torn {
            file.set_len(t.offset).map_err(io)?;
            if sync {
                file.sync_data().map_err(io)?;
            }
        }
        if sync && !existed {
            // A new file's name is durable only once its directory is.
            sync_dir(path).map_err(io)?;
        }
        Ok((Journal::new(Sink::File { file, sync }), recovered))
    }

    /// Opens the in-memory journal `file` as [`Journal::open`] opens a file (`name` names it in
    /// errors and warnings).
    pub fn open_memory<T: DeserializeOwned>(
        file: &MemFile,
        name: &str,
        each: impl FnMut(T),
    ) -> Result<(Journal, Recovered), JournalError> {
        let recovered = {
            let bytes = file.lock();
            read(&bytes[..], name, each)?
        };
        if let Some(t) = recovered.torn {
            file.lock().truncate(t.offset as usize);
        }
        Ok((Journal::new(Sink::Memory(file.clone())), recovered))
    }

    fn new(sink: Sink) -> Self {
        Journal {
            sink,
            line: Vec::with_capacity(256),
        }
    }

    /// Appends one record: written (and, with `sync`, forced to disk) when this returns.
    pub fn append<T: Serialize>(&mut self, record: &T) -> std::io::Result<()> {
        encode(&mut self.line, record)?;
        match &mut self.sink {
            Sink::File { file, sync } => {
                // One write per record: a crash leaves it whole or torn at the end, never
                // interleaved with another.
                file.write_all(&self.line)?;
                if *sync {
                    file.sync_data()?;
                }
            }
            Sink::Memory(m) => m.lock().extend_from_slice(&self.line),
        }
        Ok(())
    }
}

/// Encodes `record` as one journal line (newline included) into `line`.
fn encode<T: Serialize>(line: &mut Vec<u8>, record: &T) -> std::io::Result<()> {
    line.clear();
    line.extend_from_slice(b"00000000 ");
    serde_json::to_writer(&mut *line, record)?;
    let crc = crc32c::crc32c(&line[PREFIX..]);
    write!(&mut line[..PREFIX - 1], "{crc:08x}")?;
    line.push(b'\n');
    Ok(())
}

/// Reads every record of `input`, stopping at a torn tail (reported) or at corruption (an
/// error).
fn read<T: DeserializeOwned>(
    mut input: impl BufRead,
    name: &str,
    mut each: impl FnMut(T),
) -> Result<Recovered, JournalError> {
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut number = 0u64;
    let mut records = 0u64;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|source| JournalError::Io {
                path: name.to_string(),
                source,
            })?;
        if n == 0 {
            return Ok(Recovered {
                records,
                torn: None,
            });
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            return Ok(Recovered {
                records,
                torn: Some(Torn {
                    offset,
                    bytes: n as u64,
                }),
            });
        }
        let record = decode(&line[..n - 1]).map_err(|message| JournalError::Corrupt {
            path: name.to_string(),
            line: number,
            message,
        })?;
        each(record);
        records += 1;
        offset += n as u64;
    }
}

/// Decodes one line (without its newline), or says what is wrong with it.
fn decode<T: DeserializeOwned>(line: &[u8]) -> Result<T, String> {
    if line.first() == Some(&b'{') {
        return Err(
            "a record without a checksum: the journal was written by an older version \
                    (the format changed to checksummed lines, `CRC32C JSON`); start the store \
                    with a new journal"
                .into(),
        );
    }
    let (Some(hex), Some(b' ')) = (line.get(..PREFIX - 1), line.get(PREFIX - 1)) else {
        return Err(
            "not a journal record (expected 8 hex digits of CRC-32C, a space, JSON)".into(),
        );
    };
    let stored = std::str::from_utf8(hex)
        .ok()
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or("not a journal record (expected 8 hex digits of CRC-32C, a space, JSON)")?;
    let body = &line[PREFIX..];
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the record \
             was changed after it was written"
        ));
    }
    serde_json::from_slice(body).map_err(|e| format!("not a journal record: {e}"))
}

/// Forces the directory entry of `path` to disk.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Rec {
        Set { key: u64, value: u64 },
        Mark(u64),
    }

    fn recs() -> Vec<Rec> {
        vec![
            Rec::Set { key: 46, value: 1 },
            Rec::Mark(7),
            Rec::Set { key: 3, value: 9 },
        ]
    }

    /// Writes `recs()` to a fresh in-memory journal and returns its file.
    fn written() -> MemFile {
        let f = MemFile::new();
        let (mut j, r) = Journal::open_memory::<Rec>(&f, "mem", |_| panic!("empty")).unwrap();
        assert_eq!(r, Recovered::default());
        for rec in recs() {
            j.append(&rec).unwrap();
        }
        f
    }

    fn replay(f: &MemFile) -> Result<(Vec<Rec>, Recovered), JournalError> {
        let mut out = Vec::new();
        let (_, r) = Journal::open_memory(f, "mem", |x| out.push(x))?;
        Ok((out, r))
    }

    #[test]
    fn records_come_back_in_order_and_appends_go_on() {
        let f = written();
        let text = String::from_utf8(f.bytes()).unwrap();
        // One line per record: 8 hex digits of CRC-32C, a space, the JSON.
        let first = text.lines().next().unwrap();
        let crc = crc32c::crc32c(&first.as_bytes()[PREFIX..]);
        assert_eq!(&first[..PREFIX], format!("{crc:08x} "));
        let (out, r) = replay(&f).unwrap();
        assert_eq!(out, recs());
        assert_eq!((r.records, r.torn), (3, None));
        // Reopened, it appends after what it replayed.
        let (mut j, _) = Journal::open_memory::<Rec>(&f, "mem", |_| {}).unwrap();
        j.append(&Rec::Mark(8)).unwrap();
        assert_eq!(replay(&f).unwrap().0.last(), Some(&Rec::Mark(8)));
    }

    #[test]
    fn a_torn_tail_is_cut_off_with_its_size() {
        let f = written();
        let whole = f.bytes();
        let last_line = whole[..whole.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        // Cut in the middle of the last record: a crash mid-write.
        let cut = last_line + 12;
        f.set_bytes(whole[..cut].to_vec());
        let (out, r) = replay(&f).unwrap();
        assert_eq!(out, recs()[..2]);
        let torn = Torn {
            offset: last_line as u64,
            bytes: 12,
        };
        assert_eq!(r.torn, Some(torn));
        let warning = r.warning("mem").unwrap();
        assert!(warning.contains("12 bytes at offset"), "{warning}");
        // The file was cut back to whole records: the next append starts a line of its own.
        assert_eq!(f.bytes(), whole[..last_line]);
        // A whole record missing only its newline was never acknowledged either.
        f.set_bytes(whole[..whole.len() - 1].to_vec());
        let (out, r) = replay(&f).unwrap();
        assert_eq!(out.len(), 2);
        assert!(r.torn.is_some());
    }

    #[test]
    fn a_changed_digit_is_a_checksum_mismatch_naming_the_line() {
        let f = written();
        // `"key":46` -> `"key":946`, the issue's example, in the first of three lines.
        let text = String::from_utf8(f.bytes())
            .unwrap()
            .replacen(":46", ":946", 1);
        f.set_bytes(text.into_bytes());
        let err = replay(&f).unwrap_err().to_string();
        assert!(err.contains("journal mem, line 1"), "{err}");
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_an_error_not_a_torn_tail() {
        let f = written();
        let mut lines: Vec<String> = String::from_utf8(f.bytes())
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        lines[1] = "garbage".into();
        f.set_bytes(format!("{}\n", lines.join("\n")).into_bytes());
        let err = replay(&f).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("not a journal record"),
            "{err}"
        );
        // A record whose checksum holds but whose JSON is not a record is corrupt too.
        let body = r#"{"Unknown":1}"#;
        lines[1] = format!("{:08x} {body}", crc32c::crc32c(body.as_bytes()));
        f.set_bytes(format!("{}\n", lines.join("\n")).into_bytes());
        let err = replay(&f).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn an_old_unchecksummed_journal_says_the_format_changed() {
        let f = MemFile::new();
        f.set_bytes(b"{\"Mark\":1}\n".to_vec());
        let err = replay(&f).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("format changed"),
            "{err}"
        );
    }

    #[test]
    fn a_file_journal_cuts_its_torn_tail_on_disk() {
        let path =
            std::env::temp_dir().join(format!("conductor-journal-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            let (mut j, _) = Journal::open::<Rec>(&path, true, |_| {}).unwrap();
            for rec in recs() {
                j.append(&rec).unwrap();
            }
        }
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 5]).unwrap();
        let mut out = Vec::new();
        let (mut j, r) = Journal::open(&path, false, |x: Rec| out.push(x)).unwrap();
        assert_eq!(out, recs()[..2]);
        assert_eq!(
            r.torn.map(|t| t.bytes),
            Some(whole.len() as u64 - 5 - r.torn.unwrap().offset)
        );
        j.append(&Rec::Mark(9)).unwrap();
        let mut again = Vec::new();
        Journal::open(&path, false, |x: Rec| again.push(x)).unwrap();
        assert_eq!(again.last(), Some(&Rec::Mark(9)));
        assert_eq!(again.len(), 3);
        let _ = std::fs::remove_file(&path);
    }
}
