//! The on-disk cache of compiled guest modules.
//!
//! Deserializing compiled code is `unsafe` in wasmtime for a reason: the
//! bytes become machine code. So the cache only ever reads files the runner
//! wrote itself: its directory is the runner's own (created 0700, refused if
//! another user owns it or others may write it), each file is owned by the
//! runner's uid and writable by nobody else, and the file name is the key —
//! the module's sha256, the wasmtime version and a hash of the engine's
//! code-generation settings — so code compiled for another engine or another
//! module is never picked up. A file that fails to load is recompiled and
//! replaced.

use super::{compile, WasmError};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// The wasmtime release the runner is built with (pinned exactly in
/// Cargo.toml; keep the two in step). The engine hash covers it too.
pub(super) const WASMTIME_VERSION: &str = "48.0.8";

/// The compiled-module cache directory.
pub struct ModuleCache {
    dir: PathBuf,
    engine_key: String,
}

/// Feeds `Hash` output into sha256: stable across Rust releases, unlike
/// `DefaultHasher`.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ModuleCache {
    /// Opens (creating it 0700 when missing) the cache directory.
    pub fn open(dir: PathBuf, engine: &Engine) -> Result<Self, WasmError> {
        std::fs::create_dir_all(&dir).map_err(|e| {
            WasmError::Cache(format!(
                "cannot create the wasm module cache {}: {e}; set wasm.cache_dir to a directory the runner owns",
                dir.display()
            ))
        })?;
        let meta = std::fs::symlink_metadata(&dir)
            .map_err(|e| WasmError::Cache(format!("cannot inspect {}: {e}", dir.display())))?;
        if !meta.is_dir() {
            return Err(WasmError::Cache(format!(
                "the wasm module cache {} is not a directory (a symlink is refused)",
                dir.display()
            )));
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(WasmError::Cache(format!(
                "the wasm module cache {} belongs to uid {}, not to the runner (uid {me}); remove it or point wasm.cache_dir elsewhere",
                dir.display(),
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |e| WasmError::Cache(format!("cannot make {} private (0700): {e}", dir.display())),
            )?;
        }
        let mut h = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = hex::encode(&h.0.finalize()[..8]);
        Ok(ModuleCache { dir, engine_key })
    }

    /// The cache file of a module.
    pub fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!(
            "{sha256}-wasmtime{WASMTIME_VERSION}-{}.cwasm",
            self.engine_key
        ))
    }

    /// The compiled module from the cache, or compiled now and stored.
    /// Returns whether it came from the cache.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> Result<(Module, bool), WasmError> {
        let path = self.path_for(sha256);
        if trusted_file(&path) {
            // SAFETY: the file is in the runner's private cache directory,
            // owned by the runner and writable only by it, and named by the
            // module's hash and this engine's settings: it holds code this
            // runner compiled. wasmtime still checks its header and version.
            if let Ok(m) = unsafe { Module::deserialize_file(engine, &path) } {
                return Ok((m, true));
            }
        }
        let module = compile(engine, wasm)?;
        if let Ok(bytes) = module.serialize() {
            // A cache that cannot be written only costs time on the next start.
            let _ = write_atomically(&self.dir, &path, &bytes);
        }
        Ok((module, false))
    }
}

fn trusted_file(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    meta.is_file() && meta.uid() == me && meta.mode() & 0o022 == 0
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
