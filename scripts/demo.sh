#!/usr/bin/env bash
# The main job on the embedded default. Until the session loop lands
# (`runner up`), it demonstrates `runner call` deciding real actions against
# the default policy compiled into the binary, writing the audit log, and
# verifying and replaying it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
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
d = out["decisions"][0]
mark = {"allow": "allow", "deny": "DENY ", "ask": "ASK  "}[d["result"]]
print(f"{mark} (exit {code})  {label:<48} {'; '.join(d['reasons'])}")
o = out.get("output") or {}
if "stdout" in o:
    for line in (o["stdout"] + o["stderr"]).splitlines():
        print(f"      | {line}")
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
