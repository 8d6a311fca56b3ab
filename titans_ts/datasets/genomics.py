"""Genomic sequence-classification datasets: Genomic Benchmarks and GUE.

Three sources, one return type (:class:`SequenceSplit`: a DataFrame with ``sequence`` and
``label`` columns plus the class names):

1. **Genomic Benchmarks** (Grešová et al. 2023)

   * :func:`load_genomic_benchmark` reads the folder the upstream downloader writes,
     ``<root>/<name>/{train,test}/<class>/<id>.txt`` (one sequence per file).
   * :func:`load_genomic_benchmark_intervals` rebuilds sequences from the official interval
     lists ``<name>/{train,test}/<class>.csv.gz`` (columns ``id,region,start,end,strand``,
     0-based, end-exclusive; strand ``-`` = reverse complement; an empty strand means ``+``)
     and a reference genome given as ``{region name: sequence}`` or a FASTA path.
     :func:`sequences_from_intervals` is the underlying cut-and-flip step.
   * :func:`load_genomic_benchmark_test` reads the real test splits shipped in the shared data
     folder, ``dna/genomic_benchmarks_test/<name>_test.csv.gz``.

   Class names are the sorted class folder / file names (``negative`` < ``positive``, so
   ``positive`` is label 1 for binary datasets; ``enhancer, ocr, promoter`` for
   ``human_ensembl_regulatory``). Upstream's loaders number classes in directory-listing order,
   which is not stable; sorting is.

2. **GUE** (DNABERT-2): :func:`load_gue` reads ``<task>/<dataset>/{train,dev,test}.csv[.gz]``
   (columns ``sequence,label``).

Files are located with :func:`titans_ts.datasets.discovery.resolve_data_path`: an explicit
``path=``, then ``$TITANS_TS_DATA_DIR`` (laid out like the shared data folder: ``dna/gue/...``,
``dna/genomic_benchmarks_test/...``, ``genomic_benchmarks/intervals/...``), then the cache.
Nothing here downloads: these benchmarks have no stable single-file URL.

Region names in interval lists follow upstream's conventions: Ensembl chromosome names with a
``chr`` prefix (``chr1``, ``chrX``, ``chrMT``), Ensembl transcript ids without version
(``ENST00000217185``), and worm chromosomes as named by Ensembl (``I``, ``MtDNA``). A
reference's keys may use either form: see :func:`sequences_from_intervals` for the matching
rules.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from titans_ts.datasets.discovery import resolve_data_path
from titans_ts.encoders.dna import reverse_complement

__all__ = [
    "GENOMIC_BENCHMARKS",
    "GENOMIC_BENCHMARKS_TEST",
    "GUE_TASKS",
    "SequenceSplit",
    "load_genomic_benchmark",
    "load_genomic_benchmark_intervals",
    "load_genomic_benchmark_test",
    "load_gue",
    "sequences_from_intervals",
]

GENOMIC_BENCHMARKS: dict[str, tuple[str, ...]] = {
    "demo_coding_vs_intergenomic_seqs": ("coding_seqs", "intergenomic_seqs"),
    "demo_human_or_worm": ("human", "worm"),
    "drosophila_enhancers_stark": ("negative", "positive"),
    "dummy_mouse_enhancers_ensembl": ("negative", "positive"),
    "human_enhancers_cohn": ("negative", "positive"),
    "human_enhancers_ensembl": ("negative", "positive"),
    "human_ensembl_regulatory": ("enhancer", "ocr", "promoter"),
    "human_nontata_promoters": ("negative", "positive"),
    "human_ocr_ensembl": ("negative", "positive"),
}
"""Genomic Benchmarks datasets (version 0) and their class names in label order."""

GENOMIC_BENCHMARKS_TEST = (
    "drosophila_enhancers_stark",
    "human_enhancers_cohn",
    "human_nontata_promoters",
)
"""Datasets whose real test sequences are in ``dna/genomic_benchmarks_test/``."""

GUE_TASKS = (
    "prom/prom_core_all",
    "prom/prom_core_notata",
    "prom/prom_core_tata",
    "prom/prom_300_tata",
    "tf/0",
    "tf/1",
    "tf/2",
    "mouse/0",
    "mouse/2",
)
"""GUE tasks with a train split in the shared data (DESIGN.md §5 reports MCC on these)."""

_SPLITS_GB = ("train", "test")
_SPLITS_GUE = ("train", "dev", "test")
_GB_INTERVALS_DIR = "genomic_benchmarks/intervals"
_GB_TEST_DIR = "dna/genomic_benchmarks_test"
_GUE_DIR = "dna/gue"
_INTERVAL_COLUMNS = ("id", "region", "start", "end", "strand")
_MITO_NAMES = ("chrM", "chrMT", "M", "MT", "MtDNA", "mitochondrion_genome")


@dataclass(frozen=True)
class SequenceSplit:
    """One split of a labelled sequence-classification dataset.

    Attributes:
        frame: DataFrame with at least ``sequence`` (str) and ``label`` (int64 in
            ``[0, len(classes))``); loaders may add columns (``id``, ``region``, ...).
        classes: class names; ``classes[label]`` names a row's class.
        name: dataset name (e.g. ``"prom/prom_core_all"``, ``"human_nontata_promoters"``).
        split: ``"train"``, ``"dev"`` or ``"test"``.
        source: where the data came from (a path, or a generator description).
    """

    frame: pd.DataFrame
    classes: tuple[str, ...]
    name: str
    split: str
    source: str

    def __post_init__(self) -> None:
        missing = {"sequence", "label"} - set(self.frame.columns)
        if missing:
            raise ValueError(
                f"{self.name}/{self.split}: frame lacks column(s) {sorted(missing)}; "
                f"it has {list(self.frame.columns)}"
            )
        labels = self.frame["label"].to_numpy()
        if labels.size and (
            labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= len(self.classes)
        ):
            raise ValueError(
                f"{self.name}/{self.split}: labels must be ints in [0, {len(self.classes)}) "
                f"for classes {self.classes}, got dtype {labels.dtype} and values "
                f"{sorted(pd.unique(labels).tolist())[:10]}"
            )

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def sequences(self) -> list[str]:
        """The sequences as a list of ``str``."""
        return self.frame["sequence"].tolist()

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` int64 labels."""
        return self.frame["label"].to_numpy(dtype=np.int64)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)


