"""Hyperparameter search: Optuna over a method's learning rate, epochs, batch size, warmup and
adapter size, each trial a normal run in the registry (``runs.search_id`` names its search).

A search lives in ``workspace/searches/<id>/``:

    config.json     the SearchConfig (what ``python -m core tune --config`` carries out)
    status.json     queued / running / succeeded / cancelled / failed, trials done of planned
    study.sqlite3   Optuna's storage: every trial's settings, validation macro F1 per evaluation, state

Trials run one after another in the search's process; after each evaluation a trial reports its
validation macro F1 and Optuna's median pruner may end it there. Only the validation split is
read to choose: the test split is never looked at while searching. SIGTERM stops the current
trial cooperatively (it is recorded as stopped and does not count); ``resume`` continues the
study until the planned number of trials have finished.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError, NotFoundError
from core.i18n import msg
from core.modeling.adapters import MAX_LEARNING_RATE, RANKED, VIRTUAL_TOKENS
from core.modeling.config import TrainConfig, config_from_preset, join_messages, validate
from core.modeling.state import StopFlag
from core.workspace import Registry, atomic_write_json, check_name, inside, new_id, read_json

MAX_TRIALS = 500
ALIASES = {"lr": "learning_rate", "warmup": "warmup_ratio", "rank": "lora_r"}
INTEGERS = ("epochs", "batch_size", "lora_r", "virtual_tokens")
# Ranges every method starts from; the learning rate's is centred on the method's usual rate.
DEFAULT_RANGES = {"epochs": (1, 4), "batch_size": (8, 32), "warmup_ratio": (0.0, 0.2), "lora_r": (4, 32),
                  "virtual_tokens": (5, 40)}
OUTCOMES = ("complete", "pruned", "stopped", "failed", "running")


def tunable(method: str) -> tuple[str, ...]:
    """The settings a search varies for ``method``: the common four, then the adapter's size."""
    if method == "baseline":
        return ()
    size = ("lora_r",) if method in RANKED else ("virtual_tokens",) if method in VIRTUAL_TOKENS else ()
    return ("learning_rate", "epochs", "batch_size", "warmup_ratio", *size)


def default_space(method: str, preset: str = "quick") -> dict[str, tuple[float, float]]:
    """Pre-filled ranges: the method's usual learning rate ÷5 to ×3 (capped at its highest)."""
    rate = config_from_preset(preset, method=method).learning_rate
    highest = MAX_LEARNING_RATE.get(method, 0.01)
    ranges = {**DEFAULT_RANGES, "learning_rate": (rate / 5, min(rate * 3, highest))}
    return {name: ranges[name] for name in tunable(method)}


def parse_space(text: str, method: str, preset: str = "quick") -> dict[str, tuple[float, float]]:
    """``lr=1e-5:1e-3,epochs=1:4`` over the method's defaults (``lr``, ``warmup``, ``rank`` are
    short names); unknown names, other syntax and min > max are refused."""
    given: dict[str, tuple[float, float]] = {}
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        name, _, bounds = item.partition("=")
        low, sep, high = bounds.partition(":")
        try:
            lo, hi = float(low), float(high)
        except ValueError:
            raise ConfigError("lab.err.space_syntax", item=item) from None
        if not sep or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ConfigError("lab.err.space_syntax", item=item)
        given[ALIASES.get(name.strip(), name.strip())] = (lo, hi)
    return check_space({**default_space(method, preset), **given}, method)


def check_space(space: dict[str, Any], method: str) -> dict[str, tuple[float, float]]:
    """The ranges, each ``(low, high)`` (whole numbers for counts), or a ConfigError naming the
    parameter that ``method`` does not take or whose minimum is above its maximum."""
    known = tunable(method)
    out: dict[str, tuple[float, float]] = {}
    for name, (low, high) in space.items():
        if name not in known:
            raise ConfigError("lab.err.space_unknown", name=name, method=method, known=", ".join(known) or "—")
        if low > high:
            raise ConfigError("lab.err.space_order", name=name, low=low, high=high)
        out[name] = (int(low), int(high)) if name in INTEGERS else (float(low), float(high))
    return out


@dataclass
class SearchConfig:
    """What a search carries out; saved as ``config.json`` in its folder."""

    dataset: str = ""
    method: str = "full"
    model: str = "default"
    preset: str = "quick"
    limit: int = 0                          # training rows per trial; 0 = all
    trials: int = 10                        # trials that finish (complete, pruned or failed)
    space: dict[str, list[float]] = field(default_factory=dict)
    seed: int = 0                           # the sampler's seed
    search_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, path: Path) -> SearchConfig:
        data = read_json(Path(path))
        if not isinstance(data, dict):
            raise NotFoundError("lab.err.search_missing", search=Path(path).parent.name)
        return cls(**data)

    def trial_config(self, values: dict[str, Any]) -> TrainConfig:
        """A trial's run: the preset, our dataset, model and method, then the trial's values
        (LoRA-family alpha follows the rank at 2 × rank, as the field usually sets it)."""
        extra = {"lora_alpha": 2 * int(values["lora_r"])} if "lora_r" in values else {}
        return config_from_preset(self.preset, dataset=self.dataset, model=self.model, method=self.method,
                                  limit=self.limit, **values, **extra)


