#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust tests (unit, integration,
# end-to-end with the real binaries) and the Rego tests of the shipped policy.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== build binaries"
cargo build --workspace --bins --quiet
echo "== rego tests of policies/"
./target/debug/runner policy test policies/ --quiet
echo "== cargo test"
cargo test --workspace --quiet
