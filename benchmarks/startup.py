"""Start-up benchmark: how long the commands that need no model take, beside `python -c pass` for scale
(the machine may be busy; compare the ratios).

    python benchmarks/startup.py [--repeat 5]

Prints the median wall seconds of each command over --repeat fresh processes.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "lstm-lrp --help": ["-m", "pipeline", "--help"],
    "lstm-lrp --version": ["-m", "pipeline", "--version"],
    "lstm-lrp run --help": ["-m", "pipeline", "run", "--help"],
    "lstm-lrp run --eps -1 (a refusal)": ["-m", "pipeline", "run", "--eps", "-1"],
}


def seconds(args: list[str], repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    base = None
    for name, command in COMMANDS.items():
        median = seconds(command, args.repeat)
        base = base or median
        print(f"{name:<36} {median:6.3f} s  ({median / base:5.1f} × python -c pass)")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
