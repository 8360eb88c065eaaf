"""A group label on jobs: Django-Q2's ``async_task(..., group=...)`` (fastq.compat.django_q)
reads and deletes a group's results by it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fastq_django", "0012_queue_controls")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="group_label",
            field=models.CharField(
                blank=True,
                help_text="Label of a group of jobs (Django-Q2's group=).",
                max_length=100,
                null=True,
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                fields=["group_label"],
                name="fastq_job_group_label",
                condition=models.Q(group_label__isnull=False),
            ),
        ),
    ]
