#!/usr/bin/env python3
"""Agent configuration (Qoder Cloud Agents, `/api/v1/cloud/`) conformance,
driven by the PyPI client `qca-sdk` unchanged (module `qca`, client
`qca.Managed`). Env: BASE_URL (the control plane's root; the client gets
BASE_URL + /api/v1/cloud/), API_KEY (a person's key of team A); optional
OTHER_API_KEY (a key of another team: every route must answer it 404),
MODEL (default: the first of GET /models), RACE_ROUNDS (5).
Creates, reads, updates (POST as the client sends it and PUT as the seed
shows it), meets a 409 and a 400, races two updates, lists and pages,
reads versions, archives. Ends with `N passed, N failed`; exit 1 on any
failure.
"""

import os
import re
import secrets
import sys
import threading

import httpx
import qca

AGENT_ID = re.compile(r"^agent_[0-9a-f]{32}$")

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


def expect_error(name, status, kind, fn, message=None, contains=None):
    """fn must raise the client's status error: `status`, error type `kind`,
    the Qoder envelope, and (if given) exactly `message` / a message
    containing `contains`."""
    try:
        fn()
    except qca.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        err = body.get("error") if isinstance(body.get("error"), dict) else {}
        check(f"{name}: {status}", e.status_code == status, f"got {e.status_code}: {e.message}")
        check(f"{name}: envelope type=error", body.get("type") == "error", repr(body))
        check(f"{name}: error.type {kind}", e.type == kind and err.get("type") == kind, f"got {e.type!r}")
        msg = err.get("message")
        check(f"{name}: a message", isinstance(msg, str) and msg.strip() != "", repr(body))
        if message is not None:
            check(f"{name}: message {message!r}", msg == message, f"got {msg!r}")
        if contains is not None:
            check(f"{name}: message names {contains!r}", isinstance(msg, str) and contains in msg, f"got {msg!r}")
        return e
    except Exception as e:  # noqa: BLE001
        check(f"{name}: {status}", False, f"raised {type(e).__name__}: {e}")
        return None
    check(f"{name}: {status}", False, "no error was raised")
    return None


