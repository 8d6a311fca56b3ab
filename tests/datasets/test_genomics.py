"""Tests for Genomic Benchmarks / GUE loaders, the planted-motif generator and FASTA/FASTQ I/O."""

from __future__ import annotations

import gzip
import os
import pathlib

import numpy as np
import pandas as pd
import pytest

from titans_ts.datasets.genomics import (
    GENOMIC_BENCHMARKS,
    GUE_TASKS,
    SequenceSplit,
    load_genomic_benchmark,
    load_genomic_benchmark_intervals,
    load_genomic_benchmark_test,
    load_gue,
    sequences_from_intervals,
)
from titans_ts.datasets.synthetic_dna import make_planted_motif_dataset, make_planted_motif_splits
from titans_ts.encoders.dna import reverse_complement
from titans_ts.encoders.seqio import (
    FastaRecord,
    FastqRecord,
    iter_fasta,
    read_fasta,
    read_fastq,
    write_fasta,
    write_fastq,
)

DATA_DIR = os.environ.get("TITANS_TS_DATA_DIR", "")
needs_data = pytest.mark.skipif(
    not DATA_DIR or not (pathlib.Path(DATA_DIR) / "dna" / "gue").is_dir(),
    reason="set TITANS_TS_DATA_DIR to the shared data folder (with dna/gue/) to run this test",
)

# A tiny Ensembl-style genome: record names without 'chr', as Ensembl FASTA files have them.
GENOME = {
    "1": "AAAACCCCGGGGTTTTACGT",
    "2": "acgtacgtNNACGGATC",
    "MT": "GATTACA",
}


def write_interval_dataset(root: pathlib.Path, name: str, tables: dict) -> pathlib.Path:
    """Write ``<root>/<name>/<split>/<class>.csv.gz`` from {split: {class: rows}}."""
    for split, classes in tables.items():
        (root / name / split).mkdir(parents=True, exist_ok=True)
        for cls, rows in classes.items():
            frame = pd.DataFrame(rows, columns=["id", "region", "start", "end", "strand"])
            frame.to_csv(root / name / split / f"{cls}.csv.gz", index=False)
    return root / name


# --------------------------------------------------------------------------------------------
# intervals + reference
# --------------------------------------------------------------------------------------------


def test_sequences_from_intervals_hand_computed() -> None:
    intervals = pd.DataFrame(
        {
            "id": [0, 1, 2, 3, 4, 5],
            "region": ["chr1", "chr1", "1", "chr2", "chrMT", "chrM"],
            "start": [2, 2, 0, 3, 0, 4],
            "end": [6, 6, 20, 10, 4, 7],
            "strand": ["+", "-", "", "-", "+", np.nan],
        }
    )
    out = sequences_from_intervals(intervals, GENOME)
    assert out == [
        "AACC",  # chr1[2:6]
        "GGTT",  # reverse complement of AACC
        "AAAACCCCGGGGTTTTACGT",  # whole record, empty strand = +
        "NNacgta",  # chr2[3:10] = "tacgtNN" reversed and complemented, case kept
        "GATT",  # chrMT -> MT
        "ACA",  # chrM is another name of the mitochondrion
    ]
    assert out[3] == reverse_complement(GENOME["2"][3:10])


def test_sequences_from_intervals_versioned_transcript_ids() -> None:
    reference = {"ENST00000217185.5": "ACGTACGTAA", "ENST00000367051.3": "TTTT"}
    intervals = pd.DataFrame(
        {"region": ["ENST00000217185", "ENST00000367051.3"], "start": [1, 0], "end": [4, 2]}
    )
    assert sequences_from_intervals(intervals, reference) == ["CGT", "TT"]


