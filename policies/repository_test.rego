# Tests of the runner's repository operations: git.fetch, git.push,
# pr.create, and its connections to repository hosts.
package runner_test

import data.runner
import rego.v1

repo_worker := {"repositories": {"hosts": ["git.example"], "api_hosts": ["api.git.example"]}}

git_op(operation, git) := object.union(
	with_action({"kind": "external", "tool": "runner", "operation": operation, "git": git}),
	{"trusted": {"worker": repo_worker}},
)

push(mode, branch) := git_op("git.push", {
	"remote": "https://git.example/o/r.git", "host": "git.example",
	"branch": branch, "mode": mode, "default_branch": "main", "session_branch": "runner/fix-1",
})

reason_has(d, s) if {
	some r in d.reasons
	contains(r, s)
}

test_fetch_from_a_configured_host_allowed if {
	d := runner.decision with input as git_op("git.fetch", {"remote": "https://git.example/o/r.git", "host": "git.example", "ref": "main"})
	d.result == "allow"
}

test_fetch_from_another_host_denied if {
	d := runner.decision with input as git_op("git.fetch", {"remote": "https://evil.example/o/r.git", "host": "evil.example"})
	d.result == "deny"
	reason_has(d, "not a repository host")
}

test_fetch_without_any_configured_host_denied if {
	i := object.union(with_action({"kind": "external", "tool": "runner", "operation": "git.fetch", "git": {"remote": "https://git.example/o/r", "host": "git.example"}}), {})
	runner.decision.result == "deny" with input as i
}

test_new_and_update_push_of_the_session_branch_allowed if {
	runner.decision.result == "allow" with input as push("new", "runner/fix-1")
	runner.decision.result == "allow" with input as push("update", "runner/fix-1")
}

test_force_push_denied if {
	d := runner.decision with input as push("force", "runner/fix-1")
	d.result == "deny"
	reason_has(d, "force push")
}

test_unknown_push_mode_denied if {
	d := runner.decision with input as push("mirror", "runner/fix-1")
	d.result == "deny"
	reason_has(d, "push mode")
}

test_push_to_the_default_branch_denied if {
	i := git_op("git.push", {
		"remote": "https://git.example/o/r.git", "host": "git.example",
		"branch": "main", "mode": "update", "default_branch": "main", "session_branch": "main",
	})
	d := runner.decision with input as i
	d.result == "deny"
	reason_has(d, "default branch")
}

test_push_to_another_branch_denied if {
	d := runner.decision with input as push("new", "release")
	d.result == "deny"
	reason_has(d, "not this session's target branch")
}

test_push_without_git_details_denied if {
	d := runner.decision with input as git_op("git.push", "not an object")
	d.result == "deny"
}

test_pr_create_of_the_session_branch_allowed if {
	i := git_op("pr.create", {"remote": "https://git.example/o/r.git", "host": "git.example", "branch": "runner/fix-1", "session_branch": "runner/fix-1", "base": "main", "draft": false})
	runner.decision.result == "allow" with input as i
}

test_pr_create_from_another_branch_denied if {
	i := git_op("pr.create", {"remote": "https://git.example/o/r.git", "host": "git.example", "branch": "x", "session_branch": "runner/fix-1", "base": "main"})
	runner.decision.result == "deny" with input as i
}

test_runner_operations_never_ask if {
	d := runner.decision with input as git_op("message.send", {"remote": "https://git.example/o/r.git", "host": "git.example"})
	d.result == "deny"
	reason_has(d, "performs no external action")
}

test_an_agent_tool_cannot_borrow_the_runner_rules if {
	i := object.union(
		with_action({"kind": "external", "tool": "Bash", "operation": "git.push", "git": {"host": "git.example", "branch": "runner/fix-1", "session_branch": "runner/fix-1", "mode": "new"}}),
		{"trusted": {"worker": repo_worker}},
	)
	runner.decision.result == "ask" with input as i
}

runner_connect(host, addr) := object.union(
	with_action({"kind": "net.connect", "tool": "runner", "host": host, "port": 443, "scheme": "https", "addresses": [addr], "resolved": true}),
	{"trusted": {"worker": repo_worker}},
)

test_runner_connects_to_a_repository_host if {
	runner.decision.result == "allow" with input as runner_connect("git.example", "192.0.2.10")
}

test_runner_connection_elsewhere_denied if {
	runner.decision.result == "deny" with input as runner_connect("evil.example", "192.0.2.10")
}

test_runner_connection_to_a_private_address_denied if {
	runner.decision.result == "deny" with input as runner_connect("git.example", "10.0.0.5")
}

test_an_agent_tool_cannot_reach_a_repository_host_by_it if {
	i := object.union(
		with_action({"kind": "net.connect", "tool": "WebFetch", "host": "git.example", "port": 443, "scheme": "https", "addresses": ["192.0.2.10"], "resolved": true}),
		{"trusted": {"worker": repo_worker}},
	)
	runner.decision.result == "deny" with input as i
}

test_runner_connects_to_a_forge_api_host if {
	runner.decision.result == "allow" with input as runner_connect("api.git.example", "192.0.2.11")
}

test_a_forge_api_host_is_not_a_git_host if {
	d := runner.decision with input as git_op("git.fetch", {"remote": "https://api.git.example/o/r.git", "host": "api.git.example"})
	d.result == "deny"
}

test_push_updating_a_branch_when_the_default_branch_is_unknown_denied if {
	op := {
		"remote": "https://git.example/o/r.git", "host": "git.example",
		"branch": "runner/fix-1", "mode": "update", "session_branch": "runner/fix-1",
	}
	d := runner.decision with input as git_op("git.push", op)
	d.result == "deny"
	reason_has(d, "does not say which branch is its default")
	n := runner.decision with input as git_op("git.push", object.union(op, {"mode": "new"}))
	n.result == "allow"
}
