import os

from fastq.compat.celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compatproject.settings")

app = Celery("compatproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
