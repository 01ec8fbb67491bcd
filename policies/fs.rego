# File tools: fs.read inside the workspace; fs.write inside the workspace
# except protected paths and git's state; hidden paths (secrets) neither
# read nor written.
#
# Paths arrive normalised (relative to the workspace, `..` and symlinks
# resolved) with `in_workspace` and `path_components` set by the runner, so
# the built-in lists are checked with set lookups on components instead of
# pattern loops: a decision costs microseconds, not a glob compilation per
# pattern. Paths the worker config adds are globs over the relative path
# (`*` stays within a directory, `**` crosses them). An action without a
# path or its components is denied: every check below reads them.
#
# Git's own state (anything with a `.git` component, and whatever the runner
# flags as `git_state`: the real git directory behind a `gitdir:` file) is
# never written by file tools; git writes it, inside the Bash sandbox.
package runner

import rego.v1

# Protected at the workspace root: the entry itself and everything below it.
protected_at_root := {
	".gitconfig", ".gitmodules", ".bashrc", ".bash_profile", ".bash_login",
	".bash_logout", ".profile", ".zshrc", ".zshenv", ".zprofile", ".inputrc",
}

# Entries of any `.git` directory, at any depth, that run code or redirect git.
protected_in_git_dir := {"hooks", "config"}

# Hidden at any depth (they hold secrets): exact names, and name prefixes and
# extensions of the last component.
hidden_names := {".env", ".ssh", ".netrc", ".git-credentials"}

hidden_name_prefixes := [".env."]

hidden_extensions := [".pem", ".key"]

# Read-only paths (relative to the workspace) the sandboxes enforce even
# under a writable grant: the literal protected entries, written out (a test
# checks they are exactly the entries above) so a decision does not rebuild
# them.
protected_read_only := [
	".git/hooks", ".git/config", ".bash_login", ".bash_logout", ".bash_profile",
	".bashrc", ".gitconfig", ".gitmodules", ".inputrc", ".profile", ".zprofile",
	".zshenv", ".zshrc",
]

worker_protected := v if {
	v := worker.protected_paths
	is_array(v)
} else := []

worker_hidden := v if {
	v := worker.hidden_paths
	is_array(v)
} else := []

# The trusted settings these rules read: malformed, they deny (decision.rego).
fs_settings := [
	[["trusted", "worker"], "object", {}],
	[["trusted", "worker", "protected_paths"], "array", []],
	[["trusted", "worker", "hidden_paths"], "array", []],
]

# The action's path and its components, read with defaults (decision.rego
# says why); without them the action is denied below. The workspace root
# itself has no components.
path := p if {
	p := input.action.path
	is_string(p)
} else := ""

default has_components := false

has_components if {
	c := input.action.path_components
	is_array(c)
	every x in c {
		is_string(x)
	}
}

components := input.action.path_components if has_components

default components := []

last_component := components[count(components) - 1] if count(components) > 0

default last_component := ""

default is_protected := false

default is_hidden := false

is_protected if components[0] in protected_at_root

is_protected if {
	some i, c in components
	c == ".git"
	components[i + 1] in protected_in_git_dir
}

is_protected if {
	some m in worker_protected_matchers
	matches(m, path)
}

is_hidden if {
	some c in components
	c in hidden_names
}

is_hidden if {
	some p in hidden_name_prefixes
	startswith(last_component, p)
}

is_hidden if {
	some e in hidden_extensions
	endswith(last_component, e)
}

is_hidden if {
	some m in worker_hidden_matchers
	matches(m, path)
}

# Patterns of the worker config, matched with string operations for the
# common shapes — `dir/**` (everything below the directory), `**/name` (a
# name at any depth), `*.ext` (an extension at the root) and `**/*.ext` (an
# extension anywhere), a literal path (itself and everything below) — and
# with glob.match for any other shape. `*` never crosses a `/`. Each
# pattern is classified once per decision into a matcher, `[shape, ...]`,
# so a path is checked against it with a comparison or two.
worker_protected_matchers := [matcher(p) | some p in worker_protected; is_string(p)]

worker_hidden_matchers := [matcher(p) | some p in worker_hidden; is_string(p)]

