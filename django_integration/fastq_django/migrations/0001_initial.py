import uuid

import django.db.models.functions.datetime
import django.utils.timezone
from django.db import migrations, models

# Workers LISTEN on channel "fastq"; this wakes them when an INSERT commits (PostgreSQL
# only: SQLite workers poll). One notification per statement, and PostgreSQL folds
# identical notifications within a transaction into one.
NOTIFY_SQL = """
CREATE OR REPLACE FUNCTION fastq_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('fastq', ''); RETURN NULL; END $$;
CREATE TRIGGER fastq_job_notify AFTER INSERT ON fastq_job
  FOR EACH STATEMENT EXECUTE FUNCTION fastq_notify();
"""
DROP_NOTIFY_SQL = """
DROP TRIGGER IF EXISTS fastq_job_notify ON fastq_job;
DROP FUNCTION IF EXISTS fastq_notify();
"""


def create_notify_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NOTIFY_SQL)


def drop_notify_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_NOTIFY_SQL)


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Job",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("task", models.CharField(max_length=255)),
                (
                    "queue",
                    models.CharField(db_default="default", default="default", max_length=100),
                ),
                (
                    "priority",
                    models.SmallIntegerField(
                        db_default=0, default=0, help_text="Higher runs first."
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                        ],
                        db_default="queued",
                        default="queued",
                        max_length=16,
                    ),
                ),
                ("args", models.TextField(db_default="[]", default="[]", help_text="JSON array.")),
                (
                    "kwargs",
                    models.TextField(db_default="{}", default="{}", help_text="JSON object."),
                ),
                (
                    "run_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        default=django.utils.timezone.now,
                    ),
                ),
                ("attempts", models.IntegerField(db_default=0, default=0)),
                ("lease_token", models.BigIntegerField(blank=True, editable=False, null=True)),
                ("lease_expires_at", models.DateTimeField(blank=True, null=True)),
                ("worker", models.CharField(blank=True, db_default="", default="", max_length=255)),
                (
                    "result",
                    models.TextField(blank=True, help_text="JSON of the return value.", null=True),
                ),
                (
                    "error_type",
                    models.CharField(blank=True, db_default="", default="", max_length=255),
                ),
                ("error", models.TextField(blank=True, db_default="", default="")),
                ("traceback", models.TextField(blank=True, db_default="", default="")),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        default=django.utils.timezone.now,
                    ),
                ),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "fastq_job",
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(
                        models.F("queue"),
                        models.OrderBy(models.F("priority"), descending=True),
                        models.F("run_at"),
                        models.F("id"),
                        condition=models.Q(("state", "queued")),
                        name="fastq_job_claim",
                    ),
                    models.Index(
                        condition=models.Q(("state", "running")),
                        fields=["lease_expires_at"],
                        name="fastq_job_lease",
                    ),
                    models.Index(fields=["state", "-created_at"], name="fastq_job_state_created"),
                ],
            },
        ),
        migrations.RunPython(create_notify_trigger, drop_notify_trigger),
    ]
