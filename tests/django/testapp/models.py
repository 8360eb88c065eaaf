from django.db import models


class Execution(models.Model):
    """One row per execution of a ledger task: the tests count these."""

    job_id = models.CharField(max_length=36, db_index=True)
    key = models.CharField(max_length=100, db_index=True)
    attempt = models.IntegerField()
    pid = models.IntegerField()


class Parcel(models.Model):
    """A row the batch poller tests track (testapp/poller_tasks.py)."""

    status = models.CharField(max_length=20, default="in_transit")
    sent_at = models.DateTimeField()
    checks = models.IntegerField(default=0)
    deliver_on_check = models.IntegerField(default=1)


class ParcelAlert(models.Model):
    parcel_id = models.IntegerField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
