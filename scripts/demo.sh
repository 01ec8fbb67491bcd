#!/usr/bin/env bash
# The main job on the embedded default: `runner up` — a control plane on a
# SQLite file in .runner/up, a worker against it, and the example sessions
# in examples/sessions/ (one builds and tests a C program with Bash and the
# file tools; one tries what the default policy denies), with every
# activity printed live and a summary at the end. Arguments are passed to
# `runner up` (e.g. --keep to leave the control plane serving).
#
# On a fresh clone most of the time goes to installing and compiling; each
# step says what it does and about how long it takes (measured on a 2-core
# machine), and the builds show cargo's progress. Later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "demo: $*" >&2; }
took() { say "  ... done in $(($SECONDS - $1)) s"; }

if [ ! -x target/release/runner ] || [ ! -x target/release/control-plane ]; then
  say "first run: about 18 min on 2 cores, almost all of it compiling (later runs take seconds):"
  say "  1/4 set-up: missing Debian packages, OPA's bindings, Python clients   ~1 min"
  say "  2/4 the wasm guest toolchain (Debian's rustc-web, lld-14, wasi-libc)   ~2 min, once"
  say "  3/4 the guest tools, built for wasm32-wasip1                           ~2 min"
  say "  4/4 runner and control-plane, cargo build --release                    ~13 min"
fi

t=$SECONDS
say "1/4 set-up (scripts/setup.sh): installs only what is missing"
source scripts/setup.sh
took $t

t=$SECONDS
say "2-3/4 guest tools (scripts/build-guests.sh)"
GUESTS_PROGRESS=1 ./scripts/build-guests.sh
took $t

t=$SECONDS
if [ -x target/release/runner ] && [ -x target/release/control-plane ]; then
  say "4/4 runner and control-plane (release; rebuilt only if the sources changed)"
else
  say "4/4 runner and control-plane: cargo build --release, about 13 min on 2 cores the first time"
fi
cargo build --release -p runner -p control-plane
took $t

say "runner up: a control plane, a worker and the example sessions"
exec ./target/release/runner up "$@"
