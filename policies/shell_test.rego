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
