from django.apps import AppConfig


class CompatAppConfig(AppConfig):
    name = "compatapp"
