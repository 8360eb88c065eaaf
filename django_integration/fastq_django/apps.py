from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class FastqConfig(AppConfig):
    name = "fastq_django"
    label = "fastq_django"
    verbose_name = "fastq task queue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The API layer (fastq) never imports this app: the app registers its database
        # broker (the default of get_broker()) and its poll runner with it.
        from fastq.brokers import register_default
        from fastq.pollers import register_runner

        from fastq_django.broker import default_broker
        from fastq_django.pollers import run_cycle

        register_default(default_broker)
        register_runner(run_cycle)

        # A bad FASTQ["SCHEDULE"] entry fails at startup, naming the entry and the field.
        from fastq import conf
        from fastq.schedules import from_settings

        try:
            from_settings(conf.get("SCHEDULE"))
        except ValueError as exc:  # CronError is a ValueError
            raise ImproperlyConfigured(str(exc)) from exc

        # A FASTQ["ADMIN_REDACT"] that is neither names nor a callable fails at startup
        # too, not on the first admin page.
        from fastq_django.redact import configured_rule

        configured_rule()

        # System checks: settings.FASTQ keys and types, schedules' tasks, the broker
        # database and its migrations (fastq_django/checks.py).
        from fastq_django import checks  # noqa: F401
