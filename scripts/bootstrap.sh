#!/usr/bin/env bash
# Installs what a make target needs on a fresh Debian 12 machine, and only that:
#   scripts/bootstrap.sh               build packages (apt, as root), a virtual environment
#                                      with the Python tools, fastq as an editable install
#                                      (make demo, make lint, make bench)
#   scripts/bootstrap.sh --test        the same plus what the test suites use: GoogleTest,
#                                      clang and its fuzzer runtime, iproute2 and socat (the
#                                      hosts suite), debootstrap (make test-wheel)
#   scripts/bootstrap.sh --build-only  only the build packages (make wheel, make sdist)
#   scripts/bootstrap.sh --test-wheel  the build packages and debootstrap (make test-wheel)
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-}"
case "$MODE" in
  "" | --test | --build-only | --test-wheel) ;;
  *)
    echo "bootstrap: unknown option $MODE (use --test, --build-only or --test-wheel)" >&2
    exit 2
    ;;
esac

PYTHON_VERSION="${FASTQ_PYTHON:-3.12}"
VENV="${FASTQ_VENV:-.venv}"
DJANGO_SPEC="${FASTQ_DJANGO:-Django>=6.1,<6.2}"
# More pip requirements for this venv, space-separated (the LTS venv adds the django_tasks
# backport of Django's Tasks API, which Django 6 ships as django.tasks).
EXTRA_PIP="${FASTQ_EXTRA_PIP:-}"
# Building the C++ core and the extension (docs/installing.md lists the same).
APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config libsimdjson-dev libboost-dev
  libpq-dev libsqlite3-dev libhowardhinnant-date-dev)
if [ "$MODE" = --test ]; then
  APT_PACKAGES+=(libgtest-dev clang-14 libclang-rt-14-dev iproute2 socat debootstrap chromium chromium-driver)
fi
[ "$MODE" = --test-wheel ] && APT_PACKAGES+=(debootstrap)

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

[ "$MODE" = --build-only ] || [ "$MODE" = --test-wheel ] && exit 0

# A Python of the wanted minor version that actually runs.
# shellcheck source=scripts/find_python.sh
. scripts/find_python.sh

if [ ! -x "$VENV/bin/python" ]; then
  py=$(find_python "$PYTHON_VERSION") || { echo "bootstrap: Python $PYTHON_VERSION not found" >&2; exit 1; }
  echo "bootstrap: creating $VENV with $py"
  "$py" -m venv "$VENV"
fi
stamp="$VENV/.fastq-deps"
want="$DJANGO_SPEC|pybind11>=2.12|scikit-build-core>=0.11|pytest|pytest-django|pytest-xdist|psycopg[binary]|ruff|prometheus-client|selenium${EXTRA_PIP:+|$EXTRA_PIP}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Django, pybind11, scikit-build-core, pytest and ruff into $VENV"
  "$VENV/bin/pip" install -q -U pip
  "$VENV/bin/pip" install -q "$DJANGO_SPEC" "pybind11>=2.12" "scikit-build-core>=0.11" pytest \
    pytest-django pytest-xdist "psycopg[binary]>=3.1" ruff "prometheus-client>=0.20" "selenium>=4.10" $EXTRA_PIP
  echo "$want" >"$stamp"
fi
# Editable install: rebuilds the extension incrementally (ccache) when C++ changed. A
# development build: warnings are errors.
if [ ! -f "$VENV/.fastq-built" ]; then
  echo "bootstrap: building the C++ core and fastq._core (the first build takes a few minutes)"
fi
FASTQ_WERROR=ON "$VENV/bin/pip" install -q --no-build-isolation -e .
touch "$VENV/.fastq-built"
