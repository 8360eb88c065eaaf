from django.apps import AppConfig


class DjangoQCompatConfig(AppConfig):
    """Installed as ``"fastq.compat.django_q"`` in place of ``"django_q"``; its label stays
    ``django_q`` so permissions and admin URLs keep their names. It has no tables of its
    own: its models read fastq's jobs and schedules."""

    name = "fastq.compat.django_q"
    label = "django_q"
    verbose_name = "Django Q (fastq)"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from fastq import schedules
        from fastq.compat.django_q import conf, tasks

        conf.check_settings()
        if tasks._schedules not in schedules.providers:
            schedules.providers.append(tasks._schedules)
