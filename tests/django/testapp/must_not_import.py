"""Imported by nobody: a worker that imported it because a message named it would leave
the file named by FASTQ_IMPORT_MARKER behind (the bad-message tests look for it)."""

import os

_marker = os.environ.get("FASTQ_IMPORT_MARKER")
if _marker:
    with open(_marker, "a") as f:
        f.write(f"imported by {os.getpid()}\n")


def run() -> None:
    """The function a forged message names."""
