"""Plain functions run by dotted path (Django-Q2 style), and hooks."""

import json
from pathlib import Path

HOOK_LOG = "COMPAT_HOOK_LOG"


def multiply(x, y):
    return x * y


def fail(message):
    raise RuntimeError(message)


def fail_once(marker):
    """Fails on its first run (leaving ``marker``), succeeds on the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("first run fails")
    return "second run"


def greet(name, greeting="hello"):
    return f"{greeting} {name}"


def record(task):
    """A hook: writes what it was given to the file named by $COMPAT_HOOK_LOG."""
    import os

    path = os.environ.get(HOOK_LOG)
    if not path:
        return
    line = {
        "id": str(task.id),
        "func": task.func,
        "args": list(task.args),
        "kwargs": task.kwargs,
        "result": task.result,
        "success": task.success,
        "group": task.group,
        "name": task.name,
        "time_taken": task.time_taken() >= 0,
    }
    with Path(path).open("a") as f:
        f.write(json.dumps(line) + "\n")


def stamp(when=None):
    return when
