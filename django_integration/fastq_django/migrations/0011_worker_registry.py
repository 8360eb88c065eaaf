from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0010_schedule_default_timezone"),
    ]

    operations = [
        migrations.CreateModel(
            name="WorkerProcess",
            fields=[
                (
                    "id",
                    models.CharField(
                        help_text="host:pid:uuid",
                        max_length=200,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("kind", models.CharField(help_text='"worker" or "supervisor".', max_length=16)),
                (
                    "supervisor",
                    models.CharField(
                        blank=True,
                        db_default="",
                        default="",
                        help_text="Its supervisor's id.",
                        max_length=200,
                    ),
                ),
                ("host", models.CharField(max_length=255)),
                ("pid", models.BigIntegerField()),
                (
                    "version",
                    models.CharField(blank=True, db_default="", default="", max_length=64),
                ),
                (
                    "queues",
                    models.TextField(db_default="[]", default="[]", help_text="JSON array."),
                ),
                (
                    "tasks",
                    models.TextField(db_default="[]", default="[]", help_text="JSON array."),
                ),
                ("concurrency", models.IntegerField(db_default=0, default=0)),
                ("processes", models.IntegerField(db_default=0, default=0)),
                (
                    "state",
                    models.CharField(
                        choices=[("running", "Running"), ("stopped", "Stopped"), ("lost", "Lost")],
                        max_length=16,
                    ),
                ),
                ("started_at", models.DateTimeField()),
                ("last_heartbeat", models.DateTimeField()),
                ("expires_at", models.DateTimeField(help_text="Silent past this: lost.")),
                ("stopped_at", models.DateTimeField(blank=True, null=True)),
                ("processed", models.BigIntegerField(db_default=0, default=0)),
                ("failed", models.BigIntegerField(db_default=0, default=0)),
                ("rss_bytes", models.BigIntegerField(db_default=0, default=0)),
            ],
            options={
                "verbose_name": "worker",
                "db_table": "fastq_worker",
                "ordering": ["host", "pid"],
                "permissions": [("view_metrics", "Can read the fleet metrics (/fastq/metrics)")],
                "indexes": [
                    models.Index(fields=["state", "expires_at"], name="fastq_worker_state"),
                ],
            },
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", False)),
                fields=["finished_at"],
                name="fastq_job_finished",
            ),
        ),
    ]