matcher(p) := ["subtree", concat("", [prefix, "/"])] if {
	endswith(p, "/**")
	prefix := trim_suffix(p, "/**")
	not contains(prefix, "*")
} else := ["anywhere", concat("", ["/", rest, "/"]), rest, has_glob_syntax(rest)] if {
	startswith(p, "**/")
	rest := trim_prefix(p, "**/")
	not contains(rest, "*")
} else := ["extension", concat("", [".", ext]), startswith(p, "**/") == false] if {
	ext := trim_prefix(trim_prefix(p, "**/"), "*.")
	ext != trim_prefix(p, "**/")
	not contains(ext, "*")
	not contains(ext, "/")
} else := ["literal", p, concat("", [p, "/"])] if {
	not contains(p, "*")
	not has_glob_syntax(p)
} else := ["glob", p]

has_glob_syntax(p) if contains(p, "?")

has_glob_syntax(p) if contains(p, "[")

has_glob_syntax(p) if contains(p, "{")

default has_glob_syntax(_) := false

matches(m, rel) if {
	m[0] == "literal"
	rel == m[1]
}

matches(m, rel) if {
	m[0] == "literal"
	startswith(rel, m[2])
}

matches(m, rel) if {
	m[0] == "subtree"
	startswith(rel, m[1])
}

# `**/name` matches the name at any depth, and everything below it.
matches(m, rel) if {
	m[0] == "anywhere"
	contains(concat("", ["/", rel, "/"]), m[1])
}

matches(m, rel) if {
	m[0] == "anywhere"
	m[3] == true
	glob.match(m[2], ["/"], rel)
}

# `*.ext` matches at the root only; `**/*.ext` at any depth.
matches(m, rel) if {
	m[0] == "extension"
	endswith(last_component, m[1])
	not root_only_and_nested(m, rel)
}

matches(m, rel) if {
	m[0] == "glob"
	glob.match(m[1], ["/"], rel)
}

root_only_and_nested(m, rel) if {
	m[2] == true
	contains(rel, "/")
}

fs_kinds := {"fs.read", "fs.write"}

# The session's roots (toolset.md §3): host directories the runner made for
# this session and maps at fixed sandbox paths — `skills` (`/skills`, read
# only: the pinned skills) and `artifacts` (`/data`, writable: what the
# session delivers). A file there arrives with `root` naming it, `path` its
# sandbox path and `path_abs` its host path under the root's directory
# (the runner resolved symlinks; a path that left the directory arrives
# with `root: ""` and is outside everything). A root the session lacks,
# or a host path not under its directory, is not a root.
session_root_dir(name) := d if {
	name == "skills"
	d := input.session.skills_dir
	is_string(d)
	startswith(d, "/")
	d != "/"
} else := d if {
	name == "artifacts"
	d := input.session.artifacts_dir
	is_string(d)
	startswith(d, "/")
	d != "/"
} else := ""

file_root := r if {
	r := input.action.root
	is_string(r)
} else := ""

default in_session_root := false

in_session_root if {
	file_root in {"skills", "artifacts"}
	object.get(input, ["action", "in_workspace"], false) == false
	dir := session_root_dir(file_root)
	dir != ""
	abs := object.get(input, ["action", "path_abs"], "")
	is_string(abs)
	under_dir(abs, dir)
}

under_dir(abs, dir) if abs == dir

under_dir(abs, dir) if startswith(abs, concat("", [dir, "/"]))

fs_deny contains msg if {
	object.get(input, ["action", "in_workspace"], false) != true
	not in_session_root
	msg := sprintf("%v is outside the workspace", [path])
}

fs_deny contains msg if {
	kind == "fs.write"
	in_session_root
	file_root == "skills"
	msg := sprintf("%v is in /skills: skills are read-only", [path])
}

fs_allow contains msg if {
	kind == "fs.read"
	in_session_root
	msg := sprintf("read of %v in the session's %v root", [path, file_root])
}

fs_allow contains msg if {
	kind == "fs.write"
	in_session_root
	file_root == "artifacts"
	msg := sprintf("write of %v in the session's artifacts (delivered at the end)", [path])
}

fs_deny contains "the action names no path" if path == ""

fs_deny contains msg if {
	not has_components
	msg := sprintf("%v comes without its path components (the runner sets them): its protected and hidden entries cannot be checked", [path])
}

fs_deny contains msg if {
	input.action.in_workspace == true
	is_hidden
	msg := sprintf("%v is a hidden path (it may hold secrets): tools may not read or write it", [path])
}