# --------------------------------------------------------------------------------------------
# Genomic Benchmarks: upstream full-sequence folder layout
# --------------------------------------------------------------------------------------------


def _check_split(split: str, allowed: Sequence[str]) -> str:
    if split not in allowed:
        raise ValueError(f"split must be one of {', '.join(allowed)}, got {split!r}")
    return split


def _natural_key(stem: str) -> tuple[int, int | str]:
    return (0, int(stem)) if stem.isdigit() else (1, stem)


def load_genomic_benchmark(
    name: str,
    split: str,
    *,
    root: str | os.PathLike | None = None,
) -> SequenceSplit:
    """Load a Genomic Benchmarks split from the upstream downloader's folder layout.

    Args:
        name: dataset folder name, e.g. ``"human_nontata_promoters"``.
        split: ``"train"`` or ``"test"``.
        root: folder holding ``<name>/``; default ``~/.genomic_benchmarks`` (where
            ``genomic_benchmarks.loc2seq.download_dataset`` writes).

    Returns:
        :class:`SequenceSplit` with columns ``id`` (file stem), ``sequence``, ``label``; rows
        ordered by class then id (numeric ids numerically). Classes are the sorted class
        folder names.

    Raises:
        FileNotFoundError: the folder is missing or holds no class folders.
        ValueError: a class folder holds no ``.txt`` files.
    """
    _check_split(split, _SPLITS_GB)
    base = pathlib.Path(root).expanduser() if root is not None else (
        pathlib.Path.home() / ".genomic_benchmarks"
    )
    folder = base / name / split
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no Genomic Benchmarks folder {folder}; expected the upstream layout "
            f"<root>/{name}/{split}/<class>/<id>.txt. Pass root=..., or rebuild the sequences "
            "with load_genomic_benchmark_intervals(name, split, reference=...)"
        )
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    if not classes:
        raise FileNotFoundError(f"{folder} has no class sub-folders (<class>/<id>.txt)")
    ids: list[str] = []
    sequences: list[str] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        files = sorted((folder / cls).glob("*.txt"), key=lambda p: _natural_key(p.stem))
        if not files:
            raise ValueError(f"class folder {folder / cls} holds no .txt sequence files")
        for file in files:
            ids.append(file.stem)
            sequences.append(file.read_text().strip())
            labels.append(label)
    frame = pd.DataFrame(
        {"id": ids, "sequence": sequences, "label": np.asarray(labels, dtype=np.int64)}
    )
    return SequenceSplit(frame, classes, name, split, str(folder))


