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
