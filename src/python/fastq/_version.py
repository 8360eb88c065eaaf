"""The version of django-fastq: the one place it is written (pyproject.toml reads it)."""

__version__ = "0.1.0"
