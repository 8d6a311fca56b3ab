"""Chunk-parallel executor of the memory contract (:mod:`titans_ts.memory.spec`).

Per chunk of ``n <= b`` tokens, with ``G = B * H`` independent (batch, head) problems:

1. **Inner gradients at the chunk-start weights** ``W_g``: one forward of the memory MLP on
   all keys of the chunk and one hand-written backward give, per layer ``l``, the
   pre-activation error ``delta_l`` (n, out) and the layer input ``a_{l-1}`` (n, in), so that
   ``u_s = delta_l[s] a_{l-1}[s]^T``. No per-token weight gradient is materialised.
2. **Gate recurrences as matrices.** With ``P_x[r, s] = prod_{s<j<=r} x_j`` (index 0 is the
   chunk start) for ``x = eta`` and ``x = 1 - alpha``, ``M = P_eta * [1, theta]`` and
   ``C = P_(1-alpha)[:, 1:] @ M[1:, :]``, every weight in the chunk is
   ``W_i = gamma_i W_b + rho_i S_b - sum_{s<=i} C[i, s] u_s`` with ``gamma = P_(1-alpha)[:, 0]``,
   ``rho = C[:, 0]``, and the momentum at the chunk end is ``M[n, 0] S_b - sum_s M[n, s] u_s``.
   Products are formed by ``cumprod`` of factors in [0, 1]: no logarithms, no overflow, and
   exact for ``eta = 0`` or ``alpha = 1``.
3. **Retrieval in dual form**: for each layer,
   ``z_i = gamma_i W_b h_i + rho_i S_b h_i - sum_s C[i, s] (a_s . h_i) delta_s``, a masked
   matmul; only chunk-boundary weights are materialised.
4. **Chunk-end update** of weights and momentum (two ``(out, in)`` matmuls per layer).

``W_b, S_b`` (recurrence base) normally equal the chunk-start state and ``W_g = W_b``; a
stream resumed in the middle of a chunk has ``W_g`` = the chunk's start weights while
``W_b, S_b`` = the weights and momentum at the resume point.

Training uses :class:`_ChunkedMemoryFunction`, whose backward is derived by hand and
recomputes each chunk from its saved boundary state (memory: two weight copies per chunk,
never one per token).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from . import cpu_kernels
from .activations import activation as activation_fn
from .activations import activation_backward, activation_second_derivative
from .spec import DEFAULT_BACKWARD_CACHE_MB, MemoryRunState, mib_to_budget_bytes

Tensor = torch.Tensor

__all__ = [
    "DEFAULT_CACHE_BUDGET_BYTES",
    "chunk_bounds",
    "chunked_run_memory",
    "flat_start_state",
    "forward_flops",
]

#: Bytes of chunk states + intermediates the default policy keeps between forward and
#: backward before it switches to sqrt checkpointing with recomputation of every chunk
#: (:attr:`~titans_ts.memory.MemoryConfig.backward_cache_mb` ``None``).
DEFAULT_CACHE_BUDGET_BYTES = mib_to_budget_bytes(DEFAULT_BACKWARD_CACHE_MB)


# ----------------------------------------------------------------------------------------
# gate products


def _lower_mask(n: int, device: torch.device, strict: bool = False) -> Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril(-1 if strict else 0)


def _gate_products(x: Tensor) -> Tensor:
    """``P[g, r, s] = prod_{s < j <= r} x[g, j-1]`` for ``0 <= s <= r <= n``, zero above.

    Args:
        x: (G, n) factors (``eta`` or ``1 - alpha``), token ``j`` at column ``j - 1``.
    Returns:
        (G, n + 1, n + 1); row/column 0 stands for the chunk start.
    """
    G, n = x.shape
    xx = torch.cat([x.new_ones(G, 1), x], dim=1)
    strict = _lower_mask(n + 1, x.device, strict=True)
    factors = torch.where(strict, xx[:, :, None], xx.new_ones(()))
    return torch.cumprod(factors, dim=1) * _lower_mask(n + 1, x.device)


def _gate_products_grad(P: Tensor, dP: Tensor) -> Tensor:
    """Gradient of :func:`_gate_products` w.r.t. its factors, without division.

    ``d x_j = sum_{s < j <= r} dP[r, s] P[j-1, s] P[r, j] = sum_s P[j-1, s] (P^T dP)[j, s]``.
    """
    n1 = P.shape[-1]
    dP = dP * _lower_mask(n1, P.device)
    N = P.transpose(1, 2) @ dP
    return (P[:, :-1, :] * N[:, 1:, :]).sum(-1)


def _flush_subnormals_(x: Tensor) -> None:
    """Set the subnormal entries of ``x`` (``0 < |x| < finfo.tiny``) to zero, in place.

    Applied to the chunk-end weights and momentum on CPU. Why: under the forgetting gate a
    weight whose surprise stays zero decays geometrically (``(1 - alpha)`` per token)
    through the subnormal range, and x86 CPUs compute on subnormal floats in microcode,
    tens of times slower. A DNA LM fitted on E. coli and streamed over its genome ends with
    94 % of its memory weights subnormal and, unflushed, runs ~3-4x slower. The values
    dropped are below ``finfo.tiny`` (1.2e-38 in float32), far under the rounding of any
    output; the backward treats the flush as the identity. Subnormals inside one chunk are
    left alone; the flushed state stops them from persisting. The compiled CPU step does the
    same (``flush_subnormals_`` in ``csrc/chunk_cpu.cpp``).
    """
    x.masked_fill_(x.abs() < torch.finfo(x.dtype).tiny, 0.0)


# ----------------------------------------------------------------------------------------
# one chunk
#
# Weights and momentum of layer l travel together in one buffer ``WS`` whose layout lets
# the boundary terms ``gamma_i W_b h_i + rho_i S_b h_i`` be one matmul that never
# materialises a full-width intermediate:
#   "wide" layers (out >= in):   WS = [W_b | S_b]  (G, out, 2 in);  z = [gamma h | rho h] WS^T
#   "narrow" layers (out < in):  WS = [W_b ; S_b]  (G, 2 out, in);  XY = h WS^T, z = gamma X + rho Y


def _is_wide(shape: tuple[int, ...]) -> bool:
    """Layout of a layer with weight shape (..., out, in)."""
    return shape[-2] >= shape[-1]


def _pack(W: Tensor, S: Tensor) -> Tensor:
    return torch.cat([W, S], dim=2 if _is_wide(W.shape) else 1)


def _unpack(WS: Tensor, wide: bool) -> tuple[Tensor, Tensor]:
    if wide:
        n_in = WS.shape[2] // 2
        return WS[:, :, :n_in], WS[:, :, n_in:]
    out = WS.shape[1] // 2
    return WS[:, :out], WS[:, out:]


def _scaled_pair(x: Tensor, s1: Tensor, s2: Tensor) -> Tensor:
    """``[s1 * x | s2 * x]`` along the last dim, written once. x: (G, n, c); s: (G, n, 1)."""
    c = x.shape[2]
    outp = x.new_empty(x.shape[0], x.shape[1], 2 * c)
    torch.mul(x, s1, out=outp[..., :c])
    torch.mul(x, s2, out=outp[..., c:])
    return outp


@dataclass
class _ChunkCache:
    """Intermediates of one chunk kept for its backward (recomputed, never stored long)."""

    a: list[Tensor]  # key-path layer inputs a_0 = k, a_1, ..., a_{L-1}: (G, n, in_l)
    z: list[Tensor]  # key-path hidden pre-activations z_1..z_{L-1}: (G, n, out_l)
    g: list[Tensor]  # g_l = delta_{l+1} W_g[l+1] for hidden layers
    delta: list[Tensor]  # delta_1..delta_L: (G, n, out_l)
    Pe: Tensor
    Pa: Tensor
    M: Tensor
    C: Tensor
    hq: list[Tensor]  # query-path layer inputs h_0 = q, h_1, ...: (G, n, in_l)
    zq: list[Tensor]  # query-path hidden pre-activations
    lhs: list[Tensor]  # wide: [gamma h | rho h]; narrow: h WS^T
    Gm: list[Tensor]  # h_{l-1} a_{l-1}^T: (G, n, n)
    sq: Tensor | None = None  # ||u_s||^2 summed over layers (G, n), when clipping
    clip: Tensor | None = None  # min(1, tau / ||u_s||) (G, n), when clipping

    def nbytes(self) -> int:
        tensors = [*self.a, *self.z, *self.g, *self.delta, *self.hq, *self.zq, *self.lhs, *self.Gm]
        tensors += [self.Pe, self.Pa, self.M, self.C]
        tensors += [x for x in (self.sq, self.clip) if x is not None]
        return sum(t.numel() * t.element_size() for t in {id(t): t for t in tensors}.values())


def _chunk_forward(
    Wg: list[Tensor],
    WS: list[Tensor],
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: Tensor,
    eta: Tensor,
    alpha: Tensor,
    act: str,
    residual: bool,
    keep: bool,
    tau: float | None = None,
) -> tuple[Tensor, list[Tensor], _ChunkCache | None]:
    """One chunk. ``Wg``: (G, out, in) per layer; ``WS``: packed base weights+momentum;
    q, k, v: (G, n, d); gates: (G, n); ``tau``: the per-token gradient-norm bound or None.

    Returns ``(y (G, n, d), WS_end, cache or None)``.
    """
    L = len(Wg)
    n = q.shape[1]
    fn = activation_fn(act)

    # 1. key path at the chunk-start weights
    a = [k]
    z: list[Tensor] = []
    h = k
    for l in range(L):
        zl = torch.bmm(h, Wg[l].transpose(1, 2))
        if l < L - 1:
            z.append(zl)
            h = fn(zl)
            a.append(h)
    err = zl.sub_(v)
    if residual:
        err.add_(k)

    # 2. back-propagated errors: u_s = delta_l[s] a_{l-1}[s]^T
    delta: list[Tensor] = [err] * L
    g: list[Tensor] = [err] * L
    for l in range(L - 2, -1, -1):
        g[l] = torch.bmm(delta[l + 1], Wg[l + 1])
        delta[l] = activation_backward(act, g[l], z[l])

    # 2b. per-token clipping u_s <- u_s min(1, tau / ||u_s||): ||delta a^T||_F = |delta| |a|,
    # folded into the learning rate
    sq = clip = None
    if tau is not None:
        # one-pass reductions (no squared temporaries): ||u_s,l||_F = |delta_l,s| |a_l,s|
        norms = [
            torch.linalg.vector_norm(delta[l], dim=-1) * torch.linalg.vector_norm(a[l], dim=-1)
            for l in range(L)
        ]
        sq = sum(x.square() for x in norms)
        clip = sq.clamp_min(tau * tau).rsqrt_().mul_(tau)
        theta = theta * clip

    # 3. gate matrices
    Pe = _gate_products(eta)
    Pa = _gate_products(1.0 - alpha)
    theta_hat = torch.cat([theta.new_ones(theta.shape[0], 1), theta], dim=1)
    M = Pe * theta_hat[:, None, :]
    C = torch.bmm(Pa[:, :, 1:], M[:, 1:, :])
    gamma = Pa[:, 1:, 0, None]
    rho = C[:, 1:, 0, None]
    Cst = C[:, 1:, 1:]

    # 4. retrieval in dual form
    hq = [q]
    zq: list[Tensor] = []
    lhss: list[Tensor] = []
    Gms: list[Tensor] = []
    h = q
    for l in range(L):
        wide = _is_wide(Wg[l].shape)
        Gm = torch.bmm(h, a[l].transpose(1, 2))
        P = Cst * Gm if keep else Gm.mul_(Cst)
        if wide:
            lhs = _scaled_pair(h, gamma, rho)
            zl = torch.bmm(lhs, WS[l].transpose(1, 2))
        else:
            lhs = torch.bmm(h, WS[l].transpose(1, 2))
            out = lhs.shape[2] // 2
            zl = torch.addcmul(gamma * lhs[..., :out], rho, lhs[..., out:])
        zl.baddbmm_(P, delta[l], alpha=-1.0)
        if keep:
            lhss.append(lhs)
            Gms.append(Gm)
        if l < L - 1:
            if keep:
                zq.append(zl)
            h = fn(zl)
            hq.append(h)
        else:
            y = zl.add_(q) if residual else zl

    # 5. chunk end: W_end = g W_b + r S_b - sum_s w_s u_s,  S_end = E S_b - sum_s e_s u_s
    w_end = C[:, n, 1:, None]
    e_end = M[:, n, 1:, None]
    g_end = Pa[:, n, 0, None, None]
    r_end = C[:, n, 0, None, None]
    E_end = M[:, n, 0, None, None]
    WS_end = []
    for l in range(L):
        wide = _is_wide(Wg[l].shape)
        Wb, Sb = _unpack(WS[l], wide)
        new = torch.empty_like(WS[l])
        Wn, Sn = _unpack(new, wide)
        torch.mul(Wb, g_end, out=Wn)
        Wn.addcmul_(Sb, r_end)
        torch.mul(Sb, E_end, out=Sn)
        if wide:  # (out, 2in) -= delta^T [w a | e a]
            new.baddbmm_(delta[l].transpose(1, 2), _scaled_pair(a[l], w_end, e_end), alpha=-1.0)
        else:  # (2out, in) -= [w delta | e delta]^T a
            R = _scaled_pair(delta[l], w_end, e_end)
            new.baddbmm_(R.transpose(1, 2), a[l], alpha=-1.0)
        if new.device.type == "cpu":
            _flush_subnormals_(new)
        WS_end.append(new)

    cache = None
    if keep:
        cache = _ChunkCache(a, z, g, delta, Pe, Pa, M, C, hq, zq, lhss, Gms, sq, clip)
    return y, WS_end, cache


def _chunk_backward(
    Wg: list[Tensor],
    WS: list[Tensor],
    theta: Tensor,
    c: _ChunkCache,
    act: str,
    residual: bool,
    dy: Tensor,
    dWS_end: list[Tensor] | None,
    tau: float | None = None,
) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Backward of :func:`_chunk_forward` (``theta`` is the unclipped learning rate).

    Returns ``(dWg, dWS, dq, dk, dv, dtheta, deta, dalpha)`` (``dWS`` packed like ``WS``).
    """
    L = len(Wg)
    n = dy.shape[1]
    a, delta, C, M, Pa, Pe = c.a, c.delta, c.C, c.M, c.Pa, c.Pe
    gamma = Pa[:, 1:, 0, None]
    rho = C[:, 1:, 0, None]
    Cst = C[:, 1:, 1:]
    wides = [_is_wide(w.shape) for w in Wg]

    dWg = [torch.zeros_like(w) for w in Wg]
    # with an incoming end-state gradient, step 5 writes every element of dWS first
    dWS = [torch.empty_like(w) if dWS_end is not None else torch.zeros_like(w) for w in WS]
    ddelta = [torch.zeros_like(x) for x in delta]
    da = [torch.zeros_like(x) for x in a]
    dC = torch.zeros_like(C)
    dPa = torch.zeros_like(Pa)
    dM = torch.zeros_like(M)

    # 5. chunk end
    if dWS_end is not None:
        w_end = C[:, n, 1:, None]
        e_end = M[:, n, 1:, None]
        for l in range(L):
            wide = wides[l]
            Wb, Sb = _unpack(WS[l], wide)
            dNW, dNS = _unpack(dWS_end[l], wide)
            dWb, dSb = _unpack(dWS[l], wide)
            torch.mul(dNW, Pa[:, n, 0, None, None], out=dWb)
            torch.mul(dNW, C[:, n, 0, None, None], out=dSb)
            dSb.addcmul_(dNS, M[:, n, 0, None, None])
            dPa[:, n, 0] += (dNW * Wb).sum((1, 2))
            dC[:, n, 0] += (dNW * Sb).sum((1, 2))
            dM[:, n, 0] += (dNS * Sb).sum((1, 2))
            if wide:  # U = delta^T R, R = [w a | e a]
                R = _scaled_pair(a[l], w_end, e_end)
                ddelta[l].baddbmm_(R, dWS_end[l].transpose(1, 2), alpha=-1.0)
                dR = -torch.bmm(delta[l], dWS_end[l])
                n_in = a[l].shape[2]
                da[l] += w_end * dR[..., :n_in] + e_end * dR[..., n_in:]
                dC[:, n, 1:] += (dR[..., :n_in] * a[l]).sum(-1)
                dM[:, n, 1:] += (dR[..., n_in:] * a[l]).sum(-1)
            else:  # U = R^T a, R = [w delta | e delta]
                R = _scaled_pair(delta[l], w_end, e_end)
                dR = -torch.bmm(a[l], dWS_end[l].transpose(1, 2))
                da[l].baddbmm_(R, dWS_end[l], alpha=-1.0)
                out = delta[l].shape[2]
                ddelta[l] += w_end * dR[..., :out] + e_end * dR[..., out:]
                dC[:, n, 1:] += (dR[..., :out] * delta[l]).sum(-1)
                dM[:, n, 1:] += (dR[..., out:] * delta[l]).sum(-1)

    # 4. retrieval, last layer first
    dq = dy.clone() if residual else None
    dz = dy
    dgamma = torch.zeros_like(gamma)
    drho = torch.zeros_like(rho)
    dCst = torch.zeros_like(Cst)
    for l in range(L - 1, -1, -1):
        h = c.hq[l]
        lhs = c.lhs[l]
        if wides[l]:
            dlhs = torch.bmm(dz, WS[l])  # (n, 2in)
            dWS[l].baddbmm_(dz.transpose(1, 2), lhs)
            n_in = h.shape[2]
            dgamma += (dlhs[..., :n_in] * h).sum(-1, keepdim=True)
            drho += (dlhs[..., n_in:] * h).sum(-1, keepdim=True)
            dh = torch.addcmul(gamma * dlhs[..., :n_in], rho, dlhs[..., n_in:])
        else:
            out = dz.shape[2]
            dgamma += (dz * lhs[..., :out]).sum(-1, keepdim=True)
            drho += (dz * lhs[..., out:]).sum(-1, keepdim=True)
            dXY = _scaled_pair(dz, gamma, rho)
            dWS[l].baddbmm_(dXY.transpose(1, 2), h)
            dh = torch.bmm(dXY, WS[l])
        dP = torch.bmm(dz, delta[l].transpose(1, 2))  # minus sign folded below
        ddelta[l].baddbmm_((Cst * c.Gm[l]).transpose(1, 2), dz, alpha=-1.0)
        dCst.addcmul_(dP, c.Gm[l], value=-1.0)
        dGm = dP.mul_(Cst).neg_()
        dh.baddbmm_(dGm, a[l])
        da[l].baddbmm_(dGm.transpose(1, 2), h)
        if l > 0:
            dz = activation_backward(act, dh, c.zq[l - 1])
        else:
            dq = dh if dq is None else dq.add_(dh)

    # 3. gates
    dC[:, 1:, 1:] += dCst * _lower_mask(n, dy.device)
    dC[:, 1:, 0] += drho[..., 0]
    dPa[:, 1:, 0] += dgamma[..., 0]
    dPa[:, :, 1:] += torch.bmm(dC, M[:, 1:, :].transpose(1, 2))
    dM[:, 1:, :] += torch.bmm(Pa[:, :, 1:].transpose(1, 2), dC)
    dtheta = (dM * Pe).sum(1)[:, 1:]
    dPe = dM.clone()
    dPe[:, :, 1:] *= theta[:, None, :] if c.clip is None else (theta * c.clip)[:, None, :]
    deta = _gate_products_grad(Pe, dPe)
    dalpha = -_gate_products_grad(Pa, dPa)

    # 2b. clipping: theta_eff = theta * clip, clip = tau / sqrt(sq) where sq > tau^2
    if c.clip is not None and c.sq is not None and tau is not None:
        dclip = dtheta * theta
        dtheta = dtheta * c.clip
        dsq = torch.where(c.sq > tau * tau, -c.clip / c.sq * dclip, 0.0)[..., None]  # x 2 / 2
        for l in range(L):
            ddelta[l].addcmul_(dsq * a[l].square().sum(-1, keepdim=True), delta[l])
            da[l].addcmul_(dsq * delta[l].square().sum(-1, keepdim=True), a[l])

    # 2. back-propagated errors (delta_1 was computed last, so it is undone first)
    dz_key: list[Tensor | None] = [None] * L
    for l in range(L - 1):
        dg = activation_backward(act, ddelta[l], c.z[l])
        second = activation_second_derivative(act, c.z[l]).mul_(ddelta[l]).mul_(c.g[l])
        dz_key[l] = second
        ddelta[l + 1].baddbmm_(dg, Wg[l + 1].transpose(1, 2))
        dWg[l + 1].baddbmm_(delta[l + 1].transpose(1, 2), dg)
    derr = ddelta[L - 1]
    dz_key[L - 1] = derr
    dv = -derr
    dk = derr.clone() if residual else None

    # 1. key path
    for l in range(L - 1, -1, -1):
        dWg[l].baddbmm_(dz_key[l].transpose(1, 2), a[l])
        da[l].baddbmm_(dz_key[l], Wg[l])
        if l > 0:
            dz_key[l - 1].add_(activation_backward(act, da[l], c.z[l - 1]))
    dk = da[0] if dk is None else dk.add_(da[0])
    return dWg, dWS, dq, dk, dv, dtheta, deta, dalpha


