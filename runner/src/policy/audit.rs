//! The local append-only audit log: one JSON line per decision, each line
//! chained to the one before it by hash.
//!
//! Line format: `{"seq": N, "prev": H(N-1), "hash": H(N), "record": {...}}`
//! where `H(N) = sha256(H(N-1) "\n" N "\n" record-as-written)` and the first
//! `prev` is 64 zeros. Editing a byte of a record or of a hash breaks that
//! line's hash; dropping or reordering lines breaks the sequence or the
//! chain at the first line out of place — `runner audit verify` names it.
//! What a chain alone cannot show is lines cut from the *end*; compare the
//! head (`seq`, `hash`) that `verify` prints with the session's
//! `policy_decision` activities to catch that.

use protocol::policy::DecisionRecord;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An open audit log, appended to by one process.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    fsync: bool,
    state: Mutex<Chain>,
}

#[derive(Debug)]
struct Chain {
    file: File,
    seq: u64,
    head: String,
}

/// The log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// I/O failure.
    #[error("audit log {path}: {message}")]
    Io {
        /// The audit log file.
        path: PathBuf,
        /// The operating system's error.
        message: String,
    },
    /// The log's last line is not a valid chained record.
    #[error("audit log {path} ends with a damaged record at line {line} ({reason}); run `runner audit verify {path}` to inspect it, then move the file aside so a new chain starts")]
    DamagedTail {
        /// The audit log file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with the record (not JSON, a broken hash link).
        reason: String,
    },
}

/// A verification failure: the first line that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct VerifyFailure {
    /// 1-based line number of the first bad line.
    pub line: u64,
    /// What is wrong with it (not JSON, a broken hash link, a bad record hash).
    pub reason: String,
}

/// A verified log's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// How many records the chain holds.
    pub records: u64,
    /// Hash of the last record (GENESIS when empty).
    pub head: String,
}

fn chain_hash(prev: &str, seq: u64, record_json: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(record_json.as_bytes());
    hex::encode(h.finalize())
}

