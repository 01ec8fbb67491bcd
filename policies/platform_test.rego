# Tests of workspace.write and external.
package runner_test

import data.runner
import rego.v1

op(kind, operation) := with_action({"kind": kind, "tool": "Bash", "operation": operation})

grant(i, g) := object.union(i, {"trusted": {"agent": {"grants": g}}})

test_workspace_write_denied_without_grant if {
	d := runner.decision with input as op("workspace.write", "comment")
	d.result == "deny"
}

test_workspace_write_allowed_with_grant if {
	runner.decision.result == "allow" with input as grant(op("workspace.write", "comment"), {"workspace_write": ["comment"]})
}

test_workspace_write_grant_is_per_operation if {
	runner.decision.result == "deny" with input as grant(op("workspace.write", "status"), {"workspace_write": ["comment"]})
}

test_external_asks_without_grant if {
	d := runner.decision with input as op("external", "git.push")
	d.result == "ask"
	some r in d.reasons
	contains(r, "approval")
}

test_external_allowed_with_grant if {
	runner.decision.result == "allow" with input as grant(op("external", "pull_request.open"), {"external": ["pull_request.open"]})
}

test_external_with_disabled_tool_denied_not_asked if {
	i := object.union(op("external", "git.push"), {"trusted": {"agent": {"enabled_tools": ["Read"]}}})
	runner.decision.result == "deny" with input as i
}

# Missing or mistyped fields deny under every engine (decision.rego says why).
test_missing_operation_denied_not_asked if {
	every kind in ["external", "workspace.write"] {
		d := runner.decision with input as json.remove(op(kind, "x"), ["action/operation"])
		d.result == "deny"
		some r in d.reasons
		r == "the action names no operation"
	}
}

test_malformed_grants_grant_nothing if {
	runner.decision.result == "deny" with input as grant(op("workspace.write", "comment"), {"workspace_write": "comment"})
	runner.decision.result == "ask" with input as grant(op("external", "git.push"), {"external": {"git.push": true}})
}

deliver(tool, art) := {"kind": "workspace.write", "tool": tool, "operation": "artifact.deliver", "target": "session", "artifact": art}

good_artifact := {"path": "/data/report.md", "size_bytes": 12, "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "media_type": "text/markdown"}

with_deliver(a) := object.union(with_action(a), {"trusted": {"agent": {"enabled_tools": ["Read", "DeliverArtifacts"], "grants": {}}}})

test_runner_delivers_an_artifact_when_enabled if {
	runner.decision.result == "allow" with input as with_deliver(deliver("runner", good_artifact))
}

test_artifact_delivery_denied_without_the_tool if {
	d := runner.decision with input as with_action(deliver("runner", good_artifact))
	d.result == "deny"
	some r in d.reasons
	contains(r, "DeliverArtifacts is not enabled")
}

test_an_agent_tool_cannot_deliver_artifacts if {
	every t in ["Write", "DeliverArtifacts", "Bash"] {
		i := object.union(with_deliver(deliver(t, good_artifact)), {"trusted": {"agent": {"enabled_tools": ["Write", "Bash", "DeliverArtifacts"], "grants": {"workspace_write": ["artifact.deliver"]}}}})
		runner.decision.result == "deny" with input as i
	}
}

test_artifact_delivery_needs_a_file_under_data if {
	every a in [
		{},
		object.union(good_artifact, {"path": "/etc/passwd"}),
		object.union(good_artifact, {"path": "/data/../etc/passwd"}),
		object.union(good_artifact, {"sha256": "x"}),
		object.union(good_artifact, {"size_bytes": "12"}),
		json.remove(good_artifact, ["media_type"]),
	] {
		runner.decision.result == "deny" with input as with_deliver(deliver("runner", a))
	}
}
