"""The command line: ``python -m core <group> <verb>``; every capability of the app is here too.

Conventions: ``--json`` prints one JSON object as the last line of standard output; exit 0 on
success, 2 when the user's input is at fault (one paragraph on standard error, no traceback),
1 on an internal error. ``--lang zh`` (anywhere on the line) renders errors and messages in
Simplified Chinese; English is the default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from core import i18n
from core.errors import OpinionLabError

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage mistakes as user errors (exit 2, one paragraph)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise OpinionLabError("cli.err.usage", detail=message, prog=self.prog)


def _take_lang(argv: list[str]) -> tuple[str, list[str]]:
    """The ``--lang`` value and the other arguments. Taken out before parsing so that it may
    stand anywhere (``python -m core data add x.csv --lang zh``) and even rule usage errors."""
    lang, rest, args = i18n.DEFAULT_LANGUAGE, [], iter(argv)
    for arg in args:
        if arg == "--lang":
            lang = next(args, "")
        elif arg.startswith("--lang="):
            lang = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return lang, rest


def _emit(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    else:
        print("\n".join(lines))


# data --------------------------------------------------------------------------------------
def _dataset_summary(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": card["name"],
        "id": card["id"],
        "rows": card["rows"],
        "classes": card["classes"],
        "encoding": card["encoding"],
        "columns": card["columns"],
        "warnings": card["warnings"],
        "source": card["source"],
        "split_counts": card["split_counts"],
        "steps": card["steps"],
        "created_at": card["created_at"],
    }


def _card_lines(card: dict[str, Any], lang: str = i18n.DEFAULT_LANGUAGE) -> list[str]:
    lines = [
        f"Dataset {card['name']!r} ({card['id']}): {card['rows']:,} rows from {card['source']} "
        f"(encoding {card['encoding']})",
        "  columns: " + ", ".join(f"{k}={v}" for k, v in card["columns"].items() if v),
        "  classes: " + ", ".join(f"{k} {v:,}" for k, v in card["classes"].items()),
        "  splits:  " + ", ".join(f"{s} {sum(c.values()):,}" for s, c in card["split_counts"].items()),
        "  cleaning: " + ", ".join(f"{s['step']} {s['count']:,}" for s in card["steps"]),
    ]
    lines += [f"  warning: {i18n.render(w, lang)}" for w in card["warnings"]]
    return lines


def _rendered_warnings(card: dict[str, Any], lang: str) -> dict[str, Any]:
    """The card's stored messages as text in ``lang``, for --json readers."""
    return {**card, "warnings": [i18n.render(w, lang) for w in card["warnings"]]}


def cmd_data_add(args: argparse.Namespace) -> int:
    from core.data import ColumnMapping, detect_columns, join_messages, prepare_dataset, read_table
    from core.datasets import save_dataset
    from core.errors import DataError
    from core.i18n import render
    from core.samples import PREFIX, read_source

    if args.source.startswith(PREFIX):
        table, mapping = read_source(args.source)
    else:
        table, mapping = read_table(Path(args.source), sheet=args.sheet, header_row=args.header_row), None
    mapping = mapping or detect_columns(table.frame)
    overrides = {k: getattr(args, f"{k}_col") for k in ("text", "label", "date", "group", "split")}
    if any(overrides.values()):
        mapping = ColumnMapping.from_dict({**mapping.to_dict(), **{k: v for k, v in overrides.items() if v}})
    prepared = prepare_dataset(table, mapping)
    if not prepared.report.ok:
        raise DataError(join_messages(prepared.report.errors))
    default_name = args.source[len(PREFIX):] if args.source.startswith(PREFIX) else os.path.splitext(
        os.path.basename(args.source))[0]
    card = save_dataset(prepared, args.name or default_name, created_by=os.environ.get("USER"))
    notes = [render(n, args.lang) for n in table.notes]
    _emit({**_dataset_summary(_rendered_warnings(card, args.lang)), "notes": notes}, args.json,
          ["Saved.", *_card_lines(card, args.lang), *(f"  note: {n}" for n in notes)])
    return EXIT_OK


def cmd_data_list(args: argparse.Namespace) -> int:
    from core.datasets import list_datasets

    cards = list_datasets()
    lines = [f"{c['name']:<30} {c['rows']:>9,} rows  {', '.join(c['classes'])}" for c in cards] or ["No datasets yet."]
    _emit({"datasets": [_dataset_summary(_rendered_warnings(c, args.lang)) for c in cards]}, args.json, lines)
    return EXIT_OK


def cmd_data_show(args: argparse.Namespace) -> int:
    from core.datasets import get_dataset

    card = get_dataset(args.name)
    _emit({**_dataset_summary(_rendered_warnings(card, args.lang)), "card": card}, args.json,
          _card_lines(card, args.lang))
    return EXIT_OK


def cmd_data_remove(args: argparse.Namespace) -> int:
    from core.datasets import remove_dataset

    card = remove_dataset(args.name)
    _emit({"removed": card["name"], "id": card["id"]}, args.json, [f"Removed dataset {card['name']!r}."])
    return EXIT_OK


# train and jobs ----------------------------------------------------------------------------
def _config_from_args(args: argparse.Namespace):
    from core.modeling.command import config_from_args

    return config_from_args(args)


