import fastq
from benchkit import bodies


@fastq.task
def noop() -> None:
    return bodies.noop()


@fastq.task
def io_get(url: str) -> int:
    return bodies.io_get(url)


@fastq.task
def probe(enqueued_at: float) -> float:
    return bodies.probe(enqueued_at)
