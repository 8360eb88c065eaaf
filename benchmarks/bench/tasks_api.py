"""The benchmark's three tasks declared with Django's Tasks API, run by fastq's Django
Tasks backend (fastq_django.backends.FastqTaskBackend): the "fastq-tasks" system of
benchmarks/run.py. The same bodies as bench/tasks.py and the django-tasks peer's."""

from benchkit import bodies
from django.tasks import task


@task
def noop() -> None:
    return bodies.noop()


@task
def io_get(url: str) -> int:
    return bodies.io_get(url)


@task
def probe(enqueued_at: float) -> float:
    return bodies.probe(enqueued_at)