def main():
    base = os.environ["BASE_URL"].rstrip("/") + "/api/v1/cloud/"
    key = os.environ["API_KEY"]
    other = os.environ.get("OTHER_API_KEY")
    rounds = int(os.environ.get("RACE_ROUNDS", "5"))
    # max_retries=0: a retried request would hide what the server answered.
    c = qca.Managed(access_token=key, base_url=base, max_retries=0)

    # -- models
    models = list(c.models.list())
    check("models: at least one", len(models) > 0)
    check("models: each has an id", all(isinstance(m.id, str) and m.id for m in models))
    model = os.environ.get("MODEL") or (models[0].id if models else "")

    # -- create
    name = "conf-" + secrets.token_hex(4)
    tools = [{
        "type": "agent_toolset_20260401",
        "enabled_tools": ["Bash", "Read", "Write"],
        "disallowed_tools": ["WebFetch"],
        "default_config": {"enabled": True, "permission_policy": {"type": "always_allow"}},
        "configs": [{"name": "bash", "type": "bash", "permission_policy": {"type": "always_ask"}}],
    }]
    raw = c.agents.with_raw_response.create(name=name, model=model, system="You review code.", tools=tools,
                                           metadata={"team": "backend", "purpose": "review"})
    check("create: 201", raw.status_code == 201, f"got {raw.status_code}")
    a = raw.parse()
    aid = a.id or ""
    check("create: id agent_ + 32 hex", bool(AGENT_ID.match(aid)), repr(aid))
    check("create: type agent", a.type == "agent", repr(a.type))
    check("create: version 1", a.version == 1, repr(a.version))
    check("create: name echoed", a.name == name)
    check("create: model echoed", a.model == model, repr(a.model))
    check("create: system echoed", a.system == "You review code.")
    check("create: description defaults to ''", a.description == "", repr(a.description))
    check("create: mcp_servers defaults to []", a.mcp_servers == [], repr(a.mcp_servers))
    check("create: metadata echoed", a.metadata == {"team": "backend", "purpose": "review"}, repr(a.metadata))
    t0 = (a.tools or [None])[0]
    check("create: tools echoed", t0 is not None and t0.type == "agent_toolset_20260401"
          and t0.enabled_tools == ["Bash", "Read", "Write"] and t0.disallowed_tools == ["WebFetch"], repr(a.tools))
    check("create: not archived", getattr(a, "archived", None) is False and a.archived_at is None,
          repr((getattr(a, "archived", None), a.archived_at)))
    check("create: created_at and updated_at are times", hasattr(a.created_at, "year") and hasattr(a.updated_at, "year"),
          repr((a.created_at, a.updated_at)))

    minimal = c.agents.create(name=name + "-min", model=model)
    check("create minimal: defaults", minimal.version == 1 and minimal.description == "" and minimal.system == ""
          and minimal.tools == [] and minimal.mcp_servers == [] and minimal.metadata == {},
          repr(minimal.to_dict()))

    # -- validation
    expect_error("create: uppercase name", 400, "invalid_request_error",
                 lambda: c.agents.create(name="Code_Reviewer", model=model), contains="name")
    expect_error("create: name of 65", 400, "invalid_request_error",
                 lambda: c.agents.create(name="a" * 65, model=model), contains="name")
    expect_error("create: unknown model", 400, "invalid_request_error",
                 lambda: c.agents.create(name=name + "-x", model="no-such-model-" + secrets.token_hex(3)), contains="model")
    expect_error("create: unknown tool", 400, "invalid_request_error",
                 lambda: c.agents.create(name=name + "-y", model=model,
                                         tools=[{"type": "agent_toolset_20260401", "enabled_tools": ["Teleport"]}]),
                 contains="Teleport")
    expect_error("create: no name", 400, "invalid_request_error",
                 lambda: c.agents.create(name=None, model=model), contains="name")

    # -- get
    g = c.agents.retrieve(aid)
    check("get: same agent, version 1", g.id == aid and g.version == 1 and g.name == name)
    expect_error("get: unknown id", 404, "not_found_error", lambda: c.agents.retrieve("agent_" + "0" * 32))

    # -- update (the client sends POST /agents/{id})
    u = c.agents.update(aid, version=1, system="You are a senior code reviewer.")
    check("update (POST): version 2", u.version == 2, repr(u.version))
    check("update: system replaced", u.system == "You are a senior code reviewer.")
    check("update: omitted fields unchanged", u.name == name and u.model == model
          and u.metadata == {"team": "backend", "purpose": "review"} and len(u.tools or []) == 1, repr(u.to_dict()))
    check("update: updated_at moves on", u.updated_at is not None and a.updated_at is not None and u.updated_at >= a.updated_at)
    expect_error("update: stale version", 409, "conflict_error",
                 lambda: c.agents.update(aid, version=1, system="lost"),
                 message="Version conflict. Expected version 2, got 1.")
    expect_error("update: no version", 400, "invalid_request_error",
                 lambda: c.agents.update(aid, system="lost"), message="Field 'version' is required.")
    expect_error("update: version null", 400, "invalid_request_error",
                 lambda: c.agents.update(aid, version=None, system="lost"), message="Field 'version' is required.")
    check("update: nothing lost was written", c.agents.retrieve(aid).version == 2)

    # -- update by PUT, as the seed's curl does (not through the client, which only POSTs)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as h:
        r = h.put(f"agents/{aid}", json={"name": name, "model": model, "system": "Security and performance.", "version": 2})
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        check("update (PUT): 200", r.status_code == 200, f"got {r.status_code}: {r.text[:200]}")
        check("update (PUT): version 3", body.get("version") == 3, repr(body.get("version")))
        r = h.put(f"agents/{aid}", json={"system": "x", "version": 2})
        check("update (PUT): stale is 409", r.status_code == 409, f"got {r.status_code}")
        try:
            b = r.json()
        except ValueError:
            b = {}
        check("update (PUT): 409 message", b.get("error", {}).get("message") == "Version conflict. Expected version 3, got 2.", repr(b))
        r = h.get("agents/agent_" + "f" * 32)
        try:
            b = r.json()
        except ValueError:
            b = {}
        check("404: envelope {type: error, error: {type, message}}", r.status_code == 404 and b.get("type") == "error"
              and b.get("error", {}).get("type") == "not_found_error" and isinstance(b.get("error", {}).get("message"), str), repr(b))
        check("404: a request id header", bool(r.headers.get("request-id") or r.headers.get("x-request-id")))

    # -- OCC race: two updates on the same version, exactly one wins
    wins_ok = True
    for i in range(rounds):
        cur = c.agents.retrieve(aid).version
        results = []
        barrier = threading.Barrier(2)

        def one(tag):
            cl = qca.Managed(access_token=key, base_url=base, max_retries=0)
            barrier.wait()
            try:
                cl.agents.update(aid, version=cur, description=f"race {i} {tag}")
                results.append("ok")
            except qca.ConflictError:
                results.append("409")
            except Exception as e:  # noqa: BLE001
                results.append(f"{type(e).__name__}: {e}")
        ts = [threading.Thread(target=one, args=(t,)) for t in "ab"]
        [t.start() for t in ts]
        [t.join() for t in ts]
        after = c.agents.retrieve(aid)
        good = sorted(results) == ["409", "ok"] and after.version == cur + 1 and after.description in (f"race {i} a", f"race {i} b")
        wins_ok &= good
        if not good:
            print(f"     race round {i}: {results}, version {cur} -> {after.version}")
    check(f"OCC race: exactly one of two concurrent updates wins ({rounds} rounds)", wins_ok)
    final_version = c.agents.retrieve(aid).version

    # -- versions: every one kept
    vs = list(c.agents.versions.list(aid))
    nums = [v.version for v in vs]
    check("versions: every version kept", sorted(nums) == list(range(1, final_version + 1)), repr(nums))
    check("versions: each is this agent", all(v.id == aid for v in vs))
    v1 = next((v for v in vs if v.version == 1), None)
    check("versions: version 1 as created", v1 is not None and v1.system == "You review code.", repr(v1 and v1.system))
    first = c.agents.versions.list(aid, limit=1)
    check("versions: limit=1 pages", len(first.data) == 1 and first.has_more is True and first.has_next_page(), repr(first.to_dict()))
    check("versions: paging yields them all", sorted(v.version for v in c.agents.versions.list(aid, limit=2)) == list(range(1, final_version + 1)))
    old = c.agents.retrieve(aid, version=1)
    check("get ?version=1: the old configuration", old.version == 1 and old.system == "You review code.", repr(old.to_dict()))

    # -- list and pagination
    pg = c.agents.list(limit=1)
    check("list: envelope", isinstance(pg.data, list) and len(pg.data) == 1 and isinstance(pg.has_more, bool)
          and pg.first_id == pg.data[0].id and pg.last_id == pg.data[0].id, repr(pg.to_dict()))
    ids = [x.id for x in c.agents.list(limit=1)]
    check("list: paging by one finds both new agents, none twice", aid in ids and minimal.id in ids and len(ids) == len(set(ids)), repr(ids))
    check("list: default limit answers", len(c.agents.list().data) >= 2)
    expect_error("list: limit 0", 400, "invalid_request_error", lambda: c.agents.list(limit=0), contains="limit")
    expect_error("list: limit 101", 400, "invalid_request_error", lambda: c.agents.list(limit=101), contains="limit")
    expect_error("list: page and after_id", 400, "invalid_request_error",
                 lambda: c.agents.list(limit=5, page=pg.next_page or "x", extra_query={"after_id": aid}))
    after = c.agents.list(limit=100, extra_query={"after_id": pg.data[0].id})
    check("list: after_id starts after that agent", all(x.id != pg.data[0].id for x in after.data))

    # -- archive
    ar = c.agents.archive(minimal.id)
    check("archive: archived, archived_at set", getattr(ar, "archived", None) is True and ar.archived_at is not None,
          repr(ar.to_dict()))
    check("archive: still readable", c.agents.retrieve(minimal.id).archived_at is not None)
    listed = [x.id for x in c.agents.list(limit=100)]
    check("archive: not listed by default", minimal.id not in listed)
    check("archive: listed with include_archived", minimal.id in [x.id for x in c.agents.list(limit=100, include_archived=True)])
    expect_error("archive: an archived agent cannot be updated", 400, "invalid_request_error",
                 lambda: c.agents.update(minimal.id, version=minimal.version, system="x"))

    # -- skills: upload with the client's multipart files, list, versions, pin, delete
    sname = "conf-skill-" + secrets.token_hex(3)
    skill_md = f"---\nname: {sname}\ndescription: Checks conformance.\n---\nRun scripts/go.sh.\n".encode()
    files = [(f"{sname}/SKILL.md", skill_md), (f"{sname}/scripts/go.sh", b"#!/bin/sh\necho go\n")]
    raw = c.skills.with_raw_response.create(files=files, display_title="Conformance", metadata={"k": "v"})
    check("skills create: 201", raw.status_code == 201, f"got {raw.status_code}")
    sk = raw.parse()
    check("skills create: type skill, source custom", sk.type == "skill" and sk.source == "custom", repr(sk.to_dict()))
    check("skills create: id skill_", (sk.id or "").startswith("skill_"), repr(sk.id))
    check("skills create: display_title, metadata echoed", sk.display_title == "Conformance" and sk.metadata == {"k": "v"},
          repr(sk.to_dict()))
    check("skills create: a latest_version", bool(sk.latest_version), repr(sk.latest_version))
    check("skills list: listed", sk.id in [x.id for x in c.skills.list(limit=100)])
    check("skills list: by name", [x.id for x in c.skills.list(name=sname)] == [sk.id])
    v1 = c.skills.versions.retrieve(sk.latest_version, skill_id=sk.id)
    check("skills version: name, description, directory from SKILL.md",
          v1.type == "skill_version" and v1.name == sname and v1.description == "Checks conformance."
          and v1.directory == sname and v1.skill_id == sk.id, repr(v1.to_dict()))
    v2 = c.skills.versions.create(sk.id, files=[(f"{sname}/SKILL.md", skill_md + b"More.\n")])
    check("skills version create: a newer version", (v2.version or "") > (v1.version or ""), repr((v1.version, v2.version)))
    check("skills version: latest resolves", c.skills.versions.retrieve("latest", skill_id=sk.id).version == v2.version)
    check("skills versions: newest first", [x.version for x in c.skills.versions.list(sk.id)] == [v2.version, v1.version])
    import io
    import zipfile
    z = zipfile.ZipFile(io.BytesIO(c.skills.versions.download(v1.version, skill_id=sk.id).read()))
    check("skills download: the files as a zip", z.testzip() is None
          and sorted(z.namelist()) == [f"{sname}/SKILL.md", f"{sname}/scripts/go.sh"]
          and z.read(f"{sname}/SKILL.md") == skill_md, repr(z.namelist()))
    check("skills download: scripts executable", (z.getinfo(f"{sname}/scripts/go.sh").external_attr >> 16) & 0o111 != 0)
    expect_error("skills create: no SKILL.md", 400, "invalid_request_error",
                 lambda: c.skills.create(files=[("x/README.md", b"hi")]), contains="SKILL.md")
    expect_error("skills create: a path escaping", 400, "invalid_request_error",
                 lambda: c.skills.create(files=[("x/SKILL.md", skill_md), ("x/../y", b"hi")]), contains="../y")
    expect_error("skills version: a new name", 400, "invalid_request_error",
                 lambda: c.skills.versions.create(sk.id, files=[("other/SKILL.md", b"---\nname: other\ndescription: d\n---\n")]),
                 contains="keeps the name")
    pinned = c.agents.create(name=name + "-skills", model=model, skills=[{"type": "custom", "skill_id": sk.id}])
    check("skills: an agent names the skill", [s.skill_id for s in (pinned.skills or [])] == [sk.id], repr(pinned.skills))
    if other:
        o = qca.Managed(access_token=other, base_url=base, max_retries=0)
        expect_error("skills other team: get", 404, "not_found_error", lambda: o.skills.retrieve(sk.id))
        expect_error("skills other team: version", 404, "not_found_error",
                     lambda: o.skills.versions.retrieve(v1.version, skill_id=sk.id))
        check("skills other team: not listed", sk.id not in [x.id for x in o.skills.list(limit=100)])
    dv = c.skills.versions.delete(v2.version, skill_id=sk.id)
    check("skills version delete", dv.type == "skill_version_deleted", repr(dv.to_dict()))
    check("skills version delete: latest is the older", c.skills.retrieve(sk.id).latest_version == v1.version)
    ds = c.skills.delete(sk.id)
    check("skills delete", ds.type == "skill_deleted" and ds.id == sk.id, repr(ds.to_dict()))
    expect_error("skills delete: gone", 404, "not_found_error", lambda: c.skills.retrieve(sk.id))

    # -- auth and cross-team isolation
    bad = qca.Managed(access_token="cpk_not_a_key_" + secrets.token_hex(8), base_url=base, max_retries=0)
    expect_error("auth: a wrong key", 401, "authentication_error", lambda: bad.agents.list())
    if other:
        o = qca.Managed(access_token=other, base_url=base, max_retries=0)
        expect_error("other team: get", 404, "not_found_error", lambda: o.agents.retrieve(aid))
        expect_error("other team: get ?version", 404, "not_found_error", lambda: o.agents.retrieve(aid, version=1))
        expect_error("other team: update", 404, "not_found_error", lambda: o.agents.update(aid, version=final_version, system="x"))
        expect_error("other team: versions", 404, "not_found_error", lambda: o.agents.versions.list(aid))
        expect_error("other team: archive", 404, "not_found_error", lambda: o.agents.archive(aid))
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {other}"}, timeout=30) as h:
            r = h.put(f"agents/{aid}", json={"system": "x", "version": final_version})
            check("other team: PUT 404", r.status_code == 404, f"got {r.status_code}")
        check("other team: not listed", aid not in [x.id for x in o.agents.list(limit=100, include_archived=True)])
        check("other team: our agent unchanged", c.agents.retrieve(aid).version == final_version)
    else:
        print("skip other team (no OTHER_API_KEY)")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
