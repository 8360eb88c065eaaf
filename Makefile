# One command per job. Everything installs what it needs first (scripts/bootstrap.sh).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CPP_BUILD := build/cpp
SAN_BUILD := build/sanitize
JOBS ?= 2
# ccache keys on paths relative to the checkout, so a second clone reuses the first's objects.
export CCACHE_BASEDIR ?= $(CURDIR)
# The Django and compatibility suites spend most of their time waiting on worker
# subprocesses: two pytest processes (pytest-xdist, a file each at a time) halve the wall
# time. Each process has its own test database (its PID is in the name). XDIST= runs serially.
XDIST ?= -n 2 --dist loadfile

.PHONY: all bootstrap bootstrap-test demo test test-cpp test-python test-django-sqlite test-django-postgres \
        test-compat-sqlite test-compat-postgres \
        test-django-lts test-reliability-sqlite test-reliability-postgres test-hosts \
        test-acceptance bench bench-quick bench-retention bench-hosts bench-designs bench-startup \
        bench-scaling \
        lint format sanitize fuzz fuzz-smoke wheel test-wheel sdist clean

all: bootstrap

# What make demo, lint and bench need: the build packages, the venv, the editable build.
bootstrap:
	@scripts/bootstrap.sh

# The same plus what the suites need (GoogleTest, clang, iproute2, socat, debootstrap).
bootstrap-test:
	@scripts/bootstrap.sh --test

demo: bootstrap
	$(PY) examples/shop/run_demo.py

test: bootstrap-test test-cpp fuzz-smoke test-python test-django-sqlite test-django-postgres \
      test-compat-sqlite test-compat-postgres \
      test-django-lts test-reliability-sqlite test-reliability-postgres test-hosts \
      test-acceptance lint
	@echo "make test: all suites passed"

