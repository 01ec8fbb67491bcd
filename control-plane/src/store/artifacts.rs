//! Files a session delivered from its `/data` (the runner's
//! `artifact.deliver`): stored as blobs next to the session, one row per
//! `(session, path)` so that a re-delivery replaces the file, listed for
//! whoever may read the session, and deleted with it. The worker writes
//! them only under a claim that holds the session; the server computes
//! the digest and the media type itself and trusts neither from the
//! worker. The Cloud Agents API hands out one-time download links
//! (`artifact_links`), stored as the token's SHA-256 only.

use super::claims::valid_claim;
use super::{now_ms, rfc3339, Missing, Store, StoreError, Tx};
use protocol::toolset::{
    skill_path_ok, ArtifactInfo, ARTIFACT_MAX_FILES, ARTIFACT_MAX_FILE_BYTES,
    ARTIFACT_MAX_TOTAL_BYTES,
};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

/// Where every artifact lives in the sandbox.
pub(crate) const DATA_ROOT: &str = "/data/";

/// How long a one-time download link of the Cloud Agents API lasts.
pub(crate) const LINK_TTL_MS: i64 = 15 * 60 * 1000;

/// A stored artifact with its bytes, as a download serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArtifactContent {
    /// What the listing shows.
    pub(crate) info: ArtifactInfo,
    /// The bytes.
    pub(crate) data: Vec<u8>,
}

/// Checks an artifact's path: `/data/` and then a plain relative path
/// (the skill rules: no `..`, `.`, empty component, `\`, control
/// characters). The error names the path.
pub(crate) fn check_path(path: &str) -> Result<(), StoreError> {
    match path.strip_prefix(DATA_ROOT) {
        Some(rest) if skill_path_ok(rest) => Ok(()),
        _ => Err(StoreError::invalid(format!(
            "path {path:?} is not an artifact path: it must be /data/ followed by a relative path without empty, . or .. components, backslashes or control characters"
        ))),
    }
}

/// The media type an artifact is listed with, from its name's extension
/// only: the bytes are the worker's, and what a download serves is
/// decided again in the route (never HTML inline).
pub(crate) fn media_type_of(path: &str) -> &'static str {
    let ext = path
        .rsplit('/')
        .next()
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "html" | "htm" => "text/html",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// Deletes every artifact of `session` and its download links (with the
/// session itself: a purge calls this in its transaction). Returns how
/// many artifacts there were.
pub(crate) fn delete_artifacts(tx: &Tx<'_>, session: &str) -> Result<usize, StoreError> {
    tx.sql.execute(
        "DELETE FROM artifact_links WHERE artifact_id IN (SELECT id FROM artifacts WHERE session_id = ?1)",
        params![session],
    )?;
    Ok(tx.sql.execute(
        "DELETE FROM artifacts WHERE session_id = ?1",
        params![session],
    )?)
}

fn info_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArtifactInfo> {
    Ok(ArtifactInfo {
        path: r.get(0)?,
        size_bytes: r.get::<_, i64>(1)? as u64,
        sha256: r.get(2)?,
        media_type: r.get(3)?,
        created_at: rfc3339(r.get(4)?),
    })
}

