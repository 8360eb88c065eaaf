# As in every Celery + Django project: the app is created when Django loads.
from .celery import app as celery_app

__all__ = ("celery_app",)
