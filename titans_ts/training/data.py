"""Lazy forecasting windows over many series, and the Lightning data module serving them.

Windows are never materialised: a dataset stores the series themselves plus one integer
per series (cumulative window counts); item ``i`` is located by a binary search and sliced
out as a view. Memory is ``O(total length + number of series)``, flat in the number of
windows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

__all__ = ["ForecastDataModule", "SeriesWindows", "split_window_ranges"]


class SeriesWindows(Dataset):
    """Forecasting windows over many series (possibly of different lengths).

    Item ``i`` is ``(x, y)`` with ``x = series[k][s : s + L]`` ``(L, C)`` and
    ``y = series[k][s + L : s + L + H]`` ``(H, C)`` for the ``i``-th admissible
    ``(k, s)`` in series-major order; both are float32 views (no copy).

    Args:
        series: ``K`` arrays/tensors of shape ``(T_k, C)`` (same ``C`` for all).
        lookback: ``L`` >= 1.
        horizon: ``H`` >= 1.
        starts: per series, the inclusive range ``(first, last)`` of window start positions;
            ``last < first`` means no window. Default: every full window,
            ``(0, T_k - L - H)``.
        stride: distance between consecutive window starts of a series.
        season: optional per-series seasonal profile values, the same shapes as ``series``
            (:mod:`titans_ts.encoders.seasonal`); items are then ``(x, y, q)`` with
            ``q = season[k][s : s + L + H]`` ``(L + H, C)``, the profile over the window.
    """

    def __init__(
        self,
        series: Sequence[np.ndarray | torch.Tensor],
        lookback: int,
        horizon: int,
        starts: Sequence[tuple[int, int]] | None = None,
        stride: int = 1,
        season: Sequence[np.ndarray | torch.Tensor] | None = None,
    ) -> None:
        for name, value in (("lookback", lookback), ("horizon", horizon), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.lookback, self.horizon, self.stride = int(lookback), int(horizon), int(stride)
        self.series = [torch.as_tensor(s, dtype=torch.float32) for s in series]
        if not self.series:
            raise ValueError("series must contain at least one (T, C) array")
        channels = {s.shape[1] if s.ndim == 2 else -1 for s in self.series}
        if len(channels) != 1 or -1 in channels:
            raise ValueError(
                "every series must be a (T, C) array with the same C, got shapes "
                f"{sorted({tuple(s.shape) for s in self.series})}"
            )
        self.season = None
        if season is not None:
            self.season = [torch.as_tensor(s, dtype=torch.float32) for s in season]
            shapes = [tuple(s.shape) for s in self.series]
            if [tuple(s.shape) for s in self.season] != shapes:
                raise ValueError(
                    f"season must match the series' shapes {shapes[:3]}..., got "
                    f"{[tuple(s.shape) for s in self.season][:3]}..."
                )
        width = self.lookback + self.horizon
        if starts is None:
            starts = [(0, s.shape[0] - width) for s in self.series]
        if len(starts) != len(self.series):
            raise ValueError(f"got {len(starts)} start ranges for {len(self.series)} series")
        counts = []
        self.first = []
        for k, (first, last) in enumerate(starts):
            if last >= first and (first < 0 or last + width > self.series[k].shape[0]):
                raise ValueError(
                    f"series {k}: window starts {first}..{last} do not fit in "
                    f"{self.series[k].shape[0]} rows with lookback+horizon={width}"
                )
            counts.append(0 if last < first else (last - first) // self.stride + 1)
            self.first.append(int(first))
        self.counts = np.asarray(counts, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])

    @property
    def n_channels(self) -> int:
        """Channels ``C`` per window."""
        return int(self.series[0].shape[1])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """``(series k, start s)`` of window ``index``."""
        n = len(self)
        i = int(index) + (n if int(index) < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"window index {index} out of range for {n} windows")
        k = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return k, self.first[k] + (i - int(self.offsets[k])) * self.stride

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        k, s = self.locate(index)
        mid = s + self.lookback
        data = self.series[k]
        if self.season is None:
            return data[s:mid], data[mid : mid + self.horizon]
        return data[s:mid], data[mid : mid + self.horizon], self.season[k][s : mid + self.horizon]

    def iter_blocks(self, block: int = 4096) -> Iterator[tuple[np.ndarray, ...]]:
        """Every window in order, as float64 blocks ``x (b, L, C)``, ``y (b, H, C)`` (and
        ``s (b, L + H, C)`` with a season), ``b <= block`` (closed-form fits over all
        windows without materialising them)."""
        width = self.lookback + self.horizon
        for k, count in enumerate(self.counts):
            if count == 0:
                continue
            first = self.first[k]
            stop = first + (int(count) - 1) * self.stride + width
            views = [
                sliding_window_view(src[k][first:stop].numpy(), width, axis=0)[:: self.stride]
                for src in ([self.series] if self.season is None else [self.series, self.season])
            ]
            for start in range(0, views[0].shape[0], block):
                chunks = [
                    np.ascontiguousarray(v[start : start + block].transpose(0, 2, 1), np.float64)
                    for v in views
                ]
                yield (chunks[0][:, : self.lookback], chunks[0][:, self.lookback :], *chunks[1:])


def split_window_ranges(
    lengths: Sequence[int], lookback: int, horizon: int, val_sizes: Sequence[int]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Train and validation window-start ranges per series (no target leaks across).

    The last ``v_k = val_sizes[k]`` steps of series ``k`` are its validation targets:
    validation windows have their whole target inside them (``v_k >= H`` needed, else the
    series has none), training windows end before them.

    Returns:
        ``(train_ranges, val_ranges)``, inclusive ``(first, last)`` start ranges for
        :class:`SeriesWindows` (``last < first`` when empty).
    """
    width = lookback + horizon
    train, val = [], []
    for length, v in zip(lengths, val_sizes, strict=True):
        if v >= horizon:
            train.append((0, length - v - width))
            val.append((max(0, length - v - lookback), length - width))
        else:
            train.append((0, length - width))
            val.append((0, -1))
    return train, val


