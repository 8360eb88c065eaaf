"""CHECK constraints on what a job row may hold, so that no single row can make a
worker's claim fail (an ``attempts`` of 2**31-1 overflowed the claim's ``attempts + 1`` and
stopped every queue of the worker). Rows already outside the bounds are first brought
inside them: counters clamped, impossible time limits cleared, unknown states ended dead.
"""

from django.db import migrations, models
from django.db.models import Q

ATTEMPTS_CEILING = 1_000_000_000
MAX_ATTEMPTS_LIMIT = 1_000_000
MAX_TIME_LIMIT_SECONDS = 1e9
STATES = ["queued", "running", "succeeded", "failed", "dead", "expired", "cancelled"]


def bring_rows_within_bounds(apps, schema_editor):
    Job = apps.get_model("fastq_django", "Job")
    db = schema_editor.connection.alias
    jobs = Job.objects.using(db)
    jobs.filter(attempts__lt=0).update(attempts=0)
    jobs.filter(attempts__gt=ATTEMPTS_CEILING).update(attempts=ATTEMPTS_CEILING)
    jobs.filter(max_attempts__lt=1).update(max_attempts=1)
    jobs.filter(max_attempts__gt=MAX_ATTEMPTS_LIMIT).update(max_attempts=MAX_ATTEMPTS_LIMIT)
    jobs.filter(priority__lt=-32768).update(priority=-32768)
    jobs.filter(priority__gt=32767).update(priority=32767)
    for field in ("time_limit", "soft_time_limit"):
        # NaN compares greater than every number on PostgreSQL, so __gt catches it too.
        jobs.filter(
            Q(**{f"{field}__lt": 0}) | Q(**{f"{field}__gt": MAX_TIME_LIMIT_SECONDS})
        ).update(**{field: None})
    jobs.exclude(state__in=STATES).update(
        state="dead",
        error_type="fastq.InvalidJob",
        error="the row's state was not one fastq knows; ended by migration 0008",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0007_poller_marks"),
    ]

    operations = [
        migrations.RunPython(bring_rows_within_bounds, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=Q(attempts__gte=0, attempts__lte=ATTEMPTS_CEILING),
                name="fastq_job_attempts_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=Q(max_attempts__gte=1, max_attempts__lte=MAX_ATTEMPTS_LIMIT),
                name="fastq_job_max_attempts_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=Q(priority__gte=-32768, priority__lte=32767),
                name="fastq_job_priority_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=Q(time_limit__isnull=True)
                | Q(time_limit__gte=0, time_limit__lte=MAX_TIME_LIMIT_SECONDS),
                name="fastq_job_time_limit_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=Q(soft_time_limit__isnull=True)
                | Q(soft_time_limit__gte=0, soft_time_limit__lte=MAX_TIME_LIMIT_SECONDS),
                name="fastq_job_soft_time_limit_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=Q(state__in=STATES),
                name="fastq_job_state_valid",
            ),
        ),
    ]
