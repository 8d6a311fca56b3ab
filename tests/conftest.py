"""Session-wide test setup.

Triton decides between compiled and interpreted kernels when it is first imported, and
torch/Lightning may import it before ``tests/memory/test_triton.py`` is collected. So the
interpreter is switched on here, before anything else is imported, unless the Triton tests
are asked to run on a real GPU (``TITANS_TS_TRITON_DEVICE=cuda``).
"""

import os

if os.environ.get("TITANS_TS_TRITON_DEVICE", "cpu") != "cuda":
    os.environ.setdefault("TRITON_INTERPRET", "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # for _scripts (loads recipes/ and benchmarks/)
