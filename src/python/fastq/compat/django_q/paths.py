"""Which dotted paths a Django-Q2 task may name, and resolving them.

A dotted path names code the project ships: a callable inside one of the project's
installed apps, or under an entry of ``FASTQ["DOTTED_PATHS"]`` (a module such as
``"math"``, or one callable such as ``"django.core.mail.send_mail"``). Django and fastq's
own apps are not the project's: list what you need from them. Nothing is imported before
the path is found to lie inside an allowed root, and every object reached on the way must
be defined there too (so ``myapp.tasks.os.system`` is refused although ``myapp.tasks``
imports ``os``). Names starting with an underscore are refused.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

MAX_PATH = 256  # Django-Q2's func column

_FRAMEWORK = ("django", "fastq", "fastq_django")


class ForbiddenPath(ValueError):
    """A dotted path the worker will not run (outside the allowed code, or malformed)."""


def _inside(name: str, root: str) -> bool:
    return name == root or name.startswith(root + ".")


def roots() -> tuple[list[str], set[str]]:
    """(module roots, exact callables) a dotted path may use."""
    from django.apps import apps

    from fastq import conf

    modules = [
        cfg.name
        for cfg in apps.get_app_configs()
        if not any(_inside(cfg.name, f) for f in _FRAMEWORK)
    ]
    exact: set[str] = set()
    for entry in conf.get("DOTTED_PATHS") or ():
        modules.append(entry)
        exact.add(entry)
    return modules, exact


def check_syntax(path: Any) -> str:
    """The path if it is a well-formed dotted name, else ForbiddenPath saying why."""
    if not isinstance(path, str):
        raise ForbiddenPath(f"a dotted path must be a str, not {type(path).__name__}")
    if len(path) > MAX_PATH:
        raise ForbiddenPath(f"dotted path of {len(path)} characters (at most {MAX_PATH})")
    if not path.isascii():
        raise ForbiddenPath(f"dotted path {path!r} has characters other than ASCII")
    parts = path.split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        raise ForbiddenPath(f"{path!r} is not a dotted path (module.function)")
    if any(p.startswith("_") for p in parts):
        raise ForbiddenPath(f"{path!r}: names starting with an underscore are not run")
    return path


def check(path: Any) -> str:
    """Refuse (ForbiddenPath) a path outside the allowed code, without importing."""
    path = check_syntax(path)
    modules, exact = roots()
    if path in exact or any(_inside(path, m) and path != m for m in modules):
        return path
    raise ForbiddenPath(
        f"{path!r} is not inside the project's installed apps or FASTQ['DOTTED_PATHS']; "
        "a dotted path runs only code the project ships"
    )


def resolve(path: Any) -> Callable[..., Any]:
    """The callable ``path`` names, after :func:`check`; ForbiddenPath otherwise."""
    path = check(path)
    modules, exact = roots()
    parts = path.split(".")
    module = None
    consumed = 0
    # The longest importable module prefix that lies inside an allowed root.
    for i in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:i])
        if not (any(_inside(name, m) or _inside(m, name) for m in modules) or path in exact):
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # not a module: an attribute further up
            raise ForbiddenPath(f"{path!r}: importing {name} failed: {exc}") from None
        except Exception as exc:
            raise ForbiddenPath(f"{path!r}: importing {name} failed: {exc!r}") from None
        consumed = i
        break
    if module is None:
        raise ForbiddenPath(f"{path!r}: no module of it can be imported")
    obj: Any = module
    for name in parts[consumed:]:
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise ForbiddenPath(f"{path!r}: {name!r} is not defined") from None
        if path in exact:
            continue
        defined_in = getattr(obj, "__module__", None)
        if isinstance(obj, type(sys)):
            defined_in = obj.__name__
        if not isinstance(defined_in, str) or not any(_inside(defined_in, m) for m in modules):
            raise ForbiddenPath(
                f"{path!r}: {name!r} comes from {defined_in or 'elsewhere'}, outside the "
                "allowed code"
            )
    if not callable(obj):
        raise ForbiddenPath(f"{path!r} is not callable")
    return obj


def path_of(func: Any) -> str:
    """The dotted path of a function (or task) given to async_task instead of a path."""
    fn = getattr(func, "fn", func)  # a fastq task: its function
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ForbiddenPath(f"{func!r} has no importable dotted path (a module-level function)")
    return f"{module}.{qualname}"
