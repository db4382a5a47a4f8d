"""Run the benchmarks and record the figures in benchmarks/results.json (one flat object).

``python -m benchmarks`` runs them all; ``python -m benchmarks bench_mcmc bench_survey`` the
ones named; ``--quick`` a shorter version of each that has one (fewer files, spectra or
repeats; no sampler matrix); ``--list`` names them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import time

from benchmarks.common import record

BENCHMARKS = ["bench_real", "bench_normalize", "bench_train", "bench_fit", "bench_cv", "bench_mcmc",
              "bench_nn", "bench_survey", "bench_training",
              "bench_physics"]
#: Arguments of the quick mode, for the benchmarks without a ``quick`` parameter.
QUICK = {"bench_train": {"repeats": 2}, "bench_fit": {"n_spectra": 500, "n_baseline": 50},
         "bench_training": {"n_train": 300, "n_test": 200}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of "
                                                 f"{', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="the shorter version of each")
    parser.add_argument("--list", action="store_true", help="name the benchmarks and stop")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return
    unknown = [n for n in args.names if n.removesuffix(".py") not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; one of {', '.join(BENCHMARKS)}")
    for name in [n.removesuffix(".py") for n in args.names] or BENCHMARKS:
        module = importlib.import_module(f"benchmarks.{name}")
        kwargs = {}
        if args.quick:
            kwargs = ({"quick": True} if "quick" in inspect.signature(module.run).parameters
                      else QUICK.get(name, {}))
        start = time.perf_counter()
        figures = module.run(**kwargs)
        figures[f"{name}_quick"] = bool(args.quick)
        print(f"{name} ({time.perf_counter() - start:.0f} s)", figures, flush=True)
        record(figures)


if __name__ == "__main__":
    main()