# --------------------------------------------------------------------------------------------
# Genomic Benchmarks: interval lists + reference genome
# --------------------------------------------------------------------------------------------


def _region_aliases(key: str) -> list[str]:
    """Alternative names under which an interval list may refer to reference record ``key``."""
    aliases = [key[3:]] if key.startswith("chr") else ["chr" + key]
    unversioned = re.sub(r"^(ENS[A-Z]*[GTPE]\d+)\.\d+$", r"\1", key)
    if unversioned != key:
        aliases.append(unversioned)
    if key in _MITO_NAMES:
        aliases.extend(n for n in _MITO_NAMES if n != key)
    return aliases


def _region_index(reference: Mapping[str, str]) -> dict[str, str]:
    """Map every accepted region name to a reference key (exact names win over aliases)."""
    index: dict[str, str] = {}
    ambiguous: set[str] = set()
    for key in reference:
        for alias in _region_aliases(key):
            if alias in reference:
                continue
            if alias in index and index[alias] != key:
                ambiguous.add(alias)
            index.setdefault(alias, key)
    for alias in ambiguous:
        del index[alias]
    index.update({key: key for key in reference})
    return index


def sequences_from_intervals(
    intervals: pd.DataFrame,
    reference: Mapping[str, str],
) -> list[str]:
    """Cut interval sequences out of a reference, reverse-complementing ``-`` strand rows.

    Args:
        intervals: DataFrame with columns ``region``, ``start``, ``end`` and optionally
            ``strand`` (``+``, ``-``, or empty/NaN meaning ``+``) and ``id``. Coordinates are
            0-based, end-exclusive: the sequence is ``reference[region][start:end]``.
        reference: ``{record name: sequence}``. Region names match a key exactly, or with the
            ``chr`` prefix added/removed (``chr1`` <-> ``1``), or without an Ensembl version
            suffix (``ENST00000217185`` -> ``ENST00000217185.5``), or as another name for the
            mitochondrion (``chrM``, ``chrMT``, ``M``, ``MT``, ``MtDNA``,
            ``mitochondrion_genome``). An alias claimed by two keys is not used.

    Returns:
        One ``str`` per row, case as in the reference.

    Raises:
        ValueError: missing columns, unknown regions (the message lists some and the
            reference's names), intervals outside their record, empty intervals, or a strand
            that is not ``+``/``-``/empty.
    """
    missing = {"region", "start", "end"} - set(intervals.columns)
    if missing:
        raise ValueError(
            f"intervals lack column(s) {sorted(missing)}; expected {list(_INTERVAL_COLUMNS)}"
        )
    if not isinstance(reference, Mapping) or not reference:
        raise ValueError(
            "reference must be a non-empty mapping {region name: sequence}; read a FASTA with "
            "titans_ts.encoders.seqio.read_fasta"
        )
    index = _region_index(reference)
    regions = intervals["region"].astype(str).tolist()
    unknown = sorted({r for r in regions if r not in index})
    if unknown:
        names = list(reference)[:10]
        raise ValueError(
            f"{len(unknown)} region(s) not found in the reference, e.g. {unknown[:6]}; the "
            f"reference has {len(reference)} records, e.g. {names}. Is it the genome named "
            "in the dataset's metadata.yaml?"
        )
    starts = intervals["start"].to_numpy()
    ends = intervals["end"].to_numpy()
    if "strand" in intervals.columns:
        strands = intervals["strand"].fillna("+").astype(str).str.strip().replace("", "+")
        bad = sorted(set(strands) - {"+", "-"})
        if bad:
            raise ValueError(f"strand must be '+', '-' or empty, got {bad[:5]}")
        minus = (strands == "-").to_numpy()
    else:
        minus = np.zeros(len(intervals), dtype=bool)
    row_ids = intervals["id"].tolist() if "id" in intervals.columns else list(range(len(regions)))
    out: list[str] = []
    for i, region in enumerate(regions):
        record = reference[index[region]]
        start, end = int(starts[i]), int(ends[i])
        if not 0 <= start < end <= len(record):
            raise ValueError(
                f"interval id={row_ids[i]!r} {region}:{start}-{end} is empty or outside its "
                f"record (length {len(record)}); coordinates are 0-based, end-exclusive. A "
                "different genome build?"
            )
        piece = record[start:end]
        out.append(reverse_complement(piece) if minus[i] else piece)
    return out


