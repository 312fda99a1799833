"""The command line: ``python -m core <group> <verb>``; every capability of the app is here too.

Conventions: ``--json`` prints one JSON object as the last line of standard output; exit 0 on
success, 2 when the user's input is at fault (one paragraph on standard error, no traceback),
1 on an internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from core.errors import OpinionLabError

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage mistakes as user errors (exit 2, one paragraph)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise OpinionLabError(f"{message}. Run '{self.prog} --help' to see the options.")


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


def _card_lines(card: dict[str, Any]) -> list[str]:
    lines = [
        f"Dataset {card['name']!r} ({card['id']}): {card['rows']:,} rows from {card['source']} "
        f"(encoding {card['encoding']})",
        "  columns: " + ", ".join(f"{k}={v}" for k, v in card["columns"].items() if v),
        "  classes: " + ", ".join(f"{k} {v:,}" for k, v in card["classes"].items()),
        "  splits:  " + ", ".join(f"{s} {sum(c.values()):,}" for s, c in card["split_counts"].items()),
        "  cleaning: " + ", ".join(f"{s['step']} {s['count']:,}" for s in card["steps"]),
    ]
    lines += [f"  warning: {w}" for w in card["warnings"]]
    return lines


def cmd_data_add(args: argparse.Namespace) -> int:
    from core.data import ColumnMapping, detect_columns, prepare_dataset
    from core.datasets import save_dataset
    from core.errors import DataError
    from core.samples import PREFIX, read_source

    table, mapping = read_source(args.source)
    mapping = mapping or detect_columns(table.frame)
    overrides = {k: getattr(args, f"{k}_col") for k in ("text", "label", "date", "group", "split")}
    if any(overrides.values()):
        mapping = ColumnMapping.from_dict({**mapping.to_dict(), **{k: v for k, v in overrides.items() if v}})
    prepared = prepare_dataset(table, mapping)
    if not prepared.report.ok:
        raise DataError(" ".join(prepared.report.errors))
    default_name = args.source[len(PREFIX):] if args.source.startswith(PREFIX) else os.path.splitext(
        os.path.basename(args.source))[0]
    card = save_dataset(prepared, args.name or default_name, created_by=os.environ.get("USER"))
    _emit(_dataset_summary(card), args.json, ["Saved.", *_card_lines(card)])
    return EXIT_OK


def cmd_data_list(args: argparse.Namespace) -> int:
    from core.datasets import list_datasets

    cards = list_datasets()
    lines = [f"{c['name']:<30} {c['rows']:>9,} rows  {', '.join(c['classes'])}" for c in cards] or ["No datasets yet."]
    _emit({"datasets": [_dataset_summary(c) for c in cards]}, args.json, lines)
    return EXIT_OK


def cmd_data_show(args: argparse.Namespace) -> int:
    from core.datasets import get_dataset

    card = get_dataset(args.name)
    _emit({**_dataset_summary(card), "card": card}, args.json, _card_lines(card))
    return EXIT_OK


def cmd_data_remove(args: argparse.Namespace) -> int:
    from core.datasets import remove_dataset

    card = remove_dataset(args.name)
    _emit({"removed": card["name"], "id": card["id"]}, args.json, [f"Removed dataset {card['name']!r}."])
    return EXIT_OK


# train and jobs ----------------------------------------------------------------------------
def _config_from_args(args: argparse.Namespace):
    from core.training import TrainConfig, config_from_preset

    if getattr(args, "config", None):
        return TrainConfig.load(args.config)
    if not args.dataset:
        from core.errors import ConfigError

        raise ConfigError("Name the dataset to train on (--dataset NAME) or give a saved config (--config PATH).")
    return config_from_preset(
        args.preset, dataset=args.dataset, model=args.model, method=args.method, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.lr, max_length=args.max_length, limit=args.limit,
        seed=args.seed)


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


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core import jobs
    from core.training import create_run, run_training
    from core.workspace import Registry, read_json

    registry = Registry()
    if args.job:  # a worker started by the job queue
        _lower_priority()
        job = registry.job(args.job)
        registry.update_job(args.job, pid=os.getpid())
        folder = Path(args.config).parent
        try:
            run_training(folder, resume=args.resume, registry=registry)
        except OpinionLabError as exc:
            jobs.finish(args.job, "failed", str(exc), registry)
            raise
        except BaseException as exc:
            status = read_json(folder / "status.json", {}) or {}
            jobs.finish(args.job, "failed", status.get("reason") or f"{type(exc).__name__}: {exc}", registry)
            raise
        status = read_json(folder / "status.json", {}) or {}
        jobs.finish(job["id"], status.get("status", "failed"), status.get("reason"), registry)
    elif args.config and _is_run_config(Path(args.config)):
        # a run's own config: carry out that run in place (this is what launchers such as
        # torchrun or accelerate launch start on every rank)
        folder = Path(args.config).parent
        run_training(folder, resume=args.resume, registry=registry)
        if int(os.environ.get("RANK", "0")) > 0:  # rank 0 reports for the whole launch
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


def cmd_jobs_submit(args: argparse.Namespace) -> int:
    from core import jobs
    from core.training import create_run

    folder = create_run(_config_from_args(args), created_by=os.environ.get("USER"))
    job = jobs.describe(jobs.submit(folder, created_by=os.environ.get("USER")))
    _emit(job, args.json, [f"Submitted job {job['id']} (run {job['run_id']}): {job['status']}"])
    return EXIT_OK


def _job_line(job: dict[str, Any]) -> str:
    progress = f"{job['step']}/{job['total_steps']}" if job["total_steps"] else "-"
    return f"{job['id']}  {job['status']:<11} {progress:>11}  run {job['run_id']}" + (
        f"  ({job['error']})" if job["error"] else "")


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from core import jobs
    from core.workspace import Registry

    registry = Registry()
    jobs.reconcile(registry)
    listed = [jobs.describe(j, registry) for j in registry.jobs()]
    _emit({"jobs": listed}, args.json, [_job_line(j) for j in listed] or ["No jobs."])
    return EXIT_OK


def cmd_jobs_show(args: argparse.Namespace) -> int:
    from core import jobs

    job = jobs.describe(jobs.get(args.id))
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
    job = jobs.describe(jobs.get(args.id))
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
        listed = runs.list_runs()
        lines = [f"{r['id']}  {r['status']:<11} {r['method'] or '':<8} {r['dataset']:<20} "
                 f"acc {r['accuracy'] if r['accuracy'] is None else round(r['accuracy'], 4)}" for r in listed]
        _emit({"runs": listed}, args.json, lines or ["No runs yet."])
    elif args.verb == "show":
        shown = runs.show_run(args.runs[0])
        shown.pop("progress")
        _emit(shown, args.json, [json.dumps(shown, indent=2, default=str)])
    else:
        if len(args.runs) < 2:
            raise OpinionLabError("Name at least two runs to compare.")
        compared = runs.compare_runs(args.runs)
        compared.pop("histories")
        lines = [" | ".join(f"{k}={r.get(k)}" for k in ("id", "accuracy", "macro_f1", *compared["differs"]))
                 for r in compared["runs"]]
        _emit(compared, args.json, lines)
    return EXIT_OK


def cmd_score(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core import jobs, scoring
    from core.workspace import Registry, read_json

    registry = Registry()
    if args.config:  # a worker (or a shard) of an existing scoring job
        if args.job:
            _lower_priority()
        folder = Path(args.config).parent
        try:
            result = scoring.run_scoring(folder, scoring.parse_shard(args.shard))
        except BaseException as exc:
            if args.job:
                jobs.finish(args.job, "failed", str(exc), registry)
            raise
        if args.job:
            state = (read_json(folder / "status.json", {}) or {}).get("status", "failed")
            jobs.finish(args.job, "succeeded" if state == "succeeded" else state, None, registry)
    else:
        if not (args.run and args.input):
            raise OpinionLabError("Name the run and the input: python -m core score RUN --input PATH --output PATH.")
        config = scoring.ScoreConfig(run_id=args.run, input=args.input, output=args.output or "",
                                     text_col=args.text_col or "", fast=args.fast, batch_size=args.batch_size,
                                     chunk_rows=args.chunk_rows, overwrite=args.overwrite)
        folder = scoring.create_score(config, registry)
        if args.create_only:  # for sharded runs: each worker then runs --config ... --shard i/n
            _emit({"score_id": folder.name, "config": str(folder / "score.json")}, args.json,
                  [f"Created {folder.name}: run each shard with --config {folder / 'score.json'} --shard i/n"])
            return EXIT_OK
        if args.background:
            job = jobs.describe(jobs.submit(folder, registry, os.environ.get("USER"), kind="score"), registry)
            _emit(job, args.json, [f"Submitted scoring job {job['id']} ({folder.name})"])
            return EXIT_OK
        result = scoring.run_scoring(folder, scoring.parse_shard(args.shard))
    if result.get("status") in ("partial", "cancelled"):
        _emit(result, args.json, [f"Scoring {result['status']}: {folder.name}"])
        return EXIT_OK
    lines = [f"Scored {result['scored']:,} of {result['rows']:,} rows ({result['empty']:,} empty) at "
             f"{result['rows_per_s']:.1f} rows/s -> {result['output']}",
             "  labels: " + ", ".join(f"{k} {v:,}" for k, v in result["label_counts"].items())]
    if result.get("fast_agreement") is not None:
        lines.append(f"  fast mode agrees with full precision on {result['fast_agreement']:.1%} of a sample")
    _emit(result, args.json, lines)
    return EXIT_OK


# zero-shot ---------------------------------------------------------------------------------
def cmd_zeroshot(args: argparse.Namespace) -> int:
    from core import scoring
    from core.data import detect_columns
    from core.errors import ConfigError
    from core.i18n import render
    from core.zeroshot import ZeroShotConfig, create_zeroshot_run, parse_label_options, run_zeroshot

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
    sharpness = {"temperature": args.temperature} if args.temperature is not None else {}
    config = ZeroShotConfig(labels=labels, descriptions=given, model=args.model, dataset=args.dataset or "",
                            limit=args.limit, source=Path(args.input or "").name, **sharpness)
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

    settings = trends.TrendSettings(freq=args.freq, window=args.window, k=args.k, min_volume=args.min_volume,
                                    method=args.method, top_groups=args.top_groups,
                                    negative_label=args.negative_label or "", positive_label=args.positive_label or "")
    settings.validate()
    frame = trends.load_frame(args.path)
    suggested = trends.suggest_columns(frame)
    columns = trends.Columns(date=args.date_col or suggested["date"], label=args.label_col or suggested["label"],
                             text=args.text_col or suggested["text"],
                             confidence=args.confidence_col or suggested["confidence"], group=args.group_col)
    report = trends.analyse(frame, columns, settings, keywords_for=args.keywords_for)
    result = report.to_dict()
    result["columns"] = vars(columns)
    for target, table in ((args.series_csv, report.series), (args.alerts_csv, trends.alerts_table(report))):
        if target:
            atomic_write_bytes(Path(target), to_csv_bytes(table))
    lines = [f"{result['rows_used']:,} of {result['rows']:,} rows over {len(result['series'])} periods "
             f"({trends.FREQUENCIES[settings.freq]}s); labels: {', '.join(result['labels'])}"]
    lines += [f"  note: {n}" for n in result["notes"]]
    lines.append(f"{'period':<12}{'volume':>8}  " + "  ".join(f"{lab:>10}" for lab in result["labels"])
                 + ("  net" if report.prepared.positive and report.prepared.negative else ""))
    for row in result["series"]:
        net = f"  {row['net_sentiment']:+.2f}" if row.get("net_sentiment") is not None else ""
        lines.append(f"{row['period']:<12}{row['volume']:>8}  " + "  ".join(f"{row[lab]:>10}" for lab in result["labels"]) + net)
    lines.append(f"{len(report.spikes)} spike(s), newest first:" if report.spikes else "No spikes.")
    for spike in result["spikes"]:
        where = f" [{spike['group']}]" if spike["group"] else ""
        words = ", ".join(k["term"] for k in spike["keywords"][:8])
        lines.append(f"  {spike['label']}{where} {spike['metric']} {spike['value']:.3g} vs usual {spike['baseline']:.3g} "
                     f"({spike['severity']}){': ' + words if words else ''}")
    _emit(result, args.json, lines)
    return EXIT_OK


# auth --------------------------------------------------------------------------------------
def cmd_auth_hash(args: argparse.Namespace) -> int:
    import getpass

    from core.auth import hash_password

    password = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass("Shared password: ")
    if not args.stdin and getpass.getpass("Again: ") != password:
        raise OpinionLabError("The two passwords differ; nothing was written.")
    if len(password) < 12:
        raise OpinionLabError("Choose a password of at least 12 characters.")
    encoded = hash_password(password)
    _emit({"password_hash": encoded}, args.json,
          ["Put this in .streamlit/secrets.toml:", "", "[opinionlab]", f'password_hash = "{encoded}"'])
    return EXIT_OK


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="name of a saved dataset")
    parser.add_argument("--config", help="a saved training config (JSON)")
    parser.add_argument("--model", default=None, help="default | PATH | HUB_ID")
    parser.add_argument("--method", default=None, choices=["full", "lora", "baseline"])
    parser.add_argument("--preset", default="quick", choices=["quick", "standard", "best"])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--max-length", dest="max_length", type=int)
    parser.add_argument("--limit", type=int, help="use at most N training rows")
    parser.add_argument("--seed", type=int)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Opinion Lab from the command line.")
    groups = parser.add_subparsers(dest="group", required=True, parser_class=_Parser)

    data = groups.add_parser("data", help="add, list, show and remove datasets")
    verbs = data.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    add = verbs.add_parser("add", help="read, check, clean and save a file (or sample:NAME) as a dataset")
    add.add_argument("source", help="a file path (CSV, TSV, TXT, XLSX, JSON, JSONL, Parquet) or sample:movie-reviews")
    add.add_argument("--name", help="dataset name (default: the file name)")
    for role in ("text", "label", "date", "group", "split"):
        add.add_argument(f"--{role}-col", dest=f"{role}_col", help=f"the {role} column (default: detected)")
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

    train = groups.add_parser("train", help="train a model in the foreground (or as a job worker)")
    _add_train_options(train)
    train.add_argument("--resume", action="store_true", help="continue the run of --config from its checkpoint")
    train.add_argument("--job", help=argparse.SUPPRESS)
    train.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    train.set_defaults(func=cmd_train)

    jobs_parser = groups.add_parser("jobs", help="background jobs: submit, list, show, cancel, resume, up, down")
    job_verbs = jobs_parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    submit = job_verbs.add_parser("submit", help="create a run and queue it as a background job")
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
    score = groups.add_parser("score", help="score a file of texts with a finished run's model")
    score.add_argument("run", nargs="?", help="the run whose model scores")
    score.add_argument("--input", help="CSV, TSV, Excel, JSON Lines or Parquet")
    score.add_argument("--output", help="where to write: .csv, .parquet or .xlsx")
    score.add_argument("--text-col", dest="text_col")
    score.add_argument("--fast", action="store_true", help="int8 dynamic quantisation on CPU")
    score.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    score.add_argument("--chunk-rows", dest="chunk_rows", type=int, default=5000)
    score.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    score.add_argument("--background", action="store_true", help="submit as a background job")
    score.add_argument("--shard", help="i/n: score every n-th chunk starting at i (several workers)")
    score.add_argument("--create-only", dest="create_only", action="store_true",
                       help="only create the scoring job (for sharded workers)")
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
    trend.add_argument("--freq", default="W", choices=["D", "W", "M"], help="day, week or month")
    trend.add_argument("--window", type=int, default=8, help="periods in the baseline before each point")
    trend.add_argument("--k", type=float, default=3.5, help="robust deviations above the baseline for a spike")
    trend.add_argument("--min-volume", dest="min_volume", type=int, default=30)
    trend.add_argument("--method", default="mad", choices=["mad", "std"])
    trend.add_argument("--top-groups", dest="top_groups", type=int, default=8)
    trend.add_argument("--negative-label", dest="negative_label")
    trend.add_argument("--positive-label", dest="positive_label")
    trend.add_argument("--keywords-for", dest="keywords_for", type=int, default=10,
                       help="find keywords for the newest N spikes")
    trend.add_argument("--series-csv", dest="series_csv", help="write the trend table to this CSV")
    trend.add_argument("--alerts-csv", dest="alerts_csv", help="write the alerts to this CSV")
    trend.add_argument("--json", action="store_true")
    trend.set_defaults(func=cmd_trends)
    zeroshot = groups.add_parser("zeroshot", help="label texts from label descriptions, without training")
    zeroshot.add_argument("--dataset", help="a saved dataset: its test split is labelled and measured")
    zeroshot.add_argument("--input", help="a file of texts to label (CSV, Excel, JSON Lines, Parquet)")
    zeroshot.add_argument("--output", help="where the labelled file goes (.csv, .parquet or .xlsx)")
    zeroshot.add_argument("--text-col", dest="text_col")
    zeroshot.add_argument("--label", action="append", metavar="NAME[=DESCRIPTION|...]",
                          help="a label and its descriptions; positive/negative/neutral (正面, 好评 ...) have defaults")
    zeroshot.add_argument("--model", default="multilingual", help="a sentence encoder: multilingual | default | PATH")
    zeroshot.add_argument("--temperature", type=float, help="softmax temperature over cosines (default 0.01)")
    zeroshot.add_argument("--limit", type=int, default=0, help="measure on at most N test rows (stratified)")
    zeroshot.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    zeroshot.add_argument("--json", action="store_true")
    zeroshot.set_defaults(func=cmd_zeroshot)
    auth = groups.add_parser("auth", help="the optional shared password")
    auth_verbs = auth.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    hasher = auth_verbs.add_parser("hash-password", help="print the hash to put in .streamlit/secrets.toml")
    hasher.add_argument("--stdin", action="store_true", help="read the password from standard input")
    hasher.add_argument("--json", action="store_true")
    hasher.set_defaults(func=cmd_auth_hash)
    runs_parser = groups.add_parser("runs", help="list, show or compare runs")
    runs_parser.add_argument("verb", choices=["list", "show", "compare"])
    runs_parser.add_argument("runs", nargs="*")
    runs_parser.add_argument("--json", action="store_true")
    runs_parser.set_defaults(func=cmd_runs)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # variable batch shapes: growable allocator segments instead of a cudaMalloc per new size
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except OpinionLabError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERNAL
    except SystemExit as exc:  # --help exits 0 through argparse
        return int(exc.code or 0)
    except Exception as exc:  # anything else is our fault, not the user's
        print(f"Internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("OPINIONLAB_DEBUG"):
            traceback.print_exc()
        return EXIT_INTERNAL
