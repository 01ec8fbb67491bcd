# Tests of the file rules.
package runner_test

import data.runner
import rego.v1

fs(kind, path, in_ws) := with_action({"kind": kind, "tool": "Edit", "path": path, "in_workspace": in_ws, "path_components": split(path, "/")})

test_read_inside_allowed if {
	runner.decision.result == "allow" with input as fs("fs.read", "src/main.rs", true)
}

test_read_outside_denied if {
	d := runner.decision with input as fs("fs.read", "/etc/passwd", false)
	d.result == "deny"
	some r in d.reasons
	contains(r, "outside the workspace")
}

test_read_without_in_workspace_flag_denied if {
	runner.decision.result == "deny" with input as with_action({"kind": "fs.read", "tool": "Read", "path": "a"})
}

test_in_workspace_must_be_true_not_truthy if {
	runner.decision.result == "deny" with input as fs("fs.read", "a", "yes")
}

test_write_inside_allowed if {
	d := runner.decision with input as fs("fs.write", "src/lib.rs", true)
	d.result == "allow"
	d.confine.writable_roots == [ws]
	".git/hooks" in d.confine.read_only_paths
}

test_write_outside_denied if {
	runner.decision.result == "deny" with input as fs("fs.write", "/tmp/x", false)
}

test_write_git_hook_denied if {
	d := runner.decision with input as fs("fs.write", ".git/hooks/pre-commit", true)
	d.result == "deny"
	some r in d.reasons
	contains(r, "protected path")
}

test_write_git_hooks_dir_denied if {
	runner.decision.result == "deny" with input as fs("fs.write", ".git/hooks", true)
}

test_write_nested_repo_hook_denied if {
	runner.decision.result == "deny" with input as fs("fs.write", "vendor/lib/.git/hooks/post-checkout", true)
}

test_write_git_config_denied if {
	runner.decision.result == "deny" with input as fs("fs.write", ".git/config", true)
}

test_write_rc_files_denied if {
	every p in [".bashrc", ".profile", ".zshrc", ".gitconfig", ".gitmodules", ".bash_profile"] {
		runner.decision.result == "deny" with input as fs("fs.write", p, true)
	}
}

test_read_protected_but_not_hidden_allowed if {
	runner.decision.result == "allow" with input as fs("fs.read", ".bashrc", true)
}

# Git's state is git's to write (inside the Bash sandbox), never a file
# tool's: every path with a `.git` component, at any depth.
test_write_any_git_component_denied if {
	every p in [
		".git", "sub/.git", ".git/commondir", ".git/info/attributes", ".git/modules/x/config",
		".git/objects/ab/cdef", ".git/refs/heads/main", ".git/HEAD", ".git/index",
		"vendor/lib/.git/packed-refs", ".git/worktrees/w/gitdir",
	] {
		d := runner.decision with input as fs("fs.write", p, true)
		d.result == "deny"
		some r in d.reasons
		contains(r, p)
		contains(r, "git's state")
	}
}

test_read_git_state_allowed if {
	every p in [".git/HEAD", ".git/config", "sub/.git", ".git/objects/ab/cdef"] {
		runner.decision.result == "allow" with input as fs("fs.read", p, true)
	}
}

test_git_lookalike_names_writable if {
	every p in [".gitignore", ".gitattributes", "src/.gitkeep", "git/config", ".git-blame-ignore-revs", "docs/.git.md"] {
		runner.decision.result == "allow" with input as fs("fs.write", p, true)
	}
}

# The runner flags a path inside a git directory that is not named `.git`
# (the target of a `gitdir:` file): not writable, still readable.
test_write_flagged_git_state_denied if {
	i := object.union(fs("fs.write", "repos/a.git/config", true), {"action": {"git_state": true}})
	d := runner.decision with input as i
	d.result == "deny"
	some r in d.reasons
	contains(r, "repos/a.git/config is git's state")
}