$(CPP_BUILD)/build.ninja:
	cmake -S . -B $(CPP_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFASTQ_BUILD_TESTS=ON -DFASTQ_BUILD_PYTHON=OFF -DFASTQ_WERROR=ON

test-cpp: bootstrap-test $(CPP_BUILD)/build.ninja
	ninja -C $(CPP_BUILD) -j $(JOBS)
	cd $(CPP_BUILD) && ctest --output-on-failure -j $(JOBS)

test-python: bootstrap-test
	$(PY) -m pytest -p no:django tests/python

test-django-sqlite: bootstrap-test
	FASTQ_TEST_DB=sqlite $(PY) -m pytest $(XDIST) tests/django

test-django-postgres: bootstrap-test
	FASTQ_TEST_DB=postgres $(PY) -m pytest $(XDIST) tests/django

# Celery and Django-Q2 compatibility (fastq.compat) in a project of their own
# (tests/compat/compatproject), workers as subprocesses.
COMPAT_PYTEST := $(PY) -m pytest $(XDIST) -c tests/compat/pytest.ini --rootdir tests/compat tests/compat
test-compat-sqlite: bootstrap
	FASTQ_TEST_DB=sqlite $(COMPAT_PYTEST)

test-compat-postgres: bootstrap
	FASTQ_TEST_DB=postgres $(COMPAT_PYTEST)

# Chaos and failure tests: worker kills, pauses, signals, a database restart, bad input,
# limits (tests/integration/reliability; a few minutes each).
test-reliability-sqlite: bootstrap-test
	FASTQ_TEST_DB=sqlite $(PY) -m pytest tests/integration/reliability

test-reliability-postgres: bootstrap-test
	FASTQ_TEST_DB=postgres $(PY) -m pytest tests/integration/reliability

# Worker hosts as separate machines: each in its own network namespace (root, iproute2,
# socat), cut off from PostgreSQL, their clocks skewed (tests/integration/hosts; about
# two minutes).
test-hosts: bootstrap-test
	FASTQ_TEST_DB=postgres $(PY) -m pytest tests/integration/hosts

# The example shop (examples/shop) run as its users run it, on SQLite and on PostgreSQL:
# migrate, seed, fastq_worker with its schedules and tracking poller, outcomes checked in
# the database (about a minute each).
test-acceptance: bootstrap-test
	$(PY) -m pytest tests/acceptance

# The Django tests again on the oldest supported pair: Python 3.11 with Django 5.2 LTS, and
# the django_tasks backport of Django's Tasks API (tests/django/test_tasks_backend.py).
test-django-lts:
	FASTQ_PYTHON=3.11 FASTQ_VENV=.venv-lts FASTQ_DJANGO="Django>=5.2,<5.3" \
	  FASTQ_EXTRA_PIP="django-tasks>=0.12,<0.13" scripts/bootstrap.sh
	FASTQ_TEST_DB=sqlite .venv-lts/bin/python -m pytest $(XDIST) tests/django
	FASTQ_TEST_DB=postgres .venv-lts/bin/python -m pytest $(XDIST) tests/django
	FASTQ_TEST_DB=sqlite .venv-lts/bin/python -m pytest $(XDIST) -c tests/compat/pytest.ini --rootdir tests/compat tests/compat
	FASTQ_TEST_DB=postgres .venv-lts/bin/python -m pytest $(XDIST) -c tests/compat/pytest.ini --rootdir tests/compat tests/compat

# fastq side by side with Celery, Django-Q2 and django-tasks, and the SQL limit
# (benchmarks/README.md). The peers install into benchmarks/.peers on first use.
bench: bootstrap
	$(PY) benchmarks/run.py $(BENCH_ARGS)
	$(PY) benchmarks/poller_cycle.py
	$(PY) benchmarks/inspect_bench.py
	$(PY) benchmarks/workflows.py
	$(PY) benchmarks/startup.py
	$(PY) benchmarks/delay_bench.py
	$(PY) benchmarks/retention.py

# The same with small sizes and one repeat: a smoke run for CI, its figures mean nothing.
bench-quick: bootstrap
	$(PY) benchmarks/run.py --quick --out build/bench-quick/latest.json $(BENCH_ARGS)
	$(PY) benchmarks/poller_cycle.py --rows 20000 --out build/bench-quick/poller.json
	$(PY) benchmarks/inspect_bench.py --rows 20000 --repeat 1 --out build/bench-quick/inspect.json
	$(PY) benchmarks/workflows.py --quick --out build/bench-quick/workflows.json
	$(PY) benchmarks/startup.py --samples 3 --out build/bench-quick/startup.json
	$(PY) benchmarks/delay_bench.py --quick --db bench_delay_quick --out build/bench-quick/delay.json
	$(PY) benchmarks/retention.py --quick --out build/bench-quick/retention.json

# Job-store table designs on PostgreSQL, same load for each: claim+complete jobs/s, WAL
# bytes per job, HOT updates, sizes (docs/benchmarks.md, "Job store designs"; about 5 min).
bench-designs: bootstrap
	$(PY) benchmarks/store_designs.py $(BENCH_ARGS)

# fastq_worker from exec to its first job, phase by phase, and -X importtime.
bench-startup: bootstrap
	$(PY) benchmarks/startup.py $(BENCH_ARGS)

# No-op throughput of 1, 2, 4 and 8 worker processes against one PostgreSQL (docs/scaling.md).
bench-scaling: bootstrap
	$(PY) benchmarks/scaling.py $(BENCH_ARGS)

# Retention at scale alone: 5,000,000 no-op jobs on PostgreSQL and 1,000,000 on SQLite
# with every final state kept 60 s; throughput per million and the job table's size
# (benchmarks/retention.py, figures in docs/benchmarks.md).
bench-retention: bootstrap
	$(PY) benchmarks/retention.py $(BENCH_ARGS)

# No-op throughput of 1, 2 and 3 hosts against one PostgreSQL (docs/scaling.md).
bench-hosts: bootstrap
	FASTQ_TEST_DB=postgres $(PY) tests/integration/hosts/throughput.py $(BENCH_ARGS)

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: bootstrap
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# libFuzzer on the envelope decoder: FUZZ_SECONDS=600 by hand, a short run in make test.
FUZZ_BUILD := build/fuzz
FUZZ_SECONDS ?= 600
fuzz: bootstrap-test
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++-14 -DFASTQ_FUZZ=ON -DFASTQ_BUILD_PYTHON=OFF
	ninja -C $(FUZZ_BUILD) -j $(JOBS) fuzz_envelope
	mkdir -p $(FUZZ_BUILD)/corpus
	$(FUZZ_BUILD)/fuzz_envelope -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	  -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/ $(FUZZ_BUILD)/corpus tests/fuzz/corpus

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=15

sanitize: bootstrap-test
	cmake -S . -B $(SAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFASTQ_BUILD_TESTS=ON \
	  -DFASTQ_BUILD_PYTHON=OFF -DFASTQ_SANITIZE=ON
	ninja -C $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

# One self-contained manylinux wheel per CPython found here (3.11, 3.12, 3.13) into dist/:
# release build (no -Werror), repaired by auditwheel; `auditwheel show` of each goes to
# build/wheel/auditwheel-show.txt (docs/installing.md). Needs only the build packages that
# bootstrap installs.
wheel:
	@scripts/bootstrap.sh --build-only
	scripts/build_wheels.sh

# The wheels on a bare Debian: a minimal root made by debootstrap (cached in build/test-wheel;
# Python only, no compiler, no -dev packages, no tzdata, no libpq/libsimdjson), a fresh venv
# with the wheel, Django and psycopg[binary], and a round trip on SQLite and on the host's
# PostgreSQL (tests/wheel). Needs root.
test-wheel: wheel
	@scripts/bootstrap.sh --test-wheel
	scripts/test_wheel.sh

# The source distribution into dist/, then built and installed from a clean venv that has
# only the documented build requirements.
sdist:
	@scripts/bootstrap.sh --build-only
	scripts/test_sdist.sh

clean:
	rm -rf build
