"""Queue controls: ``fastq_queue`` holds a queue's pause and fleet-wide concurrency limit,
read by every worker's claim (src/cpp/core/*_driver.cpp). The dashboard reads the last
hour's finished jobs through ``fastq_job_finished`` (0011_worker_registry)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import migrations, models
from django.db.models import Q

import fastq_django.models


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0011_worker_registry"),
    ]

    operations = [
        migrations.CreateModel(
            name="Queue",
            fields=[
                (
                    "name",
                    models.CharField(
                        max_length=100,
                        primary_key=True,
                        serialize=False,
                        validators=[fastq_django.models.validate_queue_name],
                    ),
                ),
                ("paused", models.BooleanField(db_default=False, default=False)),
                (
                    "concurrency",
                    models.IntegerField(
                        blank=True,
                        help_text="At most this many of its jobs run at once across every "
                        "worker; empty: no limit.",
                        null=True,
                        validators=[MinValueValidator(1), MaxValueValidator(1000000)],
                    ),
                ),
                (
                    "settings_concurrency",
                    models.IntegerField(blank=True, editable=False, null=True),
                ),
                (
                    "changed_by",
                    models.CharField(blank=True, db_default="", default="", max_length=150),
                ),
                ("updated_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "fastq_queue",
                "ordering": ["name"],
                "constraints": [
                    models.CheckConstraint(
                        condition=Q(concurrency__isnull=True)
                        | Q(concurrency__gte=1, concurrency__lte=1000000),
                        name="fastq_queue_concurrency_range",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Dashboard",
            fields=[],
            options={
                "verbose_name": "dashboard",
                "verbose_name_plural": "dashboard",
                "proxy": True,
                "default_permissions": (),
                "indexes": [],
                "constraints": [],
            },
            bases=("fastq_django.job",),
        ),
    ]
