#!/usr/bin/env python3
"""Cloud Agents API (Cursor v0) conformance, driven by the PyPI client
`cursor-agent-sdk` unchanged. Env: BASE_URL (server root), API_KEY, REPO_URL;
optional REF (main), MODEL (first of /v0/models), EXPECT_EMAIL, EXPECT_KEY_NAME,
EXPECT_REPOSITORY (a repository `GET /v0/repositories` must list),
FINISH_TIMEOUT (120), STOP_TIMEOUT (5), STOP_DELAY (0: seconds between the
follow-up showing RUNNING and the stop, so that its work is under way),
PROMPT, FOLLOWUP_PROMPT. The server's
rig must let the first run finish and keep the follow-up run busy until it is
stopped. Ends with `N passed, N failed`; exit 1 on any failure.
"""

import os
import re
import sys
import time

from cursor_agent import CursorAPIError, SyncClient

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
STATUSES = {"CREATING", "RUNNING", "FINISHED", "STOPPED", "FAILED"}
TERMINAL = {"FINISHED", "STOPPED", "FAILED"}

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


def expect_error(name, status, fn):
    try:
        fn()
    except CursorAPIError as e:
        body = {}
        try:
            body = e.response.json() if e.response is not None else {}
        except ValueError:
            pass
        msg = body.get("message") if isinstance(body, dict) else None
        if msg is None and isinstance(body, dict) and isinstance(body.get("error"), dict):
            msg = body["error"].get("message")
        check(f"{name}: {status}", e.status_code == status, f"got {e.status_code}: {e}")
        check(f"{name}: a JSON body with a message", isinstance(msg, str) and msg.strip() != "", repr(body))
        return
    check(f"{name}: {status}", False, "no error was raised")


def is_str(v):
    return isinstance(v, str) and v != ""


def agent_shape(where, a, launch=False):
    ok = check(f"{where}: an object", isinstance(a, dict), repr(a))
    if not ok:
        return
    check(f"{where}: id bc_…", is_str(a.get("id")) and a["id"].startswith("bc_"), repr(a.get("id")))
    check(f"{where}: name", is_str(a.get("name")), repr(a.get("name")))
    check(f"{where}: status in the seed's enum", a.get("status") in STATUSES, repr(a.get("status")))
    if launch:
        check(f"{where}: status CREATING", a.get("status") == "CREATING", repr(a.get("status")))
    src = a.get("source")
    check(f"{where}: source.repository", isinstance(src, dict) and is_str(src.get("repository")), repr(src))
    tgt = a.get("target")
    if check(f"{where}: target object", isinstance(tgt, dict), repr(tgt)):
        check(f"{where}: target.branchName", is_str(tgt.get("branchName")), repr(tgt))
        check(f"{where}: target.url", is_str(tgt.get("url")) and tgt["url"].startswith("http"), repr(tgt))
        for flag in ("autoCreatePr", "openAsCursorGithubApp", "skipReviewerRequest"):
            check(f"{where}: target.{flag} boolean", isinstance(tgt.get(flag), bool), repr(tgt.get(flag)))
        if "prUrl" in tgt:
            check(f"{where}: target.prUrl a URL when present", is_str(tgt["prUrl"]) and tgt["prUrl"].startswith("http"), repr(tgt))
    check(f"{where}: createdAt RFC 3339", is_str(a.get("createdAt")) and bool(RFC3339.match(a["createdAt"])), repr(a.get("createdAt")))


def wait_status(client, agent_id, wanted, timeout):
    deadline = time.monotonic() + timeout
    seen = []
    a = {}
    while time.monotonic() < deadline:
        a = client.get_agent(agent_id)
        st = a.get("status")
        if not seen or seen[-1] != st:
            seen.append(st)
        if st in wanted:
            return a, seen
        if st in TERMINAL:  # terminal but not the one wanted
            return a, seen
        time.sleep(0.1)
    return a, seen


