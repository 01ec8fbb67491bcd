//! The repositories workers can work on: each worker's last report
//! (`worker_repositories`, replaced wholesale by the next), and their union
//! as the Cloud Agents API lists it, behind its per-user rate limit.
//!
//! Only the user who registered a worker may report for it, so one
//! signed-in worker cannot rewrite (or empty) another's list.

use super::rate_limit::{self, Admission, Limit};
use super::workers::load_worker;
use super::{now_ms, Store, StoreError, Tx};
use protocol::repo_list::{ListedRepository, RepositoryList};
use rusqlite::{params, OptionalExtension};

/// The route `rate_hits` counts `GET /v0/repositories` under.
const LIST_ROUTE: &str = "GET /v0/repositories";

/// `GET /v0/repositories`: 1 call a minute and 30 an hour per user, as
/// the Cloud Agents API documents it.
pub(crate) const LIST_LIMITS: [Limit; 2] = [
    Limit {
        window_ms: 60_000,
        max: 1,
    },
    Limit {
        window_ms: 3_600_000,
        max: 30,
    },
];

/// What a report came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reported {
    /// Stored: the worker's list now holds this many repositories.
    Stored(usize),
    /// The caller is not the worker's owner: nothing changed.
    NotOwner {
        /// Whether the worker has an owner at all (one registered before
        /// workers had owners has none until it registers again).
        owned: bool,
    },
}

