# Tests of the shell rules.
package runner_test

import data.runner
import rego.v1

sh(cmd, cwd_in_ws) := with_action({"kind": "shell.exec", "tool": "Bash", "command": cmd, "cwd": ".", "cwd_in_workspace": cwd_in_ws, "network": "none"})

test_shell_in_workspace_allowed_and_confined if {
	d := runner.decision with input as sh("cargo test", true)
	d.result == "allow"
	d.confine.writable_roots == [ws]
	d.confine.network == "none"
	"/usr" in d.confine.readable_roots
	ws in d.confine.readable_roots
	".git/config" in d.confine.read_only_paths
}

test_shell_grants_the_operator_readable_roots if {
	i := object.union(sh("cargo --version", true), {"trusted": {"worker": {"sandbox": {"readable_roots": ["/opt/rustup", "relative", 7, "/"]}}}})
	d := runner.decision with input as i
	d.result == "allow"
	"/opt/rustup" in d.confine.readable_roots
	not "relative" in d.confine.readable_roots
	not "/" in d.confine.readable_roots
	not 7 in d.confine.readable_roots
	d.confine.writable_roots == [ws]
}

test_shell_readable_roots_of_the_wrong_type_grant_nothing_more if {
	i := object.union(sh("ls", true), {"trusted": {"worker": {"sandbox": {"readable_roots": "/opt/rustup"}}}})
	d := runner.decision with input as i
	d.result == "allow"
	not "/opt/rustup" in d.confine.readable_roots
}

test_shell_cwd_outside_denied if {
	d := runner.decision with input as sh("ls", false)
	d.result == "deny"
	some r in d.reasons
	contains(r, "outside the workspace")
}

test_shell_empty_command_denied if {
	runner.decision.result == "deny" with input as sh("   ", true)
}

test_shell_network_none_without_grants_even_if_requested if {
	i := object.union(sh("curl x", true), {"action": {"network": "proxy"}})
	d := runner.decision with input as i
	d.confine.network == "none"
}

test_shell_network_proxy_with_worker_grant if {
	i := object.union(sh("curl x", true), {"trusted": {"worker": {"network": {"allow_hosts": ["crates.io"]}}}})
	d := runner.decision with input as i
	d.confine.network == "proxy"
}

test_shell_network_proxy_with_agent_grant if {
	i := object.union(sh("curl x", true), {"trusted": {"agent": {"grants": {"network": {"allow_hosts": ["pypi.org"]}}}}})
	runner.decision.confine.network == "proxy" with input as i
}

test_shell_confine_carries_hidden_globs if {
	d := runner.decision with input as sh("cat .env", true)
	d.result == "allow"
	d.confine.hidden_paths == runner.hidden_globs
	every g in runner.builtin_hidden_globs {
		g in d.confine.hidden_paths
	}
	i := object.union(sh("ls", true), {"trusted": {"worker": {"hidden_paths": ["secrets/**"]}}})
	"secrets/**" in runner.decision.confine.hidden_paths with input as i
}

# Missing fields deny under every engine (decision.rego says why).
test_shell_missing_command_denied if {
	i := json.remove(sh("ls", true), ["action/command"])
	d := runner.decision with input as i
	d.result == "deny"
	some r in d.reasons
	r == "the command is empty"
}

test_shell_command_not_a_string_denied if {
	runner.decision.result == "deny" with input as object.union(sh("ls", true), {"action": {"command": ["ls"]}})
}

test_shell_missing_cwd_flag_denied if {
	i := json.remove(sh("ls", true), ["action/cwd_in_workspace", "action/cwd"])
	d := runner.decision with input as i
	d.result == "deny"
	some r in d.reasons
	contains(r, "working directory (none) is outside the workspace")
}

test_shell_cwd_flag_must_be_true_not_truthy if {
	runner.decision.result == "deny" with input as sh("ls", "yes")
}

test_shell_malformed_worker_lists_deny if {
	every field in ["protected_paths", "hidden_paths"] {
		i := object.union(sh("ls", true), {"trusted": {"worker": {field: "deploy/**"}}})
		d := runner.decision with input as i
		d.result == "deny"
		some r in d.reasons
		contains(r, "is not a list")
	}
}

test_shell_confinement_names_the_session_roots if {
	i := object.union(with_action({"kind": "shell.exec", "tool": "Bash", "command": "ls", "cwd": ".", "cwd_in_workspace": true}), {"session": {"id": "s1", "attempt": 1, "workspace_dir": ws, "skills_dir": "/srv/s1.skills", "artifacts_dir": "/srv/s1.data"}})
	d := runner.decision with input as i
	d.result == "allow"
	"/srv/s1.skills" in d.confine.readable_roots
	"/srv/s1.data" in d.confine.readable_roots
	d.confine.writable_roots == [ws, "/srv/s1.data"]
	not "/srv/s1.skills" in d.confine.writable_roots
}

test_shell_confinement_without_roots_is_the_workspace if {
	d := runner.decision with input as with_action({"kind": "shell.exec", "tool": "Bash", "command": "ls", "cwd": ".", "cwd_in_workspace": true})
	d.confine.writable_roots == [ws]
}
