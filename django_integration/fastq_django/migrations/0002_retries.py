from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="max_attempts",
            field=models.IntegerField(
                db_default=4, default=4, help_text="Attempts allowed, counting worker deaths."
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
                ],
                db_default="queued",
                default="queued",
                max_length=16,
            ),
        ),
    ]
