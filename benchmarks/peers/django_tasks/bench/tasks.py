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
