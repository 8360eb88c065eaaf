"""A new schedule's ``timezone`` defaults to ``FASTQ["TIMEZONE"]`` (else Django's
``TIME_ZONE``) instead of "UTC". Only Django's state changes: the column and its database
default ("UTC", for rows written behind Django's back) stay as they are."""

from django.db import migrations, models

import fastq_django.models


class Migration(migrations.Migration):
    dependencies = [
        ("fastq_django", "0009_job_interrupted"),
    ]

    operations = [
        migrations.AlterField(
            model_name="schedule",
            name="timezone",
            field=models.CharField(
                db_default="UTC",
                default=fastq_django.models.default_timezone,
                help_text='IANA zone of the cron (default: FASTQ["TIMEZONE"], else TIME_ZONE).',
                max_length=64,
            ),
        ),
    ]
