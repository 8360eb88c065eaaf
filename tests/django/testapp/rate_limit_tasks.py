"""Rate-limited tasks for the reliability suite. The worker imports this module only when
FASTQ_TEST_IMPORTS names it (see testproject/settings.py)."""

from __future__ import annotations

import fastq

from testapp.reliability_tasks import execution


@fastq.task(rate_limit="50/s")
def limited(n: int) -> int:
    with execution(str(n)):
        pass
    return n


@fastq.task(rate_limit="20/s", rate_limit_key=lambda provider, n: provider)
def per_provider(provider: str, n: int) -> int:
    with execution(provider):
        pass
    return n