def _intervals_folder(name: str, intervals_root: str | os.PathLike | None) -> pathlib.Path:
    relative = f"{_GB_INTERVALS_DIR}/{name}/metadata.yaml"
    if intervals_root is not None:
        root = pathlib.Path(intervals_root).expanduser()
        candidate = root / name if (root / name).is_dir() or root.name != name else root
        if not candidate.is_dir():
            raise FileNotFoundError(
                f"no interval lists for {name!r}: {candidate} does not exist; intervals_root "
                f"must hold {name}/{{train,test}}/<class>.csv.gz"
            )
        return candidate
    return resolve_data_path(relative, download=False).parent


def _read_reference(reference: Mapping[str, str] | str | os.PathLike) -> Mapping[str, str]:
    if isinstance(reference, Mapping):
        return reference
    if isinstance(reference, (str, os.PathLike)):
        from titans_ts.encoders.seqio import read_fasta

        return read_fasta(reference)
    raise TypeError(
        "reference must be a mapping {region: sequence} or a FASTA path, "
        f"got {type(reference).__name__}"
    )


def load_genomic_benchmark_intervals(
    name: str,
    split: str,
    reference: Mapping[str, str] | str | os.PathLike,
    *,
    class_references: Mapping[str, Mapping[str, str] | str | os.PathLike] | None = None,
    intervals_root: str | os.PathLike | None = None,
) -> SequenceSplit:
    """Rebuild a Genomic Benchmarks split from its interval lists and a reference genome.

    Args:
        name: dataset name (a folder with ``{train,test}/<class>.csv.gz``).
        split: ``"train"`` or ``"test"``.
        reference: ``{region name: sequence}`` or a FASTA path (plain or gzip), used for every
            class without an entry in ``class_references``. The genome must be the one named
            in the dataset's ``metadata.yaml`` (e.g. Ensembl GRCh38 release 97/100).
        class_references: per-class references, for datasets whose classes come from different
            genomes (``demo_human_or_worm``: human / worm; ``demo_coding_vs_intergenomic_seqs``:
            transcriptome / genome).
        intervals_root: folder holding ``<name>/``; default: found through
            ``resolve_data_path("genomic_benchmarks/intervals/<name>/metadata.yaml")``.

    Returns:
        :class:`SequenceSplit` with columns ``id, region, start, end, strand, sequence, label``
        (class order = sorted class file names; rows in file order, class by class).
    """
    _check_split(split, _SPLITS_GB)
    folder = _intervals_folder(name, intervals_root)
    files = sorted((folder / split).glob("*.csv.gz")) or sorted((folder / split).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"{folder / split} holds no <class>.csv.gz interval lists")
    classes = tuple(f.name.split(".csv")[0] for f in files)
    unknown_classes = set(class_references or {}) - set(classes)
    if unknown_classes:
        raise ValueError(
            f"class_references names {sorted(unknown_classes)}, but {name} has classes {classes}"
        )
    loaded: dict[int, Mapping[str, str]] = {}  # keep each FASTA read once

    def reference_for(cls: str) -> Mapping[str, str]:
        source = (class_references or {}).get(cls, reference)
        if id(source) not in loaded:
            loaded[id(source)] = _read_reference(source)
        return loaded[id(source)]

    frames = []
    for label, (cls, file) in enumerate(zip(classes, files, strict=True)):
        table = pd.read_csv(file, dtype={"id": str, "region": str}, keep_default_na=False)
        missing = set(_INTERVAL_COLUMNS) - set(table.columns)
        if missing:
            raise ValueError(f"{file} lacks column(s) {sorted(missing)}")
        try:
            table["sequence"] = sequences_from_intervals(table, reference_for(cls))
        except ValueError as err:
            raise ValueError(f"{name}/{split}/{cls}: {err}") from err
        table["label"] = np.int64(label)
        frames.append(table)
    frame = pd.concat(frames, ignore_index=True)
    frame["label"] = frame["label"].astype(np.int64)
    return SequenceSplit(frame, classes, name, split, str(folder / split))