def search_dir(search_id: str, registry: Registry) -> Path:
    return inside(registry.root, "searches", search_id)


def create_search(config: SearchConfig, registry: Registry | None = None) -> Path:
    """Check the search (trials, ranges, the method on the model, both corners of the space),
    then write its folder. Nothing is written when a check fails."""
    registry = registry or Registry()
    if not 1 <= config.trials <= MAX_TRIALS:
        raise ConfigError("lab.err.trials", value=config.trials, most=MAX_TRIALS)
    if not tunable(config.method):
        raise ConfigError("lab.err.nothing_to_tune", method=config.method)
    space = check_space(config.space or default_space(config.method, config.preset), config.method)
    for corner in (0, 1):  # the smallest and the largest settings must both be able to run
        problems = validate(config.trial_config({name: bounds[corner] for name, bounds in space.items()}), registry)
        if problems:
            raise ConfigError("lab.err.corner", problems=join_messages(problems))
    config.space = {name: list(bounds) for name, bounds in space.items()}
    config.search_id = new_id("search")
    folder = search_dir(config.search_id, registry)
    folder.mkdir(parents=True)
    atomic_write_json(folder / "config.json", config.to_dict())
    _status(folder, "queued", 0, config.trials)
    return folder


def _status(folder: Path, status: str, done: int, total: int, **extra: Any) -> None:
    atomic_write_json(folder / "status.json", {"status": status, "step": done, "total_steps": total, **extra})


def _study(folder: Path, config: SearchConfig, seed_offset: int = 0) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # stdout is the CLI's
    # the sampler's seed moves on with the trials already run, so a resumed study draws new settings
    sampler = optuna.samplers.TPESampler(seed=config.seed + seed_offset)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    return optuna.create_study(storage=f"sqlite:///{folder / 'study.sqlite3'}", study_name=config.search_id,
                               direction="maximize", sampler=sampler, pruner=pruner, load_if_exists=True)


