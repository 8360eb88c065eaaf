"""JSON only: arguments and results travel as JSON text, never pickle."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    return _encoder.encode(value)


def encode_arguments(
    task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[str, str]:
    """Encode a call's arguments; a TypeError names the argument JSON cannot encode."""
    try:
        return dumps(list(args)), dumps(dict(kwargs))
    except (TypeError, ValueError):
        pass
    for i, value in enumerate(args):
        _check(task_name, f"positional argument {i}", value)
    for key, value in kwargs.items():
        if not isinstance(key, str):
            raise TypeError(f"{task_name}(): keyword names must be strings, got {key!r}")
        _check(task_name, f"argument {key!r}", value)
    raise TypeError(f"{task_name}(): arguments are not JSON serializable")


def _check(task_name: str, what: str, value: Any) -> None:
    try:
        dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{task_name}(): {what} of type {type(value).__name__} is not JSON serializable "
            f"({exc}); pass ids and plain data, not objects"
        ) from None
