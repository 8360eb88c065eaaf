from django.apps import AppConfig


class BeatCompatConfig(AppConfig):
    """Installed as ``"fastq.compat.django_celery_beat"``; label ``django_celery_beat``.
    No tables of its own: ``PeriodicTask`` reads and writes ``fastq_schedule``."""

    name = "fastq.compat.django_celery_beat"
    label = "django_celery_beat"
    verbose_name = "Periodic tasks (fastq)"
    default_auto_field = "django.db.models.BigAutoField"
