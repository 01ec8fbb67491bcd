#!/usr/bin/env python3
"""Throwaway in-memory mock of the two vendor views issue 18 asks for:
Qoder's agent configuration (`/api/v1/cloud/…`) and Warp Oz's identities,
runs and schedules (`/api/v1/agent/…`), on one model: a team's agents, each
with a history of configuration versions. Written from the captured wire of
qca-sdk 0.11.0 and oz-agent-sdk 0.15.0 and from the seeds, only so that the
conformance scripts are known to run; it is not the design (see
agents-and-identities.md) but follows it where it is cheap to.

Usage: mock_server.py PORT. Keys: key-a (alice, team A), key-b (bob, team B),
key-agent-a (an agent key of team A's default agent). Plan limit 3 agents
per team (MOCK_MAX_AGENTS). A run goes QUEUED → INPROGRESS after 0.2 s and
SUCCEEDED after MOCK_RUN_SECONDS (30) unless cancelled.
"""

import base64
import datetime as dt
import json
import os
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOCK = threading.RLock()
MAX_AGENTS = int(os.environ.get("MOCK_MAX_AGENTS", "3"))
RUN_SECONDS = float(os.environ.get("MOCK_RUN_SECONDS", "30"))
MODELS = ["model-a", "model-b"]
TOOLS = ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "WebFetch", "WebSearch", "DeliverArtifacts"]
CONFIG_NAMES = {"bash": "Bash", "read": "Read", "write": "Write", "edit": "Edit", "glob": "Glob",
                "grep": "Grep", "web_fetch": "WebFetch", "web_search": "WebSearch"}
KEYS = {"key-a": ("user", "alice", "A"), "key-b": ("user", "bob", "B")}
AGENTS = {}      # id -> {"team", "versions": [config...], "archived_at", "deleted", "created_at", "default", identity fields}
RUNS = {}        # run_id -> dict
SCHEDULES = {}   # id -> dict
TICKS = set()    # (schedule_id, tick_at): the exactly-once claim
SEQ = [0]


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def next_seq():
    SEQ[0] += 1
    return SEQ[0]


class Fail(Exception):
    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


# ---------------------------------------------------------------- teams
def new_agent(team, name, default=False):
    aid = "agent_" + secrets.token_hex(16)
    t = now_ms()
    cfg = {"name": name, "description": "", "model": MODELS[0], "system": "", "tools": [], "skills": [],
           "mcp_servers": [], "metadata": {}, "version": 1, "updated_at": t}
    AGENTS[aid] = {"id": aid, "team": team, "versions": [cfg], "archived_at": None, "deleted": False,
                   "created_at": t, "default": default, "seq": next_seq(),
                   "ident": {"prompt": "", "base_model": "", "secrets": [], "skills": [], "environment_id": "",
                             "mcp_servers": {}}}
    return aid


for team in ("A", "B"):
    new_agent(team, "default", default=True)
KEYS["key-agent-a"] = ("agent", next(a for a, x in AGENTS.items() if x["team"] == "A"), "A")


def team_agents(team, include_deleted=False):
    xs = [a for a in AGENTS.values() if a["team"] == team and (include_deleted or not a["deleted"])]
    return sorted(xs, key=lambda a: a["seq"])


def available(a):
    live = [x for x in team_agents(a["team"])]
    live.sort(key=lambda x: (not x["default"], x["seq"]))
    return live.index(a) < MAX_AGENTS if a in live else False


def find_agent(team, aid):
    a = AGENTS.get(aid)
    if a is None or a["team"] != team or a["deleted"]:
        return None
    return a


