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
	operation != "artifact.deliver"
	not operation in granted_workspace_writes
	msg := sprintf("workspace write %v is not granted to this agent", [operation])
}

platform_allow contains msg if {
	kind == "workspace.write"
	operation != "artifact.deliver"
	operation in granted_workspace_writes
	msg := sprintf("workspace write %v is granted to this agent", [operation])
}

# DeliverArtifacts: at the session's end the runner (never an agent's
# tool, whatever it is granted) uploads each file the session left under
# /data, allowed only when the pinned agent version enables the tool and
# the `artifact` names a file under /data with its size and digest.
artifact := a if {
	a := input.action.artifact
	is_object(a)
} else := {}

default artifact_well_formed := false

artifact_well_formed if {
	p := artifact.path
	is_string(p)
	startswith(p, "/data/")
	not contains(p, "/../")
	not endswith(p, "/..")
	is_number(artifact.size_bytes)
	artifact.size_bytes >= 0
	is_string(artifact.sha256)
	count(artifact.sha256) == 64
	is_string(artifact.media_type)
}

platform_deny contains "only the runner delivers artifacts, at the session's end" if {
	kind == "workspace.write"
	operation == "artifact.deliver"
	not runner_acting
}

platform_deny contains "DeliverArtifacts is not enabled by the pinned agent version" if {
	runner_acting
	operation == "artifact.deliver"
	not "DeliverArtifacts" in enabled_tools
}

platform_deny contains "the artifact names no file under /data with its size, sha256 and media type" if {
	runner_acting
	operation == "artifact.deliver"
	not artifact_well_formed
}

platform_allow contains msg if {
	runner_acting
	operation == "artifact.deliver"
	"DeliverArtifacts" in enabled_tools
	artifact_well_formed
	msg := sprintf("delivery of artifact %v (DeliverArtifacts is enabled)", [artifact.path])
}

platform_ask contains msg if {
	kind == "external"
	not runner_acting
	not operation in granted_external
	msg := sprintf("external action %v needs a person's approval", [operation])
}

platform_allow contains msg if {
	kind == "external"
	not runner_acting
	operation in granted_external
	msg := sprintf("external action %v is granted to this agent", [operation])
}

# The runner's repository operations: checking the session's repository
# out (`git.fetch`), pushing its work (`git.push`) and opening the pull
# request (`pr.create`). Each is allowed only for a repository host the
# worker is configured for (`[[repositories.hosts]]`, which holds the
# credentials); a push only to the session's own target branch, never to
# the remote's default branch and never as a force push. No rule asks: a
# repository operation happens before or after the agent's turn, when
# nobody is there to answer.
runner_operations := {"git.fetch", "git.push", "pr.create"}

git := g if {
	kind == "external"
	g := input.action.git
	is_object(g)
} else := {}

git_field(name) := v if {
	v := git[name]
	is_string(v)
} else := ""

repository_hosts := {lower(h) | some h in v; is_string(h)} if {
	v := worker.repositories.hosts
	is_array(v)
} else := set()

platform_deny contains msg if {
	runner_acting
	kind == "external"
	not operation in runner_operations
	msg := sprintf("the runner performs no external action %v", [operation])
}

platform_deny contains msg if {
	runner_acting
	kind == "external"
	operation in runner_operations
	not git_field("host") in repository_hosts
	msg := sprintf("%v is not a repository host of this worker (add it under [[repositories.hosts]])", [git_field("host")])
}

platform_deny contains "a force push would drop commits on the remote branch; push to a new branch instead" if {
	runner_acting
	operation == "git.push"
	git_field("mode") == "force"
}

platform_deny contains msg if {
	runner_acting
	operation == "git.push"
	not git_field("mode") in {"new", "update"}
	git_field("mode") != "force"
	msg := sprintf("push mode %v is not new, update or force", [git_field("mode")])
}

platform_deny contains msg if {
	runner_acting
	operation in {"git.push", "pr.create"}
	git_field("branch") != git_field("session_branch")
	msg := sprintf("branch %v is not this session's target branch %v", [git_field("branch"), git_field("session_branch")])
}

platform_deny contains msg if {
	runner_acting
	operation in {"git.push", "pr.create"}
	git_field("branch") == ""
	msg := "the operation names no branch"
}

platform_deny contains msg if {
	runner_acting
	operation == "git.push"
	git_field("branch") == git_field("default_branch")
	msg := sprintf("%v is the remote's default branch; the runner pushes work to its own branch", [git_field("branch")])
}

# Unknown default branch: the rule above cannot hold, so only a push that
# creates a branch (and so overwrites nothing) goes ahead.
platform_deny contains msg if {
	runner_acting
	operation == "git.push"
	git_field("default_branch") == ""
	git_field("mode") != "new"
	msg := sprintf("the remote does not say which branch is its default, so a push that changes the existing branch %v cannot be shown to spare it; push to a new branch name", [git_field("branch")])
}

platform_allow contains msg if {
	runner_acting
	operation == "git.fetch"
	msg := sprintf("checking out %v from %v, a repository host of this worker", [git_field("remote"), git_field("host")])
}

platform_allow contains msg if {
	runner_acting
	operation == "git.push"
	msg := sprintf("pushing the session's branch %v (%v)", [git_field("branch"), git_field("mode")])
}

platform_allow contains msg if {
	runner_acting
	operation == "pr.create"
	msg := sprintf("opening a pull request from %v into %v", [git_field("branch"), git_field("base")])
}
