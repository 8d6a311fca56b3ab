"""Activations of the memory model with closed-form first and second derivatives.

The chunked executor's hand-written backward differentiates through the inner gradient
(a gradient of a gradient), so it needs ``act``, ``act'`` and ``act''``. Autograd-based code
(the reference executor) uses :func:`activation` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation function called ``name`` (see :data:`~titans_ts.memory.spec.ACTIVATIONS`)."""
    try:
        return _FORWARD[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}: expected one of {sorted(_FORWARD)}"
        ) from None


def activation_backward(name: str, grad: Tensor, z: Tensor) -> Tensor:
    """``grad * act'(z)`` in one fused kernel where PyTorch has one."""
    if name == "gelu":
        return torch.ops.aten.gelu_backward(grad, z)
    if name == "silu":
        return torch.ops.aten.silu_backward(grad, z)
    if name == "tanh":
        return torch.ops.aten.tanh_backward(grad, torch.tanh(z))
    if name == "relu":
        return torch.ops.aten.threshold_backward(grad, z, 0)
    raise ValueError(f"unknown activation {name!r}: expected one of {sorted(_FORWARD)}")


def activation_second_derivative(name: str, z: Tensor) -> Tensor:
    """``act''(z)`` elementwise."""
    if name == "gelu":
        return torch.exp(-0.5 * z * z).mul_(_INV_SQRT_2PI).mul_(2.0 - z * z)
    if name == "silu":
        s = torch.sigmoid(z)
        return s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
    if name == "tanh":
        t = torch.tanh(z)
        return -2.0 * t * (1.0 - t * t)
    if name == "relu":
        return torch.zeros_like(z)
    raise ValueError(f"unknown activation {name!r}: expected one of {sorted(_FORWARD)}")


def activation_and_derivative(name: str, z: Tensor) -> tuple[Tensor, Tensor]:
    """``(act(z), act'(z))`` elementwise."""
    if name == "gelu":
        cdf = 0.5 * (1.0 + torch.erf(z * _INV_SQRT_2))
        pdf = torch.exp(-0.5 * z * z) * _INV_SQRT_2PI
        return z * cdf, cdf + z * pdf
    if name == "silu":
        s = torch.sigmoid(z)
        return z * s, s * (1.0 + z * (1.0 - s))
    if name == "tanh":
        t = torch.tanh(z)
        return t, 1.0 - t * t
    if name == "relu":
        pos = (z > 0).to(z.dtype)
        return z * pos, pos
    raise ValueError(f"unknown activation {name!r}: expected one of {sorted(_FORWARD)}")


_FORWARD: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "relu": F.relu,
}
