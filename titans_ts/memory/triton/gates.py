"""Per-chunk gate tensors for the fused kernels, built for every chunk at once (PyTorch).

The kernels of :mod:`.fused_chunk` walk the chunks of a stream one after another, but the
gate algebra of a chunk (the ``(n+1) x (n+1)`` products of ``eta`` and ``1 - alpha``, see
:mod:`titans_ts.memory.chunked`) depends on the gates alone, so it is computed here for all
chunks in one batched pass before the kernel runs, and its backward is applied after the
backward kernel has produced the gradients of the per-chunk gate tensors.

Chunk layout
------------
A stream of ``T`` tokens that starts at ``position`` is cut by
:func:`titans_ts.memory.chunked.chunk_bounds`: a first chunk of ``n0`` tokens (shorter than
``chunk_size`` when the stream resumes mid-chunk), then chunks of ``chunk_size`` (the last
one possibly shorter). Every chunk gets a block of ``BT >= chunk_size`` rows (a power of
two, at least 16, as ``tl.dot`` needs); chunk ``c`` holds its ``n_c`` tokens in rows
``0 .. n_c - 1`` and zero gates after them. Rows after ``n_c`` never influence rows up to
``n_c`` (the products are causal), and the kernels mask them.

Per chunk the kernels read (``G = B * H`` problems, ``NC`` chunks):

- ``cst`` (G, NC, BT, BT): ``C[1:, 1:]``, the intra-chunk weights of the dual form;
- ``vec`` (G, NC, 5, BT): rows ``gamma = P_(1-alpha)[1:, 0]``, ``rho = C[1:, 0]``,
  ``w_end = C[n, 1:]``, ``e_end = M[n, 1:]``, and in row 4 the scalars
  ``(P_(1-alpha)[n, 0], C[n, 0], M[n, 0])`` of the chunk-end update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..chunked import _gate_products, _gate_products_grad, _lower_mask

Tensor = torch.Tensor

__all__ = [
    "ChunkLayout",
    "GateTensors",
    "gate_backward",
    "gate_forward",
    "pad_chunks",
    "unpad_chunks",
]


@dataclass(frozen=True)
class ChunkLayout:
    """Where the tokens of a stream piece sit in the padded per-chunk layout.

    Attributes:
        T: tokens in the piece.
        chunk_size: ``b``.
        n0: tokens of the first chunk (``b - position % b``, capped at ``T``).
        n_chunks: ``NC``, number of (possibly partial) chunks.
        block: ``BT``, rows per chunk block (power of two, ``>= max(16, b)``).
    """

    T: int
    chunk_size: int
    n0: int
    n_chunks: int
    block: int

    @staticmethod
    def build(position: int, T: int, chunk_size: int) -> ChunkLayout:
        """Layout of ``T >= 1`` tokens starting at stream ``position``."""
        n0 = min(chunk_size - position % chunk_size, T)
        n_chunks = 1 + -(-(T - n0) // chunk_size)
        block = max(16, 1 << (chunk_size - 1).bit_length())
        return ChunkLayout(T, chunk_size, n0, n_chunks, block)

    def token_index(self, device: torch.device) -> Tensor:
        """(T,) index of every token in the flattened (NC * BT) padded layout."""
        t = torch.arange(self.T, device=device)
        rest = (t - self.n0).clamp_min(0)
        chunk = torch.where(t < self.n0, 0, 1 + rest // self.chunk_size)
        row = torch.where(t < self.n0, t, rest % self.chunk_size)
        return chunk * self.block + row

    def lengths(self, device: torch.device) -> Tensor:
        """(NC,) number of valid tokens of each chunk."""
        c = torch.arange(self.n_chunks, device=device)
        start = (self.n0 + (c - 1) * self.chunk_size).clamp_min(0)
        end = (self.n0 + c * self.chunk_size).clamp_max(self.T)
        return end - start


def pad_chunks(x: Tensor, layout: ChunkLayout) -> Tensor:
    """(G, T) -> (G, NC, BT): tokens placed in their chunk block, zeros elsewhere."""
    G = x.shape[0]
    out = x.new_zeros(G, layout.n_chunks * layout.block)
    out[:, layout.token_index(x.device)] = x
    return out.view(G, layout.n_chunks, layout.block)


def unpad_chunks(x: Tensor, layout: ChunkLayout) -> Tensor:
    """(G, NC, BT) -> (G, T): inverse of :func:`pad_chunks` (padding dropped)."""
    G = x.shape[0]
    return x.reshape(G, -1)[:, layout.token_index(x.device)]


@dataclass
class GateTensors:
    """Gate algebra of every chunk; shapes with ``N = G * NC`` and ``BT`` rows per chunk.

    Attributes:
        cst: (G, NC, BT, BT) ``C[1:, 1:]`` (contiguous, read by the kernels).
        vec: (G, NC, 5, BT) ``gamma, rho, w_end, e_end, (g_end, r_end, E_end)``.
        Pe, Pa, M, C: (N, BT+1, BT+1) products, kept for :func:`gate_backward`.
        theta: (N, BT) padded learning rates.
        ends: (N,) chunk lengths (row of the chunk-end quantities).
    """

    cst: Tensor
    vec: Tensor
    Pe: Tensor
    Pa: Tensor
    M: Tensor
    C: Tensor
    theta: Tensor
    ends: Tensor


def gate_forward(theta: Tensor, eta: Tensor, alpha: Tensor, layout: ChunkLayout) -> GateTensors:
    """Gate tensors of every chunk.

    Args:
        theta, eta, alpha: (G, T) gates of the stream piece (float32).
        layout: the chunk layout of the piece.
    """
    G = theta.shape[0]
    NC, BT = layout.n_chunks, layout.block
    N = G * NC
    th = pad_chunks(theta, layout).reshape(N, BT)
    et = pad_chunks(eta, layout).reshape(N, BT)
    al = pad_chunks(alpha, layout).reshape(N, BT)
    Pe = _gate_products(et)
    Pa = _gate_products(1.0 - al)
    theta_hat = torch.cat([th.new_ones(N, 1), th], dim=1)
    M = Pe * theta_hat[:, None, :]
    C = torch.bmm(Pa[:, :, 1:], M[:, 1:, :])
    ends = layout.lengths(theta.device).repeat(G)
    rows = torch.arange(N, device=theta.device)
    vec = theta.new_zeros(N, 5, BT)
    vec[:, 0] = Pa[:, 1:, 0]
    vec[:, 1] = C[:, 1:, 0]
    vec[:, 2] = C[rows, ends, 1:]
    vec[:, 3] = M[rows, ends, 1:]
    vec[:, 4, 0] = Pa[rows, ends, 0]
    vec[:, 4, 1] = C[rows, ends, 0]
    vec[:, 4, 2] = M[rows, ends, 0]
    cst = C[:, 1:, 1:].contiguous().view(G, NC, BT, BT)
    return GateTensors(cst, vec.view(G, NC, 5, BT), Pe, Pa, M, C, th, ends)


def gate_backward(
    gates: GateTensors, dcst: Tensor, dvec: Tensor, layout: ChunkLayout
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``(theta, eta, alpha)`` from those of ``cst`` and ``vec``.

    Args:
        gates: the result of :func:`gate_forward`.
        dcst: (G, NC, BT, BT) gradient of ``cst`` (entries above the diagonal ignored).
        dvec: (G, NC, 5, BT) gradient of ``vec`` (row 4: only columns 0-2 are used).
    Returns:
        ``(dtheta, deta, dalpha)``, each (G, T).
    """
    G = dcst.shape[0]
    NC, BT = layout.n_chunks, layout.block
    N = G * NC
    Pe, Pa, M, C = gates.Pe, gates.Pa, gates.M, gates.C
    dcst = dcst.reshape(N, BT, BT)
    dvec = dvec.reshape(N, 5, BT)
    rows = torch.arange(N, device=dcst.device)
    ends = gates.ends
    dC = torch.zeros_like(C)
    dPa = torch.zeros_like(Pa)
    dM = torch.zeros_like(M)
    dC[:, 1:, 1:] = dcst * _lower_mask(BT, dcst.device)
    dC[:, 1:, 0] = dvec[:, 1]
    dPa[:, 1:, 0] = dvec[:, 0]
    dC[rows, ends, 1:] += dvec[:, 2]
    dM[rows, ends, 1:] += dvec[:, 3]
    dPa[rows, ends, 0] += dvec[:, 4, 0]
    dC[rows, ends, 0] += dvec[:, 4, 1]
    dM[rows, ends, 0] += dvec[:, 4, 2]
    dPa[:, :, 1:] += torch.bmm(dC, M[:, 1:, :].transpose(1, 2))
    dM[:, 1:, :] += torch.bmm(Pa[:, :, 1:].transpose(1, 2), dC)
    dtheta = (dM * Pe).sum(1)[:, 1:]
    dPe = dM
    dPe[:, :, 1:] *= gates.theta[:, None, :]
    deta = _gate_products_grad(Pe, dPe)
    dalpha = -_gate_products_grad(Pa, dPa)

    def back(x: Tensor) -> Tensor:
        return unpad_chunks(x.reshape(G, NC, BT), layout)

    return back(dtheta), back(deta), back(dalpha)
