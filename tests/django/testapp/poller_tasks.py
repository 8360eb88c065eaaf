"""A batch poller for tests/django/test_pollers.py, imported by its workers through
FASTQ_TEST_IMPORTS (other tests' workers do not run it)."""

from __future__ import annotations

from datetime import timedelta

import fastq
from django.db.models import F

from testapp.models import Parcel, ParcelAlert


def alert_late(parcel_id: int) -> None:
    ParcelAlert.objects.create(parcel_id=parcel_id)


@fastq.poller(
    queryset=lambda: Parcel.objects.filter(status="in_transit"),
    every=timedelta(seconds=1),
    rate_limit="200/s",
    stale_after=timedelta(hours=1),
    stale_field="sent_at",
    on_stale=alert_late,
    batch_size=7,
)
def track_parcel(parcel_id: int) -> None:
    """Asks the "provider": a parcel is delivered on its deliver_on_check-th check."""
    Parcel.objects.filter(pk=parcel_id).update(checks=F("checks") + 1)
    Parcel.objects.filter(pk=parcel_id, checks__gte=F("deliver_on_check")).update(
        status="delivered"
    )
