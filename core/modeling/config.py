"""The training contract: ``TrainConfig``, its presets, and the checks made before a launch.

A config is what the Train page, ``python -m core train``, ``jobs submit`` and a cluster
launcher all carry out; it is saved as ``config.json`` in the run folder. Every field has a help
text (``train.help.<field>`` in ``core/locales/*/train.json``) that the Train page shows, and a
short label (``train.setting.<field>``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import ConfigError, OpinionLabError
from core.i18n import DEFAULT_LANGUAGE, Message, msg, t
from core.modeling.adapters import ADAPTER_METHODS, LEARNING_RATES, MAX_LEARNING_RATE, fit_problem
from core.modeling.pooling import chosen_pooling, mean_layer_fits
from core.models import check_model, model_max_length
from core.workspace import Registry, read_json

METHODS = ("full", *ADAPTER_METHODS, "fewshot", "baseline")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
POOLINGS = ("auto", "mean", "cls")
DEVICES = ("auto", "cuda", "mps", "cpu")
TRACKERS = {"none": None, "tensorboard": "tensorboard", "mlflow": "mlflow-skinny"}  # report_to → package


@dataclass
class TrainConfig:
    """Everything a run needs. Units and sensible ranges are in each field's help text."""

    dataset: str = ""                     # a saved dataset's name
    model: str = "default"                # 'default' | a local folder | a hub id
    method: str = "full"                  # full | lora | adalora | loha | lokr | ia3 | prefix | prompt | ptuning | baseline
    epochs: int = 3                       # passes over the training rows, 1–5
    learning_rate: float = 1e-4           # 2e-5–1e-4 full, 1e-4–1e-3 LoRA
    batch_size: int = 32                  # texts per step per device, 16–64
    grad_accum: int = 1                   # effective batch = batch_size × grad_accum
    max_length: int = 128                 # tokens read per text
    head_tokens: int = 32                 # of a long text: first head_tokens, the rest from its end
    warmup_ratio: float = 0.1             # share of steps with a rising learning rate, 0–0.2
    weight_decay: float = 0.01            # AdamW, 0–0.1
    seed: int = 42                        # data order, initialisation, dropout
    class_weighting: str = "auto"         # auto | on | off
    early_stopping_patience: int = 0      # evaluations without a better macro F1; 0 = never
    eval_every: int = 0                   # steps between evaluations; 0 = every epoch
    max_eval_rows: int = 0                # validation rows used while training; 0 = all
    limit: int = 0                        # training rows used; 0 = all
    per_class: int = 0                    # training rows drawn per label (by seed), 8–500 for few labels; 0 = all
    checkpoint_every: int = 50            # steps between resumable checkpoints
    precision: str = "auto"               # auto | fp32 | bf16 | fp16
    device: str = "auto"                  # auto | cuda | mps | cpu
    lora_r: int = 8                       # adapter rank, 4–32
    lora_alpha: int = 16                  # usually 2 × rank
    lora_dropout: float = 0.1             # 0–0.3
    lora_targets: str = "query,value"     # comma-separated module names
    adalora_init_r: int = 12              # AdaLoRA: rank each matrix starts with before pruning to lora_r
    virtual_tokens: int = 20              # prefix / prompt / P-tuning: learned tokens added to every text
    pooling: str = "auto"                 # auto (the encoder's own) | mean | cls
    freeze_embeddings: str = "auto"       # auto (frozen for vocabularies over 100k) | on | off
    report_to: str = "none"               # none | tensorboard | mlflow
    preset: str = ""                      # quick | standard | best | '' (none)
    run_id: str = ""                      # set when the run is created

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from saved or typed values: unknown names and wrong types are refused by name;
        names missing (a config saved before a field existed) take the field's default."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError("train.err.unknown_settings", names=", ".join(unknown), known=", ".join(known))
        return cls(**{name: _typed(name, value, type(getattr(cls, name))) for name, value in values.items()})

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        data = read_json(Path(path))
        if not isinstance(data, dict):
            raise ConfigError("train.err.not_a_config", path=str(path))
        return cls.from_dict(data)

    @staticmethod
    def help_texts(lang: str = DEFAULT_LANGUAGE) -> dict[str, str]:
        return {f.name: t(f"train.help.{f.name}", lang) for f in fields(TrainConfig)}

    @staticmethod
    def labels(lang: str = DEFAULT_LANGUAGE) -> dict[str, str]:
        return {f.name: t(f"train.setting.{f.name}", lang) for f in fields(TrainConfig)}


