"""Workflows (chains, groups, chords, dependency graphs; docs/workflows.md).

A step whose parents have not all finished is stored in state ``waiting`` with
``parents_pending`` > 0: no claim scans that state. ``fastq_dependency`` holds the edges;
the worker that finishes a parent settles its children in the same transaction
(src/cpp/core/workflow.cpp). ``fastq_workflow`` records each enqueued canvas and its
groups, for ``fastq.GroupResult.restore()`` and the admin's workflow page.
"""

import django.utils.timezone
from django.db import migrations, models
from django.db.models import Q
from django.db.models.functions import Now

STATES = ["waiting", "queued", "running", "succeeded", "failed", "dead", "expired", "cancelled"]


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0013_job_group_label"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="workflow_id",
            field=models.UUIDField(
                blank=True,
                editable=False,
                help_text="The workflow this job is a step of.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="parents_pending",
            field=models.IntegerField(
                db_default=0,
                default=0,
                editable=False,
                help_text="Parents not finished yet (the step waits while this is above 0).",
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="pass_results",
            field=models.SmallIntegerField(
                db_default=0,
                default=0,
                editable=False,
                help_text="0: nothing from the parents; 1: the parent's result first; 2: the "
                "list of the parents' results first.",
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="on_failure",
            field=models.SmallIntegerField(
                db_default=0,
                default=0,
                editable=False,
                help_text="When a parent fails: 0 cancelled, 1 run anyway (failures marked), "
                "2 this is an error handler.",
            ),
        ),
        migrations.AlterField(
            model_name="job",
            name="state",
            field=models.CharField(
                choices=[
                    ("waiting", "Waiting"),
                    ("queued", "Queued"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                    ("dead", "Dead"),
                    ("expired", "Expired"),
                    ("cancelled", "Cancelled"),
                ],
                db_default="queued",
                default="queued",
                max_length=16,
            ),
        ),
        migrations.RemoveConstraint(model_name="job", name="fastq_job_state_valid"),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=Q(state__in=STATES), name="fastq_job_state_valid"
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=Q(workflow_id__isnull=False),
                fields=["workflow_id"],
                name="fastq_job_workflow",
            ),
        ),
        migrations.CreateModel(
            name="Dependency",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("workflow_id", models.UUIDField()),
                ("parent_id", models.UUIDField()),
                ("child_id", models.UUIDField()),
                ("position", models.IntegerField(db_default=0, default=0)),
            ],
            options={
                "db_table": "fastq_dependency",
                "verbose_name_plural": "dependencies",
                "indexes": [
                    models.Index(fields=["child_id", "position"], name="fastq_dependency_child")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("parent_id", "child_id"), name="fastq_dependency_edge"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Workflow",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("root_id", models.UUIDField(db_index=True)),
                ("kind", models.CharField(max_length=16)),
                (
                    "name",
                    models.CharField(blank=True, db_default="", default="", max_length=255),
                ),
                (
                    "members",
                    models.TextField(
                        db_default="[]", default="[]", help_text="JSON array of job ids."
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(db_default=Now(), default=django.utils.timezone.now),
                ),
            ],
            options={"db_table": "fastq_workflow", "ordering": ["-created_at"]},
        ),
    ]
