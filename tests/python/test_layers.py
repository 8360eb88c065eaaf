"""Layers point one way: core <- bindings <- ``fastq`` (the API) <- ``fastq_django``.

The API never imports the Django app; the app registers its broker and its poll runner
with the API when it is ready. ``fastq.compat`` (Celery, django-celery-beat and Django-Q2
import paths) is the one part of the package that sits above ``fastq_django``: it reads
the app's tables through the ORM, and nothing else in ``fastq`` imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import fastq
import pytest
from fastq import brokers, pollers

PACKAGE = Path(fastq.__file__).resolve().parent
ABOVE_DJANGO_APP = PACKAGE / "compat"


def _api_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if ABOVE_DJANGO_APP not in p.parents)


def _imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in ``tree``: statements at any depth (inside
    functions too) and ``importlib.import_module("...")`` / ``__import__("...")`` calls
    with a literal name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func, first = node.func, node.args[0]
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                yield node.lineno, str(first.value)


def _offenders(prefix: str) -> list[str]:
    found = []
    for path in _api_modules():
        for line, module in _imported(ast.parse(path.read_text(), str(path))):
            if module == prefix or module.startswith(prefix + "."):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    return found


def test_the_package_is_scanned() -> None:
    names = {p.name for p in _api_modules()}
    assert {"__init__.py", "brokers.py", "pollers.py", "task.py", "worker.py"} <= names
    assert not any(ABOVE_DJANGO_APP in p.parents for p in _api_modules())


def test_the_scan_sees_every_form_of_import() -> None:
    code = (
        "import fastq_django\n"
        "from fastq_django.broker import default_broker\n"
        "def f():\n"
        "    from fastq_django import pollers\n"
        "    importlib.import_module('fastq_django.models')\n"
    )
    assert sorted(m for _, m in _imported(ast.parse(code))) == [
        "fastq_django",
        "fastq_django",
        "fastq_django.broker",
        "fastq_django.broker.default_broker",
        "fastq_django.models",
        "fastq_django.pollers",
    ]


def test_the_api_never_imports_the_django_app() -> None:
    assert _offenders("fastq_django") == []


def test_the_api_never_imports_the_compat_layer_above_the_django_app() -> None:
    assert _offenders("fastq.compat") == []


@pytest.fixture
def no_registrations() -> Iterator[None]:
    """The registries emptied for the test, then put back."""
    registry, runners = brokers.broker_registry, pollers.poll_runners
    saved = (registry._broker, registry._default, runners._runner)
    fastq.set_broker(None)
    brokers.register_default(None)
    pollers.register_runner(None)
    yield
    registry._broker, registry._default, runners._runner = saved


@pytest.mark.usefixtures("no_registrations")
def test_without_a_broker_the_error_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="fastq_django") as info:
        fastq.get_broker()
    assert "MemoryBroker" in str(info.value)


@pytest.mark.usefixtures("no_registrations")
def test_the_registered_default_is_used_until_a_broker_is_set() -> None:
    default, chosen = fastq.MemoryBroker(), fastq.MemoryBroker()
    brokers.register_default(lambda: default)
    assert fastq.get_broker() is default
    fastq.set_broker(chosen)
    assert fastq.get_broker() is chosen
    fastq.set_broker(None)
    assert fastq.get_broker() is default


@pytest.mark.usefixtures("no_registrations")
def test_a_poll_cycle_without_a_runner_names_the_missing_app() -> None:
    with pytest.raises(RuntimeError, match=r"no poll runner is registered.*fastq_django"):
        pollers.poll("parcels")


@pytest.mark.usefixtures("no_registrations")
def test_a_poll_cycle_runs_on_the_registered_runner() -> None:
    calls: list[tuple[str, datetime]] = []

    def runner(name: str, now: datetime) -> dict[str, Any]:
        calls.append((name, now))
        return {"enqueued": 2}

    pollers.register_runner(runner)
    assert pollers.poll("parcels") == {"enqueued": 2}
    [(name, now)] = calls
    assert name == "parcels"
    assert now.tzinfo is not None
