"""Neural long-term memory: one definition (:mod:`.spec`), several executors.

- :func:`run_memory` — the public entry (validation, dtype rule, executor choice);
- :func:`naive_run_memory` — token-by-token oracle (``executor="reference"``);
- :func:`chunked_run_memory` — chunk-parallel dual form with a hand-written backward (on
  CPU its per-chunk step runs through the compiled kernels of :mod:`.cpu_kernels`);
- :class:`NeuralMemory` — the layer: projections, convolution, gates, output gate, state.
"""

from .chunked import chunked_run_memory
from .module import NeuralMemory, NeuralMemoryState
from .reference import naive_run_memory
from .run import run_memory, select_executor
from .spec import ACTIVATIONS, EXECUTORS, MemoryConfig, MemoryRunState

__all__ = [
    "ACTIVATIONS",
    "EXECUTORS",
    "MemoryConfig",
    "MemoryRunState",
    "NeuralMemory",
    "NeuralMemoryState",
    "chunked_run_memory",
    "naive_run_memory",
    "run_memory",
    "select_executor",
]
