#!/usr/bin/env python3
"""Cloud agent identities, runs and schedules (Warp Oz, `/api/v1/agent/…`)
conformance, driven by the PyPI client `oz-agent-sdk` unchanged (module
`oz_agent_sdk`, client `OzAPI`). Env: BASE_URL (the control plane's root;
the client gets BASE_URL + /api/v1), API_KEY (a person's key of team A);
optional OTHER_API_KEY (another team's key: every route must answer it 404),
AGENT_API_KEY (a key bound to one of team A's agents: managing agents must
answer it 403; a run with it runs as that agent), CANCEL_TIMEOUT (10),
TIMEZONE (Europe/Paris). The rig must keep a run going long enough for the
cancel to land mid-run (or let it be queued). Lists identities, creates,
updates and deletes one, starts and cancels a run, creates, pauses, resumes
and deletes a schedule. Ends with `N passed, N failed`; exit 1 on any
failure.
"""

import datetime as dt
import os
import re
import secrets
import sys
import time

import oz_agent_sdk
from oz_agent_sdk import OzAPI

STATES = {"QUEUED", "PENDING", "CLAIMED", "INPROGRESS", "SUCCEEDED", "FAILED", "BLOCKED", "ERROR", "CANCELLED"}
TERMINAL = {"SUCCEEDED", "FAILED", "ERROR", "CANCELLED"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}".rstrip())
    return cond


def expect_error(name, statuses, fn, contains=None):
    """fn must raise the client's status error with one of `statuses` and an
    RFC 7807 body (`status`, `detail` or `title`; `error` for older
    clients), message containing `contains` if given."""
    statuses = statuses if isinstance(statuses, (list, tuple, set)) else [statuses]
    try:
        fn()
    except oz_agent_sdk.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        check(f"{name}: {'/'.join(map(str, statuses))}", e.status_code in statuses, f"got {e.status_code}: {e}")
        check(f"{name}: problem body with status", body.get("status") == e.status_code, repr(body))
        text = " ".join(str(body.get(k, "")) for k in ("detail", "title", "error"))
        check(f"{name}: a message", text.strip() != "", repr(body))
        check(f"{name}: not to be retried", e.response.headers.get("x-should-retry") == "false",
              repr(e.response.headers.get("x-should-retry")))
        if contains is not None:
            check(f"{name}: message names {contains!r}", contains.lower() in text.lower(), repr(text))
        return e
    except Exception as e:  # noqa: BLE001
        check(f"{name}: {statuses}", False, f"raised {type(e).__name__}: {e}")
        return None
    check(f"{name}: {statuses}", False, "no error was raised")
    return None


def is_time(v):
    return isinstance(v, dt.datetime) or (isinstance(v, str) and bool(RFC3339.match(v)))


def extra(model, key):
    """A field the vendor's schema lacks (we add it): from the model's extras."""
    return (getattr(model, "model_extra", None) or {}).get(key, getattr(model, key, None))


