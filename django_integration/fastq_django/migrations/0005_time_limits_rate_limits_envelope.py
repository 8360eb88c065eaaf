from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0004_unique_jobs"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="envelope",
            field=models.SmallIntegerField(
                db_default=1, default=1, help_text="Row layout version; workers refuse others."
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="time_limit",
            field=models.FloatField(
                blank=True,
                help_text="Seconds before the process running it is killed.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="soft_time_limit",
            field=models.FloatField(
                blank=True,
                help_text="Seconds before SoftTimeLimitExceeded is raised in it.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="rate_key",
            field=models.CharField(
                blank=True,
                help_text="Rate-limit bucket (keyed limits).",
                max_length=255,
                null=True,
            ),
        ),
        migrations.CreateModel(
            name="RateLimit",
            fields=[
                ("key", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("tat", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "fastq_rate_limit", "verbose_name": "rate-limit bucket"},
        ),
    ]
