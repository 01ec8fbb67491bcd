//! Teams: what users — and through them their keys, agents and schedules —
//! belong to. Nothing of one team is visible to another: every read of a
//! team's things names the team, and a thing of another team is "not
//! found", exactly like one that does not exist.

use super::{now_ms, ConflictKind, Missing, Store, StoreError, Tx};
use rusqlite::{params, OptionalExtension};

/// The team every user belongs to unless told otherwise (and every user
/// of a file from before teams).
pub(crate) const DEFAULT_TEAM: &str = "default";

/// The team `user` belongs to; `None` for no such user.
pub(crate) fn team_of_user(tx: &Tx<'_>, user: &str) -> Result<Option<String>, StoreError> {
    Ok(tx
        .sql
        .query_row(
            "SELECT team FROM users WHERE name = ?1",
            params![user],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .map(|t| t.unwrap_or_else(|| DEFAULT_TEAM.to_string())))
}

fn team_exists(tx: &Tx<'_>, team: &str) -> Result<bool, StoreError> {
    Ok(tx.sql.query_row(
        "SELECT COUNT(*) > 0 FROM teams WHERE id = ?1",
        params![team],
        |r| r.get(0),
    )?)
}

fn no_team(team: &str) -> StoreError {
    StoreError::not_found(
        Missing::Team,
        format!("no team {team:?}; add it first with `control-plane admin team-add {team}`"),
    )
}

/// Checks a team name: 1–64 lowercase letters, digits, '-' and '_'.
fn check_team_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(StoreError::invalid(format!(
            "team name {name:?} is not valid: give 1–64 lowercase letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

impl Store {
    /// Adds a team (`admin team-add`).
    pub fn add_team(&self, name: &str) -> Result<(), StoreError> {
        check_team_name(name)?;
        self.tx(|tx| {
            let n = tx.sql.execute(
                "INSERT INTO teams (id, created_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![name, now_ms()],
            )?;
            if n == 0 {
                return Err(StoreError::conflict(
                    ConflictKind::Exists,
                    format!("team {name} exists"),
                ));
            }
            Ok(())
        })
    }

    /// Moves `user` into `team` (which must exist): from then on the user
    /// and the user's keys see that team's things, and no longer their old
    /// team's (the user's sessions stay with the old team); the agents'
    /// keys the user made are revoked.
    pub fn set_user_team(&self, user: &str, team: &str) -> Result<(), StoreError> {
        self.tx(|tx| {
            if !team_exists(tx, team)? {
                return Err(no_team(team));
            }
            let n = tx.sql.execute(
                "UPDATE users SET team = ?2 WHERE name = ?1",
                params![user, team],
            )?;
            if n == 0 {
                return Err(StoreError::not_found(
                    Missing::User,
                    format!("no user {user:?}; add it with `control-plane admin user-add {user}`"),
                ));
            }
            // The keys the user made for the old team's agents stop
            // working: they must not carry the old team's access along.
            tx.sql.execute(
                "UPDATE api_keys SET revoked = 1, revoked_at = ?2 WHERE user_name = ?1 AND agent_id IS NOT NULL AND revoked = 0",
                params![user, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Adds a user to `team` (which must exist): the user and the user's
    /// keys see that team's things only.
    pub fn add_user_in_team(
        &self,
        name: &str,
        password: &str,
        email: Option<&str>,
        team: &str,
    ) -> Result<(), StoreError> {
        if team != DEFAULT_TEAM && !self.tx(|tx| team_exists(tx, team))? {
            return Err(no_team(team));
        }
        self.add_user(name, password, email)?;
        if team != DEFAULT_TEAM {
            self.set_user_team(name, team)?;
        }
        Ok(())
    }

    /// The team of `user`; `None` for no such user.
    pub(crate) fn team_of(&self, user: &str) -> Result<Option<String>, StoreError> {
        self.tx(|tx| team_of_user(tx, user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file from before teams: its users are in the default team, its
    /// webhook subscriptions the default team's, and its sessions their
    /// owner's team.
    #[test]
    fn a_file_from_before_teams_is_brought_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
                 INSERT INTO users VALUES ('carol', 'x', 1000);
                 CREATE TABLE sessions (id TEXT PRIMARY KEY, workspace TEXT NOT NULL, agent_profile TEXT NOT NULL, body TEXT NOT NULL,
                   state TEXT NOT NULL, attempt INTEGER NOT NULL, plan TEXT NOT NULL DEFAULT '[]', external_url TEXT, outcome TEXT,
                   created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, owner TEXT);
                 INSERT INTO sessions (id, workspace, agent_profile, body, state, attempt, created_at, updated_at, owner)
                   VALUES ('ses_old', 'w', 'p', '{}', 'complete', 1, 1, 1, 'carol');
                 CREATE TABLE subscriptions (id TEXT PRIMARY KEY, url TEXT NOT NULL, key TEXT NOT NULL, signing_secret TEXT,
                   event_types TEXT NOT NULL, created_at INTEGER NOT NULL);
                 INSERT INTO subscriptions VALUES ('sub_old', 'https://hooks.example/in', 'k', NULL, '[\"*\"]', 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path, 3).unwrap();
        assert_eq!(
            store.team_of("carol").unwrap().as_deref(),
            Some(DEFAULT_TEAM)
        );
        let subs = store.subscriptions(Some(DEFAULT_TEAM)).unwrap();
        assert_eq!(
            subs.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["sub_old"]
        );
        assert!(store.subscriptions(None).unwrap().is_empty());
        let team: Option<String> = store
            .tx(|tx| {
                Ok(tx
                    .sql
                    .query_row("SELECT team FROM sessions WHERE id = 'ses_old'", [], |r| {
                        r.get(0)
                    })?)
            })
            .unwrap();
        assert_eq!(team.as_deref(), Some(DEFAULT_TEAM));
        // A new team and user on the same file.
        store.add_team("acme").unwrap();
        store
            .add_user_in_team("dan", "dan-password", None, "acme")
            .unwrap();
        assert_eq!(store.team_of("dan").unwrap().as_deref(), Some("acme"));
        assert!(store
            .add_user_in_team("eve", "eve-password", None, "nope")
            .is_err());
        assert!(store.team_of("eve").unwrap().is_none(), "nothing half-made");
        assert!(store.add_team("acme").is_err());
        assert!(store.add_team("Bad Name").is_err());
        drop(store);
        Store::open(&path, 3).unwrap();
    }
}
