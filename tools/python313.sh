#!/usr/bin/env bash
# The Python 3.13 that `sam build` needs for the python3.13 runtime (it runs pip with it).
#   tools/python313.sh              prints the interpreter's path
#   tools/python313.sh COMMAND...   runs COMMAND with it first on the PATH as python3.13
# Looks, in order, at: PYTHON313 (when set, only there), python3.13, python3 and python on the
# PATH, then the newest 3.13 that pyenv has installed, active or not (a pyenv shim of an inactive
# version does not run, and sam build takes the first python3.13 on the PATH that runs).
# Accepted: CPython 3.13 with pip, not the free-threaded build. Finding none, it prints one line
# saying how to get one and exits 1.
set -euo pipefail

probe='import sys, sysconfig, pip
assert sys.version_info[:2] == (3, 13) and not sysconfig.get_config_var("Py_GIL_DISABLED")
print(sys.executable)'

usable() { "$1" -c "$probe" 2>/dev/null; }

find_python313() {
  if [[ -n "${PYTHON313:-}" ]]; then
    usable "$PYTHON313" && return
    echo "PYTHON313=$PYTHON313 is not a CPython 3.13 with pip: name one that is, or unset" \
      "PYTHON313 to look on the PATH and in pyenv" >&2
    return 1
  fi
  local candidate root
  for candidate in python3.13 python3 python; do
    command -v "$candidate" >/dev/null && usable "$candidate" && return
  done
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  while read -r candidate; do
    usable "$candidate/bin/python3.13" && return
  done < <(find "$root/versions" -mindepth 1 -maxdepth 1 -name '3.13*' 2>/dev/null | sort -rV)
  echo "sam build needs a Python 3.13 with pip and found none (PYTHON313, PATH, pyenv):" \
    "install one (pyenv install 3.13, uv python install 3.13, or your system's python3.13" \
    "with pip) or give its path, make build PYTHON313=/path/to/python3.13; with Docker," \
    ".venv-sam/bin/sam build --use-container needs none" >&2
  return 1
}

interpreter=$(find_python313)
if [[ $# -eq 0 ]]; then
  echo "$interpreter"
  exit
fi
# A script, not a link: a virtual environment's interpreter stays one.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
printf '#!/bin/sh\nexec %q "$@"\n' "$interpreter" >"$bin/python3.13"
chmod +x "$bin/python3.13"
PATH="$bin:$PATH" "$@"
