"""Training, as the rest of the app imports it: a facade over ``core.modeling``.

One ``TrainConfig`` describes a run; ``create_run`` writes it into a new run folder and
``run_training`` carries it out on the Hugging Face Trainer (in the foreground, or in a worker
started with the very command ``python -m core train --config RUN/config.json`` that a person,
``torchrun`` or ``accelerate launch`` could type). See ``core/modeling/__init__.py`` for where
each concern lives.
"""

from core.modeling.command import submit_command
from core.modeling.config import (
    METHODS,
    PRESETS,
    TrainConfig,
    config_from_preset,
    method_limits,
    validate,
)
from core.modeling.encoding import (
    GPU_PAD_MULTIPLE,
    encode_texts,
    length_grouped_batches,
    pad_batch,
    predict_proba,
    special_tokens,
)
from core.modeling.run import run_training
from core.modeling.runfolder import create_run, delete_run, run_dir_of
from core.modeling.splits import load_splits
from core.progress import read_progress

__all__ = [
    "GPU_PAD_MULTIPLE", "METHODS", "PRESETS", "TrainConfig", "config_from_preset", "create_run",
    "delete_run", "encode_texts", "method_limits", "length_grouped_batches", "load_splits", "pad_batch",
    "predict_proba", "read_progress", "run_dir_of", "run_training", "special_tokens", "submit_command", "validate",
]
