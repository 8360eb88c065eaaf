"""The peers' virtualenv, benchmarks/.peers: created from PyPI with the same Python as
.venv, so that every system runs on one interpreter version."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from harness.systems import HERE, PEERS_VENV

REQUIREMENTS = HERE / "peers" / "requirements.txt"
STAMP = PEERS_VENV / ".requirements-sha256"

# Import check per system: a peer that fails to install or import is skipped.
IMPORTS = {
    "celery": "celery, redis",
    "django-q2": "django_q",
    "django-tasks": "django_tasks, django_tasks_db",
    "chart": "matplotlib",
}


def base_python() -> str:
    """The interpreter .venv was created from (run.py runs inside .venv)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = Path(sys.base_prefix) / "bin" / version
    return str(candidate if candidate.exists() else Path(sys.base_prefix) / "bin" / "python3")


def ensure() -> dict[str, bool]:
    """Creates or updates the virtualenv; returns which peers import."""
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PEERS_VENV} with {base_python()}", flush=True)
        subprocess.run([base_python(), "-m", "venv", str(PEERS_VENV)], check=True)
    if not STAMP.exists() or STAMP.read_text().strip() != want:
        print("installing the peers from PyPI (benchmarks/peers/requirements.txt)", flush=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        result = subprocess.run([*pip, "-r", str(REQUIREMENTS)])
        if result.returncode != 0:
            # Install what can be installed, one line at a time; the import check below
            # tells which peers are usable.
            for line in REQUIREMENTS.read_text().splitlines():
                spec = line.split("#")[0].strip()
                if spec:
                    subprocess.run([*pip, spec])
        else:
            STAMP.write_text(want + "\n")
    usable: dict[str, bool] = {}
    for name, modules in IMPORTS.items():
        check = subprocess.run(
            [str(python), "-c", f"import {modules}"], capture_output=True, text=True
        )
        usable[name] = check.returncode == 0
        if not usable[name]:
            print(f"  {name} does not import; skipped: {check.stderr.strip()[-300:]}")
    return usable


def versions() -> dict[str, str]:
    """Installed versions of the peers, for the results file."""
    code = (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        "for d in ('celery', 'kombu', 'redis', 'django-q2', 'django-tasks', "
        "'django-tasks-db', 'Django', 'matplotlib'):\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    import json

    out = subprocess.run(
        [str(PEERS_VENV / "bin" / "python"), "-c", code], capture_output=True, text=True
    )
    return json.loads(out.stdout) if out.returncode == 0 else {}
