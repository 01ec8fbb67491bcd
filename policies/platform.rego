# Side effects beyond the sandbox. workspace.write (a comment, a status, a
# todo on the team workspace) only as the pinned agent version grants;
# external effects (git push, opening a pull request, sending a message)
# ask a person unless granted.
package runner

import rego.v1

# A grant list that is not a list grants nothing.
granted_workspace_writes := {op | some op in v} if {
	v := grants.workspace_write
	is_array(v)
} else := set()

granted_external := {op | some op in v} if {
	v := grants.external
	is_array(v)
} else := set()

# The operation, read with a default (decision.rego says why): an action
# that names none is denied, never asked about.
operation := o if {
	kind in platform_kinds
	o := input.action.operation
	is_string(o)
} else := "" if {
	kind in platform_kinds
}

platform_deny contains "the action names no operation" if operation == ""

platform_deny contains msg if {
	kind == "workspace.write"
	not operation in granted_workspace_writes
	msg := sprintf("workspace write %v is not granted to this agent", [operation])
}

platform_allow contains msg if {
	kind == "workspace.write"
	operation in granted_workspace_writes
	msg := sprintf("workspace write %v is granted to this agent", [operation])
}

platform_ask contains msg if {
	kind == "external"
	not operation in granted_external
	msg := sprintf("external action %v needs a person's approval", [operation])
}

platform_allow contains msg if {
	kind == "external"
	operation in granted_external
	msg := sprintf("external action %v is granted to this agent", [operation])
}
