#!/usr/bin/env python3
"""Runs the Rego unit tests of a policy directory under OPA's own (Go) engine.

    python3 scripts/opa-test.py policies/

The runner evaluates policies with regorus and runs these same tests with
`runner policy test`; this runs them with OPA as well, so a policy that only
holds under one engine's reading of undefined values fails CI. It loads
every `*.rego` file of the directory (tests included, subdirectories too),
finds every rule named `test_*` in every package and evaluates it without
input: a test passes only when its value is exactly `true` (false, any other
value, undefined or an evaluation error fail). Rules named `todo_*` are
skipped, as `runner policy test` does. Prints one line per failure, then
one line `N passed, M failed` (`, K skipped` when any). Exits non-zero when
a test fails, when no test was found, or when OPA cannot be loaded.

OPA comes from the `opa-golib-python-bindings` wheel, which scripts/setup.sh
unzips into target/opa/ (set OPA_BINDINGS_DIR to use another directory).
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINDINGS_DIR = Path(os.environ.get("OPA_BINDINGS_DIR", ROOT / "target" / "opa"))

# Rule heads start at column 0 (opa fmt style, as every file here is): an
# optional `default`, a name, then `if`, `{`, `:=`, `=`, `contains` or a ref
# step. Functions (`name(`) are never tests. Whatever this misses, the
# cross-check in main() reports.
RULE_HEAD = re.compile(
    r"^(?:default\s+)?([A-Za-z_][A-Za-z0-9_]*)(?=\s+(?:if\b|contains\b|:=|=|\{)|\s*[\[.{]|\s*$)",
    re.M,
)
PACKAGE = re.compile(r"^package\s+(\S+)", re.M)


def fail_setup(message):
    print(f"opa-test: {message}", file=sys.stderr, flush=True)
    print("0 passed, 1 failed")
    sys.exit(2)


def load_bindings():
    if not (BINDINGS_DIR / "opa_bindings" / "engine.py").is_file():
        fail_setup(
            f"OPA's Python bindings are not in {BINDINGS_DIR}: run scripts/setup.sh "
            "(it downloads the opa-golib-python-bindings wheel there), or set "
            "OPA_BINDINGS_DIR to a directory holding the unzipped wheel"
        )
    sys.path.insert(0, str(BINDINGS_DIR))
    try:
        from opa_bindings.engine import OpaEngine, OpaError

        # The Go library is loaded (ctypes) when the first engine is made.
        return OpaEngine(), OpaError
    except Exception as e:  # ImportError, OSError from loading the library
        fail_setup(
            f"could not load OPA's bindings from {BINDINGS_DIR} ({e!r}): delete "
            f"{BINDINGS_DIR} and run scripts/setup.sh again"
        )


def strip_comments_and_strings(src):
    """Blanks comments and string contents (keeping line breaks), so a rule
    name inside either is never taken for a rule head."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "#":
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"' and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append('""' + " " * (j - i - 2))
            i = j
        elif c == "`":
            j = src.find("`", i + 1)
            j = n if j < 0 else j + 1
            out.append("".join(ch if ch == "\n" else " " for ch in src[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def declared_tests(files):
    """(package, name, file) of every test_ and todo_ rule, in file order,
    each name once per package."""
    seen = set()
    tests = []
    for f in files:
        code = strip_comments_and_strings(f.read_text())
        m = PACKAGE.search(code)
        if not m:
            continue
        package = m.group(1)
        for head in RULE_HEAD.finditer(code):
            name = head.group(1)
            if not (name.startswith("test_") or name.startswith("todo_")):
                continue
            if (package, name) not in seen:
                seen.add((package, name))
                tests.append((package, name, f))
    return tests


def main(argv):
    if len(argv) != 2:
        print("usage: opa-test.py POLICY_DIR", file=sys.stderr)
        return 2
    policy_dir = Path(argv[1])
    files = sorted(policy_dir.rglob("*.rego"))
    if not files:
        fail_setup(f"no .rego files in {policy_dir}")

    engine, OpaError = load_bindings()
    tests = declared_tests(files)
    try:
        for f in files:
            # Parse errors surface here, compile errors at the first eval
            # (any eval compiles every module, as `opa test` does).
            engine.add_policy(str(f), f.read_text())
        engine.eval_query("x := true")
    except OpaError as e:
        fail_setup(f"OPA could not load {policy_dir}: {e}")
    # Each package's document in one query (every query is prepared anew,
    # which costs tens of milliseconds, so one per test would be slow). A
    # package whose document fails to evaluate, say because one test
    # errors, has its tests evaluated one by one to say which.
    docs = {}
    for p in sorted({p for p, _, _ in tests}):
        try:
            # eval_query returns bindings only, so bind the value to a var.
            rs = engine.eval_query(f"x := data.{p}")
        except OpaError:
            continue
        docs[p] = rs[0]["x"] if rs else {}
        # Cross-check the discovery: every test rule OPA defines must have
        # been found among the rule heads.
        names = {n for q, n, _ in tests if q == p}
        for key in docs[p]:
            if isinstance(key, str) and key.startswith("test_") and key not in names:
                fail_setup(f"data.{p}.{key} was not found among the rule heads: fix the discovery in {__file__}")

    passed = failed = skipped = 0
    for package, name, f in tests:
        path = f"data.{package}.{name}"
        if name.startswith("todo_"):
            skipped += 1
            continue
        if package in docs:
            defined = name in docs[package]
            value = docs[package].get(name)
        else:
            try:
                rs = engine.eval_query(f"x := {path}")
            except OpaError as e:
                failed += 1
                print(f"ERROR {path} ({f}): {e}")
                continue
            defined = bool(rs)
            value = rs[0].get("x") if rs else None
        if value is True:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {path} ({f}): {repr(value) if defined else 'undefined'}")
    engine.close()

    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    if passed + failed == 0:
        print(f"opa-test: no test_ rules in {policy_dir}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
