from django.db import models


class Execution(models.Model):
    """One row per execution of a ledger task: the tests count these."""

    job_id = models.CharField(max_length=36, db_index=True)
    key = models.CharField(max_length=100, db_index=True)
    attempt = models.IntegerField()
    pid = models.IntegerField()
