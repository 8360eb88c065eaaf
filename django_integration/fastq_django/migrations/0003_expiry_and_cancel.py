from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0002_retries"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="cancel_requested",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="job",
            name="expires_at",
            field=models.DateTimeField(
                blank=True, help_text="Not started by then: never runs (expired).", null=True
            ),
        ),
        migrations.AlterField(
            model_name="job",
            name="state",
            field=models.CharField(
                choices=[
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
    ]
