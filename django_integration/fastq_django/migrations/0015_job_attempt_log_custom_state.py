"""Two nullable text columns on jobs, written only from Python and only when used (no
cost on the claim/complete path, no default to backfill):

- ``attempt_log``: the errors of a Django Tasks API job's earlier attempts, so that
  ``TaskResult.errors`` lists one error per failed attempt (fastq_django.backends);
- ``custom_state``: a state a running task reported with its meta, Celery's
  ``self.update_state(state=..., meta=...)`` (fastq.compat.celery).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fastq_django", "0014_workflows")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="attempt_log",
            field=models.TextField(
                blank=True,
                editable=False,
                help_text="JSON array: earlier attempts' errors, for Django's TaskResult.errors "
                "(fastq_django.backends; bounded). The C++ core neither reads nor writes it.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="custom_state",
            field=models.TextField(
                blank=True,
                editable=False,
                help_text="JSON: a state a running task reported with its meta (Celery's "
                "update_state, fastq.compat.celery), and the attempt that reported it.",
                null=True,
            ),
        ),
    ]
