"""Enqueue-to-start latency of fastq on SQLite at a few steady rates (issue 17's "Tails":
SQLite wake-ups without polling). The same ``latency`` workload as ``run.py`` (probes
enqueued at a steady rate, one worker, percentiles of started_at - enqueued), on fastq/
sqlite only and without the peers. ``--root`` runs another checkout's code (its .venv and
benchmarks/), e.g. main's, for a before/after comparison.

    .venv/bin/python benchmarks/sqlite_wake.py [--rates 2,20,200] [--seconds 5]
        [--root /path/to/checkout]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="2,20,200", help="probes per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    opts = parser.parse_args()
    sys.path.insert(0, str(Path(opts.root) / "benchmarks"))
    from harness.systems import Target
    from run import Runner, Sizes

    with tempfile.TemporaryDirectory(prefix="fastq-sqlwake-") as tmpdir:
        tmp = Path(tmpdir)
        runner = Runner(Sizes(latency_seconds=opts.seconds), tmp, verbose=False)
        target = Target("fastq", "sqlite", tmp, runner.logs)
        target.setup("main")
        for rate in (float(r) for r in opts.rates.split(",")):
            runner.sizes.latency_rate = rate
            result = runner.latency(target)
            keep = ("n", "rate", "p50_ms", "p95_ms", "p99_ms", "max_ms")
            print(json.dumps({"rate_wanted": rate} | {k: result[k] for k in keep}), flush=True)


if __name__ == "__main__":
    main()
