//! Tokens at rest: one file, encrypted with XChaCha20-Poly1305 (random
//! 24-byte nonce per write, the format version as associated data),
//! written to a temporary file, fsynced and renamed over the old one, then
//! the directory fsynced — a crash leaves the old file or the new one,
//! never half of either. Nothing here prints a token.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const AAD: &[u8] = b"runner-tokens-v1";

/// The tokens of one sign-in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokens {
    /// The control plane they are for.
    pub control_plane: String,
    /// The OAuth client they were issued to.
    pub client_id: String,
    /// Bearer token for the control plane's routes; short-lived, refreshed ahead of expiry.
    pub access_token: String,
    /// Single-use token that buys the next pair (the server rotates it at every refresh).
    pub refresh_token: String,
    /// When the access token expires (Unix seconds).
    pub access_expires_at: i64,
    /// Its lifetime when issued, in seconds.
    pub access_lifetime: i64,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("control_plane", &self.control_plane)
            .field("client_id", &self.client_id)
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    version: u32,
    nonce: String,
    ciphertext: String,
}

/// The encryption key (32 bytes).
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

const KEY_HELP: &str = "the token key must be 32 random bytes written as 64 hex digits or base64; make one with `head -c 32 /dev/urandom | base64 > /etc/runner/token.key && chmod 600 /etc/runner/token.key`";

impl TokenKey {
    /// Parses 64 hex digits or base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<TokenKey, String> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|e| e.to_string()))
                .collect::<Result<Vec<u8>, _>>()?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| KEY_HELP.to_string())?
        };
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KEY_HELP.to_string())?;
        Ok(TokenKey(arr))
    }

    /// Reads the key the config names.
    pub fn from_config(section: &super::AuthSection) -> Result<TokenKey, String> {
        let r = section.key.as_ref().ok_or_else(|| {
            format!("[auth] key is not set: the token file is encrypted with it; {KEY_HELP}, then set key = {{ file = \"/etc/runner/token.key\" }}")
        })?;
        let secret = r.resolve("[auth] key")?;
        TokenKey::parse(secret.expose()).map_err(|e| format!("[auth] key: {e}"))
    }
}

/// Where the tokens live and how they are sealed.
#[derive(Debug, Clone)]
pub struct TokenFile {
    /// The sealed file (`auth.token_file`, default `<state_dir>/tokens.enc`).
    pub path: PathBuf,
    key: TokenKey,
}

impl TokenFile {
    /// A token file at `path` sealed with `key`.
    pub fn new(path: PathBuf, key: TokenKey) -> TokenFile {
        TokenFile { path, key }
    }

    /// Refuses a file or directory others can read, saying how to fix it.
    pub fn check_permissions(&self) -> Result<(), String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let dmeta = std::fs::metadata(dir)
            .map_err(|e| format!("cannot read the state directory {}: {e}", dir.display()))?;
        let dmode = dmeta.permissions().mode() & 0o777;
        if dmode & 0o066 != 0 {
            return Err(format!(
                "the state directory {} is readable or writable by group or others (mode {dmode:o}); run chmod 700 {} (or 711 when session workspaces live inside it)",
                dir.display(),
                dir.display()
            ));
        }
        match std::fs::metadata(&self.path) {
            Ok(m) => {
                let mode = m.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(format!(
                        "the token file {} is accessible by group or others (mode {mode:o}); run chmod 600 {}",
                        self.path.display(),
                        self.path.display()
                    ));
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot read {}: {e}", self.path.display())),
        }
    }

    /// Reads and decrypts the tokens.
    pub fn load(&self) -> Result<StoredTokens, String> {
        self.check_permissions()?;
        let text = std::fs::read(&self.path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "not signed in: {} does not exist; run `runner login` with this config",
                    self.path.display()
                )
            } else {
                format!("cannot read {}: {e}", self.path.display())
            }
        })?;
        let corrupt = |why: &str| {
            format!(
                "{} is not a token file ({why}); run `runner login` again",
                self.path.display()
            )
        };
        let env: Envelope = serde_json::from_slice(&text).map_err(|_| corrupt("not JSON"))?;
        if env.version != 1 {
            return Err(corrupt("unknown version"));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let nonce = b64.decode(&env.nonce).map_err(|_| corrupt("bad nonce"))?;
        if nonce.len() != 24 {
            return Err(corrupt("bad nonce"));
        }
        let ct = b64
            .decode(&env.ciphertext)
            .map_err(|_| corrupt("bad ciphertext"))?;
        let cipher = XChaCha20Poly1305::new((&self.key.0).into());
        let plain = cipher
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ct, aad: AAD })
            .map_err(|_| {
                format!(
                    "cannot decrypt {}: the [auth] key is not the one it was written with (or the file was changed); use the right key, or run `runner login` again",
                    self.path.display()
                )
            })?;
        serde_json::from_slice(&plain).map_err(|_| corrupt("bad content"))
    }

    /// Encrypts and writes the tokens atomically (0600).
    pub fn save(&self, tokens: &StoredTokens) -> Result<(), String> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness: {e}"))?;
        let plain = serde_json::to_vec(tokens).map_err(|e| e.to_string())?;
        let cipher = XChaCha20Poly1305::new((&self.key.0).into());
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .map_err(|_| "encryption failed".to_string())?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let env = serde_json::to_vec(&Envelope {
            version: 1,
            nonce: b64.encode(nonce),
            ciphertext: b64.encode(ct),
        })
        .map_err(|e| e.to_string())?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tokens.")
            .tempfile_in(&dir)
            .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        tmp.write_all(&env).map_err(|e| e.to_string())?;
        tmp.as_file().sync_all().map_err(|e| e.to_string())?;
        tmp.persist(&self.path)
            .map_err(|e| format!("cannot replace {}: {e}", self.path.display()))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> StoredTokens {
        StoredTokens {
            control_plane: "http://127.0.0.1:1".into(),
            client_id: "runner".into(),
            access_token: "cpat_SECRETACCESS".into(),
            refresh_token: "cprt_SECRETREFRESH".into(),
            access_expires_at: 1,
            access_lifetime: 900,
        }
    }

    #[test]
    fn sealed_at_rest_wrong_key_refused_open_permissions_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let key = TokenKey::parse(&"ab".repeat(32)).unwrap();
        let f = TokenFile::new(dir.path().join("tokens.enc"), key);
        f.save(&tokens()).unwrap();
        let raw = std::fs::read_to_string(&f.path).unwrap();
        assert!(!raw.contains("SECRETACCESS") && !raw.contains("SECRETREFRESH"));
        assert_eq!(
            std::fs::metadata(&f.path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(f.load().unwrap(), tokens());
        assert!(!format!("{:?}", f.load().unwrap()).contains("SECRET"));
        // Another key: a clear error, not garbage.
        let other = TokenFile::new(f.path.clone(), TokenKey::parse(&"cd".repeat(32)).unwrap());
        let e = other.load().unwrap_err();
        assert!(e.contains("cannot decrypt") && e.contains("key"), "{e}");
        // 0644: refused, saying how to fix it.
        std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = f.load().unwrap_err();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(f.load().unwrap_err().contains("chmod 700"));
    }

    #[test]
    fn key_formats() {
        assert!(TokenKey::parse(&"0f".repeat(32)).is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(TokenKey::parse(&b64).is_ok());
        assert!(TokenKey::parse("short")
            .unwrap_err()
            .contains("32 random bytes"));
    }
}
