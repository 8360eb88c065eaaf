from django.apps import AppConfig


class FastqConfig(AppConfig):
    name = "fastq_django"
    label = "fastq_django"
    verbose_name = "fastq task queue"
    default_auto_field = "django.db.models.BigAutoField"
