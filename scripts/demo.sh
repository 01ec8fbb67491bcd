#!/usr/bin/env bash
# The main job on the embedded default: `runner up` — a control plane on a
# SQLite file in .runner/up, a worker against it, and the example sessions
# in examples/sessions/ (one builds and tests a C program with Bash and the
# file tools; one tries what the default policy denies), with every
# activity printed live and a summary at the end. Arguments are passed to
# `runner up` (e.g. --keep to leave the control plane serving).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
./scripts/build-guests.sh
cargo build --release --quiet -p runner -p control-plane
exec ./target/release/runner up "$@"
