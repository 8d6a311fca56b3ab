"""Titans backbones: sliding-window / segment attention, blocks and the LMM, MAC, MAG, MAL
variants (plus an SWA-only baseline), configured by one :class:`TitansConfig`."""

from .attention import (
    KVCache,
    SegmentAttention,
    SegmentCache,
    SlidingWindowAttention,
    segment_attention,
    sliding_window_attention,
)
from .blocks import BranchGate, SwiGLU
from .config import VARIANTS, TitansConfig
from .variants import (
    BackboneState,
    LayerState,
    LMMBlock,
    MACBlock,
    MAGBlock,
    MALBlock,
    SWABlock,
    TitansBackbone,
)

__all__ = [
    "VARIANTS",
    "BackboneState",
    "BranchGate",
    "KVCache",
    "LMMBlock",
    "LayerState",
    "MACBlock",
    "MAGBlock",
    "MALBlock",
    "SWABlock",
    "SegmentAttention",
    "SegmentCache",
    "SlidingWindowAttention",
    "SwiGLU",
    "TitansBackbone",
    "TitansConfig",
    "segment_attention",
    "sliding_window_attention",
]
