"""fastq: a Django task queue with a C++ core.

    import fastq

    @fastq.task
    def send_sms(phone: str, text: str) -> None: ...

    result = send_sms.delay("+233244123456", "code 123456")
    result.get(timeout=10)

Run the tasks with ``python manage.py fastq_worker``; ``@fastq.periodic(cron=...)`` or
``(every=...)`` runs one on a schedule; ``@fastq.poller(queryset=...)`` checks every row
of a queryset on one.
"""

from fastq import _core, _zones
from fastq._core import Cron, CronError
from fastq._version import __version__
from fastq.brokers import Broker, JobSnapshot, MemoryBroker, NewJob, get_broker, set_broker
from fastq.canvas import (
    GroupResult,
    Signature,
    WorkflowResult,
    chain,
    chord,
    group,
    is_failure,
    signature,
    workflow,
)
from fastq.conf import configure
from fastq.pollers import Poller, poller
from fastq.result import AsyncResult, EagerResult, TaskFailed, TimeoutError
from fastq.schedules import PeriodicSchedule, periodic, schedule_once
from fastq.task import MaxRetriesExceededError, Retry, Task, current_job, registry, task
from fastq.timelimits import SoftTimeLimitExceeded
from fastq.worker import Worker

# The core reads zone files from where Python's zoneinfo does (fastq/_zones.py).
_core.set_zone_path(_zones.zone_path())

__all__ = [
    "AsyncResult",
    "Broker",
    "Cron",
    "CronError",
    "EagerResult",
    "GroupResult",
    "JobSnapshot",
    "MaxRetriesExceededError",
    "MemoryBroker",
    "NewJob",
    "PeriodicSchedule",
    "Poller",
    "Retry",
    "Signature",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskFailed",
    "TimeoutError",
    "Worker",
    "WorkflowResult",
    "__version__",
    "chain",
    "chord",
    "configure",
    "current_job",
    "get_broker",
    "group",
    "is_failure",
    "periodic",
    "poller",
    "registry",
    "schedule_once",
    "set_broker",
    "signature",
    "task",
    "workflow",
]
