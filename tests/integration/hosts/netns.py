"""Worker "hosts" on one machine: each a Linux network namespace joined to the machine by
a veth pair, the only route out of it. PostgreSQL stays where it is (127.0.0.1, nothing
in its configuration changes): a TCP forwarder (socat) bound to the machine's end of each
veth relays to it, so a host reaches the database only through its own cable, and
``Host.cut()`` (the machine's end of the veth down) partitions it like a pulled cable or a
dead switch port: packets vanish, nothing is refused.

Addresses: host i uses 10.77.0.(4i+1) (machine end, the forwarder) and 10.77.0.(4i+2)
(inside the namespace), a /30 each, inside 10.77.0.0/24; nothing is routed anywhere
else. Names: namespaces ``fastq-h<i>``, veths ``fqh<i>h`` / ``fqh<i>n``. ``cleanup()``
removes whatever a crashed run left (its namespaces, their processes, its veths and the
forwarders it recorded in ``STATE``).

The forwarder stands for the database server's own TCP settings: it drops a connection
whose host stopped answering (keepalives, and a TCP user timeout for data never
acknowledged), as a server with ``tcp_keepalives_*`` / ``tcp_user_timeout`` would, which
ends the backend and releases what its transaction held.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

NS_PREFIX = "fastq-h"
VETH_PREFIX = "fqh"
SUBNET = "10.77.0"
PG_PORT = 5432
STATE = Path("/tmp/fastq-hosts-forwarders")
CLOCK_SHIM_SOURCE = Path(__file__).resolve().parent / "clockskew.c"
CLOCK_SHIM = Path("/tmp/fastq-hosts-clockskew.so")

# libpq settings of the workers on the hosts (DATABASES OPTIONS, see
# fastq_django.conf.LIBPQ_OPTIONS): a dead connection is noticed within about 4 s,
# whether the worker was waiting for an answer (keepalives) or for an acknowledgement
# (tcp_user_timeout), and a reconnection attempt gives up after 3 s.
WORKER_PG_OPTIONS = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 4000,
}
# The forwarder's side of the same: a host gone silent for ~3 s loses its connections.
FORWARDER_TCP = "keepalive,keepidle=1,keepintvl=1,keepcnt=2,setsockopt-int=6:18:3000,nodelay"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def unavailable() -> str | None:
    """Why hosts cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "socat", "cc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/bootstrap.sh installs it)"
    probe = f"{NS_PREFIX}probe"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    index: int
    forwarder: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def ns(self) -> str:
        return f"{NS_PREFIX}{self.index}"

    @property
    def veth_outside(self) -> str:
        return f"{VETH_PREFIX}{self.index}h"

    @property
    def veth_inside(self) -> str:
        return f"{VETH_PREFIX}{self.index}n"

    @property
    def db_addr(self) -> str:
        """The database as this host sees it: the forwarder at the machine's end."""
        return f"{SUBNET}.{4 * self.index + 1}"

    @property
    def addr(self) -> str:
        return f"{SUBNET}.{4 * self.index + 2}"

    def prefix(self) -> list[str]:
        """The command prefix that runs a program on this host (``ip netns exec`` ends by
        exec'ing the program, which keeps its pid)."""
        return ["ip", "netns", "exec", self.ns]

    def env(self, skew_seconds: int = 0) -> dict[str, str]:
        """The environment of a worker on this host, its wall clock ``skew_seconds`` off
        (clockskew.c, LD_PRELOADed) when not 0."""
        env = {
            "FASTQ_TEST_PG_HOST": self.db_addr,
            "FASTQ_TEST_PG_PORT": str(PG_PORT),
            "FASTQ_TEST_PG_OPTIONS": json.dumps(WORKER_PG_OPTIONS),
        }
        if skew_seconds:
            # CLOCK_REALTIME only (clockskew.c): the monotonic clocks stay true, as on a
            # machine whose wall clock is off.
            env["LD_PRELOAD"] = str(CLOCK_SHIM)
            env["FASTQ_TEST_CLOCK_SKEW"] = str(skew_seconds)
        return env

    def cut(self) -> None:
        """Partitions the host: its cable goes dead, its packets are dropped."""
        _ip("link", "set", self.veth_outside, "down")

    def heal(self) -> None:
        _ip("link", "set", self.veth_outside, "up")


def _record_forwarder(pid: int) -> None:
    with STATE.open("a") as f:
        f.write(f"{pid}\n")


def _kill_recorded_forwarders() -> None:
    if not STATE.exists():
        return
    for line in STATE.read_text().split():
        pid = int(line)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        # Only a forwarder of ours: the pid may have been reused since.
        if "socat" in cmdline and f"bind={SUBNET}." in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    STATE.unlink()


def cleanup() -> None:
    """Removes every namespace, veth and forwarder of this harness, with the processes
    still running inside the namespaces (leftovers of a run that crashed)."""
    _kill_recorded_forwarders()
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.split() else ""
        if not ns.startswith(NS_PREFIX):
            continue
        for pid in _ip("netns", "pids", ns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        _ip("netns", "del", ns, check=False)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(VETH_PREFIX):
            _ip("link", "del", name, check=False)


def _start_forwarder(host: Host) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "socat",
            f"TCP-LISTEN:{PG_PORT},bind={host.db_addr},reuseaddr,fork,{FORWARDER_TCP}",
            f"TCP:127.0.0.1:{PG_PORT},nodelay",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its children (one per connection) die with its group
    )
    _record_forwarder(proc.pid)
    deadline = time.monotonic() + 10
    while True:
        assert proc.poll() is None, f"the forwarder for {host.ns} exited {proc.returncode}"
        with contextlib.suppress(OSError), socket.create_connection((host.db_addr, PG_PORT), 1):
            return proc
        assert time.monotonic() < deadline, f"the forwarder for {host.ns} is not listening"
        time.sleep(0.05)


def build_clock_shim() -> None:
    subprocess.run(
        [
            "cc",
            "-shared",
            "-fPIC",
            "-O2",
            "-Wall",
            "-Werror",
            "-o",
            str(CLOCK_SHIM),
            str(CLOCK_SHIM_SOURCE),
            "-ldl",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def setup(count: int) -> list[Host]:
    """``count`` hosts, each with its namespace, veth pair and forwarder."""
    cleanup()
    build_clock_shim()
    hosts = []
    for i in range(count):
        h = Host(i)
        _ip("netns", "add", h.ns)
        _ip("link", "add", h.veth_outside, "type", "veth", "peer", "name", h.veth_inside)
        _ip("link", "set", h.veth_inside, "netns", h.ns)
        _ip("addr", "add", f"{h.db_addr}/30", "dev", h.veth_outside)
        _ip("link", "set", h.veth_outside, "up")
        _ip("-n", h.ns, "addr", "add", f"{h.addr}/30", "dev", h.veth_inside)
        _ip("-n", h.ns, "link", "set", h.veth_inside, "up")
        _ip("-n", h.ns, "link", "set", "lo", "up")
        h.forwarder = _start_forwarder(h)
        hosts.append(h)
    return hosts


def teardown(hosts: list[Host]) -> None:
    for h in hosts:
        if h.forwarder is not None and h.forwarder.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(h.forwarder.pid, signal.SIGKILL)
            h.forwarder.wait()
    cleanup()
