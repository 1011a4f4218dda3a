"""Benchmark studies: one module per study, each defining ``STUDY = rlbandit.study.Study(...)``.

A study declares its sweep as frozen config dataclasses (``configs(smoke)``), the pure function
that runs one config and returns a tidy frame (``run``), and its report (``report``). Run and
report one with::

    rlbandit list                       # the studies and how many of their runs are stored
    rlbandit run STUDY [--smoke] [--workers N] [--backend process|ray|serial] [--address ADDR]
    rlbandit report STUDY [--smoke]     # → reports/STUDY/README.md + PNGs

Results are stored per run in ``results/STUDY/`` (smoke sweeps in ``results/smoke/STUDY/``);
re-running skips finished runs. See :mod:`rlbandit.runner`, :mod:`rlbandit.store`,
:mod:`rlbandit.reports` and :mod:`rlbandit.plots`.
"""
