"""The input-contract probe of issue 16, re-measured: every bad input the contract suite tries
(:mod:`rlbandit.contracts`, the same registry as ``tests/test_contracts.py``) and how the public
functions answer it.

    python benchmarks/probe_contracts.py               # the table: probed, tried, handled, failed
    python benchmarks/probe_contracts.py --failures    # also every failing case, grouped
    python benchmarks/probe_contracts.py --out probe.csv

"Handled well" is a ValueError/TypeError naming the argument, or a result without NaN for a value
the case lists as legitimate; "silent" a result for a value that is not legitimate (or a NaN in
it); "unnamed" any other error. Not a study: it measures the code, not the mathematics, and runs
in seconds.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from rlbandit.contracts import CASES, probe, summary


def per_module(frame: pd.DataFrame) -> pd.DataFrame:
    """The probe counts per module."""
    module = frame["function"].str.rsplit(".", n=1).str[0]
    table = frame.assign(module=module, silent=frame["outcome"] == "silent",
                         unnamed=frame["outcome"] == "unnamed error")
    return (table.groupby("module", sort=False)
            .agg(functions=("function", "nunique"), tried=("handled", "size"), handled=("handled", "sum"),
                 silent=("silent", "sum"), unnamed=("unnamed", "sum")).reset_index())


def failures(frame: pd.DataFrame) -> pd.DataFrame:
    """The failing cases, one row per (function, argument, outcome, message) with its bad inputs."""
    bad = frame[~frame["handled"]]
    return (bad.groupby(["function", "argument", "outcome", "detail"], sort=False)["bad_input"]
            .agg(lambda kinds: ", ".join(kinds)).reset_index())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="list every failing case")
    parser.add_argument("--out", help="write the full probe frame to this CSV file")
    args = parser.parse_args(argv)
    frame = probe()
    print(f"{len(CASES)} public functions, one valid call each; bad inputs derived from it\n")
    print(summary(frame).to_string(index=False))
    print()
    print(per_module(frame).to_string(index=False))
    if args.failures:
        pd.set_option("display.max_colwidth", 110)
        pd.set_option("display.width", 250)
        print()
        print(failures(frame).to_string(index=False))
    if args.out:
        frame.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
