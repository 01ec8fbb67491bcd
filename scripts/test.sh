#!/usr/bin/env bash
# The whole test suite: formatting, lints, the Rego tests of the shipped
# policy (under regorus and under OPA's own engine), and the Rust tests
# (unit, integration, end-to-end with the real binaries). Ends with one
# line `total: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNNER_SETUP_BROWSER=1 source scripts/setup.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
for m in guest-tools/Cargo.toml examples/custom-tool/Cargo.toml; do
  cargo fmt --manifest-path "$m" --all -- --check
done
echo "== guest tools (wasm32-wasip1)"
./scripts/build-guests.sh
# Lints and the build in one pass: clippy's driver compiles the workspace's
# own crates (every target: libraries, binaries, tests, benches) as rustc
# would, with its lints on and every warning an error, while dependencies
# are built once, normally. (`cargo clippy` followed by `cargo build` would
# compile every dependency twice, in check mode and then for real.)
echo "== cargo clippy + build (every target, warnings are errors)"
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
# `-D warnings` for the workspace's crates only (how `cargo clippy` passes
# it), so dependencies keep the artifacts of an ordinary `cargo build`.
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --workspace --all-targets --no-run --quiet
# The binaries the e2e suite runs (a crate without integration tests, like
# control-plane, gets only its test harness above).
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