# --------------------------------------------------------------------------------------------
# Genomic Benchmarks: real test splits shipped with the shared data
# --------------------------------------------------------------------------------------------


def load_genomic_benchmark_test(
    name: str,
    *,
    path: str | os.PathLike | None = None,
) -> SequenceSplit:
    """Load the real test sequences of a Genomic Benchmarks dataset (``<name>_test.csv.gz``).

    The files differ in their label columns (``class`` 0/1; ``target`` names; or both
    ``target`` and ``numeric_label``); all are mapped to ``label`` with the class order of
    :data:`GENOMIC_BENCHMARKS` (``negative=0, positive=1``). When two label columns are present
    they must agree.

    Args:
        name: one of :data:`GENOMIC_BENCHMARKS_TEST` (other names are tried as files too).
        path: the CSV itself or a folder holding it; default: discovery
            (``$TITANS_TS_DATA_DIR/dna/genomic_benchmarks_test/<name>_test.csv.gz``).
    """
    relative = f"{_GB_TEST_DIR}/{name}_test.csv.gz"
    file = resolve_data_path(
        relative, path=path, download=False, alternatives=(f"{_GB_TEST_DIR}/{name}_test.csv",)
    )
    raw = pd.read_csv(file, keep_default_na=False)
    if "sequence" not in raw.columns:
        raise ValueError(f"{file} has no 'sequence' column (columns: {list(raw.columns)})")
    classes = GENOMIC_BENCHMARKS.get(name)
    if "target" in raw.columns:
        names = raw["target"].astype(str)
        if classes is None:
            classes = tuple(sorted(names.unique()))
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise ValueError(f"{file}: target values {unknown} are not classes of {name} {classes}")
        labels = names.map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=np.int64)
        if "numeric_label" in raw.columns and not np.array_equal(
            labels, raw["numeric_label"].to_numpy(dtype=np.int64)
        ):
            raise ValueError(
                f"{file}: numeric_label disagrees with target under class order {classes}"
            )
    elif "class" in raw.columns or "label" in raw.columns:
        column = "class" if "class" in raw.columns else "label"
        labels = raw[column].to_numpy(dtype=np.int64)
        if classes is None:
            classes = tuple(str(v) for v in range(int(labels.max()) + 1))
    else:
        raise ValueError(
            f"{file}: no label column; expected 'target', 'class' or 'label', "
            f"got {list(raw.columns)}"
        )
    frame = pd.DataFrame({"sequence": raw["sequence"].astype(str), "label": labels})
    return SequenceSplit(frame, tuple(classes), name, "test", str(file))


