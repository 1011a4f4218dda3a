"""Command line: ``rlbandit COMMAND`` (also ``python -m rlbandit``)."""

from __future__ import annotations

import numpy as np
import typer

# rich markup would read "[default: …]" in a help text as a markup tag and drop it
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="rlbandit: exact KL-regularized RLHF in a linear bandit.")


def _version(value: bool):
    if value:
        from rlbandit import __version__

        typer.echo(f"rlbandit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")):
    """rlbandit: exact KL-regularized RLHF in a linear contextual bandit."""


def loglog_slope(n, values) -> float:
    """Least-squares slope of log(values) against log(n)."""
    x, y = np.log(np.asarray(n, dtype=float)), np.log(np.asarray(values, dtype=float))
    return float(np.polyfit(x, y, 1)[0])


@app.command()
def example(
    scenario: str = typer.Option("random", help="scenario of rlbandit.SCENARIOS"),
    n_contexts: int = typer.Option(20, help="X, number of contexts"),
    n_actions: int = typer.Option(30, help="K, number of actions"),
    dim: int = typer.Option(8, help="d, feature dimension"),
    eta: float = typer.Option(1.0, help="η, KL coefficient"),
    seeds: int = typer.Option(20, help="number of seeds (problems), vectorised"),
    reg: float = typer.Option(1.0, help="λ, ridge coefficient of the BT MLE"),
    seed: int = typer.Option(0, help="seed of the first problem and of the data"),
):
    """Plug-in MLE → Gibbs policy at growing n: suboptimality against n and the log–log slope."""
    from rich.console import Console
    from rich.table import Table

    from rlbandit import ProblemConfig, fit_bt, gibbs, make_problems

    try:
        config = ProblemConfig(scenario=scenario, n_contexts=n_contexts, n_actions=n_actions, dim=dim)
    except ValueError as error:  # the one-line error `run` gives, not a traceback
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    problems = make_problems(config, range(seed, seed + seeds))
    rng = np.random.default_rng(seed)
    sizes = np.unique(np.logspace(2, 4.5, 8).astype(int))
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, int(sizes[-1]), rng)
    diffs = problems.diffs(data)
    table = Table(title=f"SubOpt of Gibbs(φθ̂_MLE) — {scenario}, X={n_contexts}, K={n_actions}, d={dim}, η={eta}, "
                        f"{seeds} seeds")
    for column in ("n", "mean SubOpt", "std err", "‖θ̂ − θ*‖"):
        table.add_column(column, justify="right")
    means = []
    for n in sizes:
        theta = fit_bt(diffs[..., :n, :], data.labels[..., :n], reg)
        policy = gibbs(np.einsum("sxkd,sd->sxk", problems.features, theta), problems.ref_logprobs, eta)
        subopt = problems.suboptimality(policy, eta)
        means.append(subopt.mean())
        error = np.linalg.norm(theta - problems.theta, axis=-1).mean()
        table.add_row(str(n), f"{subopt.mean():.3e}", f"{subopt.std(ddof=1) / np.sqrt(seeds):.1e}", f"{error:.3f}")
    console = Console()
    console.print(table)
    console.print(f"log–log slope of SubOpt against n: [bold]{loglog_slope(sizes, means):.2f}[/bold] "
                  "(−0.5: the √d/√n bound's shape; −1: the fast rate)")


@app.command("list")
def list_command():
    """List the registered studies (entry-point group rlbandit.studies) and their stored results."""
    from rlbandit.runner import list_studies, load_study, plan, results_dir
    from rlbandit.store import ResultStore

    for name in list_studies():
        try:
            study = load_study(name)
            first = study.description.strip().split("\n")[0]
            counts = []
            for smoke in (False, True):
                folder = results_dir(name, smoke)
                if folder.exists():
                    done = ResultStore(folder, name).finished_ids()
                    ids = [rid for rid, _ in plan(study, smoke)]
                    counts.append(f"{'smoke' if smoke else 'full'} {sum(r in done for r in ids)}/{len(ids)}")
            typer.echo(f"{name:20s} {first}" + (f"  [{', '.join(counts)}]" if counts else ""))
        except Exception as error:  # a broken study must not hide the others
            typer.echo(f"{name:20s} (cannot load: {type(error).__name__}: {error})")


@app.command()
def run(
    study: str = typer.Argument(..., help="a study: NAME (benchmarks/NAME.py), path/to/file.py or module[:NAME]"),
    smoke: bool = typer.Option(False, "--smoke", help="the small CI sweep (stored apart from the full one)"),
    out: str = typer.Option(None, "--out", help="results folder [default: results/STUDY or results/smoke/STUDY]"),
    workers: int = typer.Option(None, "--workers", min=1, help="parallel runs [default: CPU count]"),
    backend: str = typer.Option("process", "--backend", help="process | ray | serial"),
    address: str = typer.Option(None, "--address", help="Ray cluster address (default: start a local Ray)"),
):
    """Run a study's sweep; finished runs are skipped, so re-running resumes an interrupted sweep."""
    from rlbandit.runner import run_sweep

    try:
        summary = run_sweep(study, smoke=smoke, out=out, workers=workers, backend=backend, address=address)
    except KeyboardInterrupt:
        raise typer.Exit(130)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    typer.echo(f"{summary.study}: {summary.planned} runs — {summary.skipped} already done, "
               f"{len(summary.finished)} finished, {len(summary.failed)} failed"
               + (f", {len(summary.busy)} being computed by another sweep" if summary.busy else "")
               + f" in {summary.wall_s:.1f} s "
               f"→ {summary.results}")
    if summary.failed:
        typer.echo("failed runs (error and traceback in the manifest): " + ", ".join(summary.failed), err=True)
        raise typer.Exit(1)


@app.command()
def report(
    study: str = typer.Argument(..., help="a study: NAME (benchmarks/NAME.py), path/to/file.py or module[:NAME]"),
    smoke: bool = typer.Option(False, "--smoke", help="report the smoke sweep"),
    results: str = typer.Option(None, "--results",
                                help="results folder [default: results/STUDY or results/smoke/STUDY]"),
    out: str = typer.Option(None, "--out", help="report folder [default: reports/STUDY; smoke: RESULTS/report]"),
):
    """Write reports/STUDY/README.md and its figures from the stored results."""
    from rlbandit.reports import write_report

    try:
        path = write_report(study, results=results, out=out, smoke=smoke)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    except OSError as error:  # a report folder that is a file or read-only: one line, no traceback
        typer.echo(f"error: --out: cannot write the report to {error.filename or out} "
                   f"({error.strerror or error})", err=True)
        raise typer.Exit(2)
    typer.echo(f"wrote {path}")


def main():  # pragma: no cover - thin wrapper
    app()
