# One command per job. Everything installs what it needs first (scripts/bootstrap.sh).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CPP_BUILD := build/cpp
SAN_BUILD := build/sanitize
JOBS ?= 2

.PHONY: all bootstrap demo test test-cpp test-python test-django-sqlite test-django-postgres \
        test-django-lts test-reliability-sqlite test-reliability-postgres test-hosts \
        test-acceptance bench bench-quick bench-hosts \
        lint format sanitize fuzz fuzz-smoke clean

all: bootstrap

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	$(PY) examples/shop/run_demo.py

test: bootstrap test-cpp fuzz-smoke test-python test-django-sqlite test-django-postgres \
      test-django-lts test-reliability-sqlite test-reliability-postgres test-hosts \
      test-acceptance lint
	@echo "make test: all suites passed"

$(CPP_BUILD)/build.ninja:
	cmake -S . -B $(CPP_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFASTQ_BUILD_TESTS=ON -DFASTQ_BUILD_PYTHON=OFF

test-cpp: bootstrap $(CPP_BUILD)/build.ninja
	ninja -C $(CPP_BUILD) -j $(JOBS)
	cd $(CPP_BUILD) && ctest --output-on-failure -j $(JOBS)

test-python: bootstrap
	$(PY) -m pytest -p no:django tests/python

test-django-sqlite: bootstrap
	FASTQ_TEST_DB=sqlite $(PY) -m pytest tests/django

test-django-postgres: bootstrap
	FASTQ_TEST_DB=postgres $(PY) -m pytest tests/django

# Chaos and failure tests: worker kills, pauses, signals, a database restart, bad input,
# limits (tests/integration/reliability; a few minutes each).
test-reliability-sqlite: bootstrap
	FASTQ_TEST_DB=sqlite $(PY) -m pytest tests/integration/reliability

test-reliability-postgres: bootstrap
	FASTQ_TEST_DB=postgres $(PY) -m pytest tests/integration/reliability

# Worker hosts as separate machines: each in its own network namespace (root, iproute2,
# socat), cut off from PostgreSQL, their clocks skewed (tests/integration/hosts; about
# two minutes).
test-hosts: bootstrap
	FASTQ_TEST_DB=postgres $(PY) -m pytest tests/integration/hosts

# The example shop (examples/shop) run as its users run it, on SQLite and on PostgreSQL:
# migrate, seed, fastq_worker with its schedules and tracking poller, outcomes checked in
# the database (about a minute each).
test-acceptance: bootstrap
	$(PY) -m pytest tests/acceptance

# The Django tests again on the oldest supported pair: Python 3.11 with Django 5.2 LTS, and
# the django_tasks backport of Django's Tasks API (tests/django/test_tasks_backend.py).
test-django-lts:
	FASTQ_PYTHON=3.11 FASTQ_VENV=.venv-lts FASTQ_DJANGO="Django>=5.2,<5.3" \
	  FASTQ_EXTRA_PIP="django-tasks>=0.12,<0.13" scripts/bootstrap.sh
	FASTQ_TEST_DB=sqlite .venv-lts/bin/python -m pytest tests/django
	FASTQ_TEST_DB=postgres .venv-lts/bin/python -m pytest tests/django

# fastq side by side with Celery, Django-Q2 and django-tasks, and the SQL limit
# (benchmarks/README.md). The peers install into benchmarks/.peers on first use.
bench: bootstrap
	$(PY) benchmarks/run.py $(BENCH_ARGS)
	$(PY) benchmarks/poller_cycle.py

# The same with small sizes and one repeat: a smoke run for CI, its figures mean nothing.
bench-quick: bootstrap
	$(PY) benchmarks/run.py --quick --out build/bench-quick/latest.json $(BENCH_ARGS)
	$(PY) benchmarks/poller_cycle.py --rows 20000 --out build/bench-quick/poller.json

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
fuzz: bootstrap
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++-14 -DFASTQ_FUZZ=ON -DFASTQ_BUILD_PYTHON=OFF
	ninja -C $(FUZZ_BUILD) -j $(JOBS) fuzz_envelope
	mkdir -p $(FUZZ_BUILD)/corpus
	$(FUZZ_BUILD)/fuzz_envelope -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	  -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/ $(FUZZ_BUILD)/corpus tests/fuzz/corpus

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=15

sanitize: bootstrap
	cmake -S . -B $(SAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFASTQ_BUILD_TESTS=ON \
	  -DFASTQ_BUILD_PYTHON=OFF -DFASTQ_SANITIZE=ON
	ninja -C $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf build
