"""The command line of the methods lab: ``python -m core tune`` (hyperparameter search) and
``python -m core compare-methods`` (every method at every training size). Same conventions as
``core.cli``: ``--json`` prints one JSON object last, exit 2 on the user's mistakes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from core import cli
from core.i18n import render


def _user() -> str | None:
    return os.environ.get("USER")


# tune --------------------------------------------------------------------------------------
def _tune_worker(args: argparse.Namespace) -> int:
    """A search started by the job queue: run its trials, then record how it ended."""
    from core import jobs
    from core.tuning import run_search
    from core.workspace import Registry, read_json

    registry = Registry()
    cli._lower_priority()
    registry.update_job(args.job, pid=os.getpid())
    folder = Path(args.config).parent
    try:
        report = run_search(folder, registry)
    except BaseException as exc:
        jobs.finish(args.job, "failed", f"{type(exc).__name__}: {exc}", registry)
        raise
    status = (read_json(folder / "status.json", {}) or {}).get("status", "failed")
    jobs.finish(args.job, status, None, registry)
    cli._emit(report, args.json, [f"Search {report['id']}: {status}"])
    return cli.EXIT_OK


def _trial_line(trial: dict[str, Any]) -> str:
    f1 = trial["validation_macro_f1"]
    settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial["settings"].items())
    return f"  trial {trial['number']:>3}  {trial['outcome']:<8}  validation macro F1 " + (
        f"{f1:.4f}" if f1 is not None else "—") + f"  {settings}"


def _search_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"Search {report['id']} ({report['config']['method']} on {report['config']['dataset']!r}): "
             f"{report['status']}, {report['finished']}/{report['planned']} trials"]
    lines += [_trial_line(t) for t in report["trials"]]
    if report["best"]:
        lines.append("best: " + _trial_line(report["best"]).strip())
    return lines


def cmd_tune(args: argparse.Namespace) -> int:
    from core import jobs, tuning

    if args.job:
        return _tune_worker(args)
    if args.action == "show":
        report = tuning.search_report(_required(args.search, "search"))
        cli._emit(report, args.json, _search_lines(report))
        return cli.EXIT_OK
    if args.action == "save":
        path = tuning.save_best_config(_required(args.search, "search"), args.name or "")
        cli._emit({"search_id": args.search, "name": path.stem, "path": str(path)}, args.json,
                  [f"Saved {path} (train with: python -m core train --config {path})"])
        return cli.EXIT_OK
    config = tuning.SearchConfig(dataset=_required(args.dataset, "--dataset"), method=args.method, model=args.model,
                                 preset=args.preset, limit=args.limit, trials=args.trials, seed=args.seed)
    config.space = {k: list(v) for k, v in tuning.parse_space(args.space or "", config.method, config.preset).items()}
    folder = tuning.create_search(config)
    if args.foreground:
        report = tuning.run_search(folder)
    else:
        job = jobs.submit(folder, kind="tune", created_by=_user())
        report = {**tuning.search_report(folder.name), "job_id": job["id"],
                  "message": render(jobs.queue_message(job), cli._lang(args))}
    cli._emit(report, args.json, _search_lines(report) + [f"  stop: python -m core jobs cancel {folder.name}; "
                                                         f"resume: python -m core jobs resume {folder.name}"])
    return cli.EXIT_OK


def _required(value: str | None, name: str) -> str:
    from core.errors import ConfigError

    if not value:
        raise ConfigError("lab.err.required", name=name)
    return value


# compare-methods -----------------------------------------------------------------------------
def _in_process(folder: Path, registry: Any) -> None:
    """--foreground: each run here, one after another; a run that fails is reported and skipped."""
    from core.training import run_training

    try:
        run_training(folder, registry=registry)
    except Exception as exc:  # the table shows it as failed; the next run goes on
        print(f"run {folder.name} failed: {exc}", file=sys.stderr)


def _comparison_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"Comparison {report['id']} on {report['dataset']!r} ({len(report['rows'])} runs)"]
    for row in report["summary"]:
        acc, spread = row["accuracy_mean"], row["accuracy_spread"]
        shown = f"{acc:.4f} ± {spread:.4f}" if acc is not None else "—"
        lines.append(f"  {row['method']:<10} per class {row['per_class']!s:>5}  accuracy {shown}  "
                     f"({row['finished']}/{row['seeds']} seeds)")
    return lines


def cmd_compare_methods(args: argparse.Namespace) -> int:
    from core import comparison

    if args.action == "show":
        report = comparison.comparison_report(_required(args.comparison, "comparison"))
        cli._emit(report, args.json, _comparison_lines(report))
        return cli.EXIT_OK
    config = comparison.ComparisonConfig(
        dataset=_required(args.dataset, "--dataset"), methods=comparison.parse_methods(args.methods),
        per_class=comparison.parse_per_class(args.per_class), seeds=args.seeds, model=args.model, preset=args.preset)
    record = comparison.create_comparison(config, created_by=_user(),
                                          launch=_in_process if args.foreground else None)
    for note in comparison.refusal_messages(record):
        print(render(note, cli._lang(args)), file=sys.stderr)
    report = comparison.comparison_report(record["id"])
    cli._emit({**report, "comparison_id": record["id"]}, args.json, _comparison_lines(report))
    return cli.EXIT_OK


def add_parsers(groups: Any) -> None:
    """``tune`` and ``compare-methods`` on the main parser's sub-commands."""
    from core.modeling.command import CHOICES
    from core.modeling.config import PRESETS

    tune = groups.add_parser("tune", help="hyperparameter search (Optuna) as a background job; show or save its best")
    tune.add_argument("action", nargs="?", default="start", choices=["start", "show", "save"])
    tune.add_argument("search", nargs="?", help="show, save: the search id")
    tune.add_argument("--dataset")
    tune.add_argument("--method", default="full", choices=CHOICES["method"])
    tune.add_argument("--trials", type=int, default=10, help="trials that finish (complete, pruned or failed)")
    tune.add_argument("--model", default="default")
    tune.add_argument("--preset", default="quick", choices=list(PRESETS))
    tune.add_argument("--limit", type=int, default=0, help="training rows per trial (stratified); 0 = all")
    tune.add_argument("--space", help="ranges over the method's defaults, e.g. lr=1e-5:1e-3,epochs=1:4,"
                                      "batch_size=8:32,warmup=0:0.2,lora_r=4:16,virtual_tokens=5:30")
    tune.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    tune.add_argument("--name", help="save: the config's name (workspace/configs/NAME.json)")
    tune.add_argument("--foreground", action="store_true", help="run the trials in this process")
    tune.add_argument("--config", help=argparse.SUPPRESS)
    tune.add_argument("--job", help=argparse.SUPPRESS)
    tune.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    tune.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    tune.set_defaults(func=cmd_tune)
    compare = groups.add_parser("compare-methods", help="every method at every training size on the same splits; "
                                                        "show ID for the table")
    compare.add_argument("action", nargs="?", default="start", choices=["start", "show"])
    compare.add_argument("comparison", nargs="?", help="show: the comparison id")
    compare.add_argument("--dataset")
    compare.add_argument("--methods", default="baseline,full,lora")
    compare.add_argument("--per-class", dest="per_class", default="8,32,128,all",
                         help="training examples per class, comma-separated; 'all' = every training row")
    compare.add_argument("--seeds", type=int, default=3)
    compare.add_argument("--model", default="default")
    compare.add_argument("--preset", default="quick", choices=list(PRESETS))
    compare.add_argument("--foreground", action="store_true", help="run every run in this process, one by one")
    compare.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    compare.set_defaults(func=cmd_compare_methods)