def _train_result(folder, status: dict) -> dict[str, Any]:
    from core.workspace import read_json

    metrics = read_json(folder / "metrics.json", {}) or {}
    test = metrics.get("test") or {}
    baseline = ((metrics.get("baseline") or {}).get("test") or {})
    return {
        "run_id": folder.name, "run_dir": str(folder), "status": status.get("status"),
        "reason": status.get("reason"),
        "metrics": {"accuracy": test.get("accuracy"), "macro_f1": test.get("macro_f1"),
                    "weighted_f1": test.get("weighted_f1"), "baseline_accuracy": baseline.get("accuracy"),
                    "baseline_macro_f1": baseline.get("macro_f1")},
        "trainable_parameters": metrics.get("trainable_parameters"),
        "steps": metrics.get("steps"), "seconds": metrics.get("seconds"),
    }


def _is_run_config(path) -> bool:
    from core.workspace import read_json

    config = read_json(path, {}) or {}
    return bool(config.get("run_id")) and path.parent.name == config["run_id"] and (path.parent / "status.json").exists()


def _lower_priority() -> None:
    """Background workers yield the CPU to the web server, so pages stay quick while a job
    trains on the same machine (OPINIONLAB_WORKER_NICE=0 turns this off)."""
    import contextlib

    with contextlib.suppress(OSError, AttributeError, ValueError):  # not permitted or not POSIX: run as is
        os.nice(int(os.environ.get("OPINIONLAB_WORKER_NICE", "10")))


def _carry_out(folder: Path, resume: bool, registry) -> None:
    """A run folder's work, by its method: fine-tuning or the baseline; or a zero-shot run, then
    the scoring job of the file it was started for (when its config names one)."""
    from core.workspace import read_json

    if (read_json(folder / "config.json", {}) or {}).get("method") == "zeroshot":
        from core.unlabelled import queue_scoring
        from core.zeroshot import run_zeroshot

        run_zeroshot(folder, registry)
        queue_scoring(folder, registry)
    else:
        from core.training import run_training

        run_training(folder, resume=resume, registry=registry)


def _run_job(args: argparse.Namespace, registry) -> Path:
    """A worker started by the job queue: carry out the run, then record how it ended."""
    from core import jobs
    from core.workspace import read_json

    _lower_priority()
    registry.update_job(args.job, pid=os.getpid())
    folder = Path(args.config).parent
    try:
        _carry_out(folder, args.resume, registry)
    except OpinionLabError as exc:
        jobs.finish(args.job, "failed", str(exc), registry)
        raise
    except BaseException as exc:
        status = read_json(folder / "status.json", {}) or {}
        jobs.finish(args.job, "failed", status.get("reason") or f"{type(exc).__name__}: {exc}", registry)
        raise
    status = read_json(folder / "status.json", {}) or {}
    jobs.finish(args.job, status.get("status", "failed"), status.get("reason"), registry)
    return folder


def _run_in_place(args: argparse.Namespace, registry) -> Path | None:
    """A run's own config, on one process or on every rank of torchrun / accelerate launch.
    Returns None on ranks other than 0: rank 0 alone reports, also when the run is refused."""
    folder = Path(args.config).parent
    rank = int(os.environ.get("RANK", "0"))
    try:
        _carry_out(folder, args.resume, registry)
    except OpinionLabError:
        if rank > 0:
            sys.exit(EXIT_USER)  # rank 0 prints the reason; every rank ends
        raise
    return folder if rank == 0 else None


def cmd_train(args: argparse.Namespace) -> int:
    from core.modeling.command import given_settings
    from core.training import create_run, run_training
    from core.workspace import Registry, read_json

    if args.method == "zeroshot" and not args.job:
        return cmd_zeroshot(args)
    registry = Registry()
    if args.job:
        folder = _run_job(args, registry)
    elif args.config and _is_run_config(Path(args.config)) and not given_settings(args) and not args.preset:
        folder = _run_in_place(args, registry)
        if folder is None:
            return EXIT_OK
    else:
        config = _config_from_args(args)
        folder = create_run(config, registry, created_by=os.environ.get("USER"))
        print(f"Run {folder.name}: training {config.method} on {config.dataset!r} (progress in {folder}/progress.jsonl)",
              file=sys.stderr)
        run_training(folder, registry=registry)
    status = read_json(folder / "status.json", {}) or {}
    result = _train_result(folder, status)
    m = result["metrics"]
    lines = [f"Run {result['run_id']}: {result['status']}"]
    if m["accuracy"] is not None:
        lines.append(f"  test accuracy {m['accuracy']:.4f}, macro F1 {m['macro_f1']:.4f} "
                     f"(baseline accuracy {m['baseline_accuracy']:.4f})")
    _emit(result, args.json, lines)
    return EXIT_OK if result["status"] in ("succeeded", "cancelled") else EXIT_INTERNAL


def _lang(args: argparse.Namespace) -> str:
    """The language the CLI writes messages in (English unless a --lang option says otherwise)."""
    return getattr(args, "lang", None) or "en"


def cmd_jobs_submit(args: argparse.Namespace) -> int:
    from core import jobs
    from core.estimates import estimate_training
    from core.i18n import render
    from core.runs import run_name
    from core.training import create_run
    from core.workspace import Registry

    registry = Registry()
    if args.method == "zeroshot":
        return _submit_zeroshot(args, registry)
    config = _config_from_args(args)
    estimate = estimate_training(config, registry)
    folder = create_run(config, registry, created_by=os.environ.get("USER"))
    submitted = jobs.submit(folder, registry, created_by=os.environ.get("USER"))
    state = jobs.queue_message(submitted, registry)
    job = {**jobs.describe(submitted, registry).to_dict(), "name": run_name(folder.name, registry, _lang(args)),
           "message": render(state, _lang(args)), "estimate": estimate.to_dict()}
    _emit(job, args.json, [f"{job['name']} (run {job['run_id']}, job {job['id']}): {job['message']}",
                           f"  estimated duration {estimate.seconds / 60:.1f} min ({render(estimate.message, _lang(args))})"])
    return EXIT_OK


