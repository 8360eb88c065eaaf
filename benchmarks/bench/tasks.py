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


@fastq.task
def step(previous: object = None) -> None:
    """A chain step or chord member: a no-op that takes the previous step's result."""
    return bodies.noop()


@fastq.task
def collect(results: list[object]) -> int:
    """A chord's callback: how many results it received."""
    return len(results)
