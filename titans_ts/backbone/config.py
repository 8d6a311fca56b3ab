"""Configuration of a Titans backbone (one config for every variant)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from titans_ts.memory.spec import MemoryConfig

__all__ = ["VARIANTS", "TitansConfig"]

#: Architectures understood by :class:`~titans_ts.backbone.TitansBackbone`.
#: ``"swa"`` is a sliding-window-attention-only baseline without neural memory.
VARIANTS: tuple[str, ...] = ("lmm", "mac", "mag", "mal", "swa")


@dataclass(frozen=True)
class TitansConfig:
    """Hyper-parameters of a :class:`~titans_ts.backbone.TitansBackbone`.

    Attributes:
        variant: one of :data:`VARIANTS` (``"lmm"``, ``"mac"``, ``"mag"``, ``"mal"``, ``"swa"``).
        d_model: width of the residual stream; inputs and outputs are ``(B, T, d_model)``.
        n_layers: number of residual blocks.
        n_heads: attention heads (``d_model`` must be divisible by it).
        window: sliding-window length (MAG, MAL, SWA): token ``t`` attends to tokens
            ``t - window + 1 .. t`` plus the persistent prefix.
        segment_len: segment length ``C`` of MAC.
        n_persistent: number ``N_p`` of learned persistent tokens per block (0 disables them).
        memory: configuration of the neural memory; ``None`` builds
            ``MemoryConfig(d_model=d_model, n_heads=n_heads)``. Its ``d_model`` must equal
            ``d_model``. Ignored by ``"swa"``.
        ffn_mult: hidden width of the gated FFN is ``round(ffn_mult * d_model)``.
        dropout: dropout on attention weights and on every residual branch.
        rope: rotary position embedding on attention queries/keys (absolute stream positions;
            persistent tokens are not rotated).
        attn_block: query block size of the block-wise sliding-window attention (memory per
            block is ``attn_block * (window + attn_block)``); ``None`` picks ``max(window, 64)``.
    """

    variant: str = "mag"
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    window: int = 64
    segment_len: int = 64
    n_persistent: int = 4
    memory: MemoryConfig | None = field(default=None)
    ffn_mult: float = 4.0
    dropout: float = 0.0
    rope: bool = True
    attn_block: int | None = None

    def __post_init__(self) -> None:
        def bad(name: str, value: object, want: str) -> ValueError:
            return ValueError(f"TitansConfig.{name}={value!r} is invalid: expected {want}.")

        if self.variant not in VARIANTS:
            raise bad("variant", self.variant, f"one of {VARIANTS}")
        for name in ("d_model", "n_layers", "n_heads", "window", "segment_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, value, "a positive integer")
        if self.d_model % self.n_heads:
            raise bad("n_heads", self.n_heads, f"a divisor of d_model={self.d_model}")
        if (self.d_model // self.n_heads) % 2 and self.rope:
            raise bad(
                "n_heads",
                self.n_heads,
                f"a value giving an even head width for rope (d_model={self.d_model})",
            )
        if (
            not isinstance(self.n_persistent, int)
            or isinstance(self.n_persistent, bool)
            or self.n_persistent < 0
        ):
            raise bad("n_persistent", self.n_persistent, "a non-negative integer")
        if not isinstance(self.ffn_mult, (int, float)) or not self.ffn_mult > 0:
            raise bad("ffn_mult", self.ffn_mult, "a positive number")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise bad("dropout", self.dropout, "a float in [0, 1)")
        if self.attn_block is not None and (
            not isinstance(self.attn_block, int) or self.attn_block < 1
        ):
            raise bad("attn_block", self.attn_block, "a positive integer or None")
        if self.memory is None:
            default = MemoryConfig(d_model=self.d_model, n_heads=self.n_heads)
            object.__setattr__(self, "memory", default)
        elif not isinstance(self.memory, MemoryConfig):
            raise bad("memory", self.memory, "a MemoryConfig or None")
        elif self.memory.d_model != self.d_model:
            raise bad("memory", self.memory, f"a MemoryConfig with d_model={self.d_model}")

    @property
    def head_dim(self) -> int:
        """Attention head width ``d_model // n_heads``."""
        return self.d_model // self.n_heads

    @property
    def ffn_hidden(self) -> int:
        """Hidden width of the gated FFN."""
        return max(1, round(self.ffn_mult * self.d_model))

    @property
    def block_size(self) -> int:
        """Query block size of the sliding-window attention."""
        return self.attn_block if self.attn_block is not None else max(self.window, 64)

    @property
    def has_memory(self) -> bool:
        """Whether the variant contains a neural memory."""
        return self.variant != "swa"

    def replace(self, **changes: object) -> TitansConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
