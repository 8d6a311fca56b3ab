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

from dataclasses import dataclass

import torch

from .activations import activation_and_derivative, activation_derivatives
from .spec import MemoryRunState

Tensor = torch.Tensor

__all__ = ["chunked_run_memory", "chunk_bounds", "forward_flops"]


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


# ----------------------------------------------------------------------------------------
# one chunk


@dataclass
class _ChunkCache:
    """Intermediates of one chunk kept for its backward (recomputed, never stored long)."""

    a: list[Tensor]  # key-path layer inputs a_0 = k, a_1, ..., a_{L-1}: (G, n, in_l)
    z: list[Tensor]  # key-path pre-activations z_1..z_L: (G, n, out_l)
    g: list[Tensor | None]  # g_l = delta_{l+1} W_g[l+1] for hidden layers
    delta: list[Tensor]  # delta_1..delta_L: (G, n, out_l)
    Pe: Tensor
    Pa: Tensor
    M: Tensor
    C: Tensor
    hq: list[Tensor]  # query-path layer inputs h_0 = q, h_1, ...: (G, n, in_l)
    dact_q: list[Tensor]  # act'(z~_l) for hidden query-path layers
    XY: list[Tensor]  # h_{l-1} [W_b; S_b]^T: (G, n, 2 out_l)
    Gm: list[Tensor]  # h_{l-1} a_{l-1}^T: (G, n, n)


def _chunk_forward(
    Wg: list[Tensor],
    Wb: list[Tensor],
    Sb: list[Tensor],
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: Tensor,
    eta: Tensor,
    alpha: Tensor,
    act: str,
    residual: bool,
    keep: bool,
) -> tuple[Tensor, list[Tensor], list[Tensor], _ChunkCache | None]:
    """One chunk. ``W*``/``S*``: lists of (G, out, in); q, k, v: (G, n, d); gates: (G, n).

    Returns ``(y (G, n, d), W_end, S_end, cache or None)``.
    """
    L = len(Wg)
    n = q.shape[1]

    # 1. key path at the chunk-start weights
    a = [k]
    z: list[Tensor] = []
    dact_k: list[Tensor] = []
    h = k
    for l in range(L):
        zl = h @ Wg[l].transpose(1, 2)
        z.append(zl)
        if l < L - 1:
            h, d1 = activation_and_derivative(act, zl)
            a.append(h)
            dact_k.append(d1)
    err = z[-1] - v
    if residual:
        err = err + k

    # 2. back-propagated errors: u_s = delta_l[s] a_{l-1}[s]^T
    delta: list[Tensor] = [err] * L
    g: list[Tensor | None] = [None] * L
    for l in range(L - 2, -1, -1):
        g[l] = delta[l + 1] @ Wg[l + 1]
        delta[l] = g[l] * dact_k[l]

    # 3. gate matrices
    Pe = _gate_products(eta)
    Pa = _gate_products(1.0 - alpha)
    theta_hat = torch.cat([theta.new_ones(theta.shape[0], 1), theta], dim=1)
    M = Pe * theta_hat[:, None, :]
    C = Pa[:, :, 1:] @ M[:, 1:, :]
    gamma = Pa[:, 1:, 0, None]
    rho = C[:, 1:, 0, None]
    Cst = C[:, 1:, 1:]

    # 4. retrieval in dual form
    hq = [q]
    dact_q: list[Tensor] = []
    XYs: list[Tensor] = []
    Gms: list[Tensor] = []
    h = q
    y = q
    for l in range(L):
        out = Wb[l].shape[1]
        XY = h @ torch.cat([Wb[l], Sb[l]], dim=1).transpose(1, 2)
        Gm = h @ a[l].transpose(1, 2)
        zl = gamma * XY[..., :out] + rho * XY[..., out:] - (Cst * Gm) @ delta[l]
        if keep:
            XYs.append(XY)
            Gms.append(Gm)
        if l < L - 1:
            h, d1 = activation_and_derivative(act, zl)
            hq.append(h)
            dact_q.append(d1)
        else:
            y = zl + q if residual else zl

    # 5. chunk end
    w_end = C[:, n, 1:, None]
    e_end = M[:, n, 1:, None]
    g_end = Pa[:, n, 0, None, None]
    r_end = C[:, n, 0, None, None]
    E_end = M[:, n, 0, None, None]
    W_end, S_end = [], []
    for l in range(L):
        out = Wb[l].shape[1]
        U = torch.cat([w_end * delta[l], e_end * delta[l]], dim=2).transpose(1, 2) @ a[l]
        W_end.append(g_end * Wb[l] + r_end * Sb[l] - U[:, :out])
        S_end.append(E_end * Sb[l] - U[:, out:])

    cache = None
    if keep:
        cache = _ChunkCache(a, z, g, delta, Pe, Pa, M, C, hq, dact_q, XYs, Gms)
    return y, W_end, S_end, cache


