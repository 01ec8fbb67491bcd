//! Schedules in the store: a tick starts one run however often (and by
//! however many stores on the file) it is fired, missed ticks collapse
//! into one catch-up run, a run that cannot start is recorded and not
//! retried, and pausing stops the ticks.

use super::super::testing::registration;
use super::super::testing::store;
use super::*;

const MINUTE: i64 = 60_000;

/// A store with alice in team `a` and her worker serving model `m`.
fn rig() -> (tempfile::TempDir, Store) {
    let (d, s) = store();
    s.add_team("a").unwrap();
    s.add_user_in_team("alice", "alice-password", None, "a")
        .unwrap();
    s.register_worker_as(registration(&["m"]), Some("alice"))
        .unwrap();
    (d, s)
}

fn every_minute() -> ScheduleSpec {
    ScheduleSpec {
        name: "nightly".into(),
        cron: "* * * * *".into(),
        prompt: "Check the build.".into(),
        enabled: true,
        ..Default::default()
    }
}

/// (tick_at, session_id, error, missed) of every tick of `id`, oldest first.
fn ticks(s: &Store, id: &str) -> Vec<TickRecord> {
    let mut t = s.schedule("a", id).unwrap().ticks;
    t.reverse();
    t
}

fn sessions_of(s: &Store, id: &str) -> i64 {
    s.tx(|tx| {
        Ok(tx.sql.query_row(
            "SELECT COUNT(*) FROM sessions WHERE schedule_id = ?1 AND trigger = 'SCHEDULED_AGENT'",
            params![id],
            |r| r.get(0),
        )?)
    })
    .unwrap()
}

#[test]
fn one_tick_fired_twice_and_by_two_stores_on_one_file_starts_one_run() {
    let (dir, s) = rig();
    let other = Store::open(&dir.path().join("cp.db"), 2).unwrap();
    let sch = s.create_schedule("a", "alice", every_minute()).unwrap();
    let due = sch.next_run_at.unwrap();
    assert_eq!(due % MINUTE, 0, "an occurrence, on the minute");
    assert!(due > s.schedule_now());
    assert_eq!(s.fire_due(due - 1).unwrap(), Fired::default(), "not yet");
    assert_eq!(
        s.fire_due(due).unwrap(),
        Fired {
            ticks: 1,
            started: 1
        }
    );
    assert_eq!(s.fire_due(due).unwrap(), Fired::default());
    assert_eq!(other.fire_due(due + 30_000).unwrap(), Fired::default());
    // A process that read the schedule before the tick moved it on (or
    // whose clock lags) reaches the same occurrence: the key refuses it.
    s.tx(|tx| {
        tx.sql.execute(
            "UPDATE schedules SET next_run_at = ?2 WHERE id = ?1",
            params![sch.id, due],
        )?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        other.fire_due(due + 59_000).unwrap(),
        Fired {
            ticks: 1,
            started: 0
        }
    );
    assert_eq!(sessions_of(&s, &sch.id), 1);
    let t = ticks(&s, &sch.id);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].tick_at, due);
    assert_eq!(t[0].missed, 0);
    assert!(t[0].session_id.as_deref().unwrap().starts_with("ses_"));
    let after = s.schedule("a", &sch.id).unwrap();
    assert_eq!(after.next_run_at, Some(due + MINUTE));
    assert_eq!(after.last_ran_at, Some(due));
    assert_eq!(after.last_spawn_error, None);
    // The next minute is the next tick, whichever store fires it.
    assert_eq!(other.fire_due(due + MINUTE).unwrap().started, 1);
    assert_eq!(s.fire_due(due + MINUTE).unwrap(), Fired::default());
    assert_eq!(sessions_of(&s, &sch.id), 2);
    // The run is the schedule's: its source, its schedule, its title.
    let run = s.run("a", t[0].session_id.as_deref().unwrap()).unwrap();
    assert_eq!(run.session.trigger, Trigger::ScheduledAgent);
    assert_eq!(run.session.source.title, "nightly");
    assert_eq!(run.session.source.prompt, "Check the build.");
    let (sid, name, cron) = run.schedule.unwrap();
    assert_eq!(
        (sid.as_str(), name.as_str(), cron.as_str()),
        (sch.id.as_str(), "nightly", "* * * * *")
    );
}

