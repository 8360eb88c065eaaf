"""django-celery-beat's models over fastq's schedules: put
``"fastq.compat.django_celery_beat"`` in ``INSTALLED_APPS`` in place of
``"django_celery_beat"`` and import ``PeriodicTask``, ``CrontabSchedule`` and
``IntervalSchedule`` from ``fastq.compat.django_celery_beat.models``.

A ``PeriodicTask`` is a row of ``fastq_schedule`` (its name, task, args, kwargs, queue,
priority, enabled); its ``crontab`` or ``interval`` becomes the row's cron and time zone
or interval. ``CrontabSchedule`` and ``IntervalSchedule`` are values, not tables: code
that creates them with ``objects.get_or_create(...)`` and hands them to a PeriodicTask
runs unchanged.
"""
