"""Built-in DNA classification data: random sequences with one planted motif per class.

The no-data fallback of DESIGN.md §6 and a fast, fully controlled dataset for tests. Each
class ``c`` owns a random motif of ``motif_length`` bases. A sequence of class ``c`` is i.i.d.
background (with the requested GC content) into which, with probability ``plant_probability``,
the class-``c`` motif is written at a uniformly random position, on a random strand when
``both_strands`` (the reverse complement is planted on the minus strand), with each motif base
replaced by a random base with probability ``mutation_rate``. Sequences that were not planted
are pure background, so ``plant_probability`` bounds the best achievable accuracy from above at
about ``plant_probability + (1 - plant_probability) / n_classes``.

Everything is generated with numpy from ``seed``; equal arguments give equal data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from titans_ts.datasets.genomics import SequenceSplit

__all__ = ["PlantedMotifs", "make_planted_motif_dataset", "make_planted_motif_splits"]

_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


@dataclass(frozen=True)
class PlantedMotifs:
    """The generator's ground truth: ``motifs[c]`` is the forward-strand motif of class ``c``."""

    motifs: tuple[str, ...]


def _check_probability(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _random_motifs(
    n_classes: int, motif_length: int, rng: np.random.Generator
) -> tuple[str, ...]:
    """Distinct motifs, none equal to another's reverse complement."""
    if 4**motif_length < 2 * n_classes:
        raise ValueError(
            f"motif_length={motif_length} allows too few distinct motifs for {n_classes} "
            "classes; use a longer motif"
        )
    motifs: list[str] = []
    seen: set[str] = set()
    while len(motifs) < n_classes:
        motif = _BASES[rng.integers(0, 4, motif_length)].tobytes().decode("ascii")
        rc = motif.translate(str.maketrans("ACGT", "TGCA"))[::-1]
        if motif in seen or rc in seen:
            continue
        motifs.append(motif)
        seen.update((motif, rc))
    return tuple(motifs)


def make_planted_motif_dataset(
    n_samples: int = 1000,
    length: int | tuple[int, int] = 200,
    n_classes: int = 2,
    *,
    motif_length: int = 8,
    motifs: tuple[str, ...] | None = None,
    plant_probability: float = 1.0,
    mutation_rate: float = 0.0,
    both_strands: bool = True,
    gc_content: float = 0.5,
    seed: int = 0,
    split: str = "train",
) -> tuple[SequenceSplit, PlantedMotifs]:
    """Generate a balanced planted-motif classification set.

    Args:
        n_samples: number of sequences; classes are balanced (counts differ by at most one).
        length: fixed length, or ``(min, max)`` inclusive for uniformly random lengths.
        n_classes: number of classes (each owns a motif).
        motif_length: motif length in bases (ignored when ``motifs`` is given).
        motifs: explicit motifs over ``ACGT``, one per class (all of one length).
        plant_probability: chance that a sequence carries its class motif.
        mutation_rate: per-base chance that a planted motif base is replaced by a random base.
        both_strands: plant the reverse complement on a random half of sequences.
        gc_content: background G+C fraction.
        seed: random seed (numpy ``default_rng``).
        split: split name recorded in the result.

    Returns:
        ``(SequenceSplit, PlantedMotifs)``. The frame has columns ``sequence`` (upper-case
        ``ACGT`` strings), ``label`` (int64), ``motif_start`` (int64, -1 if not planted) and
        ``motif_strand`` (``"+"``, ``"-"`` or ``""``); classes are ``class_0``, ``class_1``, ...
    """
    n_samples = _check_positive_int("n_samples", n_samples)
    n_classes = _check_positive_int("n_classes", n_classes, minimum=2)
    plant_probability = _check_probability("plant_probability", plant_probability)
    mutation_rate = _check_probability("mutation_rate", mutation_rate)
    gc_content = _check_probability("gc_content", gc_content)
    rng = np.random.default_rng(seed)
    if motifs is None:
        motif_length = _check_positive_int("motif_length", motif_length)
        motifs = _random_motifs(n_classes, motif_length, rng)
    else:
        motifs = tuple(motifs)
        if len(motifs) != n_classes:
            raise ValueError(f"got {len(motifs)} motifs for n_classes={n_classes}; give one each")
        if len({len(m) for m in motifs}) != 1 or any(set(m) - set("ACGT") for m in motifs):
            raise ValueError(f"motifs must be equal-length strings over ACGT, got {motifs}")
        motif_length = len(motifs[0])
    if isinstance(length, tuple):
        if len(length) != 2:
            raise ValueError(f"length must be an int or (min, max), got {length!r}")
        low = _check_positive_int("length[0]", length[0])
        high = _check_positive_int("length[1]", length[1])
        if high < low:
            raise ValueError(f"length=(min, max) needs min <= max, got {length!r}")
        lengths = rng.integers(low, high + 1, n_samples)
    else:
        lengths = np.full(n_samples, _check_positive_int("length", length), dtype=np.int64)
    if lengths.min() < motif_length:
        raise ValueError(
            f"sequences of length {int(lengths.min())} cannot hold a motif of length "
            f"{motif_length}; increase length"
        )

    labels = rng.permutation(np.arange(n_samples) % n_classes).astype(np.int64)
    width = int(lengths.max())
    at = (1.0 - gc_content) / 2.0
    gc = gc_content / 2.0
    codes = rng.choice(4, size=(n_samples, width), p=[at, gc, gc, at]).astype(np.uint8)

    motif_codes = np.array([[b"ACGT".index(c.encode()) for c in m] for m in motifs], np.uint8)
    planted = rng.random(n_samples) < plant_probability
    minus = planted & both_strands & (rng.random(n_samples) < 0.5)
    starts = np.where(
        planted, (rng.random(n_samples) * (lengths - motif_length + 1)).astype(np.int64), -1
    )
    rows = np.flatnonzero(planted)
    insert = motif_codes[labels[rows]]  # (n_planted, m)
    insert = np.where(minus[rows, None], 3 - insert[:, ::-1], insert)
    if mutation_rate > 0.0:
        mutate = rng.random(insert.shape) < mutation_rate
        insert = np.where(mutate, rng.integers(0, 4, insert.shape), insert).astype(np.uint8)
    cols = starts[rows, None] + np.arange(motif_length)[None, :]
    codes[rows[:, None], cols] = insert

    text = _BASES[codes]
    sequences = [text[i, : lengths[i]].tobytes().decode("ascii") for i in range(n_samples)]
    strand = np.where(planted, np.where(minus, "-", "+"), "")
    frame = pd.DataFrame(
        {
            "sequence": sequences,
            "label": labels,
            "motif_start": starts.astype(np.int64),
            "motif_strand": strand,
        }
    )
    classes = tuple(f"class_{c}" for c in range(n_classes))
    source = (
        f"synthetic planted motifs (seed={seed}, motifs={list(motifs)}, "
        f"plant_probability={plant_probability}, mutation_rate={mutation_rate})"
    )
    split_data = SequenceSplit(frame, classes, "synthetic_planted_motifs", split, source)
    return split_data, PlantedMotifs(motifs)


def make_planted_motif_splits(
    n_train: int = 2000,
    n_dev: int = 500,
    n_test: int = 500,
    *,
    length: int | tuple[int, int] = 200,
    n_classes: int = 2,
    motif_length: int = 8,
    plant_probability: float = 1.0,
    mutation_rate: float = 0.0,
    both_strands: bool = True,
    gc_content: float = 0.5,
    seed: int = 0,
) -> tuple[dict[str, SequenceSplit], PlantedMotifs]:
    """Train/dev/test splits sharing one set of motifs (shaped like :func:`load_gue`'s result).

    Arguments are those of :func:`make_planted_motif_dataset`. The motifs are drawn from
    ``seed``; each split's sequences come from its own child seed, so the splits differ.

    Returns:
        ``({"train": ..., "dev": ..., "test": ...}, PlantedMotifs)``.
    """
    common = dict(
        length=length,
        n_classes=n_classes,
        plant_probability=plant_probability,
        mutation_rate=mutation_rate,
        both_strands=both_strands,
        gc_content=gc_content,
    )
    motifs = _random_motifs(
        _check_positive_int("n_classes", n_classes, minimum=2),
        _check_positive_int("motif_length", motif_length),
        np.random.default_rng(seed),
    )
    children = np.random.SeedSequence(seed).spawn(3)
    out: dict[str, SequenceSplit] = {}
    for (split, n), child in zip(
        (("train", n_train), ("dev", n_dev), ("test", n_test)), children, strict=True
    ):
        out[split], _ = make_planted_motif_dataset(
            n, motifs=motifs, seed=int(child.generate_state(1)[0]), split=split, **common
        )
    return out, PlantedMotifs(motifs)
