"""Fuzz mockai's HTTP surface from the official OpenAPI spec, at length.

    python scripts/fuzz_spec.py [--max-examples 200] [--coverage N] [--mode positive|negative]...
                                [--strict] [--rejections N]

Every operation of tests/openapi/openapi.json that mockai serves gets schemathesis's coverage
cases (all by default) and `--max-examples` random requests per mode, against a fresh server on
127.0.0.1; the checks are those of tests/spec_fuzz.py
(no 5xx, errors in the API's shape with a fitting 4xx, 2xx answers valid against the spec,
nothing logged at ERROR). Prints the operations, cases, 5xx and failures by check, with examples;
exits 1 if any check failed. Deterministic: the same options give the same cases.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import spec_fuzz  # (in tests/, next to the conformance helpers it uses)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-examples", type=int, default=200, help="cases per operation and mode"
    )
    parser.add_argument(
        "--mode", action="append", choices=sorted(spec_fuzz.MODES), help="default: both"
    )
    parser.add_argument(
        "--coverage",
        type=int,
        default=None,
        metavar="N",
        help="coverage-phase cases per operation (default: all, ~31,500 in total; 0: none)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="serve with --strict-requests (unknown fields are 400s)",
    )
    parser.add_argument(
        "--rejections",
        type=int,
        default=0,
        metavar="N",
        help="also list the N commonest 400s given to spec-valid (positive) requests",
    )
    args = parser.parse_args()
    modes = tuple(args.mode or spec_fuzz.MODES)
    started = time.monotonic()
    report = spec_fuzz.fuzz(
        args.max_examples, modes=modes, coverage=args.coverage, strict_requests=args.strict
    )
    print(report.summary())
    if args.rejections:
        print(f"--- commonest 400s for spec-valid requests (of {report.rejected_valid.total()})")
        for reason, count in report.rejected_valid.most_common(args.rejections):
            print(f"{count:6d}  {reason}")
    print(f"time: {time.monotonic() - started:.1f}s")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