test_read_flagged_git_state_allowed if {
	i := object.union(fs("fs.read", "repos/a.git/config", true), {"action": {"git_state": true}})
	runner.decision.result == "allow" with input as i
}

test_git_state_false_writable if {
	i := object.union(fs("fs.write", "src/lib.rs", true), {"action": {"git_state": false}})
	runner.decision.result == "allow" with input as i
}

# Missing fields deny under every engine (decision.rego says why).
test_missing_path_components_denied if {
	every kind in ["fs.read", "fs.write"] {
		every p in [".env", ".git/hooks/pre-commit", "src/main.rs"] {
			i := json.remove(fs(kind, p, true), ["action/path_components"])
			d := runner.decision with input as i
			d.result == "deny"
			some r in d.reasons
			contains(r, "without its path components")
		}
	}
}

test_path_components_not_strings_denied if {
	every comps in [".env", [".env", 1], {"a": ".env"}] {
		i := object.union(fs("fs.read", ".env", true), {"action": {"path_components": comps}})
		runner.decision.result == "deny" with input as i
	}
}

test_missing_path_denied if {
	i := json.remove(fs("fs.read", "a", true), ["action/path"])
	d := runner.decision with input as i
	d.result == "deny"
	some r in d.reasons
	contains(r, "names no path")
}

test_workspace_root_has_no_components_and_is_readable if {
	i := object.union(fs("fs.read", ".", true), {"action": {"path_components": []}})
	runner.decision.result == "allow" with input as i
	runner.decision.result == "allow" with input as object.union(i, {"action": {"kind": "fs.write"}})
}

test_malformed_worker_lists_deny if {
	every field in ["protected_paths", "hidden_paths"] {
		every v in ["deploy/**", {"deploy/**": true}, 5] {
			i := worker_pattern("fs.write", "deploy/prod.yaml", field, v)
			d := runner.decision with input as i
			d.result == "deny"
			some r in d.reasons
			contains(r, sprintf("trusted.worker.%v is not a list", [field]))
		}
	}
}

# An entry that is not a string names no path: it is skipped, the others
# still apply.
test_worker_list_entries_that_are_not_strings_are_skipped if {
	every field in ["protected_paths", "hidden_paths"] {
		i := worker_pattern("fs.write", "deploy/prod.yaml", field, [5, {"a": 1}, "deploy/**"])
		runner.decision.result == "deny" with input as i
		j := worker_pattern("fs.write", "src/main.rs", field, [5, {"a": 1}, "deploy/**"])
		d := runner.decision with input as j
		d.result == "allow"
		every p in array.concat(d.confine.read_only_paths, d.confine.hidden_paths) {
			is_string(p)
		}
	}
}

test_hidden_env_not_readable if {
	every p in [".env", ".env.local", "app/.env", "certs/server.pem", "id.key", ".ssh/id_ed25519"] {
		d := runner.decision with input as fs("fs.read", p, true)
		d.result == "deny"
	}
}

test_hidden_not_writable if {
	runner.decision.result == "deny" with input as fs("fs.write", ".env", true)
}

test_worker_adds_protected_paths if {
	i := object.union(fs("fs.write", "deploy/prod.yaml", true), {"trusted": {"worker": {"protected_paths": ["deploy/**"]}}})
	runner.decision.result == "deny" with input as i
	runner.decision.result == "allow" with input as fs("fs.write", "deploy/prod.yaml", true)
}

test_worker_adds_hidden_paths if {
	i := object.union(fs("fs.read", "secrets/db.txt", true), {"trusted": {"worker": {"hidden_paths": ["secrets/**"]}}})
	runner.decision.result == "deny" with input as i
}

test_rc_files_protected_only_at_the_root if {
	runner.decision.result == "allow" with input as fs("fs.write", "src/.bashrc", true)
	runner.decision.result == "deny" with input as fs("fs.write", ".bashrc", true)
}

test_lookalike_names_are_not_hidden if {
	every p in ["a/b/.envrc", "environment.md", "keys/readme.md", "src/key.rs"] {
		runner.decision.result == "allow" with input as fs("fs.read", p, true)
	}
}

