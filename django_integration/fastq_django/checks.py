"""Django system checks for fastq (``manage.py check``, and every management command).

Ids are stable; docs/configuration.md ("System checks") lists them:

- ``fastq.E001`` an unknown key in ``settings.FASTQ`` (the closest valid key is the hint)
- ``fastq.E002`` a ``settings.FASTQ`` value of the wrong type, or a bad ``SCHEDULE`` entry,
  ``TIMEZONE``, ``TASK_DEFAULTS`` or ``RETENTION`` option
- ``fastq.E003`` a schedule (``SCHEDULE``, ``@fastq.periodic``, ``@fastq.poller``) whose
  task is not registered
- ``fastq.E004`` ``FASTQ["DATABASE"]`` names an alias missing from ``DATABASES``
- ``fastq.E005`` ``FASTQ["DATABASE"]`` is a database fastq does not support
- ``fastq.E006`` a task module (an app's ``tasks``, ``FASTQ["IMPORTS"]``) fails to import
- ``fastq.W001`` the ``fastq_django`` migrations are not all applied to the broker database
- ``fastq.W002`` the broker database cannot be reached

The database checks (W001, W002) connect to the ``FASTQ["DATABASE"]`` alias when
``check`` runs with no ``--database`` or names that alias. ``fastq_worker`` leaves them to
its own start-up test, which stops it with one line instead of a warning; it runs these
checks (tag ``fastq``) and not Django's.
"""

from __future__ import annotations

import difflib
import importlib
import socket
import sys
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

TAG = "fastq"

# Engines by their dotted path, so that an unsupported one is named without importing its
# driver (which may not be installed) or connecting. Others are asked for their vendor.
_ENGINE_VENDORS = {
    "django.db.backends.sqlite3": "sqlite",
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.postgresql_psycopg2": "postgresql",
    "django.contrib.gis.db.backends.spatialite": "sqlite",
    "django.contrib.gis.db.backends.postgis": "postgresql",
    "django.db.backends.mysql": "mysql",
    "django.contrib.gis.db.backends.mysql": "mysql",
    "django.db.backends.oracle": "oracle",
    "django.contrib.gis.db.backends.oracle": "oracle",
}
SUPPORTED_VENDORS = ("sqlite", "postgresql")
# Seconds a TCP probe of the broker's PostgreSQL server may take before the check reports
# it unreachable (a check runs before every management command: it must not hang).
PROBE_TIMEOUT = 3.0


def _ours(app_configs: Sequence[AppConfig] | None) -> bool:
    return app_configs is None or any(c.label == "fastq_django" for c in app_configs)


def _fastq_setting() -> Any:
    return getattr(settings, "FASTQ", {})


# ---- settings.FASTQ -------------------------------------------------------------------