/// The canonical text of a record: serde_json's rendering of its value.
fn canonical(record: &serde_json::Value) -> String {
    record.to_string()
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> AuditError {
    AuditError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl AuditLog {
    /// Opens (creating with mode 0600, parent 0700) the log at `path` and
    /// continues its chain. A damaged last line is an error: appending to a
    /// broken chain would hide the damage.
    pub fn open(path: &Path, fsync: bool) -> Result<AuditLog, AuditError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| io_err(parent, e))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let (seq, head) = match last_line(&mut file).map_err(|e| io_err(path, e))? {
            None => (0, GENESIS.to_string()),
            Some(line) => {
                let parsed: Result<(u64, String), String> = (|| {
                    let v: serde_json::Value =
                        serde_json::from_str(&line).map_err(|e| format!("not JSON: {e}"))?;
                    let seq = v["seq"].as_u64().ok_or("no seq")?;
                    let hash = v["hash"].as_str().ok_or("no hash")?.to_string();
                    let prev = v["prev"].as_str().ok_or("no prev")?;
                    if chain_hash(prev, seq, &canonical(&v["record"])) != hash {
                        return Err("its hash does not match its content".into());
                    }
                    Ok((seq, hash))
                })();
                parsed.map_err(|reason| AuditError::DamagedTail {
                    path: path.to_path_buf(),
                    line: count_lines(path).unwrap_or(0),
                    reason,
                })?
            }
        };
        Ok(AuditLog {
            path: path.to_path_buf(),
            fsync,
            state: Mutex::new(Chain { file, seq, head }),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line (a single `write`, so a crash leaves
    /// at most a torn last line, which [`AuditLog::open`] reports).
    pub fn append(&self, record: &DecisionRecord) -> Result<(), AuditError> {
        let value = serde_json::to_value(record).map_err(|e| io_err(&self.path, e))?;
        let record_json = canonical(&value);
        let mut chain = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let seq = chain.seq + 1;
        let hash = chain_hash(&chain.head, seq, &record_json);
        let line = format!(
            "{{\"seq\":{seq},\"prev\":\"{}\",\"hash\":\"{hash}\",\"record\":{record_json}}}\n",
            chain.head
        );
        chain
            .file
            .write_all(line.as_bytes())
            .map_err(|e| io_err(&self.path, e))?;
        if self.fsync {
            chain.file.sync_data().map_err(|e| io_err(&self.path, e))?;
        }
        chain.seq = seq;
        chain.head = hash;
        Ok(())
    }
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    let f = File::open(path)?;
    Ok(BufReader::new(f).lines().count() as u64)
}

/// Reads the last non-empty line without reading the whole file.
fn last_line(file: &mut File) -> std::io::Result<Option<String>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let mut end = len;
    let mut buf: Vec<u8> = Vec::new();
    let chunk = 64 * 1024u64;
    loop {
        let start = end.saturating_sub(chunk);
        let mut part = vec![0u8; (end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut part)?;
        part.extend_from_slice(&buf);
        buf = part;
        let trimmed_len = buf
            .iter()
            .rposition(|b| *b != b'\n')
            .map(|p| p + 1)
            .unwrap_or(0);
        if let Some(nl) = buf[..trimmed_len].iter().rposition(|b| *b == b'\n') {
            return Ok(Some(
                String::from_utf8_lossy(&buf[nl + 1..trimmed_len]).into_owned(),
            ));
        }
        if start == 0 {
            return Ok(if trimmed_len == 0 {
                None
            } else {
                Some(String::from_utf8_lossy(&buf[..trimmed_len]).into_owned())
            });
        }
        end = start;
    }
}

/// Checks every line of the log at `path`; the error names the first bad one.
pub fn verify(path: &Path) -> Result<Result<VerifiedChain, VerifyFailure>, std::io::Error> {
    let reader = BufReader::new(File::open(path)?);
    let mut prev = GENESIS.to_string();
    let mut count = 0u64;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let bytes = line?;
        let fail = |reason: String| {
            Ok(Err(VerifyFailure {
                line: line_no,
                reason,
            }))
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return fail("not UTF-8 text".into());
        };
        if text.is_empty() {
            return fail("empty line".into());
        }
        let v: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return fail(format!("not a JSON record: {e}")),
        };
        let (Some(seq), Some(p), Some(hash)) =
            (v["seq"].as_u64(), v["prev"].as_str(), v["hash"].as_str())
        else {
            return fail("missing seq, prev or hash".into());
        };
        if seq != count + 1 {
            return fail(format!(
                "sequence number {seq} where {} was expected (a record was dropped or reordered)",
                count + 1
            ));
        }
        if p != prev {
            return fail("prev does not match the hash of the line before (a record was dropped, inserted or reordered)".into());
        }
        if v.get("record").is_none() {
            return fail("no record".into());
        }
        if chain_hash(p, seq, &canonical(&v["record"])) != hash {
            return fail("the record does not match its hash (it was edited)".into());
        }
        prev = hash.to_string();
        count += 1;
    }
    Ok(Ok(VerifiedChain {
        records: count,
        head: prev,
    }))
}

/// A record read back from a log, with its line number.
#[derive(Debug, Clone)]
pub struct LoggedRecord {
    /// 1-based line.
    pub line: u64,
    /// The decision record as it was written.
    pub record: DecisionRecord,
}

/// Reads every record of a log (without verifying the chain; run
/// [`verify`] for that).
pub fn read_records(path: &Path) -> anyhow::Result<Vec<LoggedRecord>> {
    use anyhow::Context;
    let reader = BufReader::new(
        File::open(path).with_context(|| format!("cannot open audit log {}", path.display()))?,
    );
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        #[derive(serde::Deserialize)]
        struct Line {
            record: DecisionRecord,
        }
        let l: Line = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {} is not a decision record; run `runner audit verify` on it",
                path.display(),
                i + 1
            )
        })?;
        out.push(LoggedRecord {
            line: i as u64 + 1,
            record: l.record,
        });
    }
    Ok(out)
}
