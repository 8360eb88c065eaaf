# One command per job. Everything installs what it needs first (scripts/bootstrap.sh).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CPP_BUILD := build/cpp
SAN_BUILD := build/sanitize
JOBS ?= 2

.PHONY: all bootstrap demo test test-cpp test-python test-django-sqlite test-django-postgres \
        test-django-lts bench bench-quick lint format sanitize clean

all: bootstrap

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	$(PY) examples/demo/run_demo.py

test: bootstrap test-cpp test-python test-django-sqlite test-django-postgres test-django-lts lint
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

# The Django tests again on the oldest supported pair: Python 3.11 with Django 5.2 LTS.
test-django-lts:
	FASTQ_PYTHON=3.11 FASTQ_VENV=.venv-lts FASTQ_DJANGO="Django>=5.2,<5.3" scripts/bootstrap.sh
	FASTQ_TEST_DB=sqlite .venv-lts/bin/python -m pytest tests/django
	FASTQ_TEST_DB=postgres .venv-lts/bin/python -m pytest tests/django

# fastq side by side with Celery, Django-Q2 and django-tasks, and the SQL limit
# (benchmarks/README.md). The peers install into benchmarks/.peers on first use.
bench: bootstrap
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# The same with small sizes and one repeat: a smoke run for CI, its figures mean nothing.
bench-quick: bootstrap
	$(PY) benchmarks/run.py --quick --out build/bench-quick/latest.json $(BENCH_ARGS)

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: bootstrap
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

sanitize: bootstrap
	cmake -S . -B $(SAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFASTQ_BUILD_TESTS=ON \
	  -DFASTQ_BUILD_PYTHON=OFF -DFASTQ_SANITIZE=ON
	ninja -C $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf build