# --------------------------------------------------------------------------------------------
# GUE
# --------------------------------------------------------------------------------------------


def _check_task(task: str) -> str:
    if not isinstance(task, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", task):
        raise ValueError(
            f"task must look like '<group>/<dataset>' (e.g. 'prom/prom_core_all', 'tf/0'), "
            f"got {task!r}; tasks with a train split here: {', '.join(GUE_TASKS)}"
        )
    if ".." in task.split("/"):
        raise ValueError(f"task must not contain '..', got {task!r}")
    return task


def load_gue(
    task: str,
    *,
    path: str | os.PathLike | None = None,
    splits: Iterable[str] = _SPLITS_GUE,
) -> dict[str, SequenceSplit]:
    """Load GUE splits (columns ``sequence,label``) as ``{split: SequenceSplit}``.

    Args:
        task: ``"<group>/<dataset>"``, e.g. ``"prom/prom_core_all"``, ``"tf/0"``, ``"mouse/2"``
            (see :data:`GUE_TASKS`).
        path: a data folder (holding ``dna/gue/``), the GUE folder (holding ``<group>/``), or
            the task folder itself; default: discovery (``$TITANS_TS_DATA_DIR/dna/gue/...``).
        splits: which of ``train``, ``dev``, ``test`` to load.

    Returns:
        ``{split: SequenceSplit}`` in the requested order; classes are the label values as
        strings (``("0", "1")`` for binary tasks), shared by all splits.

    Raises:
        FileNotFoundError: a requested split is missing (some tasks in the shared copy have no
            train split; the message lists what was looked at).
    """
    _check_task(task)
    splits = tuple(splits)
    for split in splits:
        _check_split(split, _SPLITS_GUE)
    frames: dict[str, tuple[pd.DataFrame, pathlib.Path]] = {}
    for split in splits:
        names = [
            f"{prefix}{task}/{split}.{ext}"
            for prefix in (f"{_GUE_DIR}/", "gue/", "")
            for ext in ("csv.gz", "csv")
        ]
        try:
            file = resolve_data_path(names[0], path=path, download=False, alternatives=names[1:])
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"GUE {task}: no {split} split found. Some tasks in the shared copy have only "
                f"dev/test (pass splits=('dev', 'test')); tasks with a train split: "
                f"{', '.join(GUE_TASKS)}.\n{err}"
            ) from err
        table = pd.read_csv(file, dtype={"sequence": str}, keep_default_na=False)
        if list(table.columns[:2]) != ["sequence", "label"]:
            raise ValueError(
                f"{file}: expected columns sequence,label, got {list(table.columns)}"
            )
        frames[split] = (table, file)
    all_labels = np.unique(np.concatenate([t["label"].to_numpy() for t, _ in frames.values()]))
    if all_labels.size and (
        all_labels.dtype.kind not in "iu" or all_labels[0] < 0 or all_labels[-1] > 1000
    ):
        raise ValueError(f"GUE {task}: labels must be small non-negative ints, got {all_labels}")
    n_classes = int(all_labels[-1]) + 1 if all_labels.size else 0
    classes = tuple(str(i) for i in range(n_classes))
    out: dict[str, SequenceSplit] = {}
    for split, (table, file) in frames.items():
        frame = table.assign(label=table["label"].astype(np.int64))
        out[split] = SequenceSplit(frame, classes, task, split, str(file))
    return out
