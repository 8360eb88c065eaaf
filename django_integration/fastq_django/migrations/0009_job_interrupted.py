"""``interrupted``: how often a job went back to the queue without an attempt charged (a
run cut off at the end of --grace, a claim whose worker was lost before it started the
job). Workers charge the attempt once it reaches fastq::kMaxUnspentHandbacks, so a job
longer than the grace period still uses up its attempts. ``started_at`` keeps its column
but changes meaning: a claim leaves it NULL and the worker records the start, so that a
rescue can tell a run that started from a claim that never did.
"""

from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0008_job_checks"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="interrupted",
            field=models.IntegerField(
                db_default=0,
                default=0,
                help_text="Times it went back to the queue without an attempt charged: a run "
                "cut off at the end of --grace, or a claim lost before it started. After 3 "
                "such hand-backs the attempt is charged.",
            ),
        ),
        migrations.AlterField(
            model_name="job",
            name="started_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When this attempt began running; empty while claimed but not "
                "started (recorded a few milliseconds after the start).",
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=Q(interrupted__gte=0),
                name="fastq_job_interrupted_range",
            ),
        ),
    ]
