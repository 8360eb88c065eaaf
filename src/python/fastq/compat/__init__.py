"""Moving in from other task queues with a change of imports.

- :mod:`fastq.compat.celery`: Celery's import paths (``Celery``, ``shared_task``,
  ``AsyncResult``, ``crontab``, ``app.control``...) over fastq tasks
  (docs/migrating-from-celery.md).
- :mod:`fastq.compat.django_celery_beat`: django-celery-beat's models over fastq's
  schedules.
- :mod:`fastq.compat.django_q`: a Django app that replaces ``"django_q"`` in
  ``INSTALLED_APPS`` (docs/migrating-from-django-q2.md).

These modules sit above ``fastq_django`` (they read its tables through the Django ORM);
the core API (``fastq``) never imports them.
"""