def _job_line(job: dict[str, Any]) -> str:
    from core.i18n import render
    from core.jobs import ordinal

    progress = f"{job['step']}/{job['total_steps']}" if job["total_steps"] else "-"
    place = f" ({render(ordinal(job['position']))} in line)" if job.get("position") else ""
    return f"{job['id']}  {job['status']:<11}{place} {job.get('lane', ''):<5} {progress:>11}  run {job['run_id']}" + (
        f"  ({job['error']})" if job["error"] else "")


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from core import jobs
    from core.workspace import Registry

    registry = Registry()
    jobs.reconcile(registry)
    listed = [jobs.describe(j, registry).to_dict() for j in registry.jobs()]
    _emit({"jobs": listed}, args.json, [_job_line(j) for j in listed] or ["No jobs."])
    return EXIT_OK


def cmd_jobs_show(args: argparse.Namespace) -> int:
    from core import jobs

    job = jobs.describe(jobs.get(args.id)).to_dict()
    _emit(job, args.json, [_job_line(job), f"  command: {job['command']}"])
    return EXIT_OK


def cmd_jobs_action(args: argparse.Namespace) -> int:
    from core import jobs

    if args.verb == "cancel":
        jobs.cancel(args.id)
    elif args.verb == "resume":
        jobs.resume(args.id)
    else:
        jobs.move(args.id, "up" if args.verb == "up" else "down")
    job = jobs.describe(jobs.get(args.id)).to_dict()
    _emit(job, args.json, [_job_line(job)])
    return EXIT_OK


# eval, explain, runs ---------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from core.runs import evaluate_run

    report = evaluate_run(args.run, dataset=args.dataset, split=args.split, file=args.file,
                          text_col=args.text_col, label_col=args.label_col)
    keys = ("source", "rows", "accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "labels",
            "confusion_matrix", "confusion_matrix_normalised", "per_class", "curves", "calibration",
            "unmapped_labels", "skipped_rows")
    result = {k: report.get(k) for k in keys}
    result["misclassified"] = report.get("misclassified", [])[:50]
    lines = [f"{report['source']}: {report['rows']:,} rows, accuracy {report['accuracy']:.4f}, "
             f"macro F1 {report['macro_f1']:.4f}"]
    lines += [f"  {lab:<15} precision {v['precision']:.3f} recall {v['recall']:.3f} f1 {v['f1']:.3f} "
              f"support {v['support']:,}" for lab, v in report["per_class"].items()]
    lines.append("  confusion matrix (rows = true, columns = predicted): " + str(report["confusion_matrix"]))
    if report.get("unmapped_labels"):
        lines.append(f"  skipped {report['skipped_rows']:,} rows with labels the model does not know: "
                     + ", ".join(map(repr, report["unmapped_labels"])))
    _emit(result, args.json, lines)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from core.explain import explain
    from core.predict import load_predictor

    result = explain(load_predictor(args.run), args.text)
    ranked = sorted(zip(result["tokens"], result["attributions"], strict=True), key=lambda p: -abs(p[1]))[:10]
    lines = [f"{result['label']}  " + ", ".join(f"{k} {v:.3f}" for k, v in result["probabilities"].items()),
             "  words that weighed most: " + ", ".join(f"{w} {a:+.3f}" for w, a in ranked)]
    if result["truncated"]:
        lines.append(f"  note: the text has {result['model_tokens']} tokens; the model read {result['max_length']}.")
    _emit(result, args.json, lines)
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from core import runs

    if args.verb == "list":
        listed = runs.list_runs(lang=_lang(args))
        lines = [f"{r['id']}  {r['status']:<11} {r['name']}  "
                 f"acc {r['accuracy'] if r['accuracy'] is None else round(r['accuracy'], 4)}" for r in listed]
        _emit({"runs": listed}, args.json, lines or ["No runs yet."])
    elif args.verb == "rename":
        if not args.runs:
            raise OpinionLabError("runs.err.rename_usage")
        name = runs.rename_run(args.runs[0], " ".join(args.runs[1:]), lang=_lang(args))
        _emit({"id": args.runs[0], "name": name}, args.json, [f"{args.runs[0]} is now called {name!r}."])
    elif args.verb == "show":
        shown = runs.show_run(args.runs[0])
        shown.pop("progress")
        _emit(shown, args.json, [json.dumps(shown, indent=2, default=str)])
    else:
        if len(args.runs) < 2:
            raise OpinionLabError("cli.err.compare_two")
        compared = runs.compare_runs(args.runs)
        compared.pop("histories")
        lines = [" | ".join(f"{k}={r.get(k)}" for k in ("id", "accuracy", "macro_f1", *compared["differs"]))
                 for r in compared["runs"]]
        _emit(compared, args.json, lines)
    return EXIT_OK


SCORE_VERBS = {"list": "list [--json]", "rename": "rename SCORE_ID NEW NAME", "delete": "delete SCORE_ID [--yes]"}