def _typed(name: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise ConfigError("train.err.setting_type", name=name, value=repr(value),
                      kind=msg(f"train.kind.{kind.__name__}"))


# quick: tuned on sample:movie-reviews, 2,000 training rows, 2 CPU cores (see README).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(epochs=3, learning_rate=1e-4, batch_size=32, max_length=128, head_tokens=32,
                  warmup_ratio=0.1, max_eval_rows=500, early_stopping_patience=0),
    "standard": dict(epochs=3, learning_rate=5e-5, batch_size=32, max_length=256, head_tokens=64,
                     warmup_ratio=0.1, max_eval_rows=2000, early_stopping_patience=2),
    "best": dict(epochs=5, learning_rate=3e-5, batch_size=16, grad_accum=2, max_length=512, head_tokens=128,
                 warmup_ratio=0.1, max_eval_rows=0, early_stopping_patience=2),
}


def _method_settings() -> dict[str, dict[str, Any]]:
    from core.fewshot import SETTINGS as FEWSHOT  # pair training: 1 epoch, small steps, batches of pairs

    return {**{m: {"learning_rate": lr} for m, lr in LEARNING_RATES.items()}, "fewshot": dict(FEWSHOT)}


METHOD_SETTINGS = _method_settings()


def config_from_preset(preset: str, **overrides: Any) -> TrainConfig:
    """The preset's values, the method's own settings (adapters need larger steps than full
    fine-tuning; fewshot trains pairs for one epoch), then every override that is not None."""
    if preset and preset not in PRESETS:
        raise ConfigError("train.err.unknown_preset", preset=preset, presets=", ".join(PRESETS))
    method = METHOD_SETTINGS.get(overrides.get("method"), {})
    values = {**(PRESETS.get(preset, {})), **method, "preset": preset,
              **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig.from_dict(values)


def method_limits(method: str) -> Message | None:
    """What the Train page says plainly about a method where class weights, early stopping, stop,
    resume or export do not behave as for ``full``; None where they all do."""
    from core.modeling.adapters import VIRTUAL_TOKENS

    if method in ("fewshot", "adalora"):
        return msg(f"train.limits.{method}")
    return msg("train.limits.virtual") if method in VIRTUAL_TOKENS else None


def join_messages(problems: list[Message]) -> Message:
    """Several problems as one message (each rendered in the reader's language)."""
    joined = problems[-1]
    for problem in reversed(problems[:-1]):
        joined = msg("train.err.joined", first=problem, rest=joined)
    return joined


def validate(config: TrainConfig, registry: Registry | None = None) -> list[Message]:
    """Problems a person can fix before launch; an empty list means the config can run.

    Each is a Message: ``str()`` is English, ``.render(lang)`` the reader's language."""
    registry = registry or Registry()
    card = registry.dataset(config.dataset) if config.dataset else None
    problems = _range_problems(config)
    if config.method not in METHODS:
        problems.insert(0, msg("train.err.unknown_method", method=config.method))
    if card is None:
        problems.insert(0, msg("train.err.no_dataset", dataset=config.dataset))
    if config.method != "baseline":
        problems += _model_problems(config)
    problems += _tracker_problems(config.report_to)
    if card is not None:
        problems += _data_problems(config, card["card"]["split_counts"].get("train", {}))
    return problems


def _range_problems(config: TrainConfig) -> list[Message]:
    c, out = config, []
    highest = MAX_LEARNING_RATE.get(c.method, 0.01)
    if not c.learning_rate > 0 or c.learning_rate > highest:
        out.append(msg("train.err.learning_rate", value=c.learning_rate, highest=highest))
    if c.epochs < 1 or c.epochs > 100:
        out.append(msg("train.err.epochs", value=c.epochs))
    if c.batch_size < 1:
        out.append(msg("train.err.batch_size", value=c.batch_size))
    if c.grad_accum < 1:
        out.append(msg("train.err.grad_accum", value=c.grad_accum))
    if c.class_weighting not in ("auto", "on", "off"):
        out.append(msg("train.err.class_weighting", value=c.class_weighting))
    if not 0 <= c.warmup_ratio < 1:
        out.append(msg("train.err.warmup_ratio", value=c.warmup_ratio))
    for name in ("early_stopping_patience", "eval_every", "max_eval_rows", "limit", "per_class", "weight_decay",
                 "lora_dropout"):
        if getattr(c, name) < 0:
            out.append(msg("train.err.not_negative", name=name, value=getattr(c, name)))
    for name in ("checkpoint_every", "lora_r", "lora_alpha", "adalora_init_r", "virtual_tokens"):
        if getattr(c, name) < 1:
            out.append(msg("train.err.at_least_one", name=name, value=getattr(c, name)))
    for name, choices in (("precision", PRECISIONS), ("device", DEVICES), ("report_to", tuple(TRACKERS)),
                          ("pooling", POOLINGS), ("freeze_embeddings", ("auto", "on", "off"))):
        if getattr(c, name) not in choices:
            out.append(msg("train.err.choice", name=name, value=getattr(c, name), choices=", ".join(choices)))
    return out


def _model_problems(config: TrainConfig) -> list[Message]:
    if config.max_length < 8:
        return [msg("train.err.max_length_small", value=config.max_length)]
    out = []
    try:
        limit = model_max_length(check_model(config.model))
        if config.max_length > limit:
            out.append(msg("train.err.max_length_model", value=config.max_length, limit=limit))
    except OpinionLabError as exc:
        out.append(exc.message or msg("train.err.plain", text=str(exc)))
    if not out:
        folder = check_model(config.model)
        if config.pooling == "mean" and not mean_layer_fits(folder):
            out.append(msg("train.err.pooling_unsupported", model=config.model))
        unfit = fit_problem(config.method, folder, chosen_pooling(config.pooling, folder) == "mean")
        if unfit is not None:
            out.append(unfit)
    if config.head_tokens < 0:
        out.append(msg("train.err.not_negative", name="head_tokens", value=config.head_tokens))
    return out


def tracker_installed(report_to: str) -> bool:
    """Whether the package behind ``report_to`` can be imported (``none`` always can)."""
    module = {"tensorboard": "tensorboard", "mlflow": "mlflow"}.get(report_to)
    return module is None or importlib.util.find_spec(module) is not None


def _tracker_problems(report_to: str) -> list[Message]:
    if report_to in TRACKERS and not tracker_installed(report_to):
        return [msg("train.err.tracker_missing", tracker=report_to, package=TRACKERS[report_to])]
    return []


def classes_short_of(per_class: int, train_counts: dict[str, int]) -> dict[str, int]:
    """The labels whose training rows are fewer than ``per_class`` (label → rows it has)."""
    return {lab: n for lab, n in train_counts.items() if per_class and n < per_class}


def _data_problems(config: TrainConfig, train_counts: dict[str, int]) -> list[Message]:
    out = []
    train_rows = sum(train_counts.values())
    short = classes_short_of(config.per_class, train_counts)
    if short:
        out.append(msg("lab.err.per_class_short", per_class=config.per_class,
                       classes=", ".join(f"{lab!r} ({n})" for lab, n in short.items()), most=min(short.values())))
    elif config.per_class:
        train_rows = config.per_class * len(train_counts)
    if config.limit:
        train_rows = min(train_rows, config.limit)
    if config.batch_size > train_rows and config.method != "fewshot":  # fewshot batches pairs, not rows
        out.append(msg("train.err.batch_larger_than_data", value=config.batch_size, rows=train_rows,
                       suggest=max(1, train_rows // 4)))
    missing = [lab for lab, n in train_counts.items() if n == 0]
    if missing:
        out.append(msg("train.err.class_missing_split", labels=", ".join(map(repr, missing))))
    return out

