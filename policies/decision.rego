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
} else := object.union({"result": "ask", "reasons": sort([r | some r in all_ask])}, confinement) if {
	count(all_ask) > 0
} else := object.union({"result": "allow", "reasons": sort([r | some r in kind_allow])}, confinement) if {
	count(kind_allow) > 0
}

# Input fields are read with defaults, never as bare paths that may be
# undefined: a missing field, or one of the wrong type, reads as the value
# that denies ("" for a string, [] for a list, {} for an object; a flag
# counts only when it is `true`). Engines differ on undefined operands:
# OPA rewrites `not x in s` to `t := s; not x in t`, so when s (or x) is
# undefined the rule body fails and the deny does not fire
# (open-policy-agent/opa#1877), while regorus makes it true. So no rule
# negates anything that can be undefined, and every set a rule negates
# membership in is always defined. Nor may a rule rely on a builtin's error
# to deny: regorus' VM reads it as undefined where its interpreter and OPA
# fail the evaluation, so values are type-checked before builtins see them.
kind := object.get(input, ["action", "kind"], "")

tool := object.get(input, ["action", "tool"], "")

all_deny := kind_deny | deny

all_ask := kind_ask | tool_ask

# Dispatch on the kind: only that kind's rules are evaluated.
kind_deny := fs_deny if {
	kind in fs_kinds
} else := shell_deny if {
	kind == "shell.exec"
} else := net_deny if {
	kind == "net.connect"
} else := platform_deny if {
	kind in platform_kinds
} else := mcp_deny if {
	kind == "mcp.call"
} else := search_deny if {
	kind == "web.search"
} else := set()

kind_ask := fs_ask if {
	kind in fs_kinds
} else := platform_ask if {
	kind in platform_kinds
} else := mcp_ask if {
	kind == "mcp.call"
} else := set()

kind_allow := fs_allow if {
	kind in fs_kinds
} else := shell_allow if {
	kind == "shell.exec"
} else := net_allow if {
	kind == "net.connect"
} else := platform_allow if {
	kind in platform_kinds
} else := mcp_allow if {
	kind == "mcp.call"
} else := search_allow if {
	kind == "web.search"
} else := set()

platform_kinds := {"workspace.write", "external"}

# The confinement of an allowed action, when its kind defines one.
default confinement := {}

confinement := {"confine": c} if c := confine

known_kinds := {"fs.read", "fs.write", "shell.exec", "net.connect", "workspace.write", "external", "mcp.call", "web.search"}

deny contains msg if {
	not kind in known_kinds
	msg := sprintf("unknown action kind %v", [object.get(input, ["action", "kind"], "(none)")])
}

# Only tools the pinned agent version enables may act at all. A missing or
# mistyped list enables nothing.
enabled_tools := t if {
	t := input.trusted.agent.enabled_tools
	is_array(t)
} else := []

deny contains msg if {
	not tool in enabled_tools
	not runner_acting
	not mcp_tool_offered
	msg := sprintf("tool %v is not enabled by the pinned agent version", [object.get(input, ["action", "tool"], "(none)")])
}

# Tools the pinned agent version disallows never act, whatever
# enabled_tools says. A missing or mistyped list disallows nothing more
# (enabled_tools already denies what it lacks).
disallowed_tools := t if {
	t := input.trusted.agent.disallowed_tools
	is_array(t)
} else := []

deny contains msg if {
	tool in disallowed_tools
	msg := sprintf("tool %v is disallowed by the pinned agent version", [tool])
}

# A tool whose permission policy is `always_ask` asks a person before an
# action the rules would allow (with the confinement that then applies);
# an action they deny stays denied, and one no rule allows stays denied
# by default. A mistyped policy map, or a value other than the string
# "always_ask", asks for nothing more.
tool_policies := p if {
	p := input.trusted.agent.tool_policies
	is_object(p)
} else := {}

tool_ask contains msg if {
	count(kind_allow) > 0
	object.get(tool_policies, tool, "") == "always_ask"
	msg := sprintf("the permission policy of tool %v is always_ask: a person approves each of its actions", [tool])
}

# The runner itself acts for the session's repository: it connects to the
# git host, fetches, pushes and opens the pull request (the agent never
# holds the credentials). No tool may be called `runner` (the registry
# refuses the name), so only the runner's own actions carry it; their
# rules are in net.rego and platform.rego.
default runner_acting := false

runner_acting if {
	tool == "runner"
	kind in {"net.connect", "external"}
}

# ...and it delivers the session's artifacts at its end (platform.rego).
runner_acting if {
	tool == "runner"
	kind == "workspace.write"
	object.get(input, ["action", "operation"], "") == "artifact.deliver"
}

# Trusted settings, with empty defaults so a missing section never errors.
worker := w if {
	w := input.trusted.worker
	is_object(w)
} else := {}

grants := g if {
	g := input.trusted.agent.grants
	is_object(g)
} else := {}

# A trusted section or list of the wrong type denies: read as empty, it
# would drop the deny lists and protected paths it holds. Each kind names
# the settings its rules read (`fs_settings`, ...) as [path, type, the
# empty value it reads as when absent]; only those are checked. (A
# malformed `enabled_tools`, grant or allow list needs no check: read as
# empty, it only allows less. Nor does an entry that is not a string: the
# rules skip it, and it could name no path or host anyway.)
kind_settings := fs_settings if {
	kind in fs_kinds
} else := shell_settings if {
	kind == "shell.exec"
} else := net_settings if {
	kind == "net.connect"
} else := mcp_settings if {
	kind == "mcp.call"
} else := []

setting_types := {"object": "an object", "array": "a list"}

deny contains msg if {
	some s in kind_settings
	type_name(object.get(input, s[0], s[2])) != s[1]
	msg := sprintf("trusted setting %v is not %v: fix the configuration", [concat(".", s[0]), setting_types[s[1]]])
}

# The workspace the file and shell tools are confined to: an absolute path,
# or "" (and then they are denied: there is nothing to confine them to).
workspace_dir := d if {
	d := input.session.workspace_dir
	is_string(d)
	startswith(d, "/")
} else := ""

deny contains "the session has no absolute workspace directory to confine the tool to" if {
	kind in confined_kinds
	workspace_dir == ""
}

confined_kinds := {"fs.read", "fs.write", "shell.exec"}