impl Store {
    /// Replaces `worker`'s list with `list`, when `user` registered it.
    /// Duplicates in the list are kept once.
    pub(crate) fn report_repositories(
        &self,
        worker: &str,
        user: &str,
        list: RepositoryList,
    ) -> Result<Reported, StoreError> {
        list.validate().map_err(StoreError::invalid)?;
        self.tx(|tx| {
            load_worker(tx, worker)?;
            let owner: Option<String> = tx
                .sql
                .query_row(
                    "SELECT user_name FROM workers WHERE id = ?1",
                    [worker],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            if owner.as_deref() != Some(user) {
                return Ok(Reported::NotOwner {
                    owned: owner.is_some(),
                });
            }
            tx.sql.execute(
                "DELETE FROM worker_repositories WHERE worker_id = ?1",
                [worker],
            )?;
            let mut st = tx.sql.prepare_cached(
                "INSERT OR IGNORE INTO worker_repositories (worker_id, owner, name, repository) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut n = 0;
            for r in &list.repositories {
                n += st.execute(params![worker, r.owner, r.name, r.repository])?;
            }
            Ok(Reported::Stored(n))
        })
    }

    /// Every repository some worker reported, once each by URL, sorted by
    /// URL — if `user` is within the route's limits ([`LIST_LIMITS`]); the
    /// call is counted only when it is answered.
    pub(crate) fn list_repositories(
        &self,
        user: &str,
    ) -> Result<Admission<RepositoryList>, StoreError> {
        let now = now_ms();
        self.tx(|tx| {
            if let Some(s) = rate_limit::admit(tx, user, LIST_ROUTE, &LIST_LIMITS, now)? {
                return Ok(Admission::Limited {
                    retry_after_seconds: s,
                });
            }
            Ok(Admission::Allowed(union(tx)?))
        })
    }
}

/// The union of every worker's list.
fn union(tx: &Tx<'_>) -> Result<RepositoryList, StoreError> {
    // The URL ends in /owner/name (checked when reported), so one URL has
    // one owner and name: DISTINCT over the three is DISTINCT by URL.
    let mut st = tx.sql.prepare_cached(
        "SELECT DISTINCT owner, name, repository FROM worker_repositories ORDER BY repository",
    )?;
    let repositories = st
        .query_map([], |r| {
            Ok(ListedRepository {
                owner: r.get(0)?,
                name: r.get(1)?,
                repository: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(RepositoryList { repositories })
}

#[cfg(test)]
mod tests {
    use super::super::rate_limit::testing::age_hits;
    use super::super::testing::store;
    use super::*;

    fn worker_of(store: &Store, runtime: &str, owner: Option<&str>) -> String {
        super::super::testing::worker_of(store, runtime, owner)
            .worker_id
            .to_string()
    }

    fn list(entries: &[(&str, &str, &str)]) -> RepositoryList {
        RepositoryList {
            repositories: entries
                .iter()
                .map(|(h, o, n)| ListedRepository::new(h, o, n).unwrap())
                .collect(),
        }
    }

    fn urls(l: &RepositoryList) -> Vec<&str> {
        l.repositories
            .iter()
            .map(|r| r.repository.as_str())
            .collect()
    }

    fn allowed(a: Admission<RepositoryList>) -> RepositoryList {
        match a {
            Admission::Allowed(l) => l,
            other => panic!("refused: {other:?}"),
        }
    }

    #[test]
    fn the_list_is_the_union_of_the_latest_reports() {
        let (_d, s) = store();
        let a = worker_of(&s, "a", Some("alice"));
        let b = worker_of(&s, "b", Some("bob"));
        let ra = list(&[
            ("github.com", "acme", "widget"),
            ("git.example", "ops", "infra"),
        ]);
        let rb = list(&[
            ("github.com", "acme", "widget"),
            ("github.com", "acme", "gadget"),
            ("github.com", "acme", "gadget"),
        ]);
        assert_eq!(
            s.report_repositories(&a, "alice", ra).unwrap(),
            Reported::Stored(2)
        );
        assert_eq!(
            s.report_repositories(&b, "bob", rb).unwrap(),
            Reported::Stored(2)
        );
        let l = allowed(s.list_repositories("carol").unwrap());
        assert_eq!(
            urls(&l),
            [
                "https://git.example/ops/infra",
                "https://github.com/acme/gadget",
                "https://github.com/acme/widget",
            ]
        );
        assert_eq!(l.repositories[1].owner, "acme");
        assert_eq!(l.repositories[1].name, "gadget");
        // A new report replaces the worker's old one, and only its own.
        s.report_repositories(&a, "alice", list(&[])).unwrap();
        age_hits(&s, 61_000);
        let l = allowed(s.list_repositories("carol").unwrap());
        assert_eq!(
            urls(&l),
            [
                "https://github.com/acme/gadget",
                "https://github.com/acme/widget"
            ]
        );
    }

    #[test]
    fn only_the_owner_reports_for_a_worker() {
        let (_d, s) = store();
        let a = worker_of(&s, "a", Some("alice"));
        let mine = list(&[("github.com", "acme", "widget")]);
        s.report_repositories(&a, "alice", mine.clone()).unwrap();
        let theirs = list(&[("github.com", "evil", "fork")]);
        assert_eq!(
            s.report_repositories(&a, "bob", theirs.clone()).unwrap(),
            Reported::NotOwner { owned: true }
        );
        let l = allowed(s.list_repositories("alice").unwrap());
        assert_eq!(urls(&l), ["https://github.com/acme/widget"], "unchanged");
        // A worker from before owners: nobody, until it registers again.
        let old = worker_of(&s, "old", None);
        assert_eq!(
            s.report_repositories(&old, "alice", mine.clone()).unwrap(),
            Reported::NotOwner { owned: false }
        );
        worker_of(&s, "old", Some("alice"));
        assert_eq!(
            s.report_repositories(&old, "alice", mine.clone()).unwrap(),
            Reported::Stored(1)
        );
        // Registering without a user keeps the owner.
        worker_of(&s, "old", None);
        assert_eq!(
            s.report_repositories(&old, "alice", mine).unwrap(),
            Reported::Stored(1)
        );
        // An unknown worker is the usual 404.
        let e = s
            .report_repositories("wrk_nope", "alice", list(&[]))
            .unwrap_err();
        assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");
    }

    #[test]
    fn a_bad_report_changes_nothing() {
        let (_d, s) = store();
        let a = worker_of(&s, "a", Some("alice"));
        s.report_repositories(&a, "alice", list(&[("github.com", "acme", "widget")]))
            .unwrap();
        let mut bad = list(&[("github.com", "acme", "gadget")]);
        bad.repositories[0].repository = "https://github.com/acme/other".into();
        let e = s.report_repositories(&a, "alice", bad).unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid(ref m) if m.contains("repositories[0]")),
            "{e:?}"
        );
        let l = allowed(s.list_repositories("alice").unwrap());
        assert_eq!(urls(&l), ["https://github.com/acme/widget"]);
    }

    #[test]
    fn listing_is_limited_per_user_and_refusals_do_not_count() {
        let (_d, s) = store();
        allowed(s.list_repositories("alice").unwrap());
        let Admission::Limited {
            retry_after_seconds,
        } = s.list_repositories("alice").unwrap()
        else {
            panic!("a second call within the minute is refused");
        };
        assert!(
            (59..=60).contains(&retry_after_seconds),
            "{retry_after_seconds}"
        );
        allowed(s.list_repositories("bob").unwrap());
        // Many refusals later, the minute still runs from the first call.
        for _ in 0..40 {
            assert!(matches!(
                s.list_repositories("alice").unwrap(),
                Admission::Limited { .. }
            ));
        }
        age_hits(&s, 60_000);
        allowed(s.list_repositories("alice").unwrap());
    }

    /// A file from before workers had owners: its workers get the column,
    /// empty, and report once they registered again.
    #[test]
    fn a_file_from_before_owned_workers_is_brought_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let reg = serde_json::json!({
            "workspace": "w", "agent_profile": "p", "runtime": "old",
            "display_name": "old", "execution_mode": "cloud",
        });
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE workers (
                   id TEXT PRIMARY KEY,
                   workspace TEXT NOT NULL, agent_profile TEXT NOT NULL, runtime TEXT NOT NULL,
                   registration TEXT NOT NULL, created_at INTEGER NOT NULL,
                   last_heartbeat_at INTEGER, heartbeat TEXT,
                   UNIQUE (workspace, agent_profile, runtime));",
            )
            .unwrap();
            c.execute(
                "INSERT INTO workers (id, workspace, agent_profile, runtime, registration, created_at) VALUES ('wrk_old', 'w', 'p', 'old', ?1, 1)",
                [reg.to_string()],
            )
            .unwrap();
        }
        let s = Store::open(&path, 3).unwrap();
        let mine = list(&[("github.com", "acme", "widget")]);
        assert_eq!(
            s.report_repositories("wrk_old", "alice", mine.clone())
                .unwrap(),
            Reported::NotOwner { owned: false }
        );
        assert_eq!(worker_of(&s, "old", Some("alice")), "wrk_old");
        assert_eq!(
            s.report_repositories("wrk_old", "alice", mine).unwrap(),
            Reported::Stored(1)
        );
        drop(s);
        Store::open(&path, 3).unwrap();
    }
}