fs_deny contains msg if {
	kind == "fs.write"
	input.action.in_workspace == true
	is_protected
	msg := sprintf("%v is a protected path: tools may not write it", [path])
}

fs_deny contains msg if {
	kind == "fs.write"
	input.action.in_workspace == true
	is_git_state

	# One reason per path: a protected entry of git's (hooks, config) says
	# so already.
	not is_protected
	msg := sprintf("%v is git's state (a .git entry or inside a repository's git directory): file tools may not write it, only git does, inside the Bash sandbox", [path])
}

# Git's state, which git writes inside the Bash sandbox (where the runner
# checks its control files after each command and puts them back) and file
# tools never do: a `.git` directory's entries at any depth, and a `.git`
# file itself (it redirects git to another directory)...
is_git_state if ".git" in components

# ...and a git directory under another name (the target of a `gitdir:`
# file, a separated work tree's repository), which the runner flags.
# Reading either stays allowed.
is_git_state if input.action.git_state == true

# CI workflows run with the repository's secrets: a file tool changing one
# needs a person's approval. (A shell command cannot change an existing
# workflow file only if you list `.github/workflows` in
# files.protected_paths; that also makes it unwritable for file tools.)
fs_ask contains msg if {
	kind == "fs.write"
	input.action.in_workspace == true
	components[0] == ".github"
	components[1] == "workflows"
	msg := sprintf("%v is a CI workflow (it runs with the repository's secrets): writing it needs a person's approval", [path])
}

fs_allow contains msg if {
	kind == "fs.read"
	input.action.in_workspace == true
	msg := sprintf("read of %v inside the workspace", [path])
}

fs_allow contains msg if {
	kind == "fs.write"
	input.action.in_workspace == true
	msg := sprintf("write of %v inside the workspace", [path])
}

# Globs (relative to the workspace) of the hidden paths, for the file tools
# that list or search many files at once (Glob, Grep, List): the runner
# drops every result at or below a match, so a secret never appears in a
# listing or a search hit even when the root being searched is allowed.
# The built-in globs are written out (a test checks they cover every hidden
# name, prefix and extension above) so a decision does not rebuild them.
builtin_hidden_globs := [
	"**/.env", "**/.ssh", "**/.netrc", "**/.git-credentials",
	"**/.env.*", "**/*.pem", "**/*.key",
]

hidden_globs := array.concat(builtin_hidden_globs, [g | some g in worker_hidden; is_string(g)])

# The capabilities guest tools may ask for in their manifests, by tool name;
# "*" is any custom tool. A manifest asking for more is refused at load.
# Grant a custom tool more with, in a policy file of your own:
#   tool_grants["Formatter"] := ["fs.read", "fs.write"]
tool_grants["Read"] := ["fs.read"]

tool_grants["Glob"] := ["fs.read"]

tool_grants["Grep"] := ["fs.read"]

tool_grants["List"] := ["fs.read"]

tool_grants["Write"] := ["fs.write"]

tool_grants["Edit"] := ["fs.write"]

tool_grants["*"] := ["fs.read"]

read_only_paths := array.concat(protected_read_only, [p | some p in worker_protected; is_string(p); not contains(p, "*")])

confine := {
	"readable_roots": [workspace_dir],
	"writable_roots": [],
	"read_only_paths": [],
	"hidden_paths": hidden_globs,
	"network": "none",
} if {
	kind == "fs.read"
	not in_session_root
}

confine := {
	"readable_roots": [workspace_dir],
	"writable_roots": [workspace_dir],
	"read_only_paths": read_only_paths,
	"hidden_paths": hidden_globs,
	"network": "none",
} if {
	kind == "fs.write"
	not in_session_root
}

# A file in a session root is confined to that root alone: the guest sees
# only its directory, writable only for a write in the artifacts root.
confine := {
	"readable_roots": [session_root_dir(file_root)],
	"writable_roots": [],
	"read_only_paths": [],
	"hidden_paths": [],
	"network": "none",
} if {
	kind == "fs.read"
	in_session_root
}

confine := {
	"readable_roots": [session_root_dir(file_root)],
	"writable_roots": [session_root_dir(file_root)],
	"read_only_paths": [],
	"hidden_paths": [],
	"network": "none",
} if {
	kind == "fs.write"
	in_session_root
	file_root == "artifacts"
}
