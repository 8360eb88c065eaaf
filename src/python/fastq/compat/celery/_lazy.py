"""Names that are fastq's workflows (``fastq.group``, ``fastq.chain``, ``fastq.chord``,
``fastq.signature``, ``fastq.GroupResult``), looked up on ``fastq`` each time they are
used: importing them always works, and using them needs a fastq that has them."""

from __future__ import annotations

from typing import Any


class LazyWorkflow:
    def __init__(self, celery_name: str, fastq_name: str) -> None:
        self._celery_name = celery_name
        self._fastq_name = fastq_name

    def _target(self) -> Any:
        import fastq

        try:
            return getattr(fastq, self._fastq_name)
        except AttributeError:
            raise NotImplementedError(
                f"celery's {self._celery_name} is fastq.{self._fastq_name} (fastq's "
                "workflows), which this fastq does not have"
            ) from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._target(), name)

    def __repr__(self) -> str:
        return f"<{self._celery_name}: fastq.{self._fastq_name}, looked up when used>"