#[test]
fn missed_ticks_collapse_into_one_catch_up_run_that_records_them() {
    let (_d, s) = rig();
    let sch = s.create_schedule("a", "alice", every_minute()).unwrap();
    let due = sch.next_run_at.unwrap();
    assert_eq!(s.fire_due(due).unwrap().started, 1);
    // Down from just after `due` until 5½ minutes later: the occurrences
    // due+1 … due+5 passed; one run, for the latest, standing for 4 more.
    let back = due + 5 * MINUTE + 30_000;
    assert_eq!(
        s.fire_due(back).unwrap(),
        Fired {
            ticks: 1,
            started: 1
        }
    );
    assert_eq!(s.fire_due(back + 1_000).unwrap(), Fired::default());
    assert_eq!(sessions_of(&s, &sch.id), 2);
    let t = ticks(&s, &sch.id);
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(t[1].tick_at, due + 5 * MINUTE);
    assert_eq!(t[1].missed, 4);
    assert_eq!(
        s.schedule("a", &sch.id).unwrap().next_run_at,
        Some(due + 6 * MINUTE)
    );
}

#[test]
fn a_tick_whose_run_cannot_start_records_why_and_is_not_retried() {
    let (_d, s) = rig();
    let agent: crate::agent_configs::IdentityPatch =
        serde_json::from_value(serde_json::json!({"name": "reviewer"})).unwrap();
    let agent = s.create_identity("a", "alice", agent).unwrap().id;
    let spec = ScheduleSpec {
        agent_id: Some(agent.clone()),
        ..every_minute()
    };
    let sch = s.create_schedule("a", "alice", spec.clone()).unwrap();
    s.archive_agent_config("a", &agent).unwrap();
    let due = sch.next_run_at.unwrap();
    assert_eq!(
        s.fire_due(due).unwrap(),
        Fired {
            ticks: 1,
            started: 0
        }
    );
    assert_eq!(
        s.fire_due(due + 1_000).unwrap(),
        Fired::default(),
        "no retry"
    );
    let after = s.schedule("a", &sch.id).unwrap();
    let e = after.last_spawn_error.clone().unwrap();
    assert!(e.contains("archived"), "{e}");
    assert_eq!(after.ticks[0].error.as_deref(), Some(e.as_str()));
    assert_eq!(after.ticks[0].session_id, None);
    assert_eq!(after.next_run_at, Some(due + MINUTE));
    assert_eq!(
        sessions_of(&s, &sch.id),
        0,
        "nothing of the attempt is left"
    );
    // A model no worker serves: the same.
    let spec = ScheduleSpec {
        agent_id: None,
        model: Some("unserved".into()),
        ..every_minute()
    };
    s.replace_schedule("a", &sch.id, "alice", spec).unwrap();
    assert_eq!(s.fire_due(due + MINUTE).unwrap().started, 0);
    let e = s.schedule("a", &sch.id).unwrap().last_spawn_error.unwrap();
    assert!(e.contains("unserved"), "{e}");
    // Fixed: the next tick starts its run and clears the error.
    s.replace_schedule("a", &sch.id, "alice", every_minute())
        .unwrap();
    assert_eq!(s.fire_due(due + 2 * MINUTE).unwrap().started, 1);
    assert_eq!(s.schedule("a", &sch.id).unwrap().last_spawn_error, None);
    assert_eq!(sessions_of(&s, &sch.id), 1);
}