class ForecastDataModule(pl.LightningDataModule):
    """Serves :class:`SeriesWindows` to a Trainer, reproducibly.

    Args:
        train: training windows.
        val: validation windows or ``None``.
        batch_size: windows per batch.
        windows_per_epoch: windows drawn (without replacement) per epoch; ``None``: all.
        max_val_windows: validation uses at most this many windows, evenly spaced.
        seed: seed of the sampling generator (epochs draw different windows, but the
            sequence of draws is fixed by the seed).
    """

    def __init__(
        self,
        train: SeriesWindows,
        val: SeriesWindows | None,
        *,
        batch_size: int,
        windows_per_epoch: int | None,
        max_val_windows: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.train = train
        self.val = val
        self.batch_size = int(batch_size)
        self.windows_per_epoch = windows_per_epoch
        self.max_val_windows = int(max_val_windows)
        self.seed = int(seed)

    def train_dataloader(self) -> DataLoader:
        n = len(self.train)
        num = n if self.windows_per_epoch is None else min(n, int(self.windows_per_epoch))
        generator = torch.Generator().manual_seed(self.seed)
        sampler = RandomSampler(self.train, num_samples=num, generator=generator)
        return DataLoader(self.train, batch_size=self.batch_size, sampler=sampler, num_workers=0)

    def val_dataloader(self) -> DataLoader | list:
        if self.val is None or len(self.val) == 0:
            return []
        data: Dataset = self.val
        if len(self.val) > self.max_val_windows:
            idx = torch.linspace(0, len(self.val) - 1, self.max_val_windows).round().long()
            data = Subset(self.val, idx.tolist())
        return DataLoader(data, batch_size=self.batch_size * 4, shuffle=False, num_workers=0)