def test_sequences_from_intervals_errors() -> None:
    def frame(region: str, start: int, end: int, strand: str = "+") -> pd.DataFrame:
        return pd.DataFrame(
            {"id": ["x"], "region": [region], "start": [start], "end": [end], "strand": [strand]}
        )

    with pytest.raises(ValueError, match=r"region\(s\) not found.*chr9"):
        sequences_from_intervals(frame("chr9", 0, 2), GENOME)
    with pytest.raises(ValueError, match=r"id='x' chr1:15-25 is empty or outside"):
        sequences_from_intervals(frame("chr1", 15, 25), GENOME)
    with pytest.raises(ValueError, match="empty or outside"):
        sequences_from_intervals(frame("chr1", 5, 5), GENOME)
    with pytest.raises(ValueError, match="strand must be"):
        sequences_from_intervals(frame("chr1", 0, 2, "."), GENOME)
    with pytest.raises(ValueError, match="lack column"):
        sequences_from_intervals(pd.DataFrame({"region": ["chr1"]}), GENOME)


def test_load_intervals_from_fasta_reference(tmp_path: pathlib.Path) -> None:
    fasta = write_fasta(
        [("1 dna:chromosome chromosome:GRCh38:1", GENOME["1"]), ("2", GENOME["2"])],
        tmp_path / "genome.fa.gz",
        line_width=7,
    )
    root = tmp_path / "intervals"
    write_interval_dataset(
        root,
        "toy",
        {
            "train": {
                "positive": [["p0", "chr1", 0, 4, "+"], ["p1", "chr2", 0, 4, "-"]],
                "negative": [["n0", "chr1", 16, 20, "-"]],
            },
            "test": {
                "positive": [["p2", "chr1", 4, 8, "+"]],
                "negative": [["n1", "chr2", 12, 17, "+"]],
            },
        },
    )
    train = load_genomic_benchmark_intervals("toy", "train", fasta, intervals_root=root)
    assert isinstance(train, SequenceSplit)
    assert train.classes == ("negative", "positive")
    assert train.sequences == ["ACGT", "AAAA", "acgt"]
    assert train.labels.tolist() == [0, 1, 1]
    assert train.frame["id"].tolist() == ["n0", "p0", "p1"]
    test = load_genomic_benchmark_intervals("toy", "test", GENOME, intervals_root=root / "toy")
    assert test.sequences == ["GGATC", "CCCC"] and test.labels.tolist() == [0, 1]


