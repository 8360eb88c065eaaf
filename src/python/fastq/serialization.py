"""JSON only: arguments and results travel as JSON text, never pickle.

Every path that writes arguments (``delay``, ``apply_async``, ``map``, schedules) and
the worker writing results encode with one encoder, in the C++ core: the text of
``json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``, with
what JSON, a worker or a database cannot take refused up front (see
:mod:`fastq.limits`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastq import _core


def dumps(value: Any, name: str = "value") -> str:
    """``value`` as JSON text; a TypeError or ValueError names ``name`` and the path to
    the bad part (``name['k'][2] is nan; ...``)."""
    return _core.encode_json(value, name)


def encode_arguments(
    task_name: str, args: Iterable[Any], kwargs: Mapping[str, Any] | None
) -> tuple[str, str]:
    """Encode a call's arguments; a TypeError or ValueError names the argument (and the
    path inside it) JSON must not carry: ``add(): positional argument 1 is nan; ...``."""
    if kwargs is not None and not isinstance(kwargs, dict):
        kwargs = dict(kwargs)
    return _core.encode_call(args, kwargs, f"{task_name}(): ")
