#!/usr/bin/env bash
# A tour of `runner call` (one tool call under policy, no control plane):
# real actions decided against the default policy compiled into the binary,
# Bash in the process sandbox, the file tools as wasm guests, a custom tool,
# WebFetch's address guard, then the audit log verified and replayed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
./scripts/build-guests.sh
cargo build --release --quiet -p runner
R=./target/release/runner

demo=$(mktemp -d /var/tmp/runner-demo.XXXXXX)
# The sandbox's unprivileged user must be able to walk down to the workspace.
chmod 711 "$demo"
ws="$demo/workspace"
mkdir -p "$ws/src" "$ws/.git/hooks"
printf '#!/bin/sh\nexit 0\n' > "$ws/.git/hooks/pre-commit"
echo 'fn main() { println!("hi"); }' > "$ws/src/main.rs"
echo 'API_KEY=not-for-agents' > "$ws/.env"
export RUNNER_STATE_DIR="$demo/state"
log="$RUNNER_STATE_DIR/audit.jsonl"

show() {
  local label=$1 action=$2 tool=${3:-Decide}
  set +e
  out=$($R call --workspace "$ws" "$tool" "$action")
  code=$?
  set -e
  python3 - "$label" "$code" "$out" <<'PY'
import json, sys
label, code, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if not out["decisions"]:
    print(f"ERROR (exit {code})  {label:<48} {out['output']['error']}")
    sys.exit(0)
d = out["decisions"][0]
mark = {"allow": "allow", "deny": "DENY ", "ask": "ASK  "}[d["result"]]
print(f"{mark} (exit {code})  {label:<48} {'; '.join(d['reasons'])}")
if out["status"] == "error":
    print(f"      | tool error: {out['output']['error']}")
o = out.get("output") or {}
if "stdout" in o:
    for line in (o["stdout"] + o["stderr"]).splitlines():
        print(f"      | {line}")
elif out["tool"] != "Decide" and o:
    text = json.dumps(o)
    print(f"      | {text[:300]}{'…' if len(text) > 300 else ''}")
PY
}

echo "runner $($R --version | cut -d' ' -f2) — default policy, workspace $ws"
echo
show "Edit src/main.rs"                 '{"kind":"fs.write","path":"src/main.rs","tool":"Edit"}'
show "Read ../../etc/passwd"            '{"kind":"fs.read","path":"../../etc/passwd","tool":"Read"}'
show "Write .git/hooks/pre-commit"      '{"kind":"fs.write","path":".git/hooks/pre-commit","tool":"Write"}'
show "Read .env"                        '{"kind":"fs.read","path":".env","tool":"Read"}'
show "Bash: cargo test"                 '{"kind":"shell.exec","command":"cargo test","cwd":".","tool":"Bash"}'
show "WebFetch docs.rs (not allowlisted)" '{"kind":"net.connect","host":"docs.rs","port":443,"scheme":"https","addresses":["18.154.101.2"],"tool":"WebFetch"}'
show "WebFetch name -> 169.254.169.254" '{"kind":"net.connect","host":"metadata.evil.example","port":80,"scheme":"http","addresses":["169.254.169.254"],"tool":"WebFetch"}'
show "git push"                         '{"kind":"external","operation":"git.push","target":"origin","tool":"Bash"}'
show "Edit by a tool not enabled"       '{"kind":"fs.write","path":"src/main.rs","tool":"Teleport"}'
echo
echo "== real commands: Bash in the process sandbox (namespaces, Landlock, seccomp)"
show "Bash: build something in the workspace" '{"command":"printf \"int main(){return 0;}\" > t.c && ls && echo built > build.log && cat build.log"}' Bash
show "Bash: try to escape"                    '{"command":"echo x > /etc/escaped; echo x > ../escaped; echo x >> .git/hooks/pre-commit; curl -sS -m 2 http://example.com; grep CapEff /proc/self/status"}' Bash
show "Bash: cwd outside the workspace"        '{"command":"ls","cwd":"../.."}' Bash
echo
echo "== file tools: wasm guests (wasmtime, the workspace preopened read-only unless a write is allowed)"
show "Read src/main.rs"                       '{"path":"src/main.rs"}' Read
show "Write notes/plan.md"                    '{"path":"notes/plan.md","content":"1. build\n2. test\n"}' Write
show "Edit notes/plan.md"                     '{"path":"notes/plan.md","old":"2. test","new":"2. test everything"}' Edit
show "Grep for println (the .env never shows)" '{"pattern":"println|API_KEY"}' Grep
show "Glob **/*"                              '{"pattern":"**/*"}' Glob
show "Read .env"                              '{"path":".env"}' Read
show "Write ../escape.txt"                    '{"path":"../escape.txt","content":"x"}' Write
show "Read with a field the schema forbids"   '{"path":"src/main.rs","mode":"raw"}' Read
echo
echo "== a custom tool (examples/custom-tool, built by scripts/build-guests.sh)"
cat > "$demo/worker.toml" <<TOML
[tools]
dirs = ["$(pwd)/target/custom-tools"]
TOML
R_CFG=(--config "$demo/worker.toml")
$R call --workspace "$ws" "${R_CFG[@]}" WordCount '{"path":"src"}' \
  | python3 -c 'import json,sys; o=json.load(sys.stdin); print("allow (exit 0)  WordCount src ->", json.dumps(o["output"]))'
echo
echo "== WebFetch: a name that resolves to loopback is refused on its address"
show "WebFetch http://localhost:9/"           '{"url":"http://localhost:9/"}' WebFetch
echo
echo "== audit log: $log"
$R audit list "$log"
$R audit verify "$log"
echo
echo "== what-if: replay the log against a policy that also freezes src/"
strict="$demo/strict-policy"
mkdir -p "$strict" && cp policies/*.rego "$strict/"
cat > "$strict/freeze.rego" <<'REGO'
package runner

import rego.v1

deny contains "src/ is frozen for the release" if {
	input.action.kind == "fs.write"
	startswith(input.action.path, "src/")
}
REGO
chmod -R go-w "$strict"
$R audit replay "$log" --policy "$strict"
echo
echo "demo files are in $demo"