def main():
    base = os.environ["BASE_URL"].rstrip("/") + "/api/v1"
    key = os.environ["API_KEY"]
    other = os.environ.get("OTHER_API_KEY")
    agent_key = os.environ.get("AGENT_API_KEY")
    cancel_timeout = float(os.environ.get("CANCEL_TIMEOUT", "10"))
    tz = os.environ.get("TIMEZONE", "Europe/Paris")
    # max_retries=0: a retried request would hide what the server answered
    # (the client retries 409 and 5xx, POST included, unless told not to).
    c = OzAPI(api_key=key, base_url=base, max_retries=0)

    # -- identities: list (the default is there)
    ls = c.agent.agent.list()
    agents = ls.agents or []
    check("identities list: at least the default", len(agents) >= 1, repr(ls))
    check("identities list: each has uid, name, available", all(isinstance(a.uid, str) and a.uid and isinstance(a.name, str)
                                                              and isinstance(a.available, bool) for a in agents))
    defaults = [a for a in agents if extra(a, "is_default") is True]
    check("identities list: exactly one default (is_default)", len(defaults) == 1, repr([(a.uid, extra(a, "is_default")) for a in agents]))
    default_uid = defaults[0].uid if defaults else None

    # -- create
    name = "conf-" + secrets.token_hex(4)
    raw = c.agent.agent.with_raw_response.create(name=name, description="Reviews pull requests", prompt="Be terse.",
                                                 skills=["acme/widget:.skills/review/SKILL.md"], secrets=[{"name": "GH_TOKEN"}])
    check("identity create: 201", raw.status_code == 201, f"got {raw.status_code}")
    ident = raw.parse()
    uid = ident.uid or ""
    check("identity create: uid", isinstance(uid, str) and uid != "")
    check("identity create: fields echoed", ident.name == name and ident.description == "Reviews pull requests"
          and ident.prompt == "Be terse.", repr(ident))
    check("identity create: skills and secrets", ident.skills == ["acme/widget:.skills/review/SKILL.md"]
          and [s.name for s in (ident.secrets or [])] == ["GH_TOKEN"], repr((ident.skills, ident.secrets)))
    check("identity create: available", ident.available is True)
    check("identity create: times", is_time(ident.created_at) and is_time(ident.updated_at))
    expect_error("identity create: no name", 400, lambda: c.agent.agent.create(name=""), contains="name")
    unknown = c.agent.agent.create(name=name + "-extra", extra_body={"agent_type": "CUSTOM", "worker_host": "warp", "memory": {}})
    check("identity create: unknown optional fields do not break it", isinstance(unknown.uid, str) and unknown.uid)

    # -- get, update
    g = c.agent.agent.get(uid)
    check("identity get: same", g.uid == uid and g.name == name)
    u = c.agent.agent.update(uid, description="Reviews everything")
    check("identity update: description replaced", u.description == "Reviews everything", repr(u.description))
    check("identity update: omitted fields unchanged", u.name == name and u.prompt == "Be terse."
          and u.skills == ["acme/widget:.skills/review/SKILL.md"], repr(u))
    u = c.agent.agent.update(uid, description="", skills=[], prompt=None)
    check("identity update: '' and [] clear", u.description in ("", None) and u.skills == [], repr((u.description, u.skills)))
    check("identity update: null leaves unchanged", u.prompt == "Be terse.", repr(u.prompt))
    check("identity list: the new one is there", uid in [a.uid for a in c.agent.agent.list().agents])
    expect_error("identity get: unknown", 404, lambda: c.agent.agent.get("no-such-agent-" + secrets.token_hex(4)))

    # -- runs: start, read, cancel
    title = "conformance " + secrets.token_hex(3)
    run = c.agent.run(prompt="Say hello.", agent_identity_uid=uid, title=title, metadata={"suite": "oz-conformance"})
    rid = run.run_id or ""
    check("run: run_id", isinstance(rid, str) and rid != "", repr(run))
    check("run: task_id = run_id", run.task_id == rid)
    check("run: a vendor state", run.state in STATES, repr(run.state))
    r = c.agent.runs.retrieve(rid)
    check("run get: fields", r.run_id == rid and r.prompt == "Say hello." and r.title == title and r.state in STATES, repr(r))
    check("run get: source API", r.source == "API", repr(r.source))
    check("run get: times", is_time(r.created_at) and is_time(r.updated_at))
    check("run get: metadata", r.metadata == {"suite": "oz-conformance"}, repr(r.metadata))
    listed = c.agent.runs.list(source="API", limit=100)
    check("runs list: envelope", isinstance(listed.runs, list) and listed.page_info is not None, repr(listed))
    check("runs list: source=API has it", rid in [x.run_id for x in listed.runs])
    check("runs list: source filter", all(x.source == "API" for x in listed.runs))
    sched_only = c.agent.runs.list(source="SCHEDULED_AGENT", limit=100)
    check("runs list: source=SCHEDULED_AGENT lacks it", rid not in [x.run_id for x in sched_only.runs])
    states = sorted(STATES - TERMINAL)
    check("runs list: state filter (repeated)", rid in [x.run_id for x in c.agent.runs.list(state=states, limit=100).runs])
    a_page = c.agent.runs.list(limit=1)
    check("runs list: limit=1", len(a_page.runs) <= 1)
    if a_page.has_next_page():
        nxt = a_page.get_next_page()
        check("runs list: next page by cursor", len(nxt.runs) <= 1 and (not nxt.runs or nxt.runs[0].run_id != a_page.runs[0].run_id))
    expect_error("run: no prompt", 400, lambda: c.agent.run(prompt="", agent_identity_uid=uid), contains="prompt")
    expect_error("run: unknown agent", [400, 404], lambda: c.agent.run(prompt="x", agent_identity_uid="no-such-" + secrets.token_hex(3)))

    out = c.agent.runs.cancel(rid)
    check("cancel: answers a string", isinstance(out, str))
    deadline = time.time() + cancel_timeout
    st = None
    while time.time() < deadline:
        st = c.agent.runs.retrieve(rid).state
        if st in TERMINAL:
            break
        time.sleep(0.2)
    check("cancel: the run ends CANCELLED", st == "CANCELLED", repr(st))
    expect_error("cancel again: terminal is 400", 400, lambda: c.agent.runs.cancel(rid))
    check("followup: accepted", c.agent.runs.submit_followup(rid, message="And goodbye.") is not None)
    st2 = c.agent.runs.retrieve(rid).state
    check("followup: the run is going again", st2 in STATES - TERMINAL, repr(st2))
    c.agent.runs.cancel(rid)
    expect_error("followup: no message", 400, lambda: c.agent.runs.submit_followup(rid, message=""))

    # -- schedules
    sname = "conf-sched-" + secrets.token_hex(3)
    raw = c.agent.schedules.with_raw_response.create(name=sname, cron_schedule="*/5 * * * *", prompt="Nightly check.",
                                                     agent_uid=uid, enabled=True, extra_body={"timezone": tz})
    check("schedule create: 200/201", raw.status_code in (200, 201), f"got {raw.status_code}")
    s = raw.parse()
    sid = s.id or ""
    check("schedule create: id", isinstance(sid, str) and sid != "")
    check("schedule create: fields echoed", s.name == sname and s.cron_schedule == "*/5 * * * *" and s.prompt == "Nightly check."
          and s.agent_uid == uid and s.enabled is True, repr(s))
    check("schedule create: timezone echoed", extra(s, "timezone") == tz, repr(extra(s, "timezone")))
    nra = extra(s, "next_run_at")
    check("schedule create: next_run_at in the future", isinstance(nra, str) and RFC3339.match(nra) is not None
          and dt.datetime.fromisoformat(nra.replace("Z", "+00:00")) > dt.datetime.now(dt.timezone.utc), repr(nra))
    check("schedule create: history.next_run", s.history is not None and is_time(s.history.next_run), repr(s.history))
    check("schedule create: no spawn error", s.last_spawn_error in (None, ""), repr(s.last_spawn_error))
    utc = c.agent.schedules.create(name=sname + "-utc", cron_schedule="0 9 * * 1-5", prompt="Weekdays.")
    check("schedule create: timezone defaults to UTC", extra(utc, "timezone") == "UTC", repr(extra(utc, "timezone")))
    for bad, field in (("61 * * * *", "minute"), ("* 24 * * *", "hour"), ("* * 0 * *", "day-of-month"),
                       ("* * * 13 *", "month"), ("* * * * 8", "day-of-week"), ("* * * *", "5")):
        expect_error(f"schedule create: cron {bad!r}", 400,
                     lambda bad=bad: c.agent.schedules.create(name=sname + "-bad", cron_schedule=bad, prompt="x"), contains=field)
    expect_error("schedule create: timezone Mars/Olympus", 400,
                 lambda: c.agent.schedules.create(name=sname + "-tz", cron_schedule="* * * * *", prompt="x",
                                                  extra_body={"timezone": "Mars/Olympus"}), contains="timezone")
    ls = c.agent.schedules.list()
    check("schedules list: has it", sid in [x.id for x in ls.schedules or []])
    g = c.agent.schedules.retrieve(sid)
    check("schedule get: same", g.id == sid and g.name == sname and g.cron_schedule == "*/5 * * * *")
    up = c.agent.schedules.update(sid, cron_schedule="0 6 * * *", enabled=True, name=sname, prompt="Morning check.")
    check("schedule update: cron and prompt replaced", up.cron_schedule == "0 6 * * *" and up.prompt == "Morning check.", repr(up))
    check("schedule update: timezone kept", extra(up, "timezone") == tz, repr(extra(up, "timezone")))
    p = c.agent.schedules.pause(sid)
    check("schedule pause: disabled", p.enabled is False, repr(p.enabled))
    check("schedule get after pause: disabled", c.agent.schedules.retrieve(sid).enabled is False)
    rs = c.agent.schedules.resume(sid)
    check("schedule resume: enabled", rs.enabled is True, repr(rs.enabled))
    nra = extra(rs, "next_run_at")
    check("schedule resume: next_run_at in the future", isinstance(nra, str)
          and dt.datetime.fromisoformat(nra.replace("Z", "+00:00")) > dt.datetime.now(dt.timezone.utc), repr(nra))
    d = c.agent.schedules.delete(sid)
    check("schedule delete: success", d.success is True, repr(d))
    expect_error("schedule get after delete", 404, lambda: c.agent.schedules.retrieve(sid))
    check("schedules list: gone", sid not in [x.id for x in c.agent.schedules.list().schedules or []])
    c.agent.schedules.delete(utc.id)

    # -- agent keys: human callers only
    if agent_key:
        ak = OzAPI(api_key=agent_key, base_url=base, max_retries=0)
        expect_error("agent key: create identity", 403, lambda: ak.agent.agent.create(name="by-an-agent"))
        expect_error("agent key: update identity", 403, lambda: ak.agent.agent.update(uid, description="x"))
        expect_error("agent key: delete identity", 403, lambda: ak.agent.agent.delete(uid))
        ar = ak.agent.run(prompt="As the agent.")
        got = ak.agent.runs.retrieve(ar.run_id)
        check("agent key: a run it starts runs as its agent", (getattr(got.executor, "uid", None) or extra(got, "run_as")) is not None, repr(got))
        ak.agent.runs.cancel(ar.run_id)
    else:
        print("skip agent key (no AGENT_API_KEY)")

    # -- cross-team isolation: 404, never 403
    if other:
        o = OzAPI(api_key=other, base_url=base, max_retries=0)
        expect_error("other team: get identity", 404, lambda: o.agent.agent.get(uid))
        expect_error("other team: update identity", 404, lambda: o.agent.agent.update(uid, description="x"))
        expect_error("other team: delete identity", 404, lambda: o.agent.agent.delete(uid))
        check("other team: identity not listed", uid not in [a.uid for a in o.agent.agent.list().agents])
        expect_error("other team: run as our agent", 404, lambda: o.agent.run(prompt="x", agent_identity_uid=uid))
        expect_error("other team: get run", 404, lambda: o.agent.runs.retrieve(rid))
        expect_error("other team: cancel run", 404, lambda: o.agent.runs.cancel(rid))
        expect_error("other team: followup", 404, lambda: o.agent.runs.submit_followup(rid, message="x"))
        check("other team: run not listed", rid not in [x.run_id for x in o.agent.runs.list(limit=100).runs])
        s2 = c.agent.schedules.create(name=sname + "-iso", cron_schedule="0 0 1 1 *", prompt="x")
        expect_error("other team: get schedule", 404, lambda: o.agent.schedules.retrieve(s2.id))
        expect_error("other team: update schedule", 404,
                     lambda: o.agent.schedules.update(s2.id, cron_schedule="* * * * *", enabled=True, name="x"))
        expect_error("other team: pause schedule", 404, lambda: o.agent.schedules.pause(s2.id))
        expect_error("other team: resume schedule", 404, lambda: o.agent.schedules.resume(s2.id))
        expect_error("other team: delete schedule", 404, lambda: o.agent.schedules.delete(s2.id))
        expect_error("other team: schedule with our agent", 404,
                     lambda: o.agent.schedules.create(name="x", cron_schedule="* * * * *", prompt="x", agent_uid=uid))
        check("other team: schedule not listed", s2.id not in [x.id for x in o.agent.schedules.list().schedules or []])
        c.agent.schedules.delete(s2.id)
    else:
        print("skip other team (no OTHER_API_KEY)")

    # -- delete
    check("identity delete: answers nothing", c.agent.agent.delete(uid) is None)
    expect_error("identity get after delete", 404, lambda: c.agent.agent.get(uid))
    check("identity list: gone", uid not in [a.uid for a in c.agent.agent.list().agents])
    c.agent.agent.delete(unknown.uid)
    if default_uid:
        expect_error("identity delete: the default cannot be", 400, lambda: c.agent.agent.delete(default_uid), contains="default")
        check("identity list: the default stays", default_uid in [a.uid for a in c.agent.agent.list().agents])

    bad = OzAPI(api_key="cpk_not_a_key_" + secrets.token_hex(8), base_url=base, max_retries=0)
    expect_error("auth: a wrong key", 401, lambda: bad.agent.agent.list())

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
