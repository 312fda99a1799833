"""Training text classifiers: the config and presets (``config``), tokenisation and batching
shared with prediction (``encoding``), the rows of a run (``splits``), the run folder
(``runfolder``), the Hugging Face Trainer wiring (``trainer``, ``callbacks``, ``checkpoints``),
a run from start to finish (``run``), and its command line (``command``).

Only ``trainer`` and ``callbacks`` import torch and transformers at module level; the others
stay light so pages can import them.
"""
