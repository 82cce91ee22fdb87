"""How many PyTorch threads a CPU pretraining run should use: time `bert-annotated pretrain --max-steps N`
with each thread count, several times, and record the machine's load average beside each run.

On a machine where other work runs, more threads than free cores makes every step wait for the slowest
thread; this script measures how much that costs here, and what the default (no OMP_NUM_THREADS:
`bert_annotated.runtime.cpu_thread_count()`) chooses.

Usage:  python benchmarks/cpu_threads.py [--threads 1 2] [--repeats 3] [--steps 100] [--output FILE]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bert_annotated.runtime import atomic_write_text, cpu_thread_count, usable_cpu_count


def timed_run(threads: int | None, steps: int) -> dict:
    """One pretraining run in a fresh process: wall seconds, and the 1-minute load average before it."""
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "bert_annotated.cli", "pretrain", "--max-steps", str(steps), "--no-progress",
                   "--device", "cpu", "--output", str(Path(folder) / "run")]
        started = time.perf_counter()
        subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    return {"threads": threads if threads is not None else "default", "seconds": round(seconds, 2),
            "load_average_before": round(load_before, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, usable_cpu_count()])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--output", default=f"benchmarks/results/cpu-threads-{platform.node() or 'machine'}.json")
    args = parser.parse_args(argv)
    runs = []
    for repeat in range(args.repeats):  # alternate the settings, so that a change in load hits all of them
        for threads in [*args.threads, None]:
            runs.append({"repeat": repeat, **timed_run(threads, args.steps)})
            print(runs[-1], flush=True)
    result = {"command": "python benchmarks/cpu_threads.py " + shlex.join(sys.argv[1:] if argv is None else argv),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "device": "cpu", "usable_cpus": usable_cpu_count(), "steps": args.steps, "runs": runs,
              "default_threads_at_end": cpu_thread_count()}
    atomic_write_text(json.dumps(result, indent=1) + "\n", args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
