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
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
