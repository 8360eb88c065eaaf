#!/usr/bin/env bash
# make sdist: the source distribution into dist/, checked and installed the way pip installs
# it for a user with no wheel for their platform: a clean venv, build isolation (only the
# documented build requirements, scikit-build-core and pybind11, from PyPI), a release
# build. The C++ build packages must be there (scripts/bootstrap.sh --build-only).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/find_python.sh
. scripts/find_python.sh
say() { echo "sdist: $*"; }
fail() {
  echo "sdist: FAILED: $*" >&2
  exit 1
}

WORK=build/sdist
TOOLS=build/wheel/tools
py=$(find_python 3.12 || find_python 3.11 || find_python 3.13) || fail "no Python 3.11-3.13"
if [ ! -x "$TOOLS/bin/pyproject-build" ]; then
  [ -x "$TOOLS/bin/python" ] || "$py" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q build
fi
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/python/fastq/_version.py)
sdist="dist/django_fastq-$version.tar.gz"
rm -f "$sdist"
"$TOOLS/bin/pyproject-build" --sdist --outdir dist . >/dev/null
say "built $sdist ($(stat -c %s "$sdist") bytes)"

listing=$(tar tzf "$sdist")
for bad in .ci/ benchmarks/ build/ .venv dist/; do
  if grep -q "^django_fastq-$version/$bad" <<<"$listing"; then
    fail "$sdist ships $bad"
  fi
done
for need in pyproject.toml CMakeLists.txt LICENSE README.md CHANGELOG.md src/cpp/core/cron.cpp \
  src/python/fastq/_version.py django_integration/fastq_django/apps.py; do
  grep -qx "django_fastq-$version/$need" <<<"$listing" || fail "$sdist lacks $need"
done
say "contents checked: no .ci/, no benchmarks (nor their results), no build trees"

rm -rf "$WORK"
"$py" -m venv "$WORK/venv"
start=$SECONDS
"$WORK/venv/bin/pip" install -q "$sdist"
say "pip install $sdist into a clean venv (build isolation, release build): $((SECONDS - start)) s"
"$WORK/venv/bin/python" - <<'PY'
import importlib.metadata
from datetime import datetime, timezone

import fastq
import fastq_django  # noqa: F401

assert fastq.__version__ == importlib.metadata.version("django-fastq"), fastq.__version__
fire = fastq.Cron("0 9 * * *", "Asia/Tehran").next_after(datetime(2026, 3, 1, 6, tzinfo=timezone.utc))
assert fire.isoformat() == "2026-03-02T09:00:00+03:30", fire
print(f"sdist: installed django-fastq {fastq.__version__} imports; Asia/Tehran fires at {fire}")
PY
say "passed"
