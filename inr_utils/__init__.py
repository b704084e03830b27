"""inr_utils: the thin package behind the numbered notebooks.

Physics (``acquisition``), data (``phantom``, ``io``), metrics, figures and the
headless notebook pipeline. Notebooks hold the story; this package holds the code.
"""
from pathlib import Path

__version__ = "0.1.0"

#: Root of the repository checkout (notebooks build every path from here, never from cwd).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where generated results go by default.
OUTPUTS = REPO_ROOT / "outputs"
#: Package data shipped with the code (the attributed Sunnybrook cine file).
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
