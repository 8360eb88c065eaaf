"""Retention (FASTQ["RETENTION"], src/cpp/core/include/fastq/retention.hpp).

A pruning batch is a range scan of ``fastq_job_prune (state, finished_at, id)`` from a
cursor, partial on finished rows: it reads each state's oldest jobs whatever the
planner's statistics say (on a queue table they are always stale), and walks past the
jobs it must keep. It deletes a finished job only when nothing still depends on it: no
``fastq_schedule_run`` row names it and no ``fastq_poller_mark`` names it as the alert it
enqueued. Both tests are index probes: ``fastq_schedule_run.job_id`` gets a partial index
and a mark records its alert job in the new ``job_id`` column.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0015_job_attempt_log_custom_state"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", False)),
                fields=["state", "finished_at", "id"],
                name="fastq_job_prune",
            ),
        ),
        migrations.AddField(
            model_name="pollermark",
            name="job_id",
            field=models.UUIDField(
                blank=True, null=True, help_text="The alert job enqueued with this mark."
            ),
        ),
        migrations.AddIndex(
            model_name="schedulerun",
            index=models.Index(
                condition=models.Q(("job_id__isnull", False)),
                fields=["job_id"],
                name="fastq_schedule_run_job",
            ),
        ),
        migrations.AddIndex(
            model_name="pollermark",
            index=models.Index(
                condition=models.Q(("job_id__isnull", False)),
                fields=["job_id"],
                name="fastq_poller_mark_job",
            ),
        ),
    ]
