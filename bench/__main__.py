"""``python -m bench [NAME ...] [options]``: run benchmarks, write bench/results/*.json."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

BENCHMARKS = [
    "chunker",
    "chunker_process",
    "encoding",
    "prepared",
    "stream",
    "sharing",
    "lambda_stream",
    "cost",
    "load",
    "fairness",
    "coldstart",
    "drain",
    "history",
    "events",
    "page",
    "aircraft_expiry",
]


def main() -> int:
    argv = sys.argv[1:]
    split = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, options = argv[:split] or BENCHMARKS, argv[split:]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"bench: unknown benchmark(s) {unknown}; choose from {BENCHMARKS}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        parser = argparse.ArgumentParser(prog=f"bench {name}")
        module.add_arguments(parser)
        args, _ = parser.parse_known_args(options)
        result = module.run(args)
        print(json.dumps({name: result}, indent=2))
        if result.get("passed") is False:  # a benchmark with pass criteria failed one
            print(f"bench: {name} failed its pass criteria", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
