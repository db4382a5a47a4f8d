"""Run every benchmark and record the figures in benchmarks/results.json."""

from __future__ import annotations

import importlib
import sys

from benchmarks.common import record

BENCHMARKS = ["bench_real", "bench_normalize", "bench_train", "bench_fit", "bench_cv", "bench_mcmc",
              "bench_nn", "bench_survey", "bench_physics"]


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        module = importlib.import_module(f"benchmarks.{name}")
        figures = module.run()
        print(name, figures, flush=True)
        record(figures)


if __name__ == "__main__":
    main(sys.argv[1:])