def test_load_intervals_class_references_and_errors(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "intervals"
    write_interval_dataset(
        root,
        "human_or_worm",
        {"train": {"human": [[0, "chr1", 0, 3, "+"]], "worm": [[1, "I", 1, 3, "-"]]}},
    )
    worm = {"I": "GGCAT"}
    split = load_genomic_benchmark_intervals(
        "human_or_worm", "train", GENOME, class_references={"worm": worm}, intervals_root=root
    )
    assert split.sequences == ["AAA", "GC"]
    with pytest.raises(ValueError, match=r"human_or_worm/train/worm: .*not found"):
        load_genomic_benchmark_intervals("human_or_worm", "train", GENOME, intervals_root=root)
    with pytest.raises(ValueError, match="class_references names"):
        load_genomic_benchmark_intervals(
            "human_or_worm", "train", GENOME, class_references={"fish": worm}, intervals_root=root
        )
    with pytest.raises(ValueError, match="split must be one of train, test"):
        load_genomic_benchmark_intervals("human_or_worm", "dev", GENOME, intervals_root=root)
    with pytest.raises(FileNotFoundError, match="no interval lists"):
        load_genomic_benchmark_intervals("missing", "train", GENOME, intervals_root=root)


@needs_data
def test_shared_interval_lists_have_upstream_classes() -> None:
    root = pathlib.Path(DATA_DIR) / "genomic_benchmarks" / "intervals"
    for name, classes in GENOMIC_BENCHMARKS.items():
        found = tuple(sorted(p.name.split(".csv")[0] for p in (root / name / "train").iterdir()))
        assert found == classes, name


class FakeChromosome:
    """A long record whose base at position i is "ACGT"[i % 4], without storing it."""

    def __init__(self, length: int = 300_000_000) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: slice) -> str:
        offset, size = item.start % 4, item.stop - item.start
        return ("ACGT" * (size // 4 + 2))[offset : offset + size]


ENSEMBL_NAMES = {
    "human": [str(i) for i in range(1, 23)] + ["X", "Y", "MT"],
    "drosophila": ["2L", "2R", "3L", "3R", "4", "X", "Y", "mitochondrion_genome"],
    "worm": ["I", "II", "III", "IV", "V", "X", "MtDNA"],
}


@needs_data
@pytest.mark.parametrize(
    ("name", "split", "genomes", "n_rows", "lengths"),
    [
        ("human_nontata_promoters", "test", {"": "human"}, 9_034, (251, 251)),
        ("drosophila_enhancers_stark", "train", {"": "drosophila"}, 5_184, (236, 3_237)),
        ("demo_human_or_worm", "test", {"human": "human", "worm": "worm"}, 25_000, (200, 200)),
    ],
)
def test_real_interval_lists_resolve_against_ensembl_names(
    name: str, split: str, genomes: dict[str, str], n_rows: int, lengths: tuple[int, int]
) -> None:
    """Upstream region names (chr1, chrMT, chrM, I, MtDNA) match Ensembl FASTA record names."""
    references = {
        cls: {chrom: FakeChromosome() for chrom in ENSEMBL_NAMES[genome]}
        for cls, genome in genomes.items()
    }
    data = load_genomic_benchmark_intervals(
        name,
        split,
        references.get("", {"unused": "A"}),
        class_references={c: r for c, r in references.items() if c},
    )
    assert len(data) == n_rows and data.classes == GENOMIC_BENCHMARKS[name]
    observed = data.frame["sequence"].str.len()
    assert (observed == data.frame["end"] - data.frame["start"]).all()
    assert (observed.min(), observed.max()) == lengths
    minus = data.frame["strand"] == "-"
    row = data.frame[minus].iloc[0] if minus.any() else data.frame.iloc[0]
    expected = FakeChromosome()[row.start : row.end]
    assert row.sequence == (reverse_complement(expected) if row.strand == "-" else expected)


# --------------------------------------------------------------------------------------------
# upstream full-sequence folder layout
# --------------------------------------------------------------------------------------------


def test_load_upstream_folder_layout(tmp_path: pathlib.Path) -> None:
    base = tmp_path / "human_nontata_promoters"
    files = {
        ("train", "positive", "10"): "ACGT",
        ("train", "positive", "9"): "GGGG\n",
        ("train", "negative", "3"): "TTAA",
        ("test", "positive", "1"): "CCCC",
    }
    for (split, cls, stem), seq in files.items():
        (base / split / cls).mkdir(parents=True, exist_ok=True)
        (base / split / cls / f"{stem}.txt").write_text(seq)
    (base / "test" / "negative").mkdir(parents=True)
    train = load_genomic_benchmark("human_nontata_promoters", "train", root=tmp_path)
    assert train.classes == ("negative", "positive")
    assert train.frame["id"].tolist() == ["3", "9", "10"]  # numeric ids sorted numerically
    assert train.sequences == ["TTAA", "GGGG", "ACGT"]
    assert train.labels.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="holds no .txt"):
        load_genomic_benchmark("human_nontata_promoters", "test", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="upstream layout"):
        load_genomic_benchmark("human_ocr_ensembl", "train", root=tmp_path)


# --------------------------------------------------------------------------------------------
# real shared data
# --------------------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize(
    ("task", "sizes", "length"),
    [
        ("prom/prom_core_all", (47_356, 5_920, 5_920), 70),
        ("prom/prom_core_tata", (4_904, 613, 613), 70),
        ("tf/0", (32_378, 1_000, 1_000), 101),
        ("mouse/2", (2_620, 328, 328), 101),
    ],
)
def test_gue_loader_on_shared_data(task: str, sizes: tuple[int, int, int], length: int) -> None:
    splits = load_gue(task)
    assert list(splits) == ["train", "dev", "test"]
    assert tuple(len(s) for s in splits.values()) == sizes
    for split in splits.values():
        assert split.classes == ("0", "1")
        assert split.frame["sequence"].str.len().eq(length).all()
        assert split.labels.dtype == np.int64 and set(np.unique(split.labels)) == {0, 1}
        assert 0.4 < split.labels.mean() < 0.6
        assert split.frame["sequence"].str.fullmatch("[ACGTN]+").all()


