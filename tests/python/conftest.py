from collections.abc import Iterator

import fastq
import pytest


@pytest.fixture
def broker() -> Iterator[fastq.MemoryBroker]:
    b = fastq.MemoryBroker()
    fastq.set_broker(b)
    yield b
    fastq.set_broker(None)
    fastq.configure()


def run_burst(**options: object) -> object:
    return fastq.Worker(burst=True, **options).run()  # type: ignore[arg-type]
