"""Django-Q2 runs plain functions named by their dotted path."""

from benchkit import bodies


def noop() -> None:
    return bodies.noop()


def io_get(url: str) -> int:
    return bodies.io_get(url)


def probe(enqueued_at: float) -> float:
    return bodies.probe(enqueued_at)