def main():
    base = os.environ["BASE_URL"]
    key = os.environ["API_KEY"]
    repo = os.environ["REPO_URL"]
    ref = os.environ.get("REF", "main")
    finish_timeout = float(os.environ.get("FINISH_TIMEOUT", "120"))
    stop_timeout = float(os.environ.get("STOP_TIMEOUT", "5"))
    prompt = os.environ.get("PROMPT", "Fix the failing test in widget.py and say what you changed.")
    follow = os.environ.get("FOLLOWUP_PROMPT", "Also add a line about it to README.md.")

    # Auth: a wrong key is a 401 with a message.
    with SyncClient("cpk_not-a-key", base_url=base, timeout=30) as bad:
        expect_error("wrong API key", 401, bad.me)

    with SyncClient(key, base_url=base, timeout=60) as client:
        # me
        me = client.me()
        check("me: apiKeyName", is_str(me.get("apiKeyName")), repr(me))
        check("me: createdAt RFC 3339", is_str(me.get("createdAt")) and bool(RFC3339.match(me["createdAt"])), repr(me))
        check("me: userEmail", is_str(me.get("userEmail")) and "@" in me["userEmail"], repr(me))
        if os.environ.get("EXPECT_EMAIL"):
            check("me: the key's user", me.get("userEmail") == os.environ["EXPECT_EMAIL"], repr(me))
        if os.environ.get("EXPECT_KEY_NAME"):
            check("me: the key's name", me.get("apiKeyName") == os.environ["EXPECT_KEY_NAME"], repr(me))

        # models
        models = client.list_models()
        ms = models.get("models")
        check("models: a non-empty list of strings", isinstance(ms, list) and ms and all(is_str(m) for m in ms), repr(models))
        model = os.environ.get("MODEL") or (ms[0] if ms else None)
        if model and ms:
            check("models: MODEL is listed", model in ms, f"{model!r} not in {ms!r}")

        # repositories: the workers' forges and lists, then the seed's rate
        # limit (1 a minute per user): a second call is a 429 with
        # Retry-After
        repos = client.list_repositories()
        rl = repos.get("repositories")
        check("repositories: a list of {owner, name, repository}",
              isinstance(rl, list) and all(is_str(r.get("owner")) and is_str(r.get("name")) and is_str(r.get("repository")) for r in rl),
              repr(repos)[:300])
        if os.environ.get("EXPECT_REPOSITORY"):
            check("repositories: the worker's repository is listed",
                  any(r.get("repository") == os.environ["EXPECT_REPOSITORY"] for r in rl or []), repr(repos)[:300])
        try:
            client.list_repositories()
            check("repositories: a second call within a minute is refused", False, "no error was raised")
        except CursorAPIError as e:
            check("repositories: a second call within a minute is 429", e.status_code == 429, f"got {e.status_code}: {e}")
            ra = e.response.headers.get("retry-after") if e.response is not None else None
            check("repositories: Retry-After in whole seconds", ra is not None and ra.isdigit() and int(ra) >= 1, repr(ra))

        # bad launches are refused by the server (the client only checks
        # that a source is given)
        expect_error("launch with an unknown model", 400,
                     lambda: client.launch_agent(prompt=prompt, repository=repo, ref=ref, model="no-such-model-xyz"))
        expect_error("launch with a short webhook secret", 400,
                     lambda: client.launch_agent(prompt=prompt, repository=repo, ref=ref,
                                                 webhook={"url": "https://hooks.example/x", "secret": "short"}))
        expect_error("launch with an empty prompt", 400,
                     lambda: client.launch_agent(prompt="", repository=repo, ref=ref))

        # launch (the Agent handle, as the client's README recommends)
        handle = client.new_agent(repo=repo, ref=ref)
        launched = handle.create(prompt, model=model)
        agent_shape("launch", launched, launch=True)
        aid = handle.id
        check("launch: the handle took the id", is_str(aid) and aid == launched.get("id"), repr(aid))
        if not aid:
            return
        check("launch: source echoes the repository", launched.get("source", {}).get("repository") == repo, repr(launched.get("source")))
        check("launch: source echoes the ref", launched.get("source", {}).get("ref") == ref, repr(launched.get("source")))
        check("launch: no summary yet", "summary" not in launched or launched["summary"] in (None, ""), repr(launched.get("summary")))

        # status, listed
        listed = client.list_agents()
        ags = listed.get("agents")
        check("list: agents is a list", isinstance(ags, list), repr(listed))
        check("list: the new agent is on the first page", isinstance(ags, list) and any(a.get("id") == aid for a in ags), repr(listed)[:300])
        for a in (ags or [])[:3]:
            agent_shape("list item", a)
        if "nextCursor" in listed:
            check("list: nextCursor is a string when present", is_str(listed["nextCursor"]), repr(listed["nextCursor"]))

        # followed to FINISHED
        done, seen = wait_status(client, aid, {"FINISHED"}, finish_timeout)
        check("status: reaches FINISHED", done.get("status") == "FINISHED", f"seen {seen}")
        check("status: passes through RUNNING or goes straight on", all(s in STATUSES for s in seen), f"seen {seen}")
        agent_shape("status", done)
        check("status: summary once finished", is_str(done.get("summary")), repr(done.get("summary")))
        check("status: same branch as at launch", done.get("target", {}).get("branchName") == launched.get("target", {}).get("branchName"), repr(done.get("target")))
        check("refresh(): same as get_agent", handle.refresh().get("id") == aid)

        # conversation
        conv = handle.conversation()
        check("conversation: id", conv.get("id") == aid, repr(conv)[:200])
        msgs = conv.get("messages")
        if check("conversation: messages list", isinstance(msgs, list) and len(msgs) >= 2, repr(conv)[:300]):
            check("conversation: every message has id, type, text",
                  all(is_str(m.get("id")) and m.get("type") in ("user_message", "assistant_message") and isinstance(m.get("text"), str) for m in msgs),
                  repr(msgs)[:300])
            check("conversation: ids are unique", len({m.get("id") for m in msgs}) == len(msgs))
            check("conversation: starts with the prompt", msgs[0].get("type") == "user_message" and prompt in msgs[0].get("text", ""), repr(msgs[0]))
            check("conversation: an assistant answer", any(m.get("type") == "assistant_message" for m in msgs))

        # follow-up: runs again on the same branch
        fu = handle.follow_up(follow)
        check("followup: {id}", fu.get("id") == aid, repr(fu))
        again, seen = wait_status(client, aid, {"RUNNING"}, finish_timeout)
        check("followup: the agent runs again", again.get("status") == "RUNNING", f"seen {seen}")
        check("followup: same branch", again.get("target", {}).get("branchName") == launched.get("target", {}).get("branchName"), repr(again.get("target")))
        conv2 = handle.conversation()
        check("followup: the conversation has the follow-up",
              any(m.get("type") == "user_message" and follow in m.get("text", "") for m in conv2.get("messages", [])),
              repr(conv2)[:300])

        # stop mid-run
        time.sleep(float(os.environ.get("STOP_DELAY", "0")))
        t0 = time.monotonic()
        st = handle.stop()
        check("stop: {id}", st.get("id") == aid, repr(st))
        stopped, seen = wait_status(client, aid, {"STOPPED"}, stop_timeout)
        check("stop: STOPPED", stopped.get("status") == "STOPPED", f"seen {seen}")
        check(f"stop: STOPPED within {stop_timeout:g} s", time.monotonic() - t0 <= stop_timeout, f"{time.monotonic() - t0:.2f}s")
        check("stop: the branch is kept", stopped.get("target", {}).get("branchName") == launched.get("target", {}).get("branchName"), repr(stopped.get("target")))
        expect_error("stop a stopped agent", 409, handle.stop)

        # delete: permanent
        d = handle.delete()
        check("delete: {id}", d.get("id") == aid, repr(d))
        expect_error("status after delete", 404, handle.refresh)
        expect_error("conversation after delete", 404, handle.conversation)
        expect_error("followup after delete", 404, lambda: handle.follow_up("anything"))
        expect_error("delete again", 404, handle.delete)
        check("list: the deleted agent is gone", all(a.get("id") != aid for a in client.list_agents().get("agents", [])))

        # unknown ids
        expect_error("unknown agent", 404, lambda: client.get_agent("bc_doesnotexist"))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # an unexpected error is a failed check, not a crash
        failed += 1
        print(f"FAIL unexpected {type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