# ----------------------------------------------------------------------------------------
# whole stream


def _step_functions(device: torch.device) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The per-chunk forward and backward to use: compiled on CPU when available."""
    if device.type == "cpu" and cpu_kernels.load() is not None:
        return cpu_kernels.chunk_forward, cpu_kernels.chunk_backward
    return _chunk_forward, _chunk_backward


def flat_start_state(
    weights: list[Tensor], state: MemoryRunState | None, batch: int, chunk_size: int
) -> tuple[list[Tensor], list[Tensor], list[Tensor] | None, int]:
    """The stream's starting point with (batch, head) merged: ``(W, S, W_g, position)``.

    ``W``, ``S``: one (B*H, out, in) tensor per layer (initial weights and zero momentum for
    a new stream); ``W_g``: the open chunk's start weights, or None when the stream is on a
    chunk boundary.
    """
    def flat(x: Tensor) -> Tensor:
        return x.reshape(-1, *x.shape[2:])

    if state is None:
        W = [flat(w.unsqueeze(0).expand(batch, *w.shape)) for w in weights]
        return W, [torch.zeros_like(w) for w in W], None, 0
    Wg = None if state.grad_weights is None else [flat(w) for w in state.grad_weights]
    if state.position % chunk_size == 0:
        Wg = None
    W = [flat(w) for w in state.weights]
    return W, [flat(s) for s in state.momentum], Wg, state.position


def chunk_bounds(position: int, T: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the chunks of ``T`` tokens that begin at stream ``position``.

    The first chunk is shortened so that later chunks align with multiples of ``chunk_size``
    counted from the start of the stream.
    """
    bounds = []
    start = 0
    first = chunk_size - position % chunk_size
    end = min(first, T)
    while start < T:
        bounds.append((start, end))
        start, end = end, min(end + chunk_size, T)
    return bounds