test_worker_star_stays_in_one_directory if {
	i := object.union(fs("fs.write", "deploy/eu/prod.yaml", true), {"trusted": {"worker": {"protected_paths": ["deploy/*.yaml"]}}})
	runner.decision.result == "allow" with input as i
	j := object.union(fs("fs.write", "deploy/prod.yaml", true), {"trusted": {"worker": {"protected_paths": ["deploy/*.yaml"]}}})
	runner.decision.result == "deny" with input as j
}

test_worker_literal_protected_path_is_read_only_in_confinement if {
	i := object.union(fs("fs.write", "src/a.rs", true), {"trusted": {"worker": {"protected_paths": ["Makefile", "ci/**"]}}})
	d := runner.decision with input as i
	"Makefile" in d.confine.read_only_paths
	not "ci/**" in d.confine.read_only_paths
}

worker_pattern(kind, path, field, patterns) := object.union(fs(kind, path, true), {"trusted": {"worker": {field: patterns}}})

test_worker_pattern_shapes if {
	cases := [
		["deploy/**", "deploy/prod.yaml", true],
		["deploy/**", "deploy/eu/prod.yaml", true],
		["deploy/**", "deployment/x", false],
		["deploy/**", "deploy", false],
		["**/secrets.txt", "secrets.txt", true],
		["**/secrets.txt", "a/b/secrets.txt", true],
		["**/secrets.txt", "a/b/secrets.txt.bak", false],
		["**/node_modules/.bin", "web/node_modules/.bin/x", true],
		["*.sqlite", "db.sqlite", true],
		["*.sqlite", "data/db.sqlite", false],
		["**/*.sqlite", "data/db.sqlite", true],
		["Makefile", "Makefile", true],
		["Makefile", "src/Makefile", false],
		["ci", "ci/deploy.yml", true],
		["src/*/gen.rs", "src/a/gen.rs", true],
		["src/*/gen.rs", "src/a/b/gen.rs", false],
		["src/[ab]/gen.rs", "src/a/gen.rs", true],
		["src/[ab]/gen.rs", "src/c/gen.rs", false],
		["**/sec?et", "secret", true],
		["**/*.sqlite", "db.sqlite.bak", false],
		["deploy/**", "src/deploy/x", false],
	]
	every c in cases {
		want := c[2]
		got := runner.decision.result == "deny" with input as worker_pattern("fs.write", c[1], "protected_paths", [c[0]])
		got == want
	}
}

test_read_confinement_names_hidden_globs if {
	d := runner.decision with input as fs("fs.read", ".", true)
	d.result == "allow"
	"**/.env" in d.confine.hidden_paths
	"**/.env.*" in d.confine.hidden_paths
	"**/*.pem" in d.confine.hidden_paths
	"**/.ssh" in d.confine.hidden_paths
}

test_protected_read_only_lists_every_protected_entry if {
	expected := array.concat(
		[concat("", [".git/", e]) | some e in ["hooks", "config"]],
		sort([p | some p in runner.protected_at_root]),
	)
	runner.protected_read_only == expected
	{e | some e in runner.protected_in_git_dir} == {"hooks", "config"}
}

test_builtin_hidden_globs_cover_every_hidden_name if {
	expected := array.concat(
		array.concat(
			[concat("", ["**/", n]) | some n in runner.hidden_names],
			[concat("", ["**/", p, "*"]) | some p in runner.hidden_name_prefixes],
		),
		[concat("", ["**/*", e]) | some e in runner.hidden_extensions],
	)
	{g | some g in expected} == {g | some g in runner.builtin_hidden_globs}
	count(runner.builtin_hidden_globs) == count(expected)
}

test_worker_hidden_paths_join_the_hidden_globs if {
	d := runner.decision with input as worker_pattern("fs.read", ".", "hidden_paths", ["secrets/**"])
	"secrets/**" in d.confine.hidden_paths
}