@needs_data
def test_gue_path_variants_and_missing_split() -> None:
    gue = pathlib.Path(DATA_DIR) / "dna" / "gue"
    for path in (DATA_DIR, gue, gue / "tf" / "1"):
        splits = load_gue("tf/1", path=path, splits=("test",))
        assert list(splits) == ["test"] and len(splits["test"]) == 1_000
    with pytest.raises(FileNotFoundError, match="no train split found"):
        load_gue("mouse/1")
    assert len(load_gue("mouse/1", splits=("dev", "test"))["dev"]) == 6_745
    with pytest.raises(ValueError, match="<group>/<dataset>"):
        load_gue("prom_core_all")
    assert set(GUE_TASKS) <= {f"{p.parent.name}/{p.name}" for p in gue.glob("*/*")}


@needs_data
@pytest.mark.parametrize(
    ("name", "n", "n_positive"),
    [
        ("human_nontata_promoters", 9_034, 4_915),
        ("human_enhancers_cohn", 6_948, 3_474),
        ("drosophila_enhancers_stark", 1_730, 865),
    ],
)
def test_genomic_benchmark_test_files(name: str, n: int, n_positive: int) -> None:
    split = load_genomic_benchmark_test(name)
    assert split.classes == ("negative", "positive")
    assert len(split) == n and int(split.labels.sum()) == n_positive
    assert split.split == "test"


def test_genomic_benchmark_test_explicit_path(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "human_enhancers_cohn_test.csv.gz"
    pd.DataFrame(
        {"sequence": ["ACGT", "GGCC"], "target": ["positive", "negative"], "numeric_label": [1, 0]}
    ).to_csv(file, index=False)
    split = load_genomic_benchmark_test("human_enhancers_cohn", path=tmp_path)
    assert split.labels.tolist() == [1, 0]
    pd.DataFrame(
        {"sequence": ["ACGT"], "target": ["positive"], "numeric_label": [0]}
    ).to_csv(file, index=False)
    with pytest.raises(ValueError, match="numeric_label disagrees"):
        load_genomic_benchmark_test("human_enhancers_cohn", path=file)


# --------------------------------------------------------------------------------------------
# synthetic planted motifs
# --------------------------------------------------------------------------------------------


def test_planted_motifs_are_where_recorded() -> None:
    data, truth = make_planted_motif_dataset(
        300, length=(30, 50), n_classes=3, motif_length=6, plant_probability=0.8, seed=3
    )
    frame = data.frame
    assert np.bincount(data.labels).tolist() == [100, 100, 100]
    lengths = frame["sequence"].str.len()
    assert lengths.between(30, 50).all() and lengths.nunique() > 5
    planted = frame[frame["motif_start"] >= 0]
    assert 0.7 < len(planted) / len(frame) < 0.9
    assert set(planted["motif_strand"]) == {"+", "-"}
    for row in planted.itertuples():
        motif = truth.motifs[row.label]
        piece = row.sequence[row.motif_start : row.motif_start + 6]
        assert piece == (motif if row.motif_strand == "+" else reverse_complement(motif))


def test_planted_motif_determinism_and_splits() -> None:
    a, _ = make_planted_motif_dataset(50, seed=7)
    b, _ = make_planted_motif_dataset(50, seed=7)
    c, _ = make_planted_motif_dataset(50, seed=8)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.sequences != c.sequences
    splits, truth = make_planted_motif_splits(40, 10, 10, seed=1)
    assert [len(s) for s in splits.values()] == [40, 10, 10]
    assert splits["train"].sequences[:10] != splits["dev"].sequences
    for split in splits.values():  # shared motifs across splits
        row = split.frame[split.frame["motif_strand"] == "+"].iloc[0]
        motif = truth.motifs[row.label]
        assert row.sequence[row.motif_start : row.motif_start + len(motif)] == motif
    with pytest.raises(ValueError, match="plant_probability"):
        make_planted_motif_dataset(10, plant_probability=1.5)
    with pytest.raises(ValueError, match="cannot hold a motif"):
        make_planted_motif_dataset(10, length=5, motif_length=8)


# --------------------------------------------------------------------------------------------
# FASTA / FASTQ
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".fa", ".fa.gz"])
def test_fasta_round_trip(tmp_path: pathlib.Path, suffix: str) -> None:
    pytest.importorskip("Bio")
    records = {"chr1": "ACGT" * 40 + "acgtN", "seq2": "", "x": "G"}
    path = write_fasta(records, tmp_path / f"genome{suffix}", line_width=60)
    raw = gzip.open(path, "rt").read() if suffix.endswith(".gz") else path.read_text()
    assert raw.splitlines()[1] == ("ACGT" * 40)[:60]
    assert read_fasta(path) == records
    descriptions = [r.description for r in iter_fasta(path)]
    assert descriptions == ["chr1", "seq2", "x"]


