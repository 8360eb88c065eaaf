#!/usr/bin/env bash
# make test-wheel: the wheel from dist/ on a bare Debian (tests/wheel/README.md).
#
# A minimal Debian root made by debootstrap (minbase; Python 3 and venv, nothing else: no
# compiler, no -dev package, no tzdata, no libpq5, libsimdjson or libdate-tz3), cached in
# build/test-wheel/<suite> (the first run downloads about 40 MB of Debian packages, later
# runs reuse it). In it: a fresh venv with the wheel for its Python, Django and
# psycopg[binary] from PyPI, then a round trip (enqueue, fastq_worker --burst, the result,
# a cron fire time in Asia/Tehran computed by the worker and by the caller) on SQLite and
# on the host's PostgreSQL at 127.0.0.1:5432 (a chroot shares the host's loopback), in a
# database of its own that is dropped afterwards. Needs root.
#
#   FASTQ_WHEEL_SUITE    Debian suite of the root (default bookworm: Python 3.11)
#   FASTQ_DEBIAN_MIRROR  default http://deb.debian.org/debian
# Without a reachable PostgreSQL the PostgreSQL half is skipped, or fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE="${FASTQ_WHEEL_SUITE:-bookworm}"
MIRROR="${FASTQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ROOT="$PWD/build/test-wheel/$SUITE"
T="$ROOT/opt/fastq-wheel-test"
say() { echo "test-wheel: $*"; }
fail() {
  echo "test-wheel: FAILED: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap and chroot)"
command -v debootstrap >/dev/null || fail "debootstrap is missing (scripts/bootstrap.sh --test installs it)"
start=$SECONDS

if [ ! -f "$ROOT/.fastq-root" ]; then
  say "making a minimal Debian $SUITE root in $ROOT (downloads Debian packages once)"
  umount "$ROOT/proc" "$ROOT.tmp/proc" 2>/dev/null || true
  rm -rf --one-file-system "$ROOT" "$ROOT.tmp"
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase --include=python3,python3-venv --exclude=tzdata \
    "$SUITE" "$ROOT.tmp" "$MIRROR" >"$ROOT.log" 2>&1 || {
    tail -20 "$ROOT.log" >&2
    fail "debootstrap $SUITE (log: $ROOT.log)"
  }
  date -u +%FT%TZ >"$ROOT.tmp/.fastq-root"
  mv "$ROOT.tmp" "$ROOT"
  say "root ready in $((SECONDS - start)) s"
else
  say "reusing the $SUITE root made $(cat "$ROOT/.fastq-root")"
fi

# Some suites' python3 depends on tzdata (Debian 13's does): take the zone files away
# all the same, as on a slim image that deletes them.
if chroot "$ROOT" dpkg-query -W -f '${Status}' tzdata 2>/dev/null | grep -q "ok installed"; then
  chroot "$ROOT" dpkg --purge --force-depends tzdata >/dev/null 2>&1
  rm -rf "$ROOT/usr/share/zoneinfo"
fi

# The root must stay bare: what the wheel needs has to come from the wheel.
for c in cc gcc g++ c++ clang; do
  [ ! -e "$ROOT/usr/bin/$c" ] || fail "the root has a compiler ($c)"
done
extra=$(chroot "$ROOT" dpkg-query -W -f '${Package}\n' |
  grep -E -- '-dev$|^libpq5$|^libsimdjson|^libdate-tz|^tzdata$|^libhowardhinnant' || true)
[ -z "$extra" ] || fail "the root has packages the wheel must not rely on: $extra"
[ ! -e "$ROOT/usr/share/zoneinfo" ] || fail "the root has a system tz database"
tag=$(chroot "$ROOT" python3 -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
say "root: Debian $SUITE, $(chroot "$ROOT" python3 --version), no compiler, no -dev packages," \
  "no tzdata, no libpq5/libsimdjson/libdate-tz"

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/python/fastq/_version.py)
wheel=$(ls dist/django_fastq-"$version"-"$tag"-"$tag"-manylinux*_x86_64.whl 2>/dev/null | head -1) ||
  true
[ -n "$wheel" ] || fail "no $tag manylinux wheel of $version in dist/ (make wheel)"
say "wheel: $wheel"

rm -rf "$T"
mkdir -p "$T/wheel"
cp "$wheel" "$T/wheel/"
cp -r tests/wheel/project "$T/project"
cp tests/wheel/roundtrip.py tests/wheel/inside.sh "$T/"
# The network settings pip needs inside: name resolution and the machine's CA bundle.
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$T/ca.crt"

dbs="sqlite"
pgdb="fastq_wheel_$$"
psql_host() { psql -h 127.0.0.1 -p 5432 -U postgres -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
cleanup() {
  umount "$ROOT/proc" 2>/dev/null || true
  if [ "$dbs" = "sqlite postgres" ]; then
    psql_host -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
if command -v psql >/dev/null && psql_host -c "CREATE DATABASE $pgdb" >/dev/null 2>&1; then
  dbs="sqlite postgres"
elif [ "${CI:-}" = true ]; then
  fail "PostgreSQL at 127.0.0.1:5432 is required under CI=true"
else
  say "PostgreSQL at 127.0.0.1:5432 not reachable: the PostgreSQL round trip is skipped"
fi

mount -t proc proc "$ROOT/proc"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  PIP_CERT=/opt/fastq-wheel-test/ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
  FASTQ_WHEEL_DBS="$dbs" FASTQ_WHEEL_PG_NAME="$pgdb" \
  /bin/sh /opt/fastq-wheel-test/inside.sh

say "passed on: $dbs ($((SECONDS - start)) s)"
