# Side effects beyond the sandbox. workspace.write (a comment, a status, a
# todo on the team workspace) only as the pinned agent version grants;
# external effects (git push, opening a pull request, sending a message)
# ask a person unless granted.
package runner

import rego.v1

granted_workspace_writes := {op | some op in object.get(grants, "workspace_write", [])}

granted_external := {op | some op in object.get(grants, "external", [])}

platform_deny contains msg if {
	input.action.kind == "workspace.write"
	not input.action.operation in granted_workspace_writes
	msg := sprintf("workspace write %v is not granted to this agent", [input.action.operation])
}

platform_allow contains msg if {
	input.action.kind == "workspace.write"
	input.action.operation in granted_workspace_writes
	msg := sprintf("workspace write %v is granted to this agent", [input.action.operation])
}

platform_ask contains msg if {
	input.action.kind == "external"
	not input.action.operation in granted_external
	msg := sprintf("external action %v needs a person's approval", [input.action.operation])
}

platform_allow contains msg if {
	input.action.kind == "external"
	input.action.operation in granted_external
	msg := sprintf("external action %v is granted to this agent", [input.action.operation])
}