test_tool_grants_builtin_guests_and_custom_default if {
	runner.tool_grants.Read == ["fs.read"]
	runner.tool_grants.Glob == ["fs.read"]
	runner.tool_grants.Grep == ["fs.read"]
	runner.tool_grants.List == ["fs.read"]
	runner.tool_grants.Write == ["fs.write"]
	runner.tool_grants.Edit == ["fs.write"]
	runner.tool_grants["*"] == ["fs.read"]
}

test_write_ci_workflow_asks_with_confinement if {
	d := runner.decision with input as fs("fs.write", ".github/workflows/ci.yml", true)
	d.result == "ask"
	some r in d.reasons
	contains(r, "needs a person's approval")
	d.confine.writable_roots == [ws]
}

test_read_ci_workflow_allowed if {
	runner.decision.result == "allow" with input as fs("fs.read", ".github/workflows/ci.yml", true)
}

test_write_elsewhere_under_github_allowed if {
	runner.decision.result == "allow" with input as fs("fs.write", ".github/CODEOWNERS", true)
}

# Session roots (toolset.md §3.4): /skills readable, never writable;
# /data readable and writable; only when the session has them, and only
# for a host path under the root's directory.
skills_dir := "/srv/s1.skills"

data_dir := "/srv/s1.data"

with_roots(a) := object.union(with_action(a), {"session": {"id": "s1", "attempt": 1, "workspace_dir": ws, "skills_dir": skills_dir, "artifacts_dir": data_dir}})

in_root(kind, tool, root, sandbox, host) := {"kind": kind, "tool": tool, "path": sandbox, "path_abs": host, "in_workspace": false, "root": root, "path_components": [c | some c in split(sandbox, "/"); c != ""]}

test_read_in_skills_allowed_and_confined_to_them if {
	d := runner.decision with input as with_roots(in_root("fs.read", "Read", "skills", "/skills/pdf/SKILL.md", "/srv/s1.skills/pdf/SKILL.md"))
	d.result == "allow"
	d.confine.readable_roots == [skills_dir]
	d.confine.writable_roots == []
}

test_write_in_skills_denied if {
	every t in ["Write", "Edit"] {
		d := runner.decision with input as with_roots(in_root("fs.write", t, "skills", "/skills/pdf/SKILL.md", "/srv/s1.skills/pdf/SKILL.md"))
		d.result == "deny"
		some r in d.reasons
		contains(r, "skills are read-only")
	}
}

test_write_in_data_allowed_and_confined_to_it if {
	d := runner.decision with input as with_roots(in_root("fs.write", "Write", "artifacts", "/data/r.md", "/srv/s1.data/r.md"))
	d.result == "allow"
	d.confine.writable_roots == [data_dir]
	d.confine.readable_roots == [data_dir]
}

test_write_in_data_without_the_root_denied if {
	d := runner.decision with input as with_action(in_root("fs.write", "Write", "artifacts", "/data/r.md", "/srv/s1.data/r.md"))
	d.result == "deny"
	some r in d.reasons
	contains(r, "outside the workspace")
}

test_root_file_whose_host_path_left_the_root_denied if {
	every host in ["/etc/passwd", "/srv/s1.data2/x", "/srv/s1.skills/../x", "/srv"] {
		runner.decision.result == "deny" with input as with_roots(in_root("fs.read", "Read", "artifacts", "/data/x", host))
	}
}

test_data_dotdot_normalised_outside_denied if {
	# The runner resolves /data/../etc/passwd against the root's host
	# directory; it leaves it, so it arrives outside everything.
	d := runner.decision with input as with_roots({"kind": "fs.read", "tool": "Read", "path": "/srv/etc/passwd", "path_abs": "/srv/etc/passwd", "in_workspace": false, "root": "", "path_components": ["srv", "etc", "passwd"]})
	d.result == "deny"
}

test_unknown_root_name_denied if {
	runner.decision.result == "deny" with input as with_roots(in_root("fs.read", "Read", "workspace2", "/data/x", "/srv/s1.data/x"))
}
