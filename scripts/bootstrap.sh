#!/usr/bin/env bash
# Installs what building and testing fastq needs on a fresh Debian 12 machine: the C++
# libraries (apt, as root), a virtual environment with the Python tools, and fastq itself
# as an editable install. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_VERSION="${FASTQ_PYTHON:-3.12}"
VENV="${FASTQ_VENV:-.venv}"
DJANGO_SPEC="${FASTQ_DJANGO:-Django>=6.1,<6.2}"
# More pip requirements for this venv, space-separated (the LTS venv adds the django_tasks
# backport of Django's Tasks API, which Django 6 ships as django.tasks).
EXTRA_PIP="${FASTQ_EXTRA_PIP:-}"
APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config libsimdjson-dev libboost-dev
  libgtest-dev libpq-dev libsqlite3-dev libhiredis-dev libhowardhinnant-date-dev
  clang-14 libclang-rt-14-dev iproute2 socat)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A Python of the wanted minor version that actually runs (pyenv shims exist for
# versions that are installed but not selected, and fail when called).
find_python() {
  local c
  for c in "$HOME"/.pyenv/versions/"$1".*/bin/python "$(command -v "python$1" || true)"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import sys' >/dev/null 2>&1; then
      echo "$c"
      return
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  py=$(find_python "$PYTHON_VERSION") || { echo "bootstrap: Python $PYTHON_VERSION not found" >&2; exit 1; }
  echo "bootstrap: creating $VENV with $py"
  "$py" -m venv "$VENV"
fi
stamp="$VENV/.fastq-deps"
want="$DJANGO_SPEC|pybind11>=2.12|scikit-build-core>=0.10|pytest|pytest-django|psycopg[binary]|ruff${EXTRA_PIP:+|$EXTRA_PIP}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VENV/bin/pip" install -q -U pip
  "$VENV/bin/pip" install -q "$DJANGO_SPEC" "pybind11>=2.12" "scikit-build-core>=0.10" pytest \
    pytest-django "psycopg[binary]>=3.1" ruff $EXTRA_PIP
  echo "$want" >"$stamp"
fi
# Editable install: rebuilds the extension incrementally (ccache) when C++ changed.
"$VENV/bin/pip" install -q --no-build-isolation -e .
