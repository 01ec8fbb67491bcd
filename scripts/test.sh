#!/usr/bin/env bash
# The whole test suite: formatting, lints, the Rego tests of the shipped
# policy (under regorus and under OPA's own engine), and the Rust tests
# (unit, integration, end-to-end with the real binaries). Ends with one
# line `total: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
for m in guest-tools/Cargo.toml examples/custom-tool/Cargo.toml; do
  cargo fmt --manifest-path "$m" --all -- --check
done
echo "== guest tools (wasm32-wasip1)"
./scripts/build-guests.sh
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== build binaries"
cargo build --workspace --bins --quiet
echo "== rego tests of policies/"
./target/debug/runner policy test policies/ --quiet | tee -a "$log"
echo "== rego tests of policies/ under OPA"
python3 scripts/opa-test.py policies/ | tee -a "$log"
echo "== cargo test"
cargo test --workspace --quiet 2>&1 | tee -a "$log"

# One closing line over both runners.
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
  /^[0-9]+ passed, [0-9]+ failed/ { p += $1; f += $3 }
  END { printf "total: %d passed, %d failed\n", p, f; exit (f > 0) }
' "$log"
