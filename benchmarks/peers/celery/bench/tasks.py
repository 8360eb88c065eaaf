from benchkit import bodies
from celery import shared_task


@shared_task(name="bench.tasks.noop")
def noop() -> None:
    return bodies.noop()


@shared_task(name="bench.tasks.io_get")
def io_get(url: str) -> int:
    return bodies.io_get(url)


@shared_task(name="bench.tasks.probe")
def probe(enqueued_at: float) -> float:
    return bodies.probe(enqueued_at)


@shared_task(name="bench.tasks.step")
def step(previous: object = None) -> None:
    return bodies.noop()


@shared_task(name="bench.tasks.collect")
def collect(results: list[object]) -> int:
    return len(results)
