#!/bin/sh
# Runs inside the bare Debian root (scripts/test_wheel.sh copies it to /opt/fastq-wheel-test):
# a fresh venv, the wheel with Django and psycopg[binary] from PyPI, then the round trip on
# each database named in $FASTQ_WHEEL_DBS. Only /bin/sh and Python: nothing else is here.
set -eu
T=/opt/fastq-wheel-test
cd "$T"
python3 -m venv venv
PY="$T/venv/bin/python"
"$PY" -m pip install -q -U pip

now() { "$PY" -c 'import time; print(f"{time.monotonic():.1f}")'; }
t0=$(now)
"$PY" -m pip install -q ./wheel/*.whl
t1=$(now)
echo "test-wheel: pip install of the wheel (with tzdata) took $("$PY" -c "print(f'{$t1 - $t0:.1f}')") s"
"$PY" -m pip install -q Django "psycopg[binary]"
"$PY" -m pip list --format=freeze | grep -i -E '^(django|django-fastq|psycopg|psycopg-binary|tzdata)=='

echo "test-wheel: the extension and what it loads:"
core=$("$PY" -c 'import fastq._core as c; print(c.__file__)')
ldd "$core" | sed 's/^/    /'
if ldd "$core" | grep -q 'not found'; then
  echo "test-wheel: FAILED: a library of the extension is missing" >&2
  exit 1
fi

cd project
for db in $FASTQ_WHEEL_DBS; do
  echo "test-wheel: round trip on $db"
  rm -f roundtrip.sqlite3* roundtrip-jobs.json
  FASTQ_WHEEL_DB=$db "$PY" manage.py migrate -v0
  FASTQ_WHEEL_DB=$db "$PY" ../roundtrip.py enqueue
  FASTQ_WHEEL_DB=$db "$PY" manage.py fastq_worker --burst --processes 1
  FASTQ_WHEEL_DB=$db "$PY" ../roundtrip.py check
done
