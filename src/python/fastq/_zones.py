"""Where the C++ core reads time zones: the same files as Python's ``zoneinfo``.

``zoneinfo.ZoneInfo`` searches ``zoneinfo.TZPATH`` (``PYTHONTZPATH`` or the interpreter's
built-in list, ``/usr/share/zoneinfo`` first on Linux) and then the ``tzdata`` package,
which django-fastq depends on. The core is given the same list in the same order, so a
cron schedule's fire times and the datetimes it returns come from one database, and a
machine with no system tz database (a slim container) still knows every zone.

Computed without importing ``zoneinfo`` or ``sysconfig``, to keep ``import fastq`` light.
"""

from __future__ import annotations

import os
from importlib.util import find_spec

# CPython's default TZPATH on Linux (configure --with-tzpath), the one Debian uses.
_DEFAULT_TZPATH = (
    "/usr/share/zoneinfo",
    "/usr/lib/zoneinfo",
    "/usr/share/lib/zoneinfo",
    "/etc/zoneinfo",
)


def zone_path() -> list[str]:
    """The directories to read zone files from, in ``zoneinfo``'s order."""
    env = os.environ.get("PYTHONTZPATH")
    if env is None:
        dirs = list(_DEFAULT_TZPATH)
    else:
        # zoneinfo ignores relative entries; an empty variable means no system directory.
        dirs = [d for d in env.split(os.pathsep) if d and os.path.isabs(d)]
    try:
        spec = find_spec("tzdata")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            dirs.append(os.path.join(base, "zoneinfo"))
    return dirs
