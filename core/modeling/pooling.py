"""Mean pooling inside a standard BERT-family classifier, so the saved model still loads in
``transformers.pipeline`` without custom code.

Sentence encoders (the embedded MiniLM, multilingual-e5) were trained to be read by averaging
their token vectors; their first token was never trained to stand for the text, and the
converted e5 has no pooler weights at all. A ``…ForSequenceClassification`` head reads the first
token only. We append one encoder layer that computes the average instead: its query and key
weights are zero, so every position attends uniformly to every real (unmasked) token and the
first position receives the masked mean of the value vectors; values and the attention output
pass it on (the mean weighted ``MEAN_WEIGHT`` times the first token's own vector through the
residual), the feed-forward block starts at zero, and the pooler starts as the identity. The
zero query/key weights stay zero under training (each one's gradient is proportional to the
other), so the layer keeps reading the mean; its value/output weights and layer norms train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.errors import ConfigError

POOLINGS = ("auto", "mean", "cls")
MEAN_WEIGHT = 16.0  # the mean's weight against the first token's own vector in the residual sum


def encoder_pooling(model_dir: Path) -> str:
    """The pooling a model folder was trained for: ``mean`` for a mean-pooled sentence encoder,
    ``cls`` for anything else (a classifier or a plain pretrained encoder)."""
    from core.embedding import encoder_spec

    try:
        return encoder_spec(model_dir).pooling
    except ConfigError:
        return "cls"


# model types whose classifier is encoder layers + a pooler with a dense layer (the mean layer fits)
MEAN_LAYER_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "ernie", "data2vec-text", "xmod")


def mean_layer_fits(model_dir: Path) -> bool:
    import json

    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return config.get("model_type") in MEAN_LAYER_TYPES


def chosen_pooling(pooling: str, model_dir: Path) -> str:
    """``auto`` resolved against the model folder (mean only where the mean layer fits);
    ``mean``/``cls`` as asked."""
    if pooling == "auto":
        return "mean" if encoder_pooling(model_dir) == "mean" and mean_layer_fits(model_dir) else "cls"
    return pooling


def supports_mean_layer(model: Any) -> bool:
    base = getattr(model, "base_model", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    pooler = getattr(base, "pooler", None)
    return layers is not None and len(layers) > 0 and pooler is not None and hasattr(pooler, "dense") \
        and hasattr(layers[0], "attention") and hasattr(layers[0], "intermediate")


def add_mean_layer(model: Any) -> Any:
    """Append the mean-pooling layer (see the module doc) and set the pooler to the identity."""
    base = model.base_model
    layers = base.encoder.layer
    if not supports_mean_layer(model):
        raise ConfigError("train.err.pooling_unsupported", model=type(model).__name__)
    layer = type(layers[0])(model.config, layer_idx=len(layers)) if _takes_layer_idx(layers[0]) \
        else type(layers[0])(model.config)
    hidden = model.config.hidden_size
    eye = torch.eye(hidden)
    with torch.no_grad():
        attention = layer.attention
        for linear in (attention.self.query, attention.self.key):
            linear.weight.zero_()
            linear.bias.zero_()
        attention.self.value.weight.copy_(eye * MEAN_WEIGHT)
        attention.self.value.bias.zero_()
        attention.output.dense.weight.copy_(eye)
        attention.output.dense.bias.zero_()
        for linear in (layer.intermediate.dense, layer.output.dense):
            linear.weight.zero_()
            linear.bias.zero_()
        for norm in (attention.output.LayerNorm, layer.output.LayerNorm):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
        base.pooler.dense.weight.copy_(eye)
        base.pooler.dense.bias.zero_()
    layers.append(layer.to(next(model.parameters()).dtype).train(model.training))
    model.opinionlab_mean_layer = True  # read by has_mean_layer (adapters train the new read-out)
    model.config.num_hidden_layers = len(layers)
    if hasattr(base.config, "num_hidden_layers"):
        base.config.num_hidden_layers = len(layers)
    return model


def has_mean_layer(model: Any) -> bool:
    """Whether ``add_mean_layer`` was applied to this model object."""
    return bool(getattr(model, "opinionlab_mean_layer", False))


def _takes_layer_idx(layer: Any) -> bool:
    import inspect

    return "layer_idx" in inspect.signature(type(layer).__init__).parameters


def freeze_word_embeddings(model: Any) -> int:
    """Stop training the word-embedding matrix; the number of parameters frozen."""
    embeddings = model.get_input_embeddings()
    embeddings.weight.requires_grad_(False)
    return embeddings.weight.numel()


LARGE_VOCABULARY = 100_000  # rows: above this, ``auto`` keeps the word embeddings frozen


def should_freeze(setting: str, model: Any) -> bool:
    """``auto``: frozen for very large vocabularies (multilingual models), whose rare-word vectors
    a few thousand examples cannot improve and whose optimiser state would triple the memory."""
    if setting in ("on", "off"):
        return setting == "on"
    return model.get_input_embeddings().weight.shape[0] > LARGE_VOCABULARY
