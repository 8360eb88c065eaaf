"""What an installed django-fastq promises beyond its API: one version, a light import,
and time zones read from the same files as Python's zoneinfo, the tzdata package
included (docs/installing.md)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import fastq
import tzdata
from fastq import _core, _zones

TZDATA_DIR = str(Path(tzdata.__file__).parent / "zoneinfo")


def run_python(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def test_one_version() -> None:
    assert fastq.__version__ == importlib.metadata.version("django-fastq")


def test_import_fastq_imports_neither_django_nor_asyncio() -> None:
    code = (
        "import json, sys, fastq; "
        "print(json.dumps([m in sys.modules for m in ('django', 'asyncio')]))"
    )
    assert json.loads(run_python(code)) == [False, False]


def test_the_core_reads_zoneinfo_path_then_tzdata() -> None:
    assert _core.zone_path() == _zones.zone_path()
    assert _core.zone_path()[-1] == TZDATA_DIR
    assert os.path.isfile(os.path.join(TZDATA_DIR, "Asia", "Tehran"))


def test_tzdata_alone_gives_every_zone() -> None:
    # PYTHONTZPATH="" leaves zoneinfo (and so the core) no system directory, as on a
    # machine without the tzdata system package.
    code = """
import json
from datetime import datetime, timezone
import fastq
fire = fastq.Cron("0 9 * * *", "Asia/Tehran").next_after(
    datetime(2026, 3, 1, 6, 0, tzinfo=timezone.utc))
print(json.dumps([fastq._core.zone_path(), fire.isoformat(), str(fire.tzinfo)]))
"""
    path, fire, zone = json.loads(run_python(code, PYTHONTZPATH=""))
    assert path == [TZDATA_DIR]
    assert fire == "2026-03-02T09:00:00+03:30"
    assert zone == "Asia/Tehran"


def test_unknown_or_hostile_zone_names_are_clear_errors() -> None:
    for name in ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/passwd", "Asia/Tehran\x00x"]:
        try:
            fastq.Cron("* * * * *", name)
        except fastq.CronError as e:
            assert "unknown time zone" in str(e)
        else:
            raise AssertionError(f"{name!r} was accepted")