def _score_worker(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """A worker (or a shard) of an existing scoring job."""
    from core import jobs
    from core.workspace import Registry, read_json

    registry = Registry()
    if args.job:
        _lower_priority()
    folder = Path(args.config).parent
    try:
        result = _run_score(folder, args.shard)
    except BaseException as exc:
        if args.job:
            jobs.finish(args.job, "failed", str(exc), registry)
        raise
    if args.job:
        state = (read_json(folder / "status.json", {}) or {}).get("status", "failed")
        jobs.finish(args.job, "succeeded" if state == "succeeded" else state, None, registry)
    return result, folder


def _run_score(folder: Path, shard: str | None) -> dict[str, Any]:
    """Score with the engine the job was created for."""
    from core import scoring
    from core.workspace import read_json

    if scoring.ScoreConfig.from_dict(read_json(folder / "score.json")).engine != "ray":
        return scoring.run_scoring(folder, scoring.parse_shard(shard))
    if shard:
        raise OpinionLabError("ray.err.shard")
    from core import ray_engine

    return ray_engine.run_ray_scoring(folder)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Ray engine's settings of ``score`` (refused without ``--engine ray``)."""
    given = {"address": args.address, "workers": args.workers, "gpus_per_worker": args.gpus_per_worker}
    if args.engine != "ray":
        if any(v is not None for v in given.values()):
            raise OpinionLabError("ray.err.engine_options")
        return {}
    from core import ray_engine

    return {"engine": "ray", "address": ray_engine.configured_address() if args.address is None else args.address,
            "workers": 2 if args.workers is None else args.workers, "gpus_per_worker": args.gpus_per_worker or 0.0}


def cmd_score(args: argparse.Namespace) -> int:
    from core import jobs, scoring
    from core.workspace import Registry

    if args.run in SCORE_VERBS:
        return cmd_score_manage(args)
    if args.values:
        raise OpinionLabError("score.err.usage", usage="RUN --input PATH [--output PATH]")
    if args.config:
        result, folder = _score_worker(args)
    else:
        if not (args.run and args.input):
            raise OpinionLabError("score.err.need_run_input")
        registry = Registry()
        config = scoring.ScoreConfig(run_id=args.run, input=args.input, output=args.output or "",
                                     text_col=args.text_col or "", fast=args.fast, batch_size=args.batch_size,
                                     chunk_rows=args.chunk_rows, overwrite=args.overwrite,
                                     csv_guard=not args.unchanged_csv, name=args.name or "", **_engine_options(args))
        if config.engine == "ray":
            from core import ray_engine

            folder = ray_engine.create_ray_score(config, registry, _lang(args))
        else:
            folder = scoring.create_score(config, registry, _lang(args))
        if args.create_only:  # for sharded runs: each worker then runs --config ... --shard i/n
            _emit({"score_id": folder.name, "name": config.name, "config": str(folder / "score.json")}, args.json,
                  [f"Created {folder.name} ({config.name}): run each shard with --config {folder / 'score.json'} "
                   "--shard i/n"])
            return EXIT_OK
        if args.background:  # the score id is the job's id: one id for one scoring job
            job = jobs.describe(jobs.submit(folder, registry, os.environ.get("USER"), kind="score",
                                            job_id=folder.name), registry).to_dict()
            _emit({**job, "score_id": folder.name, "name": config.name}, args.json,
                  [f"Submitted scoring job {job['id']} ({config.name}): {job['status']}"])
            return EXIT_OK
        result = _run_score(folder, args.shard)
    if result.get("status") in ("partial", "cancelled"):
        _emit(result, args.json, [f"Scoring {result['status']}: {folder.name}"])
        return EXIT_OK
    _emit(result, args.json, _score_lines(result, _lang(args)))
    return EXIT_OK


def _score_lines(result: dict[str, Any], lang: str) -> list[str]:
    from core.i18n import render

    lines = [f"Scored {result['scored']:,} of {result['rows']:,} rows ({result['empty']:,} empty) at "
             f"{result['rows_per_s']:.1f} rows/s -> {result['output']}",
             "  labels: " + ", ".join(f"{k} {v:,}" for k, v in result["label_counts"].items())]
    if result.get("export_notice"):
        lines.append("  " + render(result["export_notice"], lang))
    if result.get("fast_agreement") is not None:
        lines.append(f"  fast mode agrees with full precision on {result['fast_agreement']:.1%} of a sample")
    return lines


def cmd_score_manage(args: argparse.Namespace) -> int:
    """``score list``, ``score rename ID NAME`` and ``score delete ID --yes``."""
    from core import scores
    from core.i18n import format_count, format_timestamp, render
    from core.workspace import Registry

    verb, values = args.run, list(args.values)
    if (verb == "list" and values) or (verb != "list" and len(values) < (2 if verb == "rename" else 1)) \
            or (verb == "delete" and len(values) > 1):
        raise OpinionLabError("score.err.usage", usage=SCORE_VERBS[verb])
    if verb == "list":
        listed = scores.list_scores(lang=_lang(args))
        lines = [f"{e.id}  {e.status:<11} {format_count(e.rows_done):>10} rows  "
                 f"{format_timestamp(e.created_at, _lang(args))}  {e.name}" for e in listed]
        _emit({"scores": [e.to_dict() for e in listed]}, args.json, lines or ["No scoring outputs yet."])
    elif verb == "rename":
        entry = scores.rename_score(values[0], " ".join(values[1:]))
        _emit(entry.to_dict(), args.json, [f"Renamed {entry.id}: {entry.name}"])
    else:
        registry = Registry()
        plan = scores.removal_plan(values[0], registry)
        question = plan.message(registry.root)
        if not args.yes:  # deleting asks first: say what would go, and how to confirm
            raise OpinionLabError("score.err.confirm", plan=question)
        scores.delete_score(plan.entry.id, registry)
        _emit({"deleted": plan.entry.id, "name": plan.entry.name, "rows": plan.rows, "files": plan.files,
               "bytes": plan.size, "paths": [str(p) for p in plan.paths], "kept_output": plan.kept_output},
              args.json, [f"Deleted {plan.entry.id}: " + render(question, _lang(args))])
    return EXIT_OK


# export --------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from core.portable import export_run
    from core.runs import size_text

    result = export_run(args.run, args.format, args.quantize).to_dict()
    shown = args.format + (f" ({args.quantize})" if args.quantize else "")
    lines = [i18n.t("export.done_cli", _lang(args), run=args.run, format=shown, path=result["path"],
                    size=size_text(result["bytes"]))]
    if result["check"]:
        check = result["check"]
        lines.append("  " + i18n.t("export.check", _lang(args), texts=check["texts"],
                                   diff=f"{check['max_abs_diff']:.2g}", agreement=f"{check['agreement']:.1%}"))
    _emit(result, args.json, lines)
    return EXIT_OK


# zero-shot ---------------------------------------------------------------------------------
def _zeroshot_config(args: argparse.Namespace):
    """The zero-shot run a command line describes (``zeroshot``, ``train``/``jobs submit --method
    zeroshot``), and the first texts of its --input file (for default descriptions)."""
    from core import scoring
    from core.data import detect_columns
    from core.errors import ConfigError
    from core.zeroshot import ZeroShotConfig, parse_label_options

    if not (args.dataset or args.input):
        raise ConfigError("zeroshot.err.no_source")
    labels, given = parse_label_options(args.label or [])
    texts = None
    if args.input:
        if not labels:
            raise ConfigError("zeroshot.err.labels_for_file")
        first = next(scoring.iter_chunks(Path(args.input), 2000), None)
        column = args.text_col or (detect_columns(first).text if first is not None else None)
        texts = first[column].astype("str").tolist() if column and column in first else []
    settings = {k: v for k, v in (("temperature", args.temperature), ("seed", getattr(args, "seed", None)))
                if v is not None}
    config = ZeroShotConfig(labels=labels, descriptions=given, model=args.model or "multilingual",
                            dataset=args.dataset or "", limit=args.limit or 0, source=Path(args.input or "").name,
                            **settings)
    return config, texts


def _submit_zeroshot(args: argparse.Namespace, registry) -> int:
    """``jobs submit --method zeroshot``: the run queued (quick lane unless its test split is large);
    with --input, the file's scoring is queued as soon as the run has succeeded."""
    from core import jobs
    from core.i18n import render
    from core.runs import run_name
    from core.zeroshot import create_zeroshot_run

    config, texts = _zeroshot_config(args)
    if args.input:  # the file is scored by a job of its own, queued when the run has succeeded
        config.score = {"input": str(Path(args.input).resolve()), "text_col": args.text_col or "",
                        "output": args.output or "", "overwrite": bool(args.overwrite),
                        "source_name": Path(args.input).name, "lang": _lang(args)}
    folder = create_zeroshot_run(config, registry, created_by=os.environ.get("USER"), texts=texts)
    submitted = jobs.submit(folder, registry, created_by=os.environ.get("USER"))
    job = {**jobs.describe(submitted, registry).to_dict(), "name": run_name(folder.name, registry, _lang(args)),
           "message": render(jobs.queue_message(submitted, registry), _lang(args)), "estimate": None}
    _emit(job, args.json, [f"{job['name']} (run {job['run_id']}, job {job['id']}): {job['message']}"])
    return EXIT_OK


def cmd_zeroshot(args: argparse.Namespace) -> int:
    """``zeroshot`` (and ``train --method zeroshot``): create the run, carry it out in the
    foreground, then label the --input file with it."""
    from core import scoring
    from core.i18n import render
    from core.zeroshot import create_zeroshot_run, run_zeroshot

    config, texts = _zeroshot_config(args)
    folder = create_zeroshot_run(config, created_by=os.environ.get("USER"), texts=texts)
    metrics = run_zeroshot(folder)
    test = metrics.get("test") or {}
    baseline = ((metrics.get("baseline") or {}).get("test") or {}).get("accuracy")
    result = {"run_id": folder.name, "run_dir": str(folder), "status": "succeeded", "labels": metrics["labels"],
              "descriptions": config.descriptions, "test_rows": metrics.get("test_rows"),
              "metrics": {"accuracy": test.get("accuracy"), "macro_f1": test.get("macro_f1"),
                          "baseline_accuracy": baseline},
              "notes": [render(note) for note in metrics.get("notes", [])], "seconds": metrics["seconds"]}
    lines = [f"Run {folder.name}: zero-shot labels " + ", ".join(f"{k} = {' | '.join(v)}"
                                                                  for k, v in config.descriptions.items())]
    if test.get("accuracy") is not None:
        lines.append(f"  test accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f} on "
                     f"{metrics['test_rows']:,} rows" + (f" (TF-IDF trained on the labels: {baseline:.4f})"
                                                         if baseline is not None else ""))
    lines += [f"  note: {note}" for note in result["notes"]]
    if args.input:
        score = scoring.create_score(scoring.ScoreConfig(run_id=folder.name, input=args.input,
                                                         output=args.output or "", text_col=args.text_col or "",
                                                         overwrite=args.overwrite))
        result["score"] = scoring.run_scoring(score)
        lines.append(f"  scored {result['score']['rows']:,} rows -> {result['score']['output']}")
    _emit(result, args.json, lines)
    return EXIT_OK


# trends ------------------------------------------------------------------------------------
def cmd_trends(args: argparse.Namespace) -> int:
    from core import trends
    from core.exporting import to_csv_bytes
    from core.workspace import atomic_write_bytes

    lang = args.lang
    settings = _trend_settings(args)
    frame = trends.load_frame(args.path)
    suggested = trends.suggest_columns(frame)
    columns = trends.Columns(date=args.date_col or suggested["date"], label=args.label_col or suggested["label"],
                             text=args.text_col or suggested["text"],
                             confidence=args.confidence_col or suggested["confidence"], group=args.group_col)
    report = trends.analyse(frame, columns, settings, keywords_for=args.keywords_for, lang=lang)
    result = report.to_dict(lang)
    result["columns"] = vars(columns)
    for target, table in ((args.series_csv, report.series), (args.alerts_csv, trends.alerts_table(report, lang))):
        if target:
            atomic_write_bytes(Path(target), to_csv_bytes(table))
    _emit(result, args.json, _trend_lines(report, result, lang))
    return EXIT_OK


def _trend_lines(report: Any, result: dict[str, Any], lang: str) -> list[str]:
    """The report as text: how the dates were read, one line per period, one per spike."""
    from core import trends
    from core.i18n import render

    lines = [f"{result['rows_used']:,} of {result['rows']:,} rows; labels: {', '.join(result['labels'])}",
             f"dates ({report.prepared.dates.unreadable:,} unreadable): {render(trends.date_summary(report), lang)}"]
    lines += [f"  note: {n}" for n in result["notes"]]
    lines.append(f"{'period':<12}{'volume':>8}  " + "  ".join(f"{lab:>10}" for lab in result["labels"])
                 + ("  net" if report.prepared.positive and report.prepared.negative else ""))
    for row in result["series"]:
        net = row.get("net_sentiment")
        net = "" if "net_sentiment" not in row else "      —" if net is None else f"  {net:+.2f}"
        lines.append(f"{row['period']:<12}{row['volume']:>8,}  " + "  ".join(f"{row[lab]:>10,}" for lab in result["labels"])
                     + net)
    lines.append(f"{len(report.spikes)} spike(s), newest first (each against at least {trends.MIN_BASELINE} "
                 "periods with texts):" if report.spikes else "No spikes.")
    for spike in report.spikes:
        where = f" [{spike.group}]" if spike.group else ""
        words = ", ".join(k["term"] for k in spike.keywords[:8])
        lines.append(f"  {trends.period_label(spike.period, report.prepared.settings.freq, lang)}{where} {spike.metric} "
                     f"{trends.format_value(spike.metric, spike.value)} vs usual "
                     f"{trends.format_value(spike.metric, spike.baseline)} ({spike.ratio:.1f}×, {spike.severity})"
                     f"{': ' + words if words else ''}")
    return lines


# auth --------------------------------------------------------------------------------------
def _add_export_parser(groups: Any) -> None:
    export = groups.add_parser("export", help="a finished run's model as ONNX (checked against PyTorch) or a "
                                              "Hugging Face zip, under workspace/exports/")
    export.add_argument("run")
    export.add_argument("--format", required=True, choices=["onnx", "hf-zip"])
    export.add_argument("--quantize", choices=["int8"], help="ONNX only: int8 weights, about a quarter of the size")
    export.add_argument("--json", action="store_true")
    export.set_defaults(func=cmd_export)


def cmd_auth_hash(args: argparse.Namespace) -> int:
    import getpass

    from core.auth import hash_password

    password = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass("Shared password: ")
    if not args.stdin and getpass.getpass("Again: ") != password:
        raise OpinionLabError("auth.err.passwords_differ")
    if len(password) < 12:
        raise OpinionLabError("auth.err.short_password")
    encoded = hash_password(password)
    _emit({"password_hash": encoded}, args.json,
          ["Put this in .streamlit/secrets.toml:", "", "[opinionlab]", f'password_hash = "{encoded}"'])
    return EXIT_OK


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    """The training settings, plus method ``zeroshot`` and its options (the parser must resolve
    conflicts: ``--method`` is declared again with the extra choice)."""
    from core.modeling.command import add_config_options
    from core.training import METHODS, TrainConfig

    add_config_options(parser)
    parser.add_argument("--method", dest="method", default=None, choices=[*METHODS, "zeroshot"],
                        help=TrainConfig.help_texts()["method"].replace("%", "%%")
                        + " zeroshot: no training, labels from descriptions (--label).")
    _add_zeroshot_options(parser, model_flag=False)


def _add_zeroshot_options(parser: argparse.ArgumentParser, model_flag: bool = True) -> None:
    if model_flag:
        parser.add_argument("--dataset", help="a saved dataset: its test split is labelled and measured")
        parser.add_argument("--model", default="multilingual", help="a sentence encoder: multilingual | default | PATH")
        parser.add_argument("--limit", type=int, default=0, help="measure on at most N test rows (stratified)")
    parser.add_argument("--input", help="zero-shot: a file of texts to label (CSV, Excel, JSON Lines, Parquet)")
    parser.add_argument("--output", help="zero-shot: where the labelled file goes (.csv, .parquet or .xlsx)")
    parser.add_argument("--text-col", dest="text_col", help="zero-shot: the column of texts in --input")
    parser.add_argument("--label", action="append", metavar="NAME[=DESCRIPTION|...]",
                        help="zero-shot: a label and its descriptions; positive/negative/neutral (正面, 好评 ...) "
                             "have defaults")
    parser.add_argument("--temperature", type=float, help="zero-shot: softmax temperature over cosines (default 0.01)")
    parser.add_argument("--overwrite", action="store_true", help="zero-shot: replace an existing output file")


def _add_trend_settings_options(parser: argparse.ArgumentParser) -> None:
    """How dates are read and spikes found: the trends command's and a monitor's settings."""
    parser.add_argument("--date-order", dest="date_order", default="auto", choices=["auto", "DMY", "MDY", "YMD"],
                        help="day/month order of dates such as 07/10/2026 (default: decided from the whole column; "
                             "when every date is ambiguous, month first, or year first with --lang zh)")
    parser.add_argument("--dayfirst", action="store_true", help="dates are day first (same as --date-order DMY)")
    parser.add_argument("--date-format", dest="date_format",
                        help="a strftime format for the date column, e.g. '%%d/%%m/%%Y %%H:%%M' (replaces all guessing)")
    parser.add_argument("--timezone", help="group dates that carry a UTC offset by this IANA zone's clock "
                                           "(default: each date's own local time), e.g. Asia/Shanghai")
    parser.add_argument("--freq", default="W", choices=["D", "W", "M"], help="day, week or month")
    parser.add_argument("--window", type=int, default=8, help="periods before each point that form its baseline; "
                                                             "at least 4 of them must have texts")
    parser.add_argument("--k", type=float, default=3.5, help="robust deviations above the baseline for a spike")
    parser.add_argument("--min-volume", dest="min_volume", type=int, default=30)
    parser.add_argument("--method", default="mad", choices=["mad", "std"])
    parser.add_argument("--top-groups", dest="top_groups", type=int, default=8)
    parser.add_argument("--negative-label", dest="negative_label")
    parser.add_argument("--positive-label", dest="positive_label")


def _trend_settings(args: argparse.Namespace):
    from core import trends

    return trends.TrendSettings(freq=args.freq, window=args.window, k=args.k, min_volume=args.min_volume,
                                method=args.method, top_groups=args.top_groups,
                                negative_label=args.negative_label or "", positive_label=args.positive_label or "",
                                date_order="DMY" if args.dayfirst else args.date_order,
                                date_format=args.date_format or "", timezone=args.timezone or "").validate()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Opinion Lab from the command line.")
    parser.add_argument("--lang", choices=list(i18n.LANGUAGES), default=i18n.DEFAULT_LANGUAGE,
                        help="language of errors and messages (may stand anywhere on the line)")
    groups = parser.add_subparsers(dest="group", required=True, parser_class=_Parser)

    data = groups.add_parser("data", help="add, list, show and remove datasets")
    verbs = data.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    add = verbs.add_parser("add", help="read, check, clean and save a file (or sample:NAME) as a dataset")
    add.add_argument("source", help="a file path (CSV, TSV, TXT, XLSX, JSON, JSONL, Parquet) or sample:movie-reviews")
    add.add_argument("--name", help="dataset name (default: the file name)")
    for role in ("text", "label", "date", "group", "split"):
        add.add_argument(f"--{role}-col", dest=f"{role}_col", help=f"the {role} column (default: detected)")
    add.add_argument("--sheet", help="Excel: the sheet to read, by name or number (1 = first; default: the first "
                                     "sheet with data)")
    add.add_argument("--header-row", dest="header_row", type=int,
                     help="the row with the column names, numbered as Excel shows rows (1 = first; default: "
                          "detected, skipping a title row above the table)")
    add.set_defaults(func=cmd_data_add)
    for verb, func, helptext in (("list", cmd_data_list, "list saved datasets"),):
        sub = verbs.add_parser(verb, help=helptext)
        sub.set_defaults(func=func)
    for verb, func, helptext in (("show", cmd_data_show, "show a dataset's card"),
                                 ("remove", cmd_data_remove, "delete a dataset")):
        sub = verbs.add_parser(verb, help=helptext)
        sub.add_argument("name")
        sub.set_defaults(func=func)
    for sub in (*verbs.choices.values(),):
        sub.add_argument("--json", action="store_true", help="print one JSON object as the last line")

    train = groups.add_parser("train", help="train a model in the foreground (or as a job worker)",
                              conflict_handler="resolve")
    _add_train_options(train)
    train.add_argument("--resume", action="store_true", help="continue the run of --config from its checkpoint")
    train.add_argument("--job", help=argparse.SUPPRESS)
    train.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    train.set_defaults(func=cmd_train)

    jobs_parser = groups.add_parser("jobs", help="background jobs: submit, list, show, cancel, resume, up, down")
    job_verbs = jobs_parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    submit = job_verbs.add_parser("submit", help="create a run and queue it as a background job",
                                  conflict_handler="resolve")
    _add_train_options(submit)
    submit.set_defaults(func=cmd_jobs_submit)
    job_verbs.add_parser("list", help="all jobs, newest first").set_defaults(func=cmd_jobs_list)
    job_verbs.add_parser("show", help="one job").set_defaults(func=cmd_jobs_show)
    for verb, helptext in (("cancel", "stop a running job (it checkpoints) or drop a queued one"),
                           ("resume", "continue a cancelled, interrupted or failed job"),
                           ("up", "run a queued job sooner"), ("down", "run a queued job later")):
        job_verbs.add_parser(verb, help=helptext).set_defaults(func=cmd_jobs_action)
    for verb, sub in job_verbs.choices.items():
        if verb not in ("submit", "list"):
            sub.add_argument("id", help="job id (or its run id)")
        sub.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    evaluate = groups.add_parser("eval", help="metrics of a run on its test split, another dataset split or a labelled file")
    evaluate.add_argument("run")
    evaluate.add_argument("--dataset")
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test"])
    evaluate.add_argument("--file", help="a labelled file (CSV, Excel, JSON Lines, ...)")
    evaluate.add_argument("--text-col", dest="text_col")
    evaluate.add_argument("--label-col", dest="label_col")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=cmd_eval)
    explain = groups.add_parser("explain", help="label, probabilities and per-word attributions of one text")
    explain.add_argument("run")
    explain.add_argument("text")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(func=cmd_explain)
    score = groups.add_parser("score", help="score a file of texts with a finished run's model; list, rename or "
                                             "delete scoring outputs")
    score.add_argument("run", nargs="?", help="the run whose model scores; or list | rename SCORE_ID NAME | "
                                              "delete SCORE_ID")
    score.add_argument("values", nargs="*", help=argparse.SUPPRESS)
    score.add_argument("--input", help="CSV, TSV, Excel, JSON Lines or Parquet; with --engine ray also a folder "
                                        "or a glob of CSV/TSV/Parquet files")
    score.add_argument("--output", help="where to write: .csv, .parquet or .xlsx")
    score.add_argument("--name", help="a readable name (default: model → input file)")
    score.add_argument("--text-col", dest="text_col")
    score.add_argument("--fast", action="store_true", help="int8 dynamic quantisation on CPU")
    score.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    score.add_argument("--chunk-rows", dest="chunk_rows", type=int, default=5000)
    score.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    score.add_argument("--unchanged-csv", dest="unchanged_csv", action="store_true",
                       help="CSV output for other tools: every cell as it is, plain UTF-8 (the default CSV is for "
                            "spreadsheets: cells they would run as formulas get a leading apostrophe)")
    score.add_argument("--background", action="store_true", help="submit as a background job")
    score.add_argument("--shard", help="i/n: score every n-th chunk starting at i (several workers)")
    score.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local: this process (default); ray: an actor pool on a Ray cluster")
    score.add_argument("--address", help="ray: auto | HOST:6379 | ray://HOST:10001 (default: the configured "
                                          "OPINIONLAB_RAY_ADDRESS, else a Ray started on this machine)")
    score.add_argument("--workers", type=int, help="ray: actors that each load the model once (default 2)")
    score.add_argument("--gpus-per-worker", dest="gpus_per_worker", type=float, help="ray: GPUs per actor (default 0)")
    score.add_argument("--create-only", dest="create_only", action="store_true",
                       help="only create the scoring job (for sharded workers)")
    score.add_argument("--yes", action="store_true", help="score delete: confirm (without it, says what would go)")
    score.add_argument("--config", help=argparse.SUPPRESS)
    score.add_argument("--job", help=argparse.SUPPRESS)
    score.add_argument("--json", action="store_true")
    score.set_defaults(func=cmd_score)
    trend = groups.add_parser("trends", help="sentiment over time, spike alerts and their keywords")
    trend.add_argument("path", help="a scored file, a scoring job id, any file with dates and labels, "
                                    "or sample:demo-timeline")
    trend.add_argument("--date-col", dest="date_col", help="the date column (default: detected)")
    trend.add_argument("--label-col", dest="label_col", help="the label column (default: 'label' or detected)")
    trend.add_argument("--text-col", dest="text_col", help="the text column, for keywords (default: detected)")
    trend.add_argument("--confidence-col", dest="confidence_col")
    trend.add_argument("--group-col", dest="group_col", help="source, product, brand, region ...")
    _add_trend_settings_options(trend)
    trend.add_argument("--keywords-for", dest="keywords_for", type=int, default=10,
                       help="find keywords for the newest N spikes")
    trend.add_argument("--series-csv", dest="series_csv", help="write the trend table to this CSV")
    trend.add_argument("--alerts-csv", dest="alerts_csv", help="write the alerts to this CSV")
    trend.add_argument("--json", action="store_true")
    trend.set_defaults(func=cmd_trends)
    from core.monitor_cli import add_parser as add_monitor_parser  # imports core.cli

    add_monitor_parser(groups)
    _add_export_parser(groups)
    zeroshot = groups.add_parser("zeroshot", help="label texts from label descriptions, without training")
    _add_zeroshot_options(zeroshot)
    zeroshot.add_argument("--json", action="store_true")
    zeroshot.set_defaults(func=cmd_zeroshot)
    auth = groups.add_parser("auth", help="the optional shared password")
    auth_verbs = auth.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    hasher = auth_verbs.add_parser("hash-password", help="print the hash to put in .streamlit/secrets.toml")
    hasher.add_argument("--stdin", action="store_true", help="read the password from standard input")
    hasher.add_argument("--json", action="store_true")
    hasher.set_defaults(func=cmd_auth_hash)
    runs_parser = groups.add_parser("runs", help="list, show, compare or rename runs")
    runs_parser.add_argument("verb", choices=["list", "show", "compare", "rename"])
    runs_parser.add_argument("runs", nargs="*", help="run ids (rename: the run id, then its new name; "
                                                     "an empty name brings back the one made from its settings)")
    runs_parser.add_argument("--json", action="store_true")
    runs_parser.set_defaults(func=cmd_runs)
    from core.lab_cli import add_parsers  # tune, compare-methods

    add_parsers(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # variable batch shapes: growable allocator segments instead of a cudaMalloc per new size
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    lang, argv = _take_lang(list(sys.argv[1:] if argv is None else argv))
    try:
        if lang not in i18n.LANGUAGES:
            lang, wanted = i18n.DEFAULT_LANGUAGE, lang
            raise OpinionLabError("cli.err.bad_lang", value=wanted, languages=", ".join(i18n.LANGUAGES))
        args = build_parser().parse_args(argv)
        args.lang = lang
        return args.func(args)
    except OpinionLabError as exc:
        print(i18n.t("cli.error", lang, message=exc.render(lang)), file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print(i18n.t("cli.interrupted", lang), file=sys.stderr)
        return EXIT_INTERNAL
    except SystemExit as exc:  # --help exits 0 through argparse
        return int(exc.code or 0)
    except Exception as exc:  # anything else is our fault, not the user's
        print(i18n.t("cli.internal_error", lang, kind=type(exc).__name__, detail=str(exc)), file=sys.stderr)
        if os.environ.get("OPINIONLAB_DEBUG"):
            traceback.print_exc()
        return EXIT_INTERNAL
