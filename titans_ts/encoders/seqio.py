"""FASTA / FASTQ input and output, plain or gzip-compressed.

Reading goes through Biopython's low-level parsers (``Bio.SeqIO.FastaIO.SimpleFastaParser``
and ``Bio.SeqIO.QualityIO.FastqGeneralIterator``, which skip building ``SeqRecord`` objects).
Biopython is imported lazily inside the readers, so ``titans_ts.encoders`` imports on machines
without it. Writing is plain Python (the formats are line-based) and needs no Biopython.

Compression is detected from the file's first two bytes (gzip magic ``1f 8b``), not from its
name, so ``genome.fa`` that is really gzip still reads. Writers compress when the path ends
in ``.gz``.

Sequences are returned exactly as stored (case kept, no validation); pass them through
:func:`titans_ts.encoders.dna.normalize_sequence` or a tokenizer to validate.
"""

from __future__ import annotations

import gzip
import io
import os
import pathlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

__all__ = [
    "FastaRecord",
    "FastqRecord",
    "iter_fasta",
    "iter_fastq",
    "read_fasta",
    "read_fastq",
    "write_fasta",
    "write_fastq",
]

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class FastaRecord:
    """One FASTA record: ``id`` (first word of the header), full ``description``, ``sequence``."""

    id: str
    description: str
    sequence: str


@dataclass(frozen=True)
class FastqRecord:
    """One FASTQ record; ``quality`` is the raw quality string (same length as ``sequence``).

    ``phred()`` decodes it to integer scores (Sanger / Illumina 1.8+, offset 33).
    """

    id: str
    description: str
    sequence: str
    quality: str

    def phred(self, offset: int = 33) -> list[int]:
        """Phred scores, one ``int`` per base."""
        return [ord(c) - offset for c in self.quality]


def _import_biopython() -> Any:
    try:
        from Bio.SeqIO import FastaIO, QualityIO
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading FASTA/FASTQ needs Biopython: install it with `pip install biopython`"
        ) from err
    return FastaIO, QualityIO


def _open_text(path: str | os.PathLike) -> IO[str]:
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such sequence file: {path}")
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8", newline=None)
    return open(path, encoding="utf-8", newline=None)


def _split_title(title: str) -> tuple[str, str]:
    parts = title.split(None, 1)
    return (parts[0] if parts else ""), title


def iter_fasta(path: str | os.PathLike) -> Iterator[FastaRecord]:
    """Stream the records of a FASTA file (plain or gzip), one :class:`FastaRecord` at a time.

    Line breaks inside a sequence are removed. Memory use is one record at a time.
    """
    fasta_io, _ = _import_biopython()
    with _open_text(path) as handle:
        for title, sequence in fasta_io.SimpleFastaParser(handle):
            record_id, description = _split_title(title)
            yield FastaRecord(record_id, description, sequence)


def iter_fastq(path: str | os.PathLike) -> Iterator[FastqRecord]:
    """Stream the records of a FASTQ file (plain or gzip), one :class:`FastqRecord` at a time.

    Raises:
        ValueError: malformed FASTQ (Biopython's message, e.g. sequence and quality lengths
            differ), with the file name added.
    """
    _, quality_io = _import_biopython()
    with _open_text(path) as handle:
        try:
            for title, sequence, quality in quality_io.FastqGeneralIterator(handle):
                record_id, description = _split_title(title)
                yield FastqRecord(record_id, description, sequence, quality)
        except ValueError as err:
            raise ValueError(f"malformed FASTQ file {path}: {err}") from err


def read_fasta(path: str | os.PathLike) -> dict[str, str]:
    """Read a whole FASTA file into ``{record id: sequence}`` (insertion order = file order).

    Raises:
        ValueError: two records share an id (the message names it); use :func:`iter_fasta`
            to keep duplicates.
    """
    out: dict[str, str] = {}
    for record in iter_fasta(path):
        if record.id in out:
            raise ValueError(
                f"duplicate FASTA id {record.id!r} in {path}; ids must be unique for "
                "read_fasta (use iter_fasta to see every record)"
            )
        out[record.id] = record.sequence
    return out


def read_fastq(path: str | os.PathLike) -> list[FastqRecord]:
    """Read a whole FASTQ file into a list of :class:`FastqRecord` (file order)."""
    return list(iter_fastq(path))


def _records(
    records: Mapping[str, str] | Iterable[FastaRecord | tuple[str, str]],
) -> Iterator[tuple[str, str]]:
    items = records.items() if isinstance(records, Mapping) else records
    for i, item in enumerate(items):
        if isinstance(item, FastaRecord):
            header, sequence = item.description or item.id, item.sequence
        elif isinstance(item, tuple) and len(item) == 2:
            header, sequence = item
        else:
            raise TypeError(
                f"record {i} must be a FastaRecord or an (id, sequence) pair, "
                f"got {type(item).__name__}"
            )
        if not isinstance(header, str) or not isinstance(sequence, str):
            raise TypeError(f"record {i}: id and sequence must be str")
        if not header or "\n" in header or "\r" in header:
            raise ValueError(
                f"record {i}: the header must be a non-empty single line, got {header!r}"
            )
        yield header, sequence


def _open_write(path: str | os.PathLike) -> IO[str]:
    path = pathlib.Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "wb"), encoding="utf-8", newline="\n")
    return open(path, "w", encoding="utf-8", newline="\n")


def write_fasta(
    records: Mapping[str, str] | Iterable[FastaRecord | tuple[str, str]],
    path: str | os.PathLike,
    *,
    line_width: int = 60,
) -> pathlib.Path:
    """Write FASTA; gzip-compressed when ``path`` ends in ``.gz``.

    Args:
        records: ``{id: sequence}``, ``(header, sequence)`` pairs, or :class:`FastaRecord`
            (its ``description`` is written as the header).
        path: output file, overwritten.
        line_width: sequence characters per line; ``0`` writes each sequence on one line.

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    if isinstance(line_width, bool) or not isinstance(line_width, int) or line_width < 0:
        raise ValueError(f"line_width must be an int >= 0 (0 = no wrapping), got {line_width!r}")
    path = pathlib.Path(path)
    with _open_write(path) as out:
        for header, sequence in _records(records):
            out.write(f">{header}\n")
            if line_width == 0 or not sequence:
                out.write(sequence + "\n")
                continue
            for start in range(0, len(sequence), line_width):
                out.write(sequence[start : start + line_width] + "\n")
    return path


def write_fastq(records: Iterable[FastqRecord], path: str | os.PathLike) -> pathlib.Path:
    """Write four-line FASTQ; gzip-compressed when ``path`` ends in ``.gz``.

    Raises:
        ValueError: a record's quality string and sequence differ in length.
    """
    path = pathlib.Path(path)
    with _open_write(path) as out:
        for i, record in enumerate(records):
            if not isinstance(record, FastqRecord):
                raise TypeError(f"record {i} must be a FastqRecord, got {type(record).__name__}")
            if len(record.quality) != len(record.sequence):
                raise ValueError(
                    f"record {i} ({record.id!r}): quality has {len(record.quality)} characters "
                    f"but the sequence has {len(record.sequence)}; they must match"
                )
            header = record.description or record.id
            out.write(f"@{header}\n{record.sequence}\n+\n{record.quality}\n")
    return path
