"""Opinion Lab's engine: data, training, evaluation, scoring, trends, jobs and the workspace.

Nothing in this package imports streamlit; the pages in ``pages/`` call into it, and so does
the command line (``python -m core ...``).
"""

__version__ = "0.1.0"