fn missing(session: &str, path: &str) -> StoreError {
    StoreError::not_found(
        Missing::Artifact,
        format!("session {session} has no artifact {path:?}; list them with GET /v1/sessions/{session}/artifacts"),
    )
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Stores `data` as the artifact `path` of `session`, delivered under
    /// `claim` (which must hold the session). A path delivered before is
    /// replaced; the limits (per file, count, total per session) count
    /// the session's other artifacts and this one, so a replacement is
    /// not counted twice. Nothing changes when it is refused.
    pub(crate) fn put_artifact(
        &self,
        session: &str,
        claim: &str,
        path: &str,
        data: Vec<u8>,
    ) -> Result<ArtifactInfo, StoreError> {
        check_path(path)?;
        let size = data.len() as u64;
        if size > ARTIFACT_MAX_FILE_BYTES {
            return Err(StoreError::TooLarge(format!(
                "artifact {path:?} has {size} bytes; one artifact has at most {ARTIFACT_MAX_FILE_BYTES}"
            )));
        }
        let sha256 = hex::encode(Sha256::digest(&data));
        let media_type = media_type_of(path);
        let now = now_ms();
        self.tx(|tx| {
            valid_claim(tx, session, claim, now)?;
            let (others, other_bytes): (i64, i64) = tx.sql.query_row(
                "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM artifacts WHERE session_id = ?1 AND path <> ?2",
                params![session, path],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if others as usize + 1 > ARTIFACT_MAX_FILES {
                return Err(StoreError::TooLarge(format!(
                    "session {session} has {others} artifacts already; a session delivers at most {ARTIFACT_MAX_FILES}"
                )));
            }
            if other_bytes as u64 + size > ARTIFACT_MAX_TOTAL_BYTES {
                return Err(StoreError::TooLarge(format!(
                    "session {session}'s artifacts would take {} bytes with {path:?}; a session's artifacts take at most {ARTIFACT_MAX_TOTAL_BYTES}",
                    other_bytes as u64 + size
                )));
            }
            let id = format!("art_{}", uuid::Uuid::new_v4().simple());
            // A replaced file's old download links die with its old row.
            tx.sql.execute(
                "DELETE FROM artifact_links WHERE artifact_id IN (SELECT id FROM artifacts WHERE session_id = ?1 AND path = ?2)",
                params![session, path],
            )?;
            tx.sql.execute(
                "INSERT INTO artifacts (id, session_id, path, size_bytes, sha256, media_type, data, claim_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                 ON CONFLICT (session_id, path) DO UPDATE SET id = excluded.id, size_bytes = excluded.size_bytes,
                   sha256 = excluded.sha256, media_type = excluded.media_type, data = excluded.data,
                   claim_id = excluded.claim_id, updated_at = excluded.updated_at",
                params![id, session, path, size as i64, sha256, media_type, data, claim, now],
            )?;
            Ok(ArtifactInfo {
                path: path.to_string(),
                size_bytes: size,
                sha256: sha256.clone(),
                media_type: media_type.to_string(),
                created_at: rfc3339(now),
            })
        })
    }

    /// The artifacts of `session`, by path (at most
    /// [`ARTIFACT_MAX_FILES`]). The caller has checked the reader's access.
    pub(crate) fn artifacts(&self, session: &str) -> Result<Vec<ArtifactInfo>, StoreError> {
        self.tx(|tx| {
            let mut q = tx.sql.prepare(
                "SELECT path, size_bytes, sha256, media_type, updated_at FROM artifacts WHERE session_id = ?1 ORDER BY path LIMIT ?2",
            )?;
            let rows = q
                .query_map(params![session, ARTIFACT_MAX_FILES as i64], info_of)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Artifact `path` of `session`, with its bytes.
    pub(crate) fn artifact(
        &self,
        session: &str,
        path: &str,
    ) -> Result<ArtifactContent, StoreError> {
        self.tx(|tx| {
            tx.sql
                .query_row(
                    "SELECT path, size_bytes, sha256, media_type, updated_at, data FROM artifacts WHERE session_id = ?1 AND path = ?2",
                    params![session, path],
                    |r| {
                        Ok(ArtifactContent {
                            info: info_of(r)?,
                            data: r.get(5)?,
                        })
                    },
                )
                .optional()?
                .ok_or_else(|| missing(session, path))
        })
    }

    /// A one-time download link for artifact `path` of `session`: a
    /// fresh random token (returned once, stored as its hash) and when it
    /// expires (ms). The caller has checked the reader's access.
    pub(crate) fn artifact_link(
        &self,
        session: &str,
        path: &str,
    ) -> Result<(String, i64), StoreError> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let token = hex::encode(b);
        let now = now_ms();
        let expires = now + LINK_TTL_MS;
        self.tx(|tx| {
            let id: String = tx
                .sql
                .query_row(
                    "SELECT id FROM artifacts WHERE session_id = ?1 AND path = ?2",
                    params![session, path],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| missing(session, path))?;
            tx.sql.execute(
                "DELETE FROM artifact_links WHERE expires_at <= ?1",
                params![now],
            )?;
            tx.sql.execute(
                "INSERT INTO artifact_links (token_sha256, artifact_id, expires_at) VALUES (?1, ?2, ?3)",
                params![token_hash(&token), id, expires],
            )?;
            Ok((token, expires))
        })
    }

    /// The artifact a download link names, once: the link is used up by
    /// this call, and an unknown, used or expired one is not found.
    pub(crate) fn redeem_artifact_link(&self, token: &str) -> Result<ArtifactContent, StoreError> {
        let now = now_ms();
        let gone = || {
            StoreError::not_found(
                Missing::Artifact,
                "no such download link; links work once and for 15 minutes — ask for a new one with GET /v0/agents/{id}/artifacts/download",
            )
        };
        self.tx(|tx| {
            let h = token_hash(token);
            let row: Option<(String, i64)> = tx
                .sql
                .query_row(
                    "SELECT artifact_id, expires_at FROM artifact_links WHERE token_sha256 = ?1",
                    params![h],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((id, expires)) = row else {
                return Err(gone());
            };
            tx.sql.execute(
                "DELETE FROM artifact_links WHERE token_sha256 = ?1",
                params![h],
            )?;
            if expires <= now {
                return Err(gone());
            }
            tx.sql
                .query_row(
                    "SELECT path, size_bytes, sha256, media_type, updated_at, data FROM artifacts WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok(ArtifactContent {
                            info: info_of(r)?,
                            data: r.get(5)?,
                        })
                    },
                )
                .optional()?
                .ok_or_else(gone)
        })
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Makes every download link of the store expired (a test cannot wait
    /// 15 minutes).
    pub(crate) fn expire_links(store: &Store) {
        store
            .tx(|tx| {
                tx.sql
                    .execute("UPDATE artifact_links SET expires_at = 0", [])?;
                Ok(())
            })
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::claimed;
    use super::*;

    #[test]
    fn a_delivery_is_stored_listed_and_replaced_by_a_redelivery() {
        let (_d, store) = super::super::testing::store();
        let (_, c) = claimed(&store, 60);
        let id = c.session.id.to_string();
        let a = store
            .put_artifact(&id, &c.claim_id, "/data/out/report.md", b"# one".to_vec())
            .unwrap();
        assert_eq!(a.size_bytes, 5);
        assert_eq!(a.media_type, "text/markdown");
        assert_eq!(a.sha256, hex::encode(Sha256::digest(b"# one")));
        store
            .put_artifact(&id, &c.claim_id, "/data/a.bin", vec![0; 3])
            .unwrap();
        let b = store
            .put_artifact(&id, &c.claim_id, "/data/out/report.md", b"# two!".to_vec())
            .unwrap();
        let list = store.artifacts(&id).unwrap();
        assert_eq!(
            list.iter().map(|a| a.path.as_str()).collect::<Vec<_>>(),
            ["/data/a.bin", "/data/out/report.md"]
        );
        assert_eq!(list[1], b);
        assert_eq!(
            store.artifact(&id, "/data/out/report.md").unwrap().data,
            b"# two!"
        );
    }

    #[test]
    fn bad_paths_wrong_claims_and_limits_change_nothing() {
        let (_d, store) = super::super::testing::store();
        let (_, c) = claimed(&store, 60);
        let id = c.session.id.to_string();
        for bad in [
            "/etc/passwd",
            "/data/",
            "/data/../x",
            "/data/a//b",
            "data/x",
            "/data/a\\b",
        ] {
            let e = store
                .put_artifact(&id, &c.claim_id, bad, b"x".to_vec())
                .unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{bad}: {e:?}");
        }
        let (_, other) = claimed(&store, 60);
        let e = store
            .put_artifact(&id, &other.claim_id, "/data/x", b"x".to_vec())
            .unwrap_err();
        assert!(matches!(e, StoreError::ClaimInvalid { .. }), "{e:?}");
        let big = vec![0u8; ARTIFACT_MAX_FILE_BYTES as usize + 1];
        let e = store
            .put_artifact(&id, &c.claim_id, "/data/big", big)
            .unwrap_err();
        assert!(matches!(e, StoreError::TooLarge(_)), "{e:?}");
        for i in 0..ARTIFACT_MAX_FILES {
            store
                .put_artifact(&id, &c.claim_id, &format!("/data/{i}"), vec![1])
                .unwrap();
        }
        let e = store
            .put_artifact(&id, &c.claim_id, "/data/one-more", vec![1])
            .unwrap_err();
        assert!(e.to_string().contains("at most 100"), "{e}");
        // Replacing one is not one more.
        store
            .put_artifact(&id, &c.claim_id, "/data/0", vec![2])
            .unwrap();
        assert_eq!(store.artifacts(&id).unwrap().len(), ARTIFACT_MAX_FILES);
    }

    #[test]
    fn the_total_per_session_is_bounded() {
        let (_d, store) = super::super::testing::store();
        let (_, c) = claimed(&store, 60);
        let id = c.session.id.to_string();
        let file = vec![0u8; ARTIFACT_MAX_FILE_BYTES as usize];
        let fit = (ARTIFACT_MAX_TOTAL_BYTES / ARTIFACT_MAX_FILE_BYTES) as usize;
        for i in 0..fit {
            store
                .put_artifact(&id, &c.claim_id, &format!("/data/{i}"), file.clone())
                .unwrap();
        }
        let e = store
            .put_artifact(&id, &c.claim_id, "/data/more", vec![0])
            .unwrap_err();
        assert!(matches!(e, StoreError::TooLarge(_)), "{e:?}");
        assert!(e.to_string().contains("at most 104857600"), "{e}");
    }

    #[test]
    fn a_link_works_once_and_not_after_it_expires_or_its_session_goes() {
        let (_d, store) = super::super::testing::store();
        let (_, c) = claimed(&store, 60);
        let id = c.session.id.to_string();
        store
            .put_artifact(&id, &c.claim_id, "/data/r.txt", b"hi".to_vec())
            .unwrap();
        let (t, exp) = store.artifact_link(&id, "/data/r.txt").unwrap();
        assert!(exp > now_ms() + LINK_TTL_MS - 60_000);
        assert_eq!(store.redeem_artifact_link(&t).unwrap().data, b"hi");
        assert!(store.redeem_artifact_link(&t).is_err());
        let (t, _) = store.artifact_link(&id, "/data/r.txt").unwrap();
        testing::expire_links(&store);
        assert!(store.redeem_artifact_link(&t).is_err());
        assert!(matches!(
            store.artifact_link(&id, "/data/nope").unwrap_err(),
            StoreError::NotFound {
                what: Missing::Artifact,
                ..
            }
        ));
        let (t, _) = store.artifact_link(&id, "/data/r.txt").unwrap();
        assert_eq!(store.tx(|tx| delete_artifacts(tx, &id)).unwrap(), 1);
        assert!(store.redeem_artifact_link(&t).is_err());
        assert!(store.artifacts(&id).unwrap().is_empty());
    }
}