def _chunk_backward(
    Wg: list[Tensor],
    Wb: list[Tensor],
    Sb: list[Tensor],
    theta: Tensor,
    c: _ChunkCache,
    act: str,
    residual: bool,
    dy: Tensor,
    dW_end: list[Tensor] | None,
    dS_end: list[Tensor] | None,
) -> tuple[list[Tensor], list[Tensor], list[Tensor], Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Backward of :func:`_chunk_forward`.

    Returns ``(dWg, dWb, dSb, dq, dk, dv, dtheta, deta, dalpha)``.
    """
    L = len(Wg)
    G, n, _ = dy.shape
    a, delta, C, M, Pa, Pe = c.a, c.delta, c.C, c.M, c.Pa, c.Pe
    gamma = Pa[:, 1:, 0, None]
    rho = C[:, 1:, 0, None]
    Cst = C[:, 1:, 1:]

    dWg = [torch.zeros_like(w) for w in Wg]
    dWb = [torch.zeros_like(w) for w in Wb]
    dSb = [torch.zeros_like(s) for s in Sb]
    ddelta = [torch.zeros_like(d) for d in delta]
    da = [torch.zeros_like(x) for x in a]
    dC = torch.zeros_like(C)
    dPa = torch.zeros_like(Pa)
    dM = torch.zeros_like(M)

    # 5. chunk end
    if dW_end is not None or dS_end is not None:
        w_end = C[:, n, 1:, None]
        e_end = M[:, n, 1:, None]
        for l in range(L):
            out = Wb[l].shape[1]
            dWe = dW_end[l] if dW_end is not None else torch.zeros_like(Wb[l])
            dSe = dS_end[l] if dS_end is not None else torch.zeros_like(Sb[l])
            dWb[l] += Pa[:, n, 0, None, None] * dWe
            dSb[l] += C[:, n, 0, None, None] * dWe + M[:, n, 0, None, None] * dSe
            dPa[:, n, 0] += (dWe * Wb[l]).sum((1, 2))
            dC[:, n, 0] += (dWe * Sb[l]).sum((1, 2))
            dM[:, n, 0] += (dSe * Sb[l]).sum((1, 2))
            D = torch.cat([dWe, dSe], dim=1)  # (G, 2out, in)
            R = torch.cat([w_end * delta[l], e_end * delta[l]], dim=2)  # (G, n, 2out)
            dR = -(a[l] @ D.transpose(1, 2))  # (G, n, 2out)
            da[l] -= R @ D
            ddelta[l] += w_end * dR[..., :out] + e_end * dR[..., out:]
            dC[:, n, 1:] += (dR[..., :out] * delta[l]).sum(-1)
            dM[:, n, 1:] += (dR[..., out:] * delta[l]).sum(-1)

    # 4. retrieval, last layer first
    dq = dy if residual else torch.zeros_like(dy)
    dz = dy
    dgamma = torch.zeros_like(gamma)
    drho = torch.zeros_like(rho)
    dCst = torch.zeros_like(Cst)
    for l in range(L - 1, -1, -1):
        out = Wb[l].shape[1]
        h = c.hq[l]
        XY = c.XY[l]
        dgamma += (dz * XY[..., :out]).sum(-1, keepdim=True)
        drho += (dz * XY[..., out:]).sum(-1, keepdim=True)
        GR = torch.cat([gamma * dz, rho * dz], dim=2)  # (G, n, 2out)
        dWS = GR.transpose(1, 2) @ h
        dWb[l] += dWS[:, :out]
        dSb[l] += dWS[:, out:]
        dh = GR @ torch.cat([Wb[l], Sb[l]], dim=1)
        dP = -(dz @ delta[l].transpose(1, 2))  # (G, n, n)
        ddelta[l] -= (Cst * c.Gm[l]).transpose(1, 2) @ dz
        dCst += dP * c.Gm[l]
        dGm = dP * Cst
        dh += dGm @ a[l]
        da[l] += dGm.transpose(1, 2) @ h
        if l > 0:
            dz = dh * c.dact_q[l - 1]
        else:
            dq = dq + dh

    # 3. gates
    dC[:, 1:, 1:] += dCst * _lower_mask(n, dy.device)
    dC[:, 1:, 0] += drho[..., 0]
    dPa[:, 1:, 0] += dgamma[..., 0]
    dPa[:, :, 1:] += dC @ M[:, 1:, :].transpose(1, 2)
    dM[:, 1:, :] += Pa[:, :, 1:].transpose(1, 2) @ dC
    dtheta = (dM * Pe).sum(1)[:, 1:]
    dPe = dM.clone()
    dPe[:, :, 1:] *= theta[:, None, :]
    deta = _gate_products_grad(Pe, dPe)
    dalpha = -_gate_products_grad(Pa, dPa)

    # 2. back-propagated errors (delta_1 was computed last, so it is undone first)
    dz_key = [torch.zeros_like(x) for x in c.z]
    for l in range(L - 1):
        _, d1, d2 = activation_derivatives(act, c.z[l])
        dg = ddelta[l] * d1
        dz_key[l] += ddelta[l] * c.g[l] * d2
        ddelta[l + 1] += dg @ Wg[l + 1].transpose(1, 2)
        dWg[l + 1] += delta[l + 1].transpose(1, 2) @ dg
    derr = ddelta[L - 1]
    dz_key[L - 1] += derr
    dv = -derr
    dk = derr.clone() if residual else torch.zeros_like(derr)

    # 1. key path
    for l in range(L - 1, -1, -1):
        dWg[l] += dz_key[l].transpose(1, 2) @ a[l]
        da[l] += dz_key[l] @ Wg[l]
        if l > 0:
            _, d1 = activation_and_derivative(act, c.z[l - 1])
            dz_key[l - 1] += da[l] * d1
    dk = dk + da[0]
    return dWg, dWb, dSb, dq, dk, dv, dtheta, deta, dalpha


# ----------------------------------------------------------------------------------------
# whole stream


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


class _ChunkedMemoryFunction(torch.autograd.Function):
    """Autograd wrapper: forward keeps only chunk-boundary states, backward recomputes."""

    @staticmethod
    def forward(ctx, meta, q, k, v, theta, eta, alpha, *flat):  # type: ignore[override]
        L, act, residual, bounds, has_wg = meta
        W = list(flat[:L])
        S = list(flat[L : 2 * L])
        Wg0 = list(flat[2 * L : 3 * L]) if has_wg else None
        ys = []
        boundary = []
        Wg = Wg0 if Wg0 is not None else W
        for j, (s, e) in enumerate(bounds):
            if j > 0:
                Wg = W
            boundary.append((Wg, W, S))
            y, W, S, _ = _chunk_forward(
                Wg, W, S, q[:, s:e], k[:, s:e], v[:, s:e], theta[:, s:e], eta[:, s:e],
                alpha[:, s:e], act, residual, keep=False,
            )
            ys.append(y)
        ctx.meta = meta
        ctx.boundary = boundary
        ctx.save_for_backward(q, k, v, theta, eta, alpha)
        y = torch.cat(ys, dim=1) if ys else torch.zeros_like(q)
        # grad weights of an open final chunk: clone so that outputs never alias inputs
        last_wg = [w.clone() for w in boundary[-1][0]] if boundary else [w.clone() for w in W]
        return (y, *W, *S, *last_wg)

    @staticmethod
    def backward(ctx, dy, *douts):  # type: ignore[override]
        L, act, residual, bounds, has_wg = ctx.meta
        q, k, v, theta, eta, alpha = ctx.saved_tensors
        dW_next = list(douts[:L])
        dS_next = list(douts[L : 2 * L])
        dWg_last = list(douts[2 * L : 3 * L])
        dW_next = [None if d is None else d for d in dW_next]
        if all(d is None for d in dW_next):
            dW_next = None
        if all(d is None for d in dS_next):
            dS_next = None
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        dth, det, dal = torch.zeros_like(theta), torch.zeros_like(eta), torch.zeros_like(alpha)
        dWg0 = None
        if dy is None:
            dy = torch.zeros_like(q)
        for j in range(len(bounds) - 1, -1, -1):
            s, e = bounds[j]
            Wg, Wb, Sb = ctx.boundary[j]
            if dW_next is not None:
                dW_next = [torch.zeros_like(w) if d is None else d for d, w in zip(dW_next, Wb)]
            if dS_next is not None:
                dS_next = [torch.zeros_like(w) if d is None else d for d, w in zip(dS_next, Sb)]
            _, _, _, cache = _chunk_forward(
                Wg, Wb, Sb, q[:, s:e], k[:, s:e], v[:, s:e], theta[:, s:e], eta[:, s:e],
                alpha[:, s:e], act, residual, keep=True,
            )
            dWg, dWb, dSb, dq_, dk_, dv_, dth_, det_, dal_ = _chunk_backward(
                Wg, Wb, Sb, theta[:, s:e], cache, act, residual, dy[:, s:e], dW_next, dS_next
            )
            if j == len(bounds) - 1:
                for l, d in enumerate(dWg_last):
                    if d is not None:
                        dWg[l] = dWg[l] + d
            dq[:, s:e], dk[:, s:e], dv[:, s:e] = dq_, dk_, dv_
            dth[:, s:e], det[:, s:e], dal[:, s:e] = dth_, det_, dal_
            if Wg is Wb:
                dW_next = [a + b for a, b in zip(dWb, dWg)]
            else:
                dW_next = dWb
                dWg0 = dWg
            dS_next = dSb
        dflat = list(dW_next) + list(dS_next)
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
) -> tuple[Tensor, MemoryRunState]:
    """Chunked executor. Same arguments and result as :func:`titans_ts.memory.run_memory`.

    Expects validated inputs already in the compute dtype (the public entry does that).
    """
    B, H, T, d = q.shape
    L = len(weights)
    G = B * H

    def flat(x: Tensor) -> Tensor:  # (B, H, ...) -> (B*H, ...)
        return x.reshape(G, *x.shape[2:])

    if state is None:
        W = [w.unsqueeze(0).expand(B, *w.shape).reshape(G, *w.shape[1:]) for w in weights]
        S = [torch.zeros_like(w) for w in W]
        Wg = None
        position = 0
    else:
        W = [flat(w) for w in state.weights]
        S = [flat(s) for s in state.momentum]
        Wg = None if state.grad_weights is None else [flat(w) for w in state.grad_weights]
        position = state.position
    if Wg is not None and position % chunk_size == 0:
        Wg = None

    bounds = chunk_bounds(position, T, chunk_size)
    tensors = [flat(q), flat(k), flat(v), flat(theta), flat(eta), flat(alpha)]
    meta = (L, activation, residual, bounds, Wg is not None)
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
