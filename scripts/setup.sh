#!/usr/bin/env bash
# Everything the project needs on a fresh Debian 12 machine that has rustup's
# toolchain. Idempotent: installs only what is missing. Sourced by demo.sh and
# test.sh; the wasm guest toolchain is scripts/build-guests.sh's.
set -euo pipefail

need_apt=()
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
# The sandbox runs `bash`; its tests use git, make, curl and perl; the
# sandbox benchmark compares against bubblewrap.
for tool in bash git make curl perl; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
command -v pgrep >/dev/null 2>&1 || need_apt+=(procps)
# The Grep benchmark compares against ripgrep.
command -v rg >/dev/null 2>&1 || need_apt+=(ripgrep)
# scripts/opa-test.py runs the policy's Rego tests under OPA's own engine,
# from a wheel pip fetches (below).
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
# The web pages' browser test drives Debian's Chromium (scripts/test.sh
# asks for it; the demo does not need a browser).
if [ -n "${RUNNER_SETUP_BROWSER:-}" ] && [ ! -x /usr/bin/chromium ]; then
  need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${need_apt[*]} with apt-get (about a minute on a fresh machine; once)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: cargo not found. Install Rust with rustup (https://rustup.rs), then run this again." >&2
    exit 1
  fi
fi
# rustfmt and clippy come with rustup's default profile; add them if missing.
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt >/dev/null 2>&1 || true
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy >/dev/null 2>&1 || true
fi

# Policy files must not be writable by group or others (the runner refuses
# them otherwise); a checkout made under umask 002 would be.
chmod -R go-w "$(dirname "$0")/../policies"

# OPA's Go engine for scripts/opa-test.py, so the shipped policy's tests run
# under both engines (they read some undefined values differently). The
# wheel is ctypes over a Go library: it is tagged for Python 3.14 but runs on
# Debian 12's Python 3.11, so it is downloaded for 3.14 (pinned by hash, x86_64
# and aarch64) and unzipped into target/opa/ rather than installed. Skipped
# once that version is there; a failure only warns (opa-test.py then says
# what to do), so the demo never needs this download to succeed.
opa_version=0.4.4
opa_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/opa"
if [ "$(cat "$opa_dir/.version" 2>/dev/null)" != "$opa_version" ]; then
  echo "setup: fetching opa-golib-python-bindings $opa_version into target/opa/ (a few seconds; once)" >&2
  opa_tmp=$(mktemp -d)
  cat >"$opa_tmp/requirements.txt" <<EOF
opa-golib-python-bindings==$opa_version \
  --hash=sha256:d411c901e14b8c7c3023e23e4a944f4cf429c1d31baf80e959e57d11efbfd24a \
  --hash=sha256:2becc213edd9bec00e366162889effd29becf0bf0adacfa9c2b43f4b9368f5f2
EOF
  if python3 -m pip download --quiet --no-deps --require-hashes --python-version 3.14 \
    --only-binary=:all: -r "$opa_tmp/requirements.txt" -d "$opa_tmp/wheel" &&
    rm -rf "$opa_dir" && mkdir -p "$opa_dir" &&
    python3 -m zipfile -e "$opa_tmp"/wheel/*.whl "$opa_dir"; then
    echo "$opa_version" >"$opa_dir/.version"
  else
    echo "setup: could not fetch the OPA bindings; scripts/opa-test.py fails until this succeeds" >&2
  fi
  rm -rf "$opa_tmp"
fi

# The vendors' Python clients (`cursor-agent-sdk`, `qca-sdk`,
# `oz-agent-sdk`) and their dependencies, for the tests that drive the
# control plane with them unchanged, and `prometheus-client`, whose parsers
# read the metrics endpoints (tests/python/). Installed with pip --target into
# target/pydeps/ (no virtualenv; works under PEP 668 too), pinned by hash,
# skipped while the requirements are unchanged; a failure only warns (the
# test then fails saying to run this script).
py_req="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/python/requirements.txt"
py_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/pydeps"
py_sum=$(sha256sum "$py_req" | cut -d' ' -f1)
if [ "$(cat "$py_dir/.version" 2>/dev/null)" != "$py_sum" ]; then
  echo "setup: installing the vendors' Python clients (tests/python/requirements.txt) into target/pydeps/ (under a minute; once)" >&2
  rm -rf "$py_dir"
  if python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --require-hashes \
    --only-binary=:all: --target "$py_dir" -r "$py_req"; then
    echo "$py_sum" >"$py_dir/.version"
  else
    echo "setup: could not install the vendors' Python clients; the client conformance tests fail until this succeeds" >&2
  fi
fi
