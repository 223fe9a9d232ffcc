#!/usr/bin/env bash
# Creates or updates the Python environment the end-to-end tests run their gRPC client in:
# a venv at ${IVR_PYENV:-$HOME/.cache/ivr/pyenv} holding tests/python/requirements.txt.
# Idempotent and silent when the venv already matches the requirements; used by `make test`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
requirements="$root/tests/python/requirements.txt"
venv=${IVR_PYENV:-$HOME/.cache/ivr/pyenv}
# The venv records the requirements it was built from; a change rebuilds it.
stamp="$venv/.ivr-requirements"

python=python3
if [[ -x $venv/bin/python ]] && [[ -f $stamp ]] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi

if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  # Debian splits venv support out of python3.
  pkg="python3-venv"
  echo "pyenv: installing $pkg"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
fi

echo "pyenv: preparing $venv"
if [[ ! -x $venv/bin/python ]]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
echo "pyenv: ready"