def _keep_plan(n_chunks: int, per_chunk: int, state_bytes: int, budget: int) -> tuple[int, int]:
    """Which chunks a training forward keeps when all of them do not fit ``budget`` bytes.

    Returns ``(keep_from, interval)``: chunks ``j >= keep_from`` keep their intermediates and
    boundary state (``per_chunk`` bytes each); the chunks before keep only every
    ``interval``-th boundary state (``state_bytes`` each, ``interval ~ sqrt(keep_from)``) and
    are recomputed group by group in the backward. The kept chunks are the last ones: the
    backward reaches them first and frees them before it recomputes anything.
    """
    reserve = (math.isqrt(n_chunks) + 2) * state_bytes  # the checkpoints of the rest
    kept = min(n_chunks - 1, max(0, (budget - reserve) // max(1, per_chunk)))
    keep_from = n_chunks - kept
    return keep_from, max(1, math.isqrt(keep_from))


class _ChunkedMemoryFunction(torch.autograd.Function):
    """Autograd wrapper with a hand-written backward and bounded saved memory.

    While the boundary states and intermediates of every chunk fit ``budget`` bytes they are
    all kept from the forward pass (no recomputation). Beyond that, with ``fill`` the last
    chunks keep theirs as far as the budget goes (without, none do), and of the chunks
    before only every ``k``-th boundary state is kept (``k ~ sqrt(#those chunks)``); the backward
    recomputes those one group of ``k`` chunks at a time from its checkpoint: memory
    ``O(sqrt(#chunks))`` chunk states (plus the budget with ``fill``), for at most one extra
    forward pass (over the chunks not kept).
    """

    @staticmethod
    def forward(ctx, meta, q, k, v, theta, eta, alpha, *flat):  # type: ignore[override]
        L, act, residual, bounds, has_wg, wides, (budget, fill), store, tau = meta
        step_forward, _ = _step_functions(q.device)
        WS = [_pack(w, s) for w, s in zip(flat[:L], flat[L : 2 * L])]
        Wg0 = list(flat[2 * L : 3 * L]) if has_wg else None
        n_chunks = len(bounds)
        measure = store and budget > 0  # keep chunks until a full one is measured, then plan
        # a stream resumed inside a chunk starts with a short one: measure the first full one
        full = max(e - s for s, e in bounds) if bounds else 0
        measure_at = (
            next(j for j, (s, e) in enumerate(bounds) if e - s == full)
            if measure and bounds else -1
        )
        keep_from = 0 if measure else n_chunks  # chunks j >= keep_from keep their cache
        interval = 1 if measure else max(1, math.isqrt(n_chunks))
        checkpoints: dict[int, tuple[list[Tensor] | None, list[Tensor]]] = {}
        caches: dict[int, Any] = {}
        ys = []
        wg: list[Tensor] = []
        for j, (s, e) in enumerate(bounds):
            Wg = Wg0 if (j == 0 and Wg0 is not None) else None
            if store and (j >= keep_from or j % interval == 0):
                checkpoints[j] = (Wg, WS)
            wg = Wg if Wg is not None else [_unpack(x, wd)[0] for x, wd in zip(WS, wides)]
            y, WS_next, cache = step_forward(
                wg, WS, q[:, s:e], k[:, s:e], v[:, s:e], theta[:, s:e], eta[:, s:e],
                alpha[:, s:e], act, residual, keep=j >= keep_from, tau=tau,
            )
            if j == measure_at:
                state_bytes = sum(x.numel() * x.element_size() for x in WS)
                per_chunk = cache.nbytes() + state_bytes
                if per_chunk * n_chunks > budget:  # with fill keep what fits, else nothing
                    keep_from, interval = _keep_plan(
                        n_chunks, per_chunk, state_bytes, budget if fill else 0
                    )
                    for i in range(min(j, keep_from - 1) + 1):  # drop what the plan does not keep
                        caches.pop(i, None)
                        if i % interval:
                            checkpoints.pop(i, None)
            if j >= keep_from:
                caches[j] = cache
            ys.append(y)
            WS = WS_next
        ctx.meta = meta
        ctx.checkpoints = checkpoints
        ctx.caches = caches
        ctx.save_for_backward(q, k, v, theta, eta, alpha)
        y = torch.cat(ys, dim=1)
        W_out = [_unpack(x, wd)[0].contiguous() for x, wd in zip(WS, wides)]
        S_out = [_unpack(x, wd)[1].contiguous() for x, wd in zip(WS, wides)]
        # gradient point of the last chunk (for a stream that stops inside a chunk);
        # cloned so that outputs never alias inputs or each other
        return (y, *W_out, *S_out, *[w.clone() for w in wg])

    @staticmethod
    def backward(ctx, dy, *douts):  # type: ignore[override]
        L, act, residual, bounds, has_wg, wides, _, _, tau = ctx.meta
        q, k, v, theta, eta, alpha = ctx.saved_tensors
        step_forward, step_backward = _step_functions(q.device)
        n_chunks = len(bounds)
        dW_out, dS_out, dWg_last = douts[:L], douts[L : 2 * L], douts[2 * L : 3 * L]
        dWS_next: list[Tensor] | None = None
        if any(d is not None for d in (*dW_out, *dS_out)):
            dWS_next = []
            for l in range(L):
                buf = torch.zeros_like(ctx.checkpoints[0][1][l])
                bw, bs = _unpack(buf, wides[l])
                if dW_out[l] is not None:
                    bw.copy_(dW_out[l])
                if dS_out[l] is not None:
                    bs.copy_(dS_out[l])
                dWS_next.append(buf)
        if dy is None:
            dy = torch.zeros_like(q)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        dth, det, dal = torch.empty_like(theta), torch.empty_like(eta), torch.empty_like(alpha)
        dWg0 = None
        starts = sorted(ctx.checkpoints)
        ends = starts[1:] + [n_chunks]
        for g_start, g_end in zip(reversed(starts), reversed(ends)):
            Wg_saved, WS = ctx.checkpoints.pop(g_start)
            group: list[tuple[list[Tensor] | None, list[Tensor], Any]] = []
            for j in range(g_start, g_end):  # recompute what the forward did not keep
                Wg = Wg_saved if j == g_start else None
                wg = Wg if Wg is not None else [_unpack(x, wd)[0] for x, wd in zip(WS, wides)]
                cache = ctx.caches.pop(j, None)
                WS_next = None
                if cache is None:
                    s, e = bounds[j]
                    _, WS_next, cache = step_forward(
                        wg, WS, q[:, s:e], k[:, s:e], v[:, s:e], theta[:, s:e], eta[:, s:e],
                        alpha[:, s:e], act, residual, keep=True, tau=tau,
                    )
                group.append((Wg, WS, cache))
                if j + 1 < g_end:
                    WS = WS_next
            for j in range(g_end - 1, g_start - 1, -1):
                s, e = bounds[j]
                Wg_saved_j, WS, cache = group.pop()
                Wg = Wg_saved_j if Wg_saved_j is not None else [
                    _unpack(x, wd)[0] for x, wd in zip(WS, wides)
                ]
                dWg, dWS, dq_, dk_, dv_, dth_, det_, dal_ = step_backward(
                    Wg, WS, theta[:, s:e], cache, act, residual, dy[:, s:e], dWS_next, tau
                )
                if j == n_chunks - 1:
                    for l, d in enumerate(dWg_last):
                        if d is not None:
                            dWg[l] += d
                dq[:, s:e], dk[:, s:e], dv[:, s:e] = dq_, dk_, dv_
                dth[:, s:e], det[:, s:e], dal[:, s:e] = dth_, det_, dal_
                if Wg_saved_j is None:
                    for l in range(L):
                        _unpack(dWS[l], wides[l])[0].add_(dWg[l])
                else:
                    dWg0 = dWg
                dWS_next = dWS
        dW = [_unpack(x, wd)[0] for x, wd in zip(dWS_next, wides)]
        dS = [_unpack(x, wd)[1] for x, wd in zip(dWS_next, wides)]
        dflat = dW + dS
        if has_wg:
            dflat += list(dWg0) if dWg0 is not None else [None] * L
        return (None, dq, dk, dv, dth, det, dal, *dflat)


def chunked_run_memory(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: Tensor,
    eta: Tensor,
    alpha: Tensor,
    weights: list[Tensor],
    *,
    chunk_size: int,
    activation: str = "gelu",
    residual: bool = False,
    state: MemoryRunState | None = None,
    max_grad_norm: float | None = None,
    cache_budget_bytes: int | None = None,
) -> tuple[Tensor, MemoryRunState]:
    """Chunked executor. Same arguments and result as :func:`titans_ts.memory.run_memory`.

    ``cache_budget_bytes``: when autograd needs a backward and the boundary states plus
    intermediates of all chunks fit in this many bytes, they are kept from the forward pass;
    otherwise the last chunks keep theirs up to this many bytes, only every
    ``sqrt(#chunks)``-th boundary state of the others is kept, and the backward recomputes
    those group by group (0 = always checkpoint, minimal memory). ``None``: all chunks'
    within :data:`DEFAULT_CACHE_BUDGET_BYTES`, else none
    (:attr:`~titans_ts.memory.MemoryConfig.backward_cache_mb`).

    Expects validated inputs already in the compute dtype (the public entry does that).
    """
    B, H, T, d = q.shape
    L = len(weights)
    G = B * H

    def flat(x: Tensor) -> Tensor:  # (B, H, ...) -> (B*H, ...)
        return x.reshape(G, *x.shape[2:])

    W, S, Wg, position = flat_start_state(weights, state, B, chunk_size)

    bounds = chunk_bounds(position, T, chunk_size)
    tensors = [flat(q), flat(k), flat(v), flat(theta), flat(eta), flat(alpha)]
    wides = tuple(_is_wide(w.shape) for w in weights)
    needs_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (q, k, v, theta, eta, alpha, *W, *S, *(Wg or []))
    )
    budget = (
        (DEFAULT_CACHE_BUDGET_BYTES, False) if cache_budget_bytes is None
        else (cache_budget_bytes, True)
    )
    meta = (L, activation, residual, bounds, Wg is not None, wides, budget,
            needs_grad, max_grad_norm)
    ins = W + S + (Wg if Wg is not None else [])
    outs = _ChunkedMemoryFunction.apply(meta, *tensors, *ins)
    y = outs[0]
    W_new = list(outs[1 : L + 1])
    S_new = list(outs[L + 1 : 2 * L + 1])
    Wg_last = list(outs[2 * L + 1 :])

    new_position = position + T
    open_chunk = new_position % chunk_size != 0
    if T == 0:
        grad_weights = None if Wg is None else Wg
    else:
        grad_weights = Wg_last if open_chunk else None

    def unflat(x: Tensor) -> Tensor:
        return x.reshape(B, H, *x.shape[1:])

    new_state = MemoryRunState(
        weights=[unflat(w) for w in W_new],
        momentum=[unflat(s) for s in S_new],
        grad_weights=None if grad_weights is None else [unflat(w) for w in grad_weights],
        position=new_position,
    )
    return unflat(y), new_state


def forward_flops(
    batch: int, heads: int, seq_len: int, shapes: list[tuple[int, int]], chunk_size: int
) -> int:
    """Multiply-add FLOPs (2 per MAC) the memory math needs in one chunked forward pass.

    Counts the key-path MLP forward, the error back-propagation, the gate matrix product,
    the dual-form retrieval (boundary-weight terms and masked intra-chunk terms) and the
    chunk-end weight and momentum updates. Elementwise work is not counted.
    """
    total = 0
    L = len(shapes)
    for start in range(0, seq_len, chunk_size):
        n = min(chunk_size, seq_len - start)
        f = 0
        for i, (o, i_) in enumerate(shapes):
            f += 2 * n * o * i_  # key path forward
            if i > 0:
                f += 2 * n * o * i_  # delta back-propagation
            f += 2 * n * (2 * o) * i_  # W_b h and S_b h
            f += 2 * n * n * i_ + 2 * n * n * o  # (h a^T) and masked (.) @ delta
            f += 2 * n * (2 * o) * i_  # chunk-end W and S
        f += 2 * (n + 1) * n * (n + 1)  # C = P_a M
        total += f
    del L
    return total * batch * heads
