"""Celery-style tasks of the compatibility tests (declared with shared_task, as a Celery
project does)."""

import os
import time
from pathlib import Path

from fastq.compat.celery import Task, current_task, shared_task
from fastq.compat.celery.exceptions import SoftTimeLimitExceeded
from fastq.compat.celery.utils.log import get_task_logger

logger = get_task_logger(__name__)


@shared_task
def add(x, y):
    return x + y


@shared_task(bind=True, max_retries=3, default_retry_delay=0)
def flaky(self, fail_times):
    """Fails ``fail_times`` times through self.retry, then answers what it saw."""
    logger.info("flaky attempt %s", self.request.retries)
    if self.request.retries < fail_times:
        raise self.retry(exc=ValueError(f"attempt {self.request.retries}"), countdown=0)
    return {
        "id": self.request.id,
        "retries": self.request.retries,
        "args": self.request.args,
        "hostname": self.request.hostname,
        "is_eager": self.request.is_eager,
        "queue": self.request.delivery_info["routing_key"],
        "current": current_task.name,
    }


@shared_task(
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    retry_backoff_max=1,
    retry_jitter=False,
    max_retries=2,
)
def always_down():
    raise ConnectionError("provider down")


@shared_task(bind=True, max_retries=5)
def retry_with_limit(self):
    raise self.retry(exc=KeyError("gone"), countdown=0, max_retries=1)


@shared_task
def boom():
    raise ValueError("boom")


@shared_task(ignore_result=True)
def ignored():
    return "not kept"


@shared_task
def route_me():
    return "routed"


@shared_task
def exact_route():
    return "exact"


@shared_task(queue="own")
def route_own():
    return "own queue wins over routes"


@shared_task
def wait_for_file(path, timeout=60.0):
    """Runs until ``path`` exists (the test creates it): a task to inspect while running."""
    deadline = time.monotonic() + timeout
    Path(path + ".started").write_text(str(os.getpid()))
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.05)
    return "released"


@shared_task(soft_time_limit=0.5)
def too_slow():
    try:
        time.sleep(30)
    except SoftTimeLimitExceeded:
        return "soft limit seen"
    return "slept"


@shared_task(bind=True)
def retry_later(self):
    raise self.retry(exc=OSError("try again in an hour"), countdown=3600)


class Audited(Task):
    """A base= class with Celery's handlers: each writes to $COMPAT_HANDLER_LOG."""

    def _note(self, *parts):
        path = os.environ.get("COMPAT_HANDLER_LOG")
        if path:
            with Path(path).open("a") as f:
                f.write(" ".join(str(p) for p in parts) + "\n")

    def on_success(self, retval, task_id, args, kwargs):
        self._note("success", task_id, retval)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        self._note("failure", task_id, type(exc).__name__, "Traceback" in einfo)

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        self._note("retry", task_id, type(exc).__name__)

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        self._note("after_return", task_id, status)


@shared_task(base=Audited, bind=True, max_retries=1, default_retry_delay=0)
def audited(self, fail):
    if fail and self.request.retries == 0:
        raise self.retry(exc=LookupError("first"))
    if fail:
        raise LookupError("again")
    return "fine"


@shared_task
def tsum(values):
    return sum(values)


@shared_task
def failed_note(failed_id, tag):
    """An error link: receives the failed job's id first (fastq's workflows)."""
    return f"{tag}:{failed_id}"


@shared_task
def square(x):
    return x * x


@shared_task(bind=True)
def progress(self, path, timeout=60.0):
    """Reports a custom state, then runs until ``path`` exists (the test creates it)."""
    self.update_state(state="PROGRESS", meta={"step": 1, "of": 2})
    Path(path + ".started").write_text(str(os.getpid()))
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.05)
    return {"step": 2, "of": 2}
