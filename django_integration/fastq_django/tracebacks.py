"""A job's traceback as the admin shows it: the frames of fastq's own code (the worker's
call into the task, the signal plumbing, the poller's cycle) left out, so that the first
and last frames are the project's. The row keeps the whole traceback (and the admin shows
it too, folded)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import fastq

import fastq_django

_FRAME = re.compile(r'^  File "(?P<path>[^"]*)", line \d+')


@cache
def _own_files() -> tuple[str, ...]:
    """Path endings of fastq's own modules, e.g. "/fastq/task.py". A traceback may come
    from a worker on another host whose install lives elsewhere: only the package-relative
    ending is compared."""
    endings: list[str] = []
    for package in (fastq, fastq_django):
        root = Path(package.__file__).resolve().parent
        for file in root.rglob("*.py"):
            endings.append("/" + root.name + "/" + file.relative_to(root).as_posix())
    return tuple(endings)


def is_own_frame(path: str) -> bool:
    return path.replace("\\", "/").endswith(_own_files())


def without_own_frames(traceback: str) -> tuple[str, int]:
    """``traceback`` without fastq's frames (each "File" line and the source and marker
    lines under it); returns the text and how many frames were left out."""
    out: list[str] = []
    hidden = 0
    skipping = False
    for line in traceback.splitlines(keepends=True):
        match = _FRAME.match(line)
        if match:
            skipping = is_own_frame(match.group("path"))
            hidden += skipping
            if not skipping:
                out.append(line)
            continue
        if skipping and line.startswith("    "):
            continue  # the source line of a hidden frame, or its ^^^ marker
        skipping = False
        out.append(line)
    return "".join(out), hidden
