//! Schedules end to end: real `control-plane` processes on one database
//! file, on a test clock that makes a minute pass in a second
//! (`CONTROL_PLANE_TEST_CLOCK=<origin>:60`, the same in every process).
//! Two processes fire a `* * * * *` schedule for ~8 minutes: each tick is
//! one row and one session, the ticks consecutive. Both are stopped for
//! over 5 minutes and one comes back: the missed ticks are one catch-up
//! run that records them. And a scheduled run on a real worker with the
//! fake model ends complete, its source `SCHEDULED_AGENT`.

use e2e::fake_model::{FakeModel, Step, Wire};
use e2e::repo_rig::{Rig, MODEL_KEY};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MINUTE: i64 = 60_000;

/// A `control-plane` serving `db` with fast schedule ticks on the test
/// clock `clock`; killed on drop.
struct Ticker {
    child: std::process::Child,
    url: String,
}

impl Ticker {
    fn start(db: &Path, clock: &str) -> Ticker {
        let mut child = std::process::Command::new(e2e::bin("control-plane"))
            .args(["--db", db.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(["--schedule-tick-ms", "50"])
            .env("CONTROL_PLANE_TEST_CLOCK", clock)
            .env("CONTROL_PLANE_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("control-plane starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("address line: {line:?}"))
            .to_string();
        Ticker { child, url }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn call(&self, method: &str, path: &str, auth: &str, body: Option<&Value>) -> (u16, Value) {
        let req = ureq::request(method, &format!("{}{path}", self.url))
            .set("Authorization", &format!("Bearer {auth}"));
        let r = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use e2e::admin_on as admin;

/// A test clock starting now, a minute a second.
fn fast_clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{now}:60")
}

/// One tick as stored: (tick_at, session_id, error, missed).
type Tick = (i64, Option<String>, Option<String>, i64);

fn ticks(db: &Path, schedule: &str) -> Vec<Tick> {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut st = c
        .prepare("SELECT tick_at, session_id, error, missed FROM schedule_ticks WHERE schedule_id = ?1 ORDER BY tick_at")
        .unwrap();
    st.query_map([schedule], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The ids of the sessions the schedule started, by creation.
fn sessions(db: &Path, schedule: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut st = c
        .prepare("SELECT id FROM sessions WHERE schedule_id = ?1 AND trigger = 'SCHEDULED_AGENT' ORDER BY created_at, id")
        .unwrap();
    st.query_map([schedule], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every tick started its run, and there is no other run of the schedule.
fn one_session_per_tick(db: &Path, schedule: &str, t: &[Tick]) {
    let mut started: Vec<String> = t.iter().filter_map(|x| x.1.clone()).collect();
    assert_eq!(started.len(), t.len(), "a tick without a run: {t:?}");
    let mut all = sessions(db, schedule);
    started.sort();
    all.sort();
    assert_eq!(started, all, "sessions = the ticks' sessions");
}

#[test]
fn two_control_planes_on_one_database_start_one_session_per_tick_and_catch_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("cp.db");
    admin(&db, &["user-add", e2e::USER], Some(e2e::PASSWORD));
    let key = admin(&db, &["api-key-add", "sched", "--user", e2e::USER], None)["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let token = admin(&db, &["issue-tokens", e2e::USER], None)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let clock = fast_clock();
    let mut a = Ticker::start(&db, &clock);
    let mut b = Ticker::start(&db, &clock);
    // A worker of hers that serves a model (registered, never claiming):
    // every tick's run can be queued.
    let (s, w) = a.call(
        "POST",
        "/v1/workers",
        &token,
        Some(
            &json!({"workspace": "w", "agent_profile": "p", "runtime": "fake",
                     "display_name": "fake", "models": ["fake-coder"]}),
        ),
    );
    assert_eq!(s, 200, "{w}");
    let (s, sch) = b.call(
        "POST",
        "/api/v1/agent/schedules",
        &key,
        Some(&json!({"name": "every-minute", "cron_schedule": "* * * * *", "prompt": "Tick."})),
    );
    assert_eq!(s, 201, "{sch}");
    let id = sch["id"].as_str().unwrap().to_string();

    // ~8 minutes on the test clock, both processes ticking every 50 ms.
    std::thread::sleep(Duration::from_millis(8_300));
    assert!(a.alive() && b.alive());
    let t = ticks(&db, &id);
    assert!((7..=9).contains(&t.len()), "{} ticks: {t:?}", t.len());
    for w in t.windows(2) {
        assert_eq!(w[1].0 - w[0].0, MINUTE, "consecutive occurrences: {t:?}");
    }
    assert!(
        t.iter()
            .all(|x| x.0 % MINUTE == 0 && x.3 == 0 && x.2.is_none()),
        "{t:?}"
    );
    one_session_per_tick(&db, &id, &t);
    let (s, runs) = a.call(
        "GET",
        &format!("/api/v1/agent/runs?schedule_id={id}&source=SCHEDULED_AGENT&limit=100"),
        &key,
        None,
    );
    assert_eq!(s, 200, "{runs}");
    assert!(
        runs["runs"].as_array().unwrap().len() >= t.len(),
        "the runs view lists them: {runs}"
    );

    // Both down for over 5 minutes; one comes back.
    a.stop();
    b.stop();
    let before = ticks(&db, &id);
    let last = before.last().unwrap().0;
    std::thread::sleep(Duration::from_millis(5_600));
    let c = Ticker::start(&db, &clock);
    std::thread::sleep(Duration::from_millis(1_500));
    c.stop();
    let after = ticks(&db, &id);
    let new: Vec<&Tick> = after.iter().filter(|x| x.0 > last).collect();
    assert!(!new.is_empty(), "no tick after the restart: {after:?}");
    // The first tick after the gap stands for every occurrence it skipped.
    let skipped = (new[0].0 - last) / MINUTE - 1;
    assert!(skipped >= 4, "down ≥ 5 minutes: {after:?}");
    assert_eq!(new[0].3, skipped, "missed recorded: {after:?}");
    // Then ticking goes on normally (at most a minute or two in 1.5 s).
    assert!(new.len() <= 3, "{after:?}");
    for w in new.windows(2) {
        assert_eq!(w[1].0 - w[0].0, MINUTE, "{after:?}");
        assert_eq!(w[1].3, 0, "{after:?}");
    }
    one_session_per_tick(&db, &id, &after);
    assert_eq!(
        sessions(&db, &id).len(),
        before.len() + new.len(),
        "one session for the whole downtime"
    );
}

#[test]
fn a_scheduled_run_on_a_real_worker_ends_complete_with_its_source_recorded() {
    let rig = Rig::start();
    let fake = FakeModel::start(
        Wire::OpenAi,
        MODEL_KEY,
        vec![
            Step::Text("Scheduled hello.".into()),
            Step::Text("Scheduled hello again.".into()),
            Step::Text("And again.".into()),
        ],
    );
    let (_w, _log) = rig.worker("w1", Some(&fake));
    let key = rig
        .cp
        .admin(&["api-key-add", "sched", "--user", e2e::USER], None)["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    // Wait until the worker has reported its model.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, m) = rig.cp.get("/api/v1/cloud/models");
        if s == 200 && m.to_string().contains("fake-coder") {
            break;
        }
        assert!(Instant::now() < deadline, "{s} {m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A second process on the rig's database ticks on the test clock (the
    // rig's own, on the real clock, never reaches the schedule's minutes).
    let ticker = Ticker::start(&rig.cp.db, &fast_clock());
    let (s, sch) = ticker.call(
        "POST",
        "/api/v1/agent/schedules",
        &key,
        Some(&json!({"name": "greeting", "cron_schedule": "* * * * *", "prompt": "Say hello."})),
    );
    assert_eq!(s, 201, "{sch}");
    let id = sch["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        if let Some(r) = sessions(&rig.cp.db, &id).into_iter().next() {
            break r;
        }
        assert!(Instant::now() < deadline, "no tick started a run");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (s, p) = ticker.call(
        "POST",
        &format!("/api/v1/agent/schedules/{id}/pause"),
        &key,
        Some(&json!({})),
    );
    assert_eq!(s, 200, "{p}");
    let v = rig.cp.wait_for(&run, 90, e2e::terminal);
    let session = &v["session"];
    assert_eq!(session["state"], "complete", "{v}");
    assert_eq!(session["trigger"], "SCHEDULED_AGENT", "{v}");
    assert_eq!(session["source"]["title"], "greeting", "{v}");
    let (s, item) = rig.cp.get(&format!("/api/v1/agent/runs/{run}"));
    assert_eq!(s, 200, "{item}");
    assert_eq!(item["source"], "SCHEDULED_AGENT", "{item}");
    assert_eq!(item["state"], "SUCCEEDED", "{item}");
    assert_eq!(item["schedule"]["schedule_id"], id.as_str(), "{item}");
    assert_eq!(item["schedule"]["schedule_name"], "greeting", "{item}");
    let (s, g) = ticker.call("GET", &format!("/api/v1/agent/schedules/{id}"), &key, None);
    assert_eq!(s, 200, "{g}");
    assert_eq!(
        g["ticks"].as_array().unwrap().last().unwrap()["run_id"],
        run.as_str(),
        "{g}"
    );
    assert!(g["history"]["last_ran"].is_string(), "{g}");
    assert!(fake.user_text(&fake.requests()[0]).contains("Say hello."));
}