def _suggest(trial: Any, space: dict[str, list[float]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, (low, high) in space.items():
        if name == "learning_rate":
            values[name] = trial.suggest_float(name, low, high, log=low > 0)
        elif name == "batch_size":  # powers of two inside the range, as people choose batch sizes
            choices = [b for b in (2 ** i for i in range(11)) if low <= b <= high] or [int(low)]
            values[name] = trial.suggest_categorical(name, choices)
        elif name in INTEGERS:
            values[name] = trial.suggest_int(name, int(low), int(high))
        else:
            values[name] = trial.suggest_float(name, low, high)
    return values


def _counted(trials: list[Any]) -> int:
    """Trials that count toward the plan: finished, and not stopped by the person."""
    return sum(1 for t in trials if t.state.is_finished() and t.user_attrs.get("outcome") != "stopped")


def run_search(folder: Path, registry: Registry | None = None) -> dict[str, Any]:
    """Run trials until ``trials`` have finished, or until SIGTERM/SIGINT. Returns the report."""
    from optuna.trial import TrialState

    registry = registry or Registry()
    folder = Path(folder)
    config = SearchConfig.load(folder / "config.json")
    study = _study(folder, config, seed_offset=len(registry.search_runs(config.search_id)))
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # its worker was stopped
        study.tell(stale.number, state=TrialState.FAIL)
    stop = StopFlag()

    def request_stop(signum: int, frame: Any) -> None:  # between trials; a trial's run has its own
        stop.requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while (done := _counted(study.get_trials(deepcopy=False))) < config.trials and not stop.requested:
            _status(folder, "running", done, config.trials, started_at=time.time())
            if _run_trial(study, config, registry) == "stopped":
                stop.requested = True
        done = _counted(study.get_trials(deepcopy=False))
        _status(folder, "succeeded" if done >= config.trials else "cancelled", done, config.trials)
    except BaseException as exc:
        _status(folder, "failed", _counted(study.get_trials(deepcopy=False)), config.trials,
                reason=f"{type(exc).__name__}: {str(exc)[:300]}")
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return search_report(config.search_id, registry)


def _run_trial(study: Any, config: SearchConfig, registry: Registry) -> str:
    """One trial: a run with the suggested settings, told to the study. Returns its outcome."""
    from optuna.trial import TrialState

    from core.training import create_run, run_training

    trial = study.ask()
    trial.set_user_attr("outcome", "stopped")  # what it stays if this process dies mid-trial
    folder = create_run(config.trial_config(_suggest(trial, config.space)), registry, search_id=config.search_id)
    trial.set_user_attr("run_id", folder.name)

    def judge(evaluation: int, metrics: dict[str, Any]) -> bool:
        if metrics.get("macro_f1") is None:
            return False
        trial.report(float(metrics["macro_f1"]), evaluation)
        return trial.should_prune()

    try:
        result = run_training(folder, registry=registry, judge=judge)
    except Exception as exc:  # a trial that crashes is recorded; the search goes on
        trial.set_user_attr("outcome", "failed")
        trial.set_user_attr("error", f"{type(exc).__name__}: {str(exc)[:300]}")
        study.tell(trial, state=TrialState.FAIL)
        return "failed"
    if result.get("status") == "cancelled":
        study.tell(trial, state=TrialState.FAIL)
        return "stopped"
    if result.get("status") == "pruned":
        trial.set_user_attr("outcome", "pruned")
        study.tell(trial, state=TrialState.PRUNED)
        return "pruned"
    trial.set_user_attr("outcome", "complete")
    study.tell(trial, float((result.get("validation") or {}).get("macro_f1") or 0.0))
    return "complete"


def search_report(search_id: str, registry: Registry | None = None) -> dict[str, Any]:
    """The search, its trials (settings, validation macro F1, outcome, run) and the best trial."""
    registry = registry or Registry()
    folder = search_dir(search_id, registry)
    if not (folder / "config.json").is_file():
        raise NotFoundError("lab.err.search_missing", search=search_id)
    config = SearchConfig.load(folder / "config.json")
    trials = []
    if (folder / "study.sqlite3").is_file():
        for trial in _study(folder, config).get_trials(deepcopy=False):
            running = not trial.state.is_finished()
            steps = sorted(trial.intermediate_values)
            trials.append({
                "number": trial.number + 1, "outcome": "running" if running else trial.user_attrs.get("outcome", "failed"),
                "run_id": trial.user_attrs.get("run_id"), "settings": dict(trial.params),
                "validation_macro_f1": trial.value if trial.value is not None else (
                    trial.intermediate_values[steps[-1]] if steps else None),
                "evaluations": len(steps), "error": trial.user_attrs.get("error")})
    complete = [t for t in trials if t["outcome"] == "complete" and t["validation_macro_f1"] is not None]
    best = max(complete, key=lambda t: t["validation_macro_f1"], default=None)
    status = read_json(folder / "status.json", {}) or {}
    job = registry.job(search_id)
    # the job's state wins: a worker that was killed never wrote that it stopped
    return {"id": search_id, "config": config.to_dict(), "status": job["status"] if job else status.get("status"),
            "reason": status.get("reason"), "finished": _counted_rows(trials), "planned": config.trials,
            "trials": trials, "best": best, "job_id": job["id"] if job else None,
            "runs": [r["id"] for r in registry.search_runs(search_id)]}


def _counted_rows(trials: list[dict[str, Any]]) -> int:
    return sum(1 for t in trials if t["outcome"] in ("complete", "pruned", "failed"))


def list_searches(registry: Registry | None = None, dataset: str | None = None) -> list[dict[str, Any]]:
    """Every search (newest first), or those of one dataset: id, method, trials, status."""
    registry = registry or Registry()
    out = []
    for path in (registry.root / "searches").glob("*/config.json"):
        config = read_json(path, {}) or {}
        if dataset and config.get("dataset") != dataset:
            continue
        status = read_json(path.parent / "status.json", {}) or {}
        out.append({"id": path.parent.name, "dataset": config.get("dataset"), "method": config.get("method"),
                    "trials": config.get("trials"), "status": status.get("status"), "done": status.get("step", 0),
                    "created_at": path.stat().st_mtime})
    return sorted(out, key=lambda s: -s["created_at"])


def save_best_config(search_id: str, name: str, registry: Registry | None = None) -> Path:
    """The best trial's settings as a named config, ``workspace/configs/<name>.json``: what
    ``python -m core train --config`` and the Train page's Search section start a run from."""
    registry = registry or Registry()
    best = search_report(search_id, registry)["best"]
    if best is None:
        raise ConfigError("lab.err.no_best", search=search_id)
    cleaned = check_name(name, msg("lab.what_config"))
    values = {**(read_json(registry.root / "runs" / best["run_id"] / "config.json", {}) or {}), "run_id": ""}
    path = inside(registry.root, "configs", f"{cleaned}.json")
    atomic_write_json(path, TrainConfig.from_dict(values).to_dict())
    return path


def saved_configs(registry: Registry | None = None) -> dict[str, Path]:
    """Named configs saved from searches, by name."""
    registry = registry or Registry()
    return {p.stem: p for p in sorted((registry.root / "configs").glob("*.json"))}
