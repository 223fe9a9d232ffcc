#!/usr/bin/env bash
# Installs what the hotline needs on a Debian machine, idempotently: system packages (only
# those missing), then checks the Rust toolchain. Used by `make run` and `make test`.
set -euo pipefail

# program-or-file : Debian package
needs=(
  "flite:flite"
  "/usr/include/flite/flite.h:flite1-dev"
  "espeak-ng:espeak-ng"
  "cmake:cmake"
  "/usr/lib/llvm-14/lib/libclang.so:libclang-dev"
  "clang:clang"
  "pkg-config:pkg-config"
  "/usr/include/alsa/asoundlib.h:libasound2-dev"
  "python3:python3"
  "curl:curl"
  "sox:sox"
  # Independent SIP peers for the phone gateway's tests (ivr/tests/sip_peers.rs).
  "sipp:sip-tester"
  "baresip:baresip-core"
)

missing=()
for entry in "${needs[@]}"; do
  what=${entry%%:*}
  pkg=${entry##*:}
  if [[ $what == /* ]]; then
    # A file: accept any libclang version for bindgen.
    if [[ $pkg == libclang-dev ]]; then
      compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null && continue
    fi
    [[ -e $what ]] && continue
  else
    command -v "$what" >/dev/null 2>&1 && continue
  fi
  missing+=("$pkg")
done
if ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=("python3-pip")
fi

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed; install Rust (https://rustup.rs) and run again" >&2
  exit 1
fi
echo "setup: system packages present"
