//! Event ids already accepted: bounded (oldest forgotten first) and kept
//! in a file so a restart does not run a retried delivery's wake-up again.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;

pub(crate) struct Seen {
    path: PathBuf,
    cap: usize,
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    pub(crate) fn load(path: PathBuf, cap: usize) -> Seen {
        let ids: Vec<String> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut s = Seen {
            path,
            cap: cap.max(1),
            order: VecDeque::new(),
            set: HashSet::new(),
        };
        for id in ids {
            s.remember(id);
        }
        s
    }

    fn remember(&mut self, id: String) {
        if self.set.insert(id.clone()) {
            self.order.push_back(id);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    /// True the first time `id` is seen (and persists it).
    pub(crate) fn first_time(&mut self, id: &str) -> Result<bool, String> {
        if self.set.contains(id) {
            return Ok(false);
        }
        self.remember(id.to_string());
        let dir = self
            .path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| ".".into());
        let bytes = serde_json::to_vec(&self.order).map_err(|e| e.to_string())?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| e.to_string())?;
        tmp.write_all(&bytes).map_err(|e| e.to_string())?;
        tmp.as_file().sync_all().map_err(|e| e.to_string())?;
        tmp.persist(&self.path).map_err(|e| e.to_string())?;
        Ok(true)
    }
}
