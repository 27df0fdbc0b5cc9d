"""Run the benchmarks: `python benchmarks/run.py [name ...]` (e.g. `audit`).

Discovers benchmarks/bench_*.py, sets Django up against a fresh, migrated PostgreSQL
database (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/llmops_bench) and calls
each module's main(report). See benchmarks/README.md."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import Reporter, database_url, setup_django  # noqa: E402


def discover() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(f"benchmarks.bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "main", None)):
        raise SystemExit(f"{path.name} has no main(report)")
    return module


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run ({', '.join(available)})")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; have {', '.join(available)}")
    chosen = args.names or list(available)

    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"database {database_url()} (recreated and migrated)", flush=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {loadavg} at start", flush=True)
    setup_django(fresh=True)
    report = Reporter()
    failed = []
    for name in chosen:
        module = load(name, available[name])
        report.bench = name
        print(f"\n## {name}", flush=True)
        start = time.perf_counter()
        try:
            module.main(report)
        except Exception:  # noqa: BLE001 - report the failure, run the others
            traceback.print_exc()
            failed.append(name)
        print(f"({name}: {time.perf_counter() - start:.1f} s)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(f) for f in report.figures], indent=2))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
