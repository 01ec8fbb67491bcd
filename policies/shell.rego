# Shell commands: allowed with the working directory inside the workspace,
# confined to it — read-only system roots, the workspace writable except its
# protected paths, and no network unless trusted config grants hosts (then
# every connection still goes through the runner's proxy and its own
# net.connect decision). The hidden paths (secrets) are masked inside the
# sandbox, as file tools are kept from them.
package runner

import rego.v1

system_roots := ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc"]

# The command, read with a default (decision.rego says why): a missing
# command is an empty one.
command := c if {
	c := input.action.command
	is_string(c)
} else := ""

# The trusted settings the confinement reads: malformed, they deny
# (decision.rego).
shell_settings := fs_settings

shell_deny contains msg if {
	object.get(input, ["action", "cwd_in_workspace"], false) != true
	msg := sprintf("working directory %v is outside the workspace", [object.get(input, ["action", "cwd"], "(none)")])
}

shell_deny contains "the command is empty" if {
	trim_space(command) == ""
}

shell_allow contains msg if {
	input.action.cwd_in_workspace == true
	msg := sprintf("shell command confined to the workspace, network %v", [shell_network])
}

default shell_network := "none"

shell_network := "proxy" if count(granted_hosts) > 0

# The operator's extra read-only roots (`sandbox.readable_roots`: a
# toolchain such as /opt/rustup), granted to every shell command. A
# policy that leaves them out narrows the sandbox: what is not named here
# is neither bound into it nor readable under Landlock. Entries that are
# not absolute paths are skipped (read as absent, they only allow less).
operator_roots := [r |
	roots := object.get(worker, ["sandbox", "readable_roots"], [])
	is_array(roots)
	some r in roots
	is_string(r)
	startswith(r, "/")
	r != "/"
]

# The session's roots, when it has them: the skills readable (bound read
# only at /skills), the artifacts directory writable (bound at /data).
shell_skills_roots := [d | d := session_root_dir("skills"); d != ""]

shell_artifacts_roots := [d | d := session_root_dir("artifacts"); d != ""]

confine := {
	"readable_roots": array.concat(array.concat(array.concat(system_roots, operator_roots), [workspace_dir]), array.concat(shell_skills_roots, shell_artifacts_roots)),
	"writable_roots": array.concat([workspace_dir], shell_artifacts_roots),
	"read_only_paths": read_only_paths,
	"hidden_paths": hidden_globs,
	"network": shell_network,
} if kind == "shell.exec"