@checks.register(TAG)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Unknown keys (E001) and values of the wrong type (E002) in ``settings.FASTQ``."""
    from fastq import conf

    if not _ours(app_configs):
        return []
    value = _fastq_setting()
    if not isinstance(value, dict):
        return [
            checks.Error(
                f"settings.FASTQ must be a dict, not {type(value).__name__}.",
                hint='e.g. FASTQ = {"DATABASE": "default", "QUEUES": ["default"]}',
                id="fastq.E002",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for key in value:
        if key in conf.KNOWN:
            problem = conf.type_problem(key, value[key])
            if problem:
                errors.append(checks.Error(f'FASTQ["{key}"] {problem}.', id="fastq.E002"))
            continue
        guess = conf.closest(key)
        errors.append(
            checks.Error(
                f"settings.FASTQ has an unknown key {key!r}"
                + (f"; did you mean {guess!r}?" if guess else "."),
                hint=f"Did you mean {guess!r}?"
                if guess
                else f"Known keys: {', '.join(conf.KNOWN)}.",
                id="fastq.E001",
            )
        )
    errors += _check_timezone(value.get("TIMEZONE"))
    if isinstance(value.get("TASK_DEFAULTS"), dict):
        errors += _check_task_defaults(value["TASK_DEFAULTS"])
    if isinstance(value.get("RETENTION"), dict):
        errors += [
            checks.Error(
                f'FASTQ["RETENTION"] {problem}.',
                hint='e.g. {"succeeded": timedelta(days=1), "failed": timedelta(days=14)}; '
                "None keeps a state's jobs for ever.",
                id="fastq.E002",
            )
            for problem in conf.retention_problems(value["RETENTION"])
        ]
    if isinstance(value.get("SCHEDULE"), dict):
        from fastq.schedules import from_settings

        try:
            from_settings(value["SCHEDULE"])
        except ValueError as exc:  # CronError is a ValueError
            errors.append(checks.Error(str(exc), id="fastq.E002"))
    return errors


def _check_timezone(zone: Any) -> list[checks.CheckMessage]:
    """``FASTQ["TIMEZONE"]`` must name a zone the scheduler knows (E002)."""
    if not isinstance(zone, str) or not zone:
        return []  # None, or a type error reported with the other types
    from fastq import Cron, CronError

    try:
        Cron("0 0 * * *", timezone=zone)
    except CronError as exc:
        return [checks.Error(f'FASTQ["TIMEZONE"]: {exc}', id="fastq.E002")]
    return []


def _check_task_defaults(defaults: dict[Any, Any]) -> list[checks.CheckMessage]:
    """Each ``FASTQ["TASK_DEFAULTS"]`` entry must be an option a fleet-wide default may set,
    with a value the option accepts (E002): checked by declaring a throwaway task with
    it, as every task of the project will be."""
    from fastq.task import TASK_DEFAULT_OPTIONS, Task, registry

    errors: list[checks.CheckMessage] = []
    for option, value in defaults.items():
        if option not in TASK_DEFAULT_OPTIONS:
            guess = difflib.get_close_matches(str(option), TASK_DEFAULT_OPTIONS, n=1)
            errors.append(
                checks.Error(
                    f'FASTQ["TASK_DEFAULTS"] has an option a fleet-wide default cannot set: '
                    f"{option!r}" + (f"; did you mean {guess[0]!r}?" if guess else "."),
                    hint=f"Options: {', '.join(TASK_DEFAULT_OPTIONS)}.",
                    id="fastq.E002",
                )
            )
            continue
        name = "fastq.checks.task_defaults_probe"
        try:
            Task(_probe, name=name, **{option: value})
        except (TypeError, ValueError) as exc:
            errors.append(
                checks.Error(f'FASTQ["TASK_DEFAULTS"]["{option}"]: {exc}', id="fastq.E002")
            )
        finally:
            registry.pop(name, None)
    return errors


def _probe() -> None:
    """The function of the throwaway task that tests a TASK_DEFAULTS value."""


# ---- tasks and schedules ----------------------------------------------------------------


def _import_task_modules() -> list[checks.CheckMessage]:
    """Import what the worker imports (apps' ``tasks`` modules, ``FASTQ["IMPORTS"]``), so
    that the registry is the worker's. Failures are E006, one per module."""
    from django.apps import apps
    from django.utils.module_loading import module_has_submodule
    from fastq import conf

    errors: list[checks.CheckMessage] = []

    def attempt(module: str, where: str) -> None:
        try:
            importlib.import_module(module)
        except Exception as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            errors.append(
                checks.Error(
                    f"cannot import the task module {module!r} ({where}): {last}",
                    hint="the worker would fail the same way at start-up",
                    id="fastq.E006",
                )
            )

    for app_config in apps.get_app_configs():
        if module_has_submodule(app_config.module, "tasks"):
            attempt(f"{app_config.name}.tasks", f"app {app_config.label}")
    imports = conf.get("IMPORTS") or []
    if conf.type_problem("IMPORTS", imports) is None:
        for module in imports:
            attempt(module, 'FASTQ["IMPORTS"]')
    return errors


@checks.register(TAG)
def check_schedules(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Every schedule declared in code names a registered task (E003)."""
    from fastq import registry
    from fastq.pollers import POLL_TASK
    from fastq.pollers import declared as pollers
    from fastq.schedules import declared

    if not _ours(app_configs) or not isinstance(_fastq_setting(), dict):
        return []
    errors = _import_task_modules()
    if errors:
        return errors  # the missing task may well be in the module that failed
    from fastq_django.schedules import code_schedules

    try:
        specs = code_schedules()
    except (ValueError, TypeError):
        return []  # reported by check_settings (E002)
    for name, spec in specs.items():
        if _in_settings(name):
            origin = 'settings.FASTQ["SCHEDULE"]'
        elif name in declared:
            origin = "@fastq.periodic"
        else:
            origin = "CELERY_BEAT_SCHEDULE"  # the other provider (fastq.compat.celery)
        if spec.task not in registry:
            guess = difflib.get_close_matches(spec.task, registry, n=1)
            errors.append(
                checks.Error(
                    f"schedule {name!r} ({origin}) runs task {spec.task!r}, which is not "
                    "registered" + (f"; did you mean {guess[0]!r}?" if guess else "."),
                    hint="tasks are found in each installed app's tasks module and in "
                    'FASTQ["IMPORTS"]; the name is the dotted path of the function or the '
                    "task's name=",
                    id="fastq.E003",
                )
            )
        elif spec.task == POLL_TASK and spec.kwargs.get("poller") not in pollers:
            errors.append(
                checks.Error(
                    f"schedule {name!r} ({origin}) runs poller "
                    f"{spec.kwargs.get('poller')!r}, which is not declared with "
                    "@fastq.poller.",
                    id="fastq.E003",
                )
            )
    return errors


def _in_settings(name: str) -> bool:
    schedule = _fastq_setting().get("SCHEDULE")
    return isinstance(schedule, dict) and name in schedule


# ---- the broker database ---------------------------------------------------------------


def broker_alias() -> str:
    from fastq import conf

    return str(conf.get("DATABASE"))


def engine_problem(alias: str) -> checks.CheckMessage | None:
    """E004/E005 for the broker alias, from the settings alone (no connection)."""
    databases = settings.DATABASES
    if alias not in databases:
        guess = difflib.get_close_matches(alias, list(databases), n=1)
        return checks.Error(
            f'FASTQ["DATABASE"] is {alias!r}, which is not an alias in settings.DATABASES'
            + (f"; did you mean {guess[0]!r}?" if guess else ".")
            + f" Aliases: {', '.join(databases) or '(none)'}.",
            id="fastq.E004",
        )
    engine = str(databases[alias].get("ENGINE") or "")
    vendor = _ENGINE_VENDORS.get(engine)
    if vendor is None:
        try:
            vendor = connections[alias].vendor
        except Exception as exc:
            return checks.Error(
                f"database {alias!r} (ENGINE {engine!r}) cannot be loaded: {exc}",
                id="fastq.E005",
            )
    if vendor not in SUPPORTED_VENDORS:
        return checks.Error(
            f'database {alias!r} (FASTQ["DATABASE"]) is {vendor} (ENGINE {engine!r}); '
            "fastq's broker runs on SQLite and PostgreSQL only: its claims need "
            "FOR UPDATE SKIP LOCKED or SQLite's single writer, and its C++ drivers are "
            "libpq and SQLite.",
            hint='Point FASTQ["DATABASE"] at a PostgreSQL or SQLite alias; the rest of '
            "the project may stay on its database.",
            id="fastq.E005",
        )
    return None


def location(alias: str) -> str:
    """Where the alias's database is, for a message: ``host:port`` or the SQLite file."""
    settings_dict = connections[alias].settings_dict
    if connections[alias].vendor == "sqlite":
        return f"file {settings_dict.get('NAME')}"
    host = str(settings_dict.get("HOST") or "")
    port = str(settings_dict.get("PORT") or "5432")
    if not host or host.startswith("/"):
        return f"Unix socket {host or 'default'} port {port}"
    return f"{host}:{port}"


class Unreachable(Exception):
    """The broker database cannot be reached; str() is one line naming where it is."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def unapplied_migrations(alias: str) -> list[str]:
    """The ``fastq_django`` migrations not applied to ``alias`` (``[]``: all applied).

    Raises :class:`Unreachable` when the database cannot be reached. For a PostgreSQL
    server on TCP a socket probe of ``PROBE_TIMEOUT`` seconds comes first, so that an
    unreachable host costs seconds, not libpq's unbounded connect.
    """
    connection = connections[alias]
    where = location(alias)
    settings_dict = connection.settings_dict
    host = str(settings_dict.get("HOST") or "")
    if connection.vendor == "postgresql" and host and not host.startswith("/"):
        try:
            socket.create_connection(
                (host, int(settings_dict.get("PORT") or 5432)), timeout=PROBE_TIMEOUT
            ).close()
        except (OSError, ValueError) as exc:
            raise Unreachable(
                f"cannot connect to database {alias!r} at {where}: {_one_line(exc)}"
            ) from None
    try:
        connection.ensure_connection()
        if _all_recorded(connection, "fastq_django"):
            return []
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        targets = executor.loader.graph.leaf_nodes("fastq_django")
        plan = executor.migration_plan(targets)
    except (DatabaseError, ImproperlyConfigured) as exc:
        raise Unreachable(
            f"cannot connect to database {alias!r} at {where}: {_one_line(exc)}"
        ) from None
    return [
        f"{migration.app_label}.{migration.name}"
        for migration, backwards in plan
        if migration.app_label == "fastq_django" and not backwards
    ]


def _all_recorded(connection: Any, label: str) -> bool:
    """Whether every migration file of app ``label`` is recorded as applied, from the file
    names and django_migrations alone. The usual answer at a worker's start, without the
    migration loader, which imports every installed app's migration files and builds their
    graph (a large share of the worker's start after django.setup()). False means "ask
    the loader" (anything unapplied, squashed migrations, MIGRATION_MODULES overrides):
    it never stands for "unapplied" by itself."""
    import importlib.util
    import pkgutil

    from django.apps import apps
    from django.db.migrations.recorder import MigrationRecorder

    if label in getattr(settings, "MIGRATION_MODULES", {}):
        return False
    try:
        spec = importlib.util.find_spec(f"{apps.get_app_config(label).name}.migrations")
    except (ImportError, LookupError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    # The loader's rule: modules (not packages) whose names start with neither _ nor ~.
    on_disk = {
        m.name
        for m in pkgutil.iter_modules(list(spec.submodule_search_locations))
        if not m.ispkg and m.name[0] not in "_~"
    }
    if not on_disk:
        return False
    recorder = MigrationRecorder(connection)
    names = recorder.migration_qs.filter(app=label).values_list("name", flat=True)
    if connection.in_atomic_block:
        # A failed statement would break the caller's transaction: ask first.
        if not recorder.has_table():
            return False
        return on_disk <= set(names)
    try:
        # In autocommit a missing django_migrations table is one failed statement, and
        # the usual answer costs no catalog query (has_table's, ~2 ms on a new backend).
        return on_disk <= set(names)
    except DatabaseError:
        return False  # the loader tells "no table" (all unapplied) from a real failure


def migrate_line(alias: str) -> str:
    return (
        f"the fastq_django migrations are not applied to database {alias!r}; "
        "run python manage.py migrate" + ("" if alias == "default" else f" --database {alias}")
    )


def _inside_migrate() -> bool:
    """Whether these checks run at the start of ``migrate`` (which runs them on the alias
    it migrates): telling the user to run migrate there would only confuse."""
    from django.core.management.commands.migrate import Command as Migrate

    frame = sys._getframe(1)
    while frame is not None:
        if isinstance(frame.f_locals.get("self"), Migrate):
            return True
        frame = frame.f_back
    return False


@checks.register(TAG)
def check_database(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Iterable[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """E004/E005 from the settings; then, when this check may use the broker's database,
    W002 if it cannot be reached and W001 if fastq_django's migrations are not applied."""
    from fastq import conf

    if not _ours(app_configs) or not isinstance(_fastq_setting(), dict):
        return []
    if conf.type_problem("DATABASE", conf.get("DATABASE")):
        return []  # E002
    alias = broker_alias()
    problem = engine_problem(alias)
    if problem is not None:
        return [problem]
    if databases is not None and alias not in databases:
        return []
    try:
        unapplied = unapplied_migrations(alias)
    except Unreachable as exc:
        return [
            checks.Warning(
                str(exc),
                hint="fastq_worker retries while it runs; at start it stops with this line",
                id="fastq.W002",
            )
        ]
    if unapplied and not _inside_migrate():
        return [
            checks.Warning(
                migrate_line(alias)
                + (
                    f" (unapplied: {', '.join(unapplied)})"
                    if len(unapplied) <= 3
                    else f" ({len(unapplied)} unapplied, from {unapplied[0]})"
                ),
                hint="fastq_worker refuses to start until they are (exit code 2)",
                id="fastq.W001",
            )
        ]
    return []
