# The default runner policy: how the decision is assembled.
#
# Every file in this package adds reasons to one of three sets — `deny`,
# `ask`, `allow` — and this file turns them into the one decision:
# any deny reason wins, then any ask reason, then allow; an action no rule
# allows is denied (deny by default). Nothing here, or in any rule of this
# package, reads input.untrusted: untrusted work can never widen a decision.
package runner

import rego.v1

default decision := {
	"result": "deny",
	"reasons": ["no rule allows this action (deny by default)"],
}

decision := {"result": "deny", "reasons": sort([r | some r in deny])} if {
	count(deny) > 0
} else := {"result": "ask", "reasons": sort([r | some r in ask])} if {
	count(ask) > 0
} else := object.union({"result": "allow", "reasons": sort([r | some r in allow])}, confinement) if {
	count(allow) > 0
}

# The confinement of an allowed action, when its kind defines one.
default confinement := {}

confinement := {"confine": c} if c := confine

known_kinds := {"fs.read", "fs.write", "shell.exec", "net.connect", "workspace.write", "external"}

deny contains msg if {
	not input.action.kind in known_kinds
	msg := sprintf("unknown action kind %v", [object.get(input, ["action", "kind"], "(none)")])
}

# Only tools the pinned agent version enables may act at all.
deny contains msg if {
	not input.action.tool in input.trusted.agent.enabled_tools
	msg := sprintf("tool %v is not enabled by the pinned agent version", [object.get(input, ["action", "tool"], "(none)")])
}

# Trusted settings, with empty defaults so a missing section never errors.
worker := object.get(input, ["trusted", "worker"], {})

grants := object.get(input, ["trusted", "agent", "grants"], {})

workspace_dir := input.session.workspace_dir
