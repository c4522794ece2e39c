"""How long a bake takes, as a user runs it: `cookiecutter --no-input` in a fresh folder.

    uv run python bench/bake_time.py [--runs 7] [key=value ...]

Bakes with install_with=uv (the full build check) and install_with=none, after one warm-up bake
that fills uv's cache, and prints the median, min and max wall time of each. Extra key=value
answers are passed to every bake. Goals: uv ≤ 3 s median, none ≤ 1 s.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
COOKIECUTTER = Path(sys.executable).parent / "cookiecutter"


def bake_seconds(output_dir, answers, env):
    started = time.perf_counter()
    subprocess.run(
        [COOKIECUTTER, "--no-input", TEMPLATE, "-o", output_dir, *answers],
        check=True,
        capture_output=True,
        env=env,
    )
    return time.perf_counter() - started


def measure(label, answers, runs, env, workdir):
    seconds = []
    for run in range(runs + 1):  # the first run warms caches and is not counted
        output_dir = Path(workdir) / f"{label}-{run}"
        seconds.append(bake_seconds(output_dir, answers, env))
    seconds = seconds[1:]
    print(
        f"{label:<22} median {statistics.median(seconds):.2f} s"
        f"  min {min(seconds):.2f} s  max {max(seconds):.2f} s  ({runs} runs)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("answers", nargs="*", help="extra key=value answers")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        # A private replay dir, so that benchmarking leaves the user's cookiecutter files alone.
        config = Path(home) / "config.yaml"
        config.write_text(f"replay_dir: {home}/replay\ncookiecutters_dir: {home}/cc\n")
        env = {**os.environ, "COOKIECUTTER_CONFIG": str(config)}
        # Baked projects stay until the end: deleting thousands of files between runs would
        # load the disk while the next bake is timed.
        for label in ("uv", "none"):
            answers = [*options.answers, f"install_with={label}"]
            measure(f"install_with={label}", answers, options.runs, env, home)


if __name__ == "__main__":
    main()
