"""Worker processes: start them in their own process group, sample their memory from
/proc, and stop them (with everything they forked)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def start(cmd: Sequence[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """Starts ``cmd`` as the leader of a new session, so that stopping it reaches every
    process it forks (prefork pools, cluster workers)."""
    with log.open("a") as out:
        return subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def stop(procs: Sequence[subprocess.Popen[str]]) -> None:
    """SIGKILL to each process group: the harness measures, it does not need a graceful
    stop, and the next run resets the queues anyway."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        p.wait()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields follow the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (children it reaped included)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    # utime, stime, cutime, cstime: fields 14-17 of proc(5), counted from 1 with pid.
    return sum(int(f) for f in fields[11:15]) / TICKS


def tree(roots: Sequence[int]) -> set[int]:
    """``roots`` and all their live descendants."""
    children = _children()
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(children.get(pid, []))
    return seen


def tree_rss_mb(roots: Sequence[int]) -> float:
    """Resident memory of ``roots`` and all their descendants, in MiB."""
    return sum(_rss_kb(pid) for pid in tree(roots)) / 1024.0


class RssSampler:
    """Samples the summed RSS of the worker process trees every ``interval`` seconds in a
    background thread and keeps the peak; also the CPU time they have used, which other
    load on the machine hardly changes (unlike wall time)."""

    def __init__(self, roots: Sequence[int], interval: float = 0.05) -> None:
        self.roots = list(roots)
        self.interval = interval
        self.peak_mb = 0.0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        pids = tree(self.roots)
        self.peak_mb = max(self.peak_mb, sum(_rss_kb(p) for p in pids) / 1024.0)
        self.cpu_s = max(self.cpu_s, sum(_cpu_s(p) for p in pids))


def children_cpu_s() -> float:
    """CPU seconds of this process' children that have exited and been waited for."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wait_all_exit(procs: Sequence[subprocess.Popen[str]], timeout: float) -> bool:
    """True once every process in ``procs`` has exited, False at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p.poll() is not None for p in procs):
            return True
        time.sleep(0.01)
    return False
