# The default runner policy: how the decision is assembled.
#
# Each file owns the rules of its action kinds and adds reasons to that
# kind's `*_deny`, `*_ask` and `*_allow` sets; `deny` collects reasons that
# apply to every kind (add your own `deny contains ...` rules there). This
# file turns them into the one decision: any deny reason wins, then any ask
# reason, then allow; an action no rule allows is denied (deny by default).
# An ask carries the confinement that applies once a person approves.
# Only the sets of the action's own kind are evaluated (an `else` chain
# stops at the first kind that matches), which keeps a decision short.
#
# Nothing here, or in any rule of this package, reads input.untrusted:
# untrusted work can never widen a decision.
package runner

import rego.v1

default decision := {
	"result": "deny",
	"reasons": ["no rule allows this action (deny by default)"],
}

decision := {"result": "deny", "reasons": sort([r | some r in all_deny])} if {
	count(all_deny) > 0
} else := object.union({"result": "ask", "reasons": sort([r | some r in kind_ask])}, confinement) if {
	count(kind_ask) > 0
} else := object.union({"result": "allow", "reasons": sort([r | some r in kind_allow])}, confinement) if {
	count(kind_allow) > 0
}

kind := input.action.kind

all_deny := kind_deny | deny

# Dispatch on the kind: only that kind's rules are evaluated.
kind_deny := fs_deny if {
	kind in fs_kinds
} else := shell_deny if {
	kind == "shell.exec"
} else := net_deny if {
	kind == "net.connect"
} else := platform_deny if {
	kind in platform_kinds
} else := set()

kind_ask := fs_ask if {
	kind in fs_kinds
} else := platform_ask if {
	kind in platform_kinds
} else := set()

kind_allow := fs_allow if {
	kind in fs_kinds
} else := shell_allow if {
	kind == "shell.exec"
} else := net_allow if {
	kind == "net.connect"
} else := platform_allow if {
	kind in platform_kinds
} else := set()

platform_kinds := {"workspace.write", "external"}

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