# ---------------------------------------------------------------- cron
FIELDS = [("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12), ("day-of-week", 0, 7)]
NAMES = {3: {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
         4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}}


def parse_cron(expr):
    parts = expr.split()
    if len(parts) != 5:
        raise Fail(400, "invalid_request", f"cron_schedule has {len(parts)} fields; give 5: minute hour day-of-month month day-of-week")
    sets = []
    for i, (p, (name, lo, hi)) in enumerate(zip(parts, FIELDS)):
        vals = set()
        for item in p.lower().split(","):
            m = re.fullmatch(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?", item)
            if not m:
                raise Fail(400, "invalid_request", f"cron_schedule field {i + 1} ({name}) {p!r} is not valid")
            rng, step = m.group(1), int(m.group(2) or 1)

            def num(s):
                v = NAMES.get(i, {}).get(s)
                if v is None:
                    if not s.isdigit():
                        raise Fail(400, "invalid_request", f"cron_schedule field {i + 1} ({name}) {p!r} is not valid")
                    v = int(s)
                if not lo <= v <= hi:
                    raise Fail(400, "invalid_request", f"cron_schedule field {i + 1} ({name}) {p!r}: {v} is outside {lo}-{hi}")
                return v
            if step == 0:
                raise Fail(400, "invalid_request", f"cron_schedule field {i + 1} ({name}) {p!r}: step 0")
            a, b = (lo, hi) if rng == "*" else ((num(rng.split("-")[0]), num(rng.split("-")[1])) if "-" in rng else (num(rng), num(rng) if step == 1 else hi))
            if a > b:
                raise Fail(400, "invalid_request", f"cron_schedule field {i + 1} ({name}) {p!r}: reversed range")
            vals.update(range(a, b + 1, step))
        if i == 4 and 7 in vals:
            vals.add(0)
        sets.append((vals, parts[i] != "*"))
    return sets


def cron_next(sets, after_ms, tz):
    t = (after_ms // 60000 + 1) * 60000
    for _ in range(366 * 1440):
        loc = dt.datetime.fromtimestamp(t / 1000, tz)
        (mi, _), (ho, _), (dom, dom_r), (mo, _), (dow, dow_r) = sets
        day_ok = (loc.day in dom or (loc.isoweekday() % 7) in dow) if (dom_r and dow_r) else (loc.day in dom and (loc.isoweekday() % 7) in dow)
        if loc.minute in mi and loc.hour in ho and loc.month in mo and day_ok:
            return t
        t += 60000
    return None


def zone(name):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Fail(400, "invalid_request", f"timezone {name!r} is not an IANA time zone name (e.g. Europe/Paris)")


# ---------------------------------------------------------------- qoder view
AGENT_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def q_view(a, cfg=None):
    cfg = cfg or a["versions"][-1]
    return {"id": a["id"], "type": "agent", "name": cfg["name"], "description": cfg["description"],
            "model": cfg["model"], "system": cfg["system"], "tools": cfg["tools"], "skills": cfg["skills"],
            "mcp_servers": cfg["mcp_servers"], "metadata": cfg["metadata"], "version": cfg["version"],
            "archived": a["archived_at"] is not None, "archived_at": iso(a["archived_at"]),
            "created_at": iso(a["created_at"]), "updated_at": iso(cfg["updated_at"])}


def check_config(b, partial):
    out = {}
    if "name" in b or not partial:
        n = b.get("name")
        if not isinstance(n, str) or not n:
            raise Fail(400, "invalid_request_error", "Field 'name' is required.")
        if len(n) > 64 or not AGENT_NAME.match(n):
            raise Fail(400, "invalid_request_error", "Field 'name' must be at most 64 lowercase letters, digits and hyphens.")
        out["name"] = n
    if "model" in b or not partial:
        m = b.get("model")
        mid = m.get("id") if isinstance(m, dict) else m
        if not isinstance(mid, str) or not mid:
            raise Fail(400, "invalid_request_error", "Field 'model' is required.")
        if mid not in MODELS:
            raise Fail(400, "invalid_request_error", f"Field 'model': unknown model {mid!r}; see GET /models.")
        out["model"] = m
    for f, ty, d in (("description", str, ""), ("system", str, ""), ("metadata", dict, {}), ("mcp_servers", list, []), ("skills", list, []), ("tools", list, [])):
        if f in b and b[f] is not None:
            if not isinstance(b[f], ty):
                raise Fail(400, "invalid_request_error", f"Field '{f}' has the wrong type.")
            out[f] = b[f]
        elif not partial:
            out[f] = d
    for t in out.get("tools", []):
        if t.get("type") == "agent_toolset_20260401":
            for k in ("enabled_tools", "disallowed_tools"):
                for name in t.get(k, []):
                    if name not in TOOLS:
                        raise Fail(400, "invalid_request_error", f"Field 'tools': unknown tool {name!r} in {k}.")
            for c in t.get("configs", []):
                if CONFIG_NAMES.get(c.get("name")) is None and c.get("name") not in TOOLS:
                    raise Fail(400, "invalid_request_error", f"Field 'tools': unknown tool {c.get('name')!r} in configs.")
        elif t.get("type") not in ("mcp_toolset", "custom"):
            raise Fail(400, "invalid_request_error", f"Field 'tools': unknown tool type {t.get('type')!r}.")
    return out


def page(items, q, key=lambda x: x["id"]):
    given = [k for k in ("page", "after_id", "before_id") if q.get(k)]
    if len(given) > 1:
        raise Fail(400, "invalid_request_error", "Give at most one of 'page', 'after_id' and 'before_id'.")
    try:
        limit = int(q.get("limit", "20"))
    except ValueError:
        raise Fail(400, "invalid_request_error", "Field 'limit' must be an integer.")
    if not 1 <= limit <= 100:
        raise Fail(400, "invalid_request_error", "Field 'limit' must be between 1 and 100.")
    ids = [key(x) for x in items]
    start = 0
    if q.get("page") or q.get("after_id"):
        cur = q.get("after_id") or base64.urlsafe_b64decode(q["page"] + "==").decode()
        if cur not in ids:
            raise Fail(400, "invalid_request_error", "Unknown cursor.")
        start = ids.index(cur) + 1
    chunk = items[start:start + limit]
    if q.get("before_id"):
        if q["before_id"] not in ids:
            raise Fail(400, "invalid_request_error", "Unknown cursor.")
        end = ids.index(q["before_id"])
        chunk = items[max(0, end - limit):end]
        start = max(0, end - limit)
    more = start + len(chunk) < len(items)
    last = key(chunk[-1]) if chunk else None
    return {"data": chunk, "has_more": more, "first_id": key(chunk[0]) if chunk else None, "last_id": last,
            "next_page": base64.urlsafe_b64encode(last.encode()).decode().rstrip("=") if more and last else None}


def qoder(method, parts, q, body, who):
    kind, _, team = who
    if parts == ["models"] and method == "GET":
        r = page([{"id": m, "type": "model", "display_name": m} for m in MODELS], q)
        return 200, r
    if parts == ["agents"] and method == "POST":
        cfg = check_config(body or {}, partial=False)
        aid = new_agent(team, cfg["name"])
        a = AGENTS[aid]
        a["versions"][0].update(cfg)
        return 201, q_view(a)
    if parts == ["agents"] and method == "GET":
        xs = [a for a in reversed(team_agents(team)) if q.get("include_archived") == "true" or a["archived_at"] is None]
        r = page(xs, q)
        r["data"] = [q_view(a) for a in r["data"]]
        return 200, r
    if len(parts) >= 2 and parts[0] == "agents":
        a = find_agent(team, parts[1])
        if a is None:
            raise Fail(404, "not_found_error", f"Agent {parts[1]!r} not found.")
        rest = parts[2:]
        if rest == [] and method == "GET":
            if q.get("version"):
                v = int(q["version"])
                if not 1 <= v <= len(a["versions"]):
                    raise Fail(404, "not_found_error", f"Agent {a['id']!r} has no version {v}.")
                return 200, q_view(a, a["versions"][v - 1])
            return 200, q_view(a)
        if rest == [] and method in ("POST", "PUT"):
            b = body or {}
            if b.get("version") is None:
                raise Fail(400, "invalid_request_error", "Field 'version' is required.")
            if a["archived_at"] is not None:
                raise Fail(400, "invalid_request_error", "Archived agents cannot be updated.")
            ch = check_config({k: v for k, v in b.items() if k != "version"}, partial=True)
            cur = a["versions"][-1]
            if b["version"] != cur["version"]:
                raise Fail(409, "conflict_error", f"Version conflict. Expected version {cur['version']}, got {b['version']}.")
            new = dict(cur, **ch)
            new["version"] = cur["version"] + 1
            new["updated_at"] = now_ms()
            a["versions"].append(new)
            return 200, q_view(a)
        if rest == ["versions"] and method == "GET":
            xs = list(reversed(a["versions"]))
            r = page(xs, q, key=lambda c: str(c["version"]))
            r["data"] = [q_view(a, c) for c in r["data"]]
            return 200, r
        if rest == ["archive"] and method == "POST":
            if a["default"]:
                raise Fail(400, "invalid_request_error", "The team's default agent cannot be archived.")
            if a["archived_at"] is None:
                a["archived_at"] = now_ms()
            return 200, q_view(a)
    raise Fail(404, "not_found_error", "No such route.")


# ---------------------------------------------------------------- oz view
STATES = {"QUEUED", "PENDING", "CLAIMED", "INPROGRESS", "SUCCEEDED", "FAILED", "BLOCKED", "ERROR", "CANCELLED"}
TERMINAL = {"SUCCEEDED", "FAILED", "ERROR", "CANCELLED"}


def o_ident(a):
    cfg = a["versions"][-1]
    i = a["ident"]
    return {"uid": a["id"], "name": cfg["name"], "description": cfg["description"], "available": available(a),
            "prompt": cfg["system"], "base_model": i["base_model"], "environment_id": i["environment_id"],
            "secrets": i["secrets"], "skills": i["skills"], "mcp_servers": i["mcp_servers"],
            "default_runner_uid": "", "memory": {"attached_stores": [], "auto_memory": {"enabled": False}},
            "is_default": a["default"], "version": cfg["version"],
            "created_at": iso(a["created_at"]), "updated_at": iso(cfg["updated_at"])}


def human_only(who):
    if who[0] != "user":
        raise Fail(403, "not_authorized", "only a person may manage agents, users or keys; this request is authenticated as an agent")


def run_state(r):
    if r["state"] in TERMINAL:
        return r["state"]
    age = time.time() - r["t0"]
    if age >= RUN_SECONDS:
        r["state"] = "SUCCEEDED"
        r["updated"] = now_ms()
        return r["state"]
    return "INPROGRESS" if age >= 0.2 else "QUEUED"


def r_view(r):
    st = run_state(r)
    v = {"run_id": r["id"], "task_id": r["id"], "state": st, "prompt": r["prompt"], "title": r["title"],
         "source": r["source"], "created_at": iso(r["created"]), "updated_at": iso(r["updated"]),
         "executor": {"uid": r["run_as"]}, "agent_identity_uid": r["agent"], "metadata": r["metadata"],
         "is_run_type_cancellable": True}
    if r.get("schedule"):
        v["schedule"] = r["schedule"]
    return v


def s_view(s):
    return {"id": s["id"], "name": s["name"], "cron_schedule": s["cron"], "prompt": s["prompt"],
            "enabled": s["enabled"], "agent_uid": s["agent"], "timezone": s["tz"],
            "next_run_at": iso(s["next"]) if s["enabled"] else None,
            "history": {"last_ran": iso(s["last"]), "next_run": iso(s["next"]) if s["enabled"] else None},
            "last_spawn_error": s["err"], "created_at": iso(s["created"]), "updated_at": iso(s["updated"])}


def new_run(team, who, prompt, agent, title, source, metadata=None, schedule=None):
    if not isinstance(prompt, str) or not prompt.strip():
        raise Fail(400, "invalid_request", "prompt is required")
    if agent is not None:
        a = find_agent(team, agent)
        if a is None:
            raise Fail(404, "resource_not_found", f"no agent {agent!r} on this team")
    elif who[0] == "agent":
        a = AGENTS[who[1]]
    else:
        a = None
    if a is not None and (not available(a) or a["archived_at"] is not None):
        raise Fail(403, "feature_not_available", "this agent is over the team's plan limit or archived and cannot start runs")
    rid = "run_" + secrets.token_hex(8)
    t = now_ms()
    RUNS[rid] = {"id": rid, "team": team, "prompt": prompt, "title": title or prompt[:60], "source": source,
                 "created": t, "updated": t, "t0": time.time(), "state": "QUEUED", "metadata": metadata or {},
                 "agent": a["id"] if a else None, "run_as": a["id"] if a else who[1], "schedule": schedule,
                 "seq": next_seq()}
    return RUNS[rid]


def oz(method, parts, q, body, who):
    kind, principal, team = who
    body = body or {}
    if parts == ["identities"] and method == "GET":
        return 200, {"agents": [o_ident(a) for a in team_agents(team)]}
    if parts == ["identities"] and method == "POST":
        human_only(who)
        n = body.get("name")
        if not isinstance(n, str) or not n.strip():
            raise Fail(400, "invalid_request", "name is required")
        if len(team_agents(team)) >= MAX_AGENTS:
            raise Fail(403, "feature_not_available", f"the team's plan allows {MAX_AGENTS} agents")
        aid = new_agent(team, n)
        a = AGENTS[aid]
        a["versions"][0].update({"description": body.get("description") or "", "system": body.get("prompt") or ""})
        a["ident"].update({k: body[k] for k in ("secrets", "skills", "mcp_servers") if body.get(k) is not None})
        a["ident"].update({k: body[k] or "" for k in ("base_model", "environment_id") if k in body})
        return 201, o_ident(a)
    if len(parts) == 2 and parts[0] == "identities":
        a = find_agent(team, parts[1])
        if a is None:
            raise Fail(404, "resource_not_found", f"no agent {parts[1]!r}")
        if method == "GET":
            return 200, o_ident(a)
        human_only(who)
        if method == "PUT":
            if not available(a):
                raise Fail(403, "feature_not_available", "this agent is over the team's plan limit and cannot be edited")
            cur = a["versions"][-1]
            new = dict(cur)
            if "name" in body and body["name"] is not None:
                if not str(body["name"]).strip():
                    raise Fail(400, "invalid_request", "name cannot be empty")
                new["name"] = body["name"]
            if body.get("description") is not None:
                new["description"] = body["description"]
            if body.get("prompt") is not None:
                new["system"] = body["prompt"]
            for k in ("secrets", "skills", "mcp_servers", "base_model", "environment_id"):
                if body.get(k) is not None:
                    a["ident"][k] = body[k]
            new["version"] = cur["version"] + 1
            new["updated_at"] = now_ms()
            a["versions"].append(new)
            return 200, o_ident(a)
        if method == "DELETE":
            if a["default"]:
                raise Fail(400, "operation_not_supported", "the team's default agent cannot be deleted")
            a["deleted"] = True
            for k, v in list(KEYS.items()):
                if v[0] == "agent" and v[1] == a["id"]:
                    del KEYS[k]
            return 204, None
    if parts == ["runs"] and method == "POST":
        r = new_run(team, who, body.get("prompt"), body.get("agent_identity_uid"), body.get("title"), "API", body.get("metadata"))
        return 200, {"run_id": r["id"], "task_id": r["id"], "state": run_state(r)}
    if parts == ["runs"] and method == "GET":
        xs = sorted((r for r in RUNS.values() if r["team"] == team), key=lambda r: -r["seq"])
        states = [v for k, v in q.get("_multi", []) if k == "state"]
        if any(s not in STATES for s in states):
            raise Fail(400, "invalid_request", "unknown state")
        xs = [r for r in xs if (not states or run_state(r) in states) and (not q.get("source") or r["source"] == q["source"])
              and (not q.get("schedule_id") or (r.get("schedule") or {}).get("schedule_id") == q["schedule_id"])]
        limit = int(q.get("limit", "20"))
        start = 0
        if q.get("cursor"):
            ids = [r["id"] for r in xs]
            start = ids.index(q["cursor"]) + 1 if q["cursor"] in ids else len(ids)
        chunk = xs[start:start + limit]
        more = start + limit < len(xs)
        return 200, {"runs": [r_view(r) for r in chunk],
                     "page_info": {"has_next_page": more, "next_cursor": chunk[-1]["id"] if more else None}}
    if len(parts) >= 2 and parts[0] == "runs":
        r = RUNS.get(parts[1])
        if r is None or r["team"] != team:
            raise Fail(404, "resource_not_found", f"no run {parts[1]!r}")
        if len(parts) == 2 and method == "GET":
            return 200, r_view(r)
        if parts[2:] == ["cancel"] and method == "POST":
            if run_state(r) in TERMINAL:
                raise Fail(400, "operation_not_supported", f"the run is {run_state(r)}; only a queued or running run can be cancelled")
            r["state"] = "CANCELLED"
            r["updated"] = now_ms()
            return 200, r["id"]
        if parts[2:] == ["followups"] and method == "POST":
            if not isinstance(body.get("message"), str) or not body["message"].strip():
                raise Fail(400, "invalid_request", "message is required")
            if run_state(r) in TERMINAL:
                r.update(state="QUEUED", t0=time.time(), updated=now_ms())
            return 200, {}
    if parts == ["schedules"] and method == "POST":
        return 201, s_view(put_schedule(None, team, who, body, create=True))
    if parts == ["schedules"] and method == "GET":
        return 200, {"schedules": [s_view(s) for s in sorted((s for s in SCHEDULES.values() if s["team"] == team), key=lambda s: s["name"])]}
    if len(parts) >= 2 and parts[0] == "schedules":
        s = SCHEDULES.get(parts[1])
        if s is None or s["team"] != team:
            raise Fail(404, "resource_not_found", f"no schedule {parts[1]!r}")
        rest = parts[2:]
        if rest == [] and method == "GET":
            v = s_view(s)
            v["runs"] = [r["id"] for r in RUNS.values() if (r.get("schedule") or {}).get("schedule_id") == s["id"]]
            return 200, v
        if rest == [] and method == "PUT":
            for f in ("cron_schedule", "enabled", "name"):
                if f not in body:
                    raise Fail(400, "invalid_request", f"{f} is required")
            return 200, s_view(put_schedule(s, team, who, body, create=False))
        if rest == [] and method == "DELETE":
            del SCHEDULES[s["id"]]
            return 200, {"success": True}
        if rest in (["pause"], ["resume"]) and method == "POST":
            s["enabled"] = rest == ["resume"]
            s["updated"] = now_ms()
            if s["enabled"]:
                s["next"] = cron_next(s["sets"], now_ms(), zone(s["tz"]))
            return 200, s_view(s)
    raise Fail(404, "resource_not_found", "no such route")


def put_schedule(s, team, who, body, create):
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Fail(400, "invalid_request", "name is required")
    cron = body.get("cron_schedule")
    if not isinstance(cron, str):
        raise Fail(400, "invalid_request", "cron_schedule is required")
    sets = parse_cron(cron)
    tzname = body.get("timezone") or (s["tz"] if s else "UTC")
    tz = zone(tzname)
    prompt = body.get("prompt")
    if create and (not isinstance(prompt, str) or not prompt.strip()):
        raise Fail(400, "invalid_request", "prompt is required")
    agent = body.get("agent_uid")
    if agent is not None and find_agent(team, agent) is None:
        raise Fail(404, "resource_not_found", f"no agent {agent!r}")
    t = now_ms()
    if s is None:
        s = {"id": "sch_" + secrets.token_hex(8), "team": team, "created": t, "last": None, "err": None, "by": who[1]}
        SCHEDULES[s["id"]] = s
    enabled = body.get("enabled", True) if body.get("enabled") is not None else True
    s.update(name=name, cron=cron, sets=sets, tz=tzname, prompt=prompt if prompt is not None else s.get("prompt"),
             agent=agent if agent is not None else s.get("agent"), enabled=bool(enabled), updated=t,
             next=cron_next(sets, t, tz))
    return s


def ticker():
    while True:
        time.sleep(0.5)
        with LOCK:
            t = now_ms()
            for s in list(SCHEDULES.values()):
                if not s["enabled"] or s["next"] is None or s["next"] > t:
                    continue
                tick = s["next"]
                # catch-up: however many ticks were missed, one run, for the latest.
                latest = tick
                while True:
                    n = cron_next(s["sets"], latest, zone(s["tz"]))
                    if n is None or n > t:
                        break
                    latest = n
                s["next"] = cron_next(s["sets"], t, zone(s["tz"]))
                if (s["id"], latest) in TICKS:
                    continue
                TICKS.add((s["id"], latest))
                try:
                    new_run(s["team"], ("user", s["by"], s["team"]), s["prompt"], s["agent"], s["name"], "SCHEDULED_AGENT",
                            schedule={"schedule_id": s["id"], "schedule_name": s["name"], "cron_schedule": s["cron"]})
                    s["last"], s["err"] = latest, None
                except Fail as e:
                    s["err"] = e.message


# ---------------------------------------------------------------- http
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, obj, ctype="application/json", extra=()):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_" + secrets.token_hex(6))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def handle_one(self):
        u = urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        path = u.path
        qoder_view = path.startswith("/api/v1/cloud/")
        oz_view = path.startswith("/api/v1/agent/")
        pairs = parse_qsl(u.query, keep_blank_values=True)
        q = dict(pairs)
        q["_multi"] = pairs
        try:
            if not (qoder_view or oz_view):
                raise Fail(404, "not_found", "no such route")
            auth = self.headers.get("Authorization", "")
            tok = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            who = KEYS.get(tok)
            if who is None:
                raise Fail(401, "authentication_error" if qoder_view else "authentication_required", "the API key is not valid")
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                raise Fail(400, "invalid_request_error" if qoder_view else "invalid_request", "the body is not JSON")
            if body is not None and not isinstance(body, dict):
                raise Fail(400, "invalid_request_error" if qoder_view else "invalid_request", "the body must be a JSON object")
            with LOCK:
                if qoder_view:
                    parts = [p for p in path[len("/api/v1/cloud/"):].split("/") if p]
                    status, obj = qoder(self.command, parts, q, body, who)
                else:
                    parts = [p for p in path[len("/api/v1/agent/"):].split("/") if p]
                    status, obj = oz(self.command, parts, q, body, who)
            self.send(status, obj)
        except Fail as e:
            if qoder_view or not oz_view:
                self.send(e.status, {"type": "error", "error": {"type": e.kind, "message": e.message}},
                          extra=[("x-should-retry", "false")])
            else:
                title = {400: "The request contains invalid or missing parameters.", 401: "Authentication is required.",
                         403: "Not authorized.", 404: "The resource was not found."}.get(e.status, "Error.")
                self.send(e.status, {"type": f"/reference/api-and-sdk/troubleshooting/errors/{e.kind.replace('_', '-')}/",
                                     "title": title, "status": e.status, "detail": e.message, "instance": path,
                                     "error": f"{title} ({e.message})", "error_code": e.kind, "retryable": False,
                                     "trace_id": secrets.token_hex(8)},
                          ctype="application/problem+json", extra=[("x-should-retry", "false")])

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one


if __name__ == "__main__":
    threading.Thread(target=ticker, daemon=True).start()
    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
    print(f"mock on http://127.0.0.1:{sys.argv[1]}", flush=True)
    srv.serve_forever()