def test_fasta_headers_gzip_sniffing_and_duplicates(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("Bio")
    path = tmp_path / "misnamed.fa"  # gzip content despite the plain name
    with gzip.open(path, "wt") as handle:
        handle.write(">1 dna:chromosome\nACG\nTT\n>2\nGG\n")
    records = list(iter_fasta(path))
    assert records[0] == FastaRecord("1", "1 dna:chromosome", "ACGTT")
    write_fasta(records, tmp_path / "copy.fa", line_width=0)
    assert (tmp_path / "copy.fa").read_text() == ">1 dna:chromosome\nACGTT\n>2\nGG\n"
    (tmp_path / "dup.fa").write_text(">a\nAC\n>a\nGT\n")
    with pytest.raises(ValueError, match="duplicate FASTA id 'a'"):
        read_fasta(tmp_path / "dup.fa")
    with pytest.raises(FileNotFoundError, match="no such sequence file"):
        read_fasta(tmp_path / "absent.fa")
    with pytest.raises(ValueError, match="single line"):
        write_fasta({"a\nb": "AC"}, tmp_path / "bad.fa")


@pytest.mark.parametrize("suffix", [".fq", ".fastq.gz"])
def test_fastq_round_trip(tmp_path: pathlib.Path, suffix: str) -> None:
    pytest.importorskip("Bio")
    records = [
        FastqRecord("r1", "r1 lane=1", "ACGTN", "II#5+"),
        FastqRecord("r2", "r2", "", ""),
        FastqRecord("r3", "r3", "GGGG", "@@@@"),
    ]
    path = write_fastq(records, tmp_path / f"reads{suffix}")
    assert read_fastq(path) == records
    assert records[0].phred() == [40, 40, 2, 20, 10]
    with pytest.raises(ValueError, match="quality has 1 characters"):
        write_fastq([FastqRecord("r", "r", "AC", "I")], tmp_path / "bad.fq")


def test_fastq_malformed(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("Bio")
    path = tmp_path / "bad.fq"
    path.write_text("@r1\nACGT\n+\nII\n")
    with pytest.raises(ValueError, match="malformed FASTQ"):
        read_fastq(path)


@needs_data
def test_read_real_genome() -> None:
    pytest.importorskip("Bio")
    genome = read_fasta(pathlib.Path(DATA_DIR) / "dna" / "genomes" / "lambda_virus.fa.gz")
    (name, seq), = genome.items()
    assert name == "gi|9626243|ref|NC_001416.1|" and len(seq) == 48_502
    assert seq.startswith("GGGCGGCGACCTCGCGGGTTTTCGC")
