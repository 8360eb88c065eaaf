"""benchmarks/manage.py with time stamps: what `manage.py fastq_worker` does between exec
and its first job (benchmarks/startup.py runs it). Each phase's end goes to the file named
by STARTUP_PROBE_OUT as `name epoch_seconds` lines, written by the process that reaches it.
The worker's own code is wrapped, not changed."""

import time

T_MAIN = time.time()  # the interpreter and site are up; nothing of ours is imported

import os  # noqa: E402
import sys  # noqa: E402

OUT = os.environ["STARTUP_PROBE_OUT"]


def mark(name: str) -> None:
    with open(OUT, "a") as f:
        f.write(f"{name} {time.time():.6f} {os.getpid()}\n")


def wrap(owner: object, attr: str, name: str, before: bool = False) -> None:
    original = getattr(owner, attr)

    def wrapped(*args: object, **kwargs: object) -> object:
        if before:
            mark(name)
        result = original(*args, **kwargs)
        if not before:
            mark(name)
        return result

    setattr(owner, attr, wrapped)


def main() -> None:
    with open(OUT, "a") as f:
        f.write(f"main {T_MAIN:.6f} {os.getpid()}\n")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    import django

    mark("import_django")
    django.setup()
    mark("django_setup")
    from fastq_django.management.commands import fastq_worker as cmd

    mark("import_worker_command")
    # handle(): the task modules, the broker, the database check (the first connection),
    # the queue limits, the scheduler, then _run (fork, or the worker in this process).
    wrap(cmd.Command, "handle", "handle_start", before=True)
    wrap(cmd, "import_task_modules", "task_modules")
    wrap(cmd.Command, "_check_database", "database_checked")
    wrap(cmd.Command, "_sync_queue_limits", "queue_limits")
    wrap(cmd.Command, "_run", "run_start", before=True)
    # In each worker process (forked by the supervisor, or this one with --processes 0):
    # the Worker made (its connections open), then its run (the first claim follows).
    wrap(cmd.Worker, "__init__", "worker_made")
    wrap(cmd.Worker, "run", "worker_run", before=True)
    from django.core.management import execute_from_command_line

    execute_from_command_line([sys.argv[0], "fastq_worker", *sys.argv[1:]])


if __name__ == "__main__":
    main()
