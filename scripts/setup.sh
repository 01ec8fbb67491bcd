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
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${need_apt[*]}" >&2
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
