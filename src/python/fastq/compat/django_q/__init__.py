"""Django-Q2's API over fastq: put ``"fastq.compat.django_q"`` in ``INSTALLED_APPS`` in
place of ``"django_q"`` and replace ``django_q`` by ``fastq.compat.django_q`` in imports.

    from fastq.compat.django_q.tasks import async_task, result, schedule
    from fastq.compat.django_q.models import Schedule

Tasks are given by dotted path (or a function) and run by fastq's worker
(``python manage.py fastq_worker``, or ``qcluster``), but only code inside the project's
installed apps or ``FASTQ["DOTTED_PATHS"]``. Every key, function and model with its fastq
meaning: docs/migrating-from-django-q2.md.
"""