#[test]
fn a_paused_schedule_does_not_tick_and_resumes_from_now() {
    let (_d, s) = rig();
    let sch = s.create_schedule("a", "alice", every_minute()).unwrap();
    let due = sch.next_run_at.unwrap();
    let p = s.set_schedule_enabled("a", &sch.id, false).unwrap();
    assert!(!p.enabled);
    assert_eq!(p.next_run_at, None);
    assert_eq!(s.fire_due(due + 10 * MINUTE).unwrap(), Fired::default());
    let r = s.set_schedule_enabled("a", &sch.id, true).unwrap();
    assert!(r.enabled);
    let next = r.next_run_at.unwrap();
    assert!(next > s.schedule_now() && next <= s.schedule_now() + MINUTE);
    // Resuming one that runs changes nothing.
    let again = s.set_schedule_enabled("a", &sch.id, true).unwrap();
    assert_eq!(again.next_run_at, Some(next));
    // Deleted: gone, and it fires no more.
    s.delete_schedule("a", &sch.id).unwrap();
    assert!(matches!(
        s.schedule("a", &sch.id),
        Err(StoreError::NotFound {
            what: Missing::Schedule,
            ..
        })
    ));
    assert_eq!(s.fire_due(next + 10 * MINUTE).unwrap(), Fired::default());
    assert_eq!(sessions_of(&s, &sch.id), 0);
}

#[test]
fn the_test_clock_moves_the_schedules_now() {
    let (_d, s) = rig();
    let real = chrono::Utc::now().timestamp_millis();
    let s = s.with_schedule_clock(
        crate::schedules::ScheduleClock::parse(&format!("{}:60", real - 10_000)).unwrap(),
    );
    // Ten real seconds after the origin are ten minutes on this clock.
    let now = s.schedule_now();
    assert!(now >= real + 9 * MINUTE, "{now} vs {real}");
    let sch = s.create_schedule("a", "alice", every_minute()).unwrap();
    assert!(sch.created_at >= real + 9 * MINUTE);
    assert!(sch.next_run_at.unwrap() > now);
}

#[test]
fn a_tick_runs_for_whoever_last_set_what_it_runs_and_only_while_they_are_of_the_team() {
    let (_d, s) = rig();
    s.add_user_in_team("bob", "bob-password", None, "a")
        .unwrap();
    s.add_user_in_team("carol", "carol-password", None, "a")
        .unwrap();
    let mut reg = registration(&["m"]);
    reg.runtime = "bob".into();
    s.register_worker_as(reg, Some("bob")).unwrap();
    let owner_of = |sid: &str| -> Option<String> {
        s.tx(|tx| {
            Ok(tx.sql.query_row(
                "SELECT owner FROM sessions WHERE id = ?1",
                params![sid],
                |r| r.get(0),
            )?)
        })
        .unwrap()
    };
    let sch = s.create_schedule("a", "alice", every_minute()).unwrap();
    let due = sch.next_run_at.unwrap();
    s.fire_due(due).unwrap();
    assert_eq!(
        owner_of(ticks(&s, &sch.id)[0].session_id.as_deref().unwrap()).as_deref(),
        Some("alice")
    );
    // bob rewrites it: from now on it runs for bob, on bob's workers —
    // never bob's prompt under alice's name.
    let spec = ScheduleSpec {
        prompt: "bob's words".into(),
        ..every_minute()
    };
    s.replace_schedule("a", &sch.id, "bob", spec).unwrap();
    // carol pausing and resuming it changes when, not for whom.
    s.set_schedule_enabled("a", &sch.id, false).unwrap();
    let resumed = s.set_schedule_enabled("a", &sch.id, true).unwrap();
    // (The real clock's next minute may be the occurrence already fired.)
    let next = resumed.next_run_at.unwrap().max(due + MINUTE);
    assert_eq!(s.fire_due(next).unwrap().started, 1);
    let t = ticks(&s, &sch.id);
    let run = s
        .run("a", t.last().unwrap().session_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(run.creator.as_deref(), Some("bob"));
    assert_eq!(run.session.source.prompt, "bob's words");
    // bob leaves the team: the schedule starts nothing more, and says why.
    s.add_team("b").unwrap();
    s.set_user_team("bob", "b").unwrap();
    assert_eq!(s.fire_due(next + MINUTE).unwrap().started, 0);
    let e = s.schedule("a", &sch.id).unwrap().last_spawn_error.unwrap();
    assert!(e.contains("no longer in this team"), "{e}");
}
