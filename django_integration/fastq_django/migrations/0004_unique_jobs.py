from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0003_expiry_and_cancel"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="unique_key",
            field=models.CharField(
                blank=True,
                help_text="At most one queued or running job per key.",
                max_length=255,
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state__in", ["queued", "running"])),
                fields=("unique_key",),
                name="fastq_job_unique_active",
            ),
        ),
    ]
