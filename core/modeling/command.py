"""A training config on the command line: a flag for every setting, and the command that queues it.

The CLI's ``train`` and ``jobs submit`` take these flags; :func:`submit_command` writes the
command the Train page shows. Both come from the fields of ``TrainConfig``, so a setting changed
on the page is always in the command, and the command parses back to the same config.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import fields
from typing import Any

from core.errors import ConfigError
from core.modeling.config import DEVICES, METHODS, PRECISIONS, PRESETS, TRACKERS, TrainConfig, config_from_preset

# Settings the command line does not take (set by the app), or takes with their own flag.
NOT_FLAGS = ("run_id", "preset")
ALIASES = {"learning_rate": ["--lr"]}
CHOICES = {"method": METHODS, "precision": PRECISIONS, "device": DEVICES, "report_to": tuple(TRACKERS),
           "class_weighting": ("auto", "on", "off")}
NO_PRESET = "none"
DEFAULT_PRESET = "quick"


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--preset``, then one flag per TrainConfig setting (each unset by default)."""
    parser.add_argument("--config", "--config-file", dest="config",
                        help="a saved training config (JSON, e.g. workspace/configs/NAME.json saved from a search); "
                             "flags given with it change its settings")
    parser.add_argument("--preset", default=None, choices=[*PRESETS, NO_PRESET],
                        help=f"starting values (default {DEFAULT_PRESET}, unless --config is given)")
    helps = TrainConfig.help_texts()
    for field in fields(TrainConfig):
        if field.name in NOT_FLAGS:
            continue
        parser.add_argument(flag(field.name), *ALIASES.get(field.name, []), dest=field.name,
                            type=type(field.default), default=None, choices=CHOICES.get(field.name),
                            help=helps[field.name].replace("%", "%%"))


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings a command line names explicitly."""
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig)
            if f.name not in NOT_FLAGS and getattr(args, f.name, None) is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config a command line describes: a saved config (``--config``) or a preset, then the flags."""
    given = given_settings(args)
    preset = None if args.preset is None else ("" if args.preset == NO_PRESET else args.preset)
    if args.config:
        values = {**TrainConfig.load(args.config).to_dict(), "run_id": ""}
        if preset is not None:
            values.update({**PRESETS.get(preset, {}), "preset": preset})
        return TrainConfig.from_dict({**values, **given})
    if not given.get("dataset"):
        raise ConfigError("train.err.need_dataset")
    return config_from_preset(DEFAULT_PRESET if preset is None else preset, **given)


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def submit_command(config: TrainConfig) -> str:
    """``python -m core jobs submit ...`` carrying every setting that differs from its preset."""
    defaults = config_from_preset(config.preset, dataset=config.dataset)
    parts = ["python", "-m", "core", "jobs", "submit", "--dataset", config.dataset, "--model", config.model,
             "--method", config.method, "--preset", config.preset or NO_PRESET]
    for field in fields(TrainConfig):
        if field.name in (*NOT_FLAGS, "dataset", "model", "method"):
            continue
        value = getattr(config, field.name)
        if value != getattr(defaults, field.name):
            parts += [flag(field.name), _text(value)]
    return shlex.join(parts)
