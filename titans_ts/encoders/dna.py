"""DNA tokenizers: single nucleotides and k-mers, reverse complement, padded batches.

Alphabet (DESIGN.md §4): ``A, C, G, T, N``. Input is normalised before tokenising:

* lower-case (soft-masked) bases map to upper case;
* IUPAC ambiguity codes ``R Y S W K M B D H V`` (either case) map to ``N``;
* anything else (``U``, ``-``, ``.``, digits, whitespace, non-ASCII, ...) raises
  :class:`ValueError` naming the character, its 0-based position and, when encoding a batch,
  the index of the sequence.

Everything is vectorised with numpy: the text is viewed as bytes (``np.frombuffer``) and mapped
through a 256-entry lookup table; k-mer ids are built with base-4 arithmetic over shifted
slices (a loop over the ``k`` digits, never over bases). Tokenising a 5 Mbp genome takes tens
of milliseconds.

Vocabularies (ids are stable and part of the API; use the ``*_id`` attributes, not literals):

``NucleotideTokenizer`` (``vocab_size = 9``)::

    0 A   1 C   2 G   3 T   4 N   5 [PAD]   6 [CLS]   7 [SEP]   8 [MASK]

``KmerTokenizer(k)`` (``vocab_size = 4**k + 10``)::

    0 .. 4**k - 1     k-mers in lexicographic order (A=0, C=1, G=2, T=3; first base is the
                      most significant base-4 digit, e.g. k=2: AA=0, AC=1, ..., TT=15)
    4**k              [UNK]  any k-mer containing N
    4**k + 1 .. + 5   single bases A, C, G, T, N (only the tail of a non-overlapping
                      tokenisation, when the length is not a multiple of k)
    4**k + 6 .. + 9   [PAD], [CLS], [SEP], [MASK]

Overlapping tokenisation (stride 1) of a length-``L`` sequence yields ``max(L - k + 1, 0)``
tokens; non-overlapping (stride ``k``) yields ``L // k`` k-mers followed by ``L % k``
single-base tokens, so every base is represented and decoding is lossless for sequences
without ``N``. Decoding an ``[UNK]`` k-mer gives ``N`` for every base no other token reveals.

Reverse complement is a first-class transform: :func:`reverse_complement` for strings (keeps
case and complements IUPAC codes) and ``tokenizer.reverse_complement_ids`` for id arrays, which
equals tokenising the reverse-complemented string (for non-overlapping k-mers when the length
is a multiple of ``k``, or the tokens contain no ``[UNK]``). Applying it twice is the identity.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "BASES",
    "IUPAC_AMBIGUITY",
    "EncodedBatch",
    "KmerTokenizer",
    "NucleotideTokenizer",
    "PackedTokens",
    "normalize_sequence",
    "reverse_complement",
]

BASES = "ACGTN"
"""Canonical alphabet; a base's position in this string is its nucleotide id."""

IUPAC_AMBIGUITY = "RYSWKMBDHV"
"""IUPAC ambiguity codes accepted on input and mapped to ``N``."""

MAX_K = 8
_INVALID = np.uint8(255)
_N_CODE = 4
_SPECIAL_NAMES = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")


def _build_code_lut() -> np.ndarray:
    lut = np.full(256, _INVALID, dtype=np.uint8)
    for code, base in enumerate("ACGT"):
        lut[ord(base)] = code
        lut[ord(base.lower())] = code
    for char in "N" + IUPAC_AMBIGUITY:
        lut[ord(char)] = _N_CODE
        lut[ord(char.lower())] = _N_CODE
    lut.flags.writeable = False
    return lut


_CODE_LUT = _build_code_lut()
_BASE_BYTES = np.frombuffer(BASES.encode("ascii"), dtype=np.uint8)
_COMPLEMENT_BYTES = bytes.maketrans(
    b"ACGTNRYSWKMBDHVacgtnryswkmbdhv", b"TGCANYRSWMKVHDBtgcanyrswmkvhdb"
)


# --------------------------------------------------------------------------------------------
# validation and normalisation
# --------------------------------------------------------------------------------------------


def _bad_char_error(char: str, position: int, seq_index: int | None, n_bad: int) -> ValueError:
    where = f"position {position}" + ("" if seq_index is None else f" of sequence {seq_index}")
    hint = ""
    if char in "Uu":
        hint = " This looks like RNA: replace U with T first."
    elif char.isspace():
        hint = " Strip whitespace/newlines (read FASTA with titans_ts.encoders.seqio)."
    more = f" ({n_bad} invalid characters in total)" if n_bad > 1 else ""
    return ValueError(
        f"invalid nucleotide {char!r} at {where}{more}: allowed are A, C, G, T, N in either case "
        f"and the IUPAC ambiguity codes {', '.join(IUPAC_AMBIGUITY)} (mapped to N).{hint} "
        "Remove or replace such characters (e.g. with N) before tokenising."
    )


def _check_str(seq: Any, seq_index: int | None = None) -> str:
    if not isinstance(seq, str):
        where = "" if seq_index is None else f" at index {seq_index}"
        raise TypeError(
            f"expected a DNA sequence as str{where}, got {type(seq).__name__}; "
            "convert it with str(...) (e.g. for a Bio.Seq.Seq) or .decode() for bytes"
        )
    return seq


def _ascii_bytes(text: str, offsets: np.ndarray | None = None) -> bytes:
    """``text`` as ASCII bytes; a non-ASCII character raises the standard bad-character error."""
    try:
        return text.encode("ascii")
    except UnicodeEncodeError as err:
        position = err.start
        seq_index = None
        if offsets is not None:
            seq_index = int(np.searchsorted(offsets, position, side="right") - 1)
            position -= int(offsets[seq_index])
        raise _bad_char_error(text[err.start], position, seq_index, 1) from None


def _codes_from_bytes(raw: bytes, offsets: np.ndarray | None = None) -> np.ndarray:
    """Map ASCII bytes to nucleotide codes 0..4 (uint8); raise on the first invalid byte."""
    codes = _CODE_LUT[np.frombuffer(raw, dtype=np.uint8)]
    bad = np.flatnonzero(codes == _INVALID)
    if bad.size:
        position = int(bad[0])
        seq_index = None
        if offsets is not None:
            seq_index = int(np.searchsorted(offsets, position, side="right") - 1)
            position -= int(offsets[seq_index])
        raise _bad_char_error(chr(raw[int(bad[0])]), position, seq_index, int(bad.size))
    return codes


def _codes(seq: str) -> np.ndarray:
    return _codes_from_bytes(_ascii_bytes(_check_str(seq)))


def _concat_codes(seqs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Validate and concatenate sequences: codes ``(sum L,)`` uint8 and offsets ``(B+1,)`` int64."""
    if isinstance(seqs, str):
        raise TypeError(
            "expected a sequence of DNA strings, got a single str; use encode(seq) for one "
            "sequence or wrap it in a list"
        )
    seqs = list(seqs)
    for i, seq in enumerate(seqs):
        _check_str(seq, i)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    text = "".join(seqs)
    return _codes_from_bytes(_ascii_bytes(text, offsets), offsets), offsets


def normalize_sequence(seq: str) -> str:
    """Upper-case ``seq`` and map IUPAC ambiguity codes to ``N``; raise on anything else.

    Returns a ``str`` over ``ACGTN`` of the same length.
    """
    return _BASE_BYTES[_codes(seq)].tobytes().decode("ascii")


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA string.

    Case is kept (soft-masking survives), ``N`` stays ``N`` and IUPAC codes map to their
    complements (R<->Y, K<->M, B<->V, D<->H; S, W unchanged). Invalid characters raise
    :class:`ValueError` naming the character and position. ``reverse_complement`` is an
    involution: applying it twice returns the input.
    """
    raw = _ascii_bytes(_check_str(seq))
    _codes_from_bytes(raw)  # validation only
    return raw.translate(_COMPLEMENT_BYTES)[::-1].decode("ascii")


# --------------------------------------------------------------------------------------------
# containers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackedTokens:
    """Token ids of several sequences packed end to end.

    Attributes:
        ids: ``(N_total,)`` int64, the tokens of sequence ``i`` are
            ``ids[cu_seqlens[i]:cu_seqlens[i + 1]]``.
        cu_seqlens: ``(B + 1,)`` int64 cumulative token counts, ``cu_seqlens[0] == 0``.
    """

    ids: np.ndarray
    cu_seqlens: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """``(B,)`` int64 token count per sequence."""
        return np.diff(self.cu_seqlens)

    def __len__(self) -> int:
        return len(self.cu_seqlens) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.ids[self.cu_seqlens[index] : self.cu_seqlens[index + 1]]


@dataclass(frozen=True)
class EncodedBatch:
    """A right-padded batch.

    Attributes:
        input_ids: ``(B, T)`` int64 (``torch.long`` with ``return_tensors="pt"``); positions
            past a row's length hold the tokenizer's ``pad_id``.
        attention_mask: ``(B, T)`` bool, ``True`` on real tokens (specials included).
        lengths: ``(B,)`` int64, tokens per row (specials included).
    """

    input_ids: Any
    attention_mask: Any
    lengths: Any


# --------------------------------------------------------------------------------------------
# tokenizers
# --------------------------------------------------------------------------------------------


class _DNATokenizer(ABC):
    """Shared machinery: packing, padding, special tokens, reverse complement of ids."""

    vocab: tuple[str, ...]
    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    _complement: np.ndarray  # (vocab_size,) int64 id -> id of the reverse-complemented token

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        return len(self.vocab)

    @property
    def special_ids(self) -> tuple[int, ...]:
        """Ids of ``[PAD]``, ``[CLS]``, ``[SEP]``, ``[MASK]`` in that order."""
        return (self.pad_id, self.cls_id, self.sep_id, self.mask_id)

    @abstractmethod
    def _tokenize(self, codes: np.ndarray, offsets: np.ndarray) -> PackedTokens:
        """Validated codes ``(sum L,)`` uint8 in 0..4 + offsets ``(B+1,)`` -> packed ids."""

    # ---- encoding -------------------------------------------------------------------------

    def encode(self, seq: str, *, add_cls: bool = False, add_sep: bool = False) -> np.ndarray:
        """Token ids of one sequence: ``(T,)`` int64, optionally ``[CLS] ... [SEP]``."""
        codes = _codes(seq)
        packed = self._tokenize(codes, np.array([0, codes.size], dtype=np.int64))
        parts = [packed.ids]
        if add_cls:
            parts.insert(0, np.array([self.cls_id], dtype=np.int64))
        if add_sep:
            parts.append(np.array([self.sep_id], dtype=np.int64))
        return np.concatenate(parts) if len(parts) > 1 else packed.ids

    def encode_packed(self, seqs: Sequence[str]) -> PackedTokens:
        """Token ids of many sequences packed end to end (no specials, no padding)."""
        codes, offsets = _concat_codes(seqs)
        return self._tokenize(codes, offsets)

    def encode_batch(
        self,
        seqs: Sequence[str],
        *,
        add_cls: bool = False,
        add_sep: bool = False,
        max_length: int | None = None,
        truncation: bool = False,
        return_tensors: Literal["np", "pt"] = "np",
    ) -> EncodedBatch:
        """Encode sequences of different lengths into one right-padded batch.

        Args:
            seqs: ``B`` DNA strings.
            add_cls / add_sep: prepend ``[CLS]`` / append ``[SEP]`` to every row.
            max_length: maximum row length (specials included). Longer rows raise unless
                ``truncation=True``, which keeps the first content tokens.
            return_tensors: ``"np"`` (numpy arrays) or ``"pt"`` (torch tensors, CPU).

        Returns:
            :class:`EncodedBatch` with ``input_ids`` ``(B, T)`` int64, ``attention_mask``
            ``(B, T)`` bool and ``lengths`` ``(B,)`` int64, ``T`` the longest row.
        """
        if return_tensors not in ("np", "pt"):
            raise ValueError(f"return_tensors must be 'np' or 'pt', got {return_tensors!r}")
        n_special = int(add_cls) + int(add_sep)
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
                raise TypeError(f"max_length must be an int or None, got {max_length!r}")
            if max_length < n_special:
                raise ValueError(
                    f"max_length={max_length} leaves no room for the {n_special} special "
                    "token(s); raise max_length or drop add_cls/add_sep"
                )
        packed = self.encode_packed(seqs)
        n_content = packed.lengths
        if max_length is not None and n_content.size:
            limit = int(max_length) - n_special
            too_long = np.flatnonzero(n_content > limit)
            if too_long.size and not truncation:
                i = int(too_long[0])
                raise ValueError(
                    f"sequence {i} has {int(n_content[i]) + n_special} tokens, more than "
                    f"max_length={max_length} ({too_long.size} such sequences); pass "
                    "truncation=True to keep the first tokens, or raise max_length"
                )
            n_keep = np.minimum(n_content, limit)
        else:
            n_keep = n_content
        batch = len(packed)
        lengths = n_keep + n_special
        width = int(lengths.max()) if batch else 0
        input_ids = np.full((batch, width), self.pad_id, dtype=np.int64)
        row = np.repeat(np.arange(batch, dtype=np.int64), n_content)
        col = np.arange(packed.ids.size, dtype=np.int64) - np.repeat(
            packed.cu_seqlens[:-1], n_content
        )
        keep = col < n_keep[row]
        input_ids[row[keep], col[keep] + int(add_cls)] = packed.ids[keep]
        if add_cls and batch:
            input_ids[:, 0] = self.cls_id
        if add_sep and batch:
            input_ids[np.arange(batch), lengths - 1] = self.sep_id
        attention_mask = np.arange(width)[None, :] < lengths[:, None]
        if return_tensors == "pt":
            import torch

            return EncodedBatch(
                torch.from_numpy(input_ids),
                torch.from_numpy(attention_mask),
                torch.from_numpy(lengths.astype(np.int64)),
            )
        return EncodedBatch(input_ids, attention_mask, lengths.astype(np.int64))

    # ---- helpers for id arrays ------------------------------------------------------------

    def _as_ids(self, ids: Any, name: str = "ids") -> np.ndarray:
        if hasattr(ids, "detach"):  # torch tensor
            ids = ids.detach().cpu().numpy()
        arr = np.asarray(ids)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            raise ValueError(
                f"{name} holds ids outside [0, {self.vocab_size}) "
                f"(min {int(arr.min())}, max {int(arr.max())}); were they made by another "
                "tokenizer?"
            )
        return arr.astype(np.int64, copy=False)

    def _row_lengths(self, ids: np.ndarray, lengths: Any) -> np.ndarray:
        if lengths is None:
            is_pad = ids == self.pad_id
            lengths = (~is_pad).sum(axis=1)
            positions = np.arange(ids.shape[1])[None, :]
            if np.any(is_pad != (positions >= lengths[:, None])):
                raise ValueError(
                    "ids has [PAD] tokens before real tokens; only right padding is "
                    "supported: pass lengths=... explicitly"
                )
            return lengths.astype(np.int64)
        if hasattr(lengths, "detach"):
            lengths = lengths.detach().cpu().numpy()
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (ids.shape[0],) or np.any(lengths < 0) or np.any(
            lengths > ids.shape[1]
        ):
            raise ValueError(
                f"lengths must have shape ({ids.shape[0]},) with values in [0, {ids.shape[1]}], "
                f"got shape {lengths.shape}"
            )
        return lengths

    def _content_span(self, row: np.ndarray) -> tuple[int, int]:
        start = 1 if row.size and row[0] == self.cls_id else 0
        stop = row.size - 1 if row.size > start and row[-1] == self.sep_id else row.size
        return start, stop

    def _rc_content(self, content: np.ndarray) -> np.ndarray:
        """Reverse complement of a 1-D run of content ids (no specials)."""
        return self._complement[content[::-1]]

    def reverse_complement_ids(self, ids: Any, lengths: Any = None) -> Any:
        """Reverse complement of token ids, equal to tokenising the reverse-complemented string.

        Args:
            ids: ``(T,)`` ids of one sequence, or a right-padded ``(B, T)`` batch, as a numpy
                array or a torch tensor. A leading ``[CLS]`` and trailing ``[SEP]`` stay in
                place; ``[PAD]`` stays at the end.
            lengths: ``(B,)`` row lengths for a batch; by default the number of non-``[PAD]``
                tokens (right padding is checked).

        Returns:
            int64 ids of the same shape and kind as ``ids`` (a torch tensor comes back as
            ``torch.long`` on the same device). Applying it twice returns ``ids``.
        """
        out = self._reverse_complement_array(self._as_ids(ids), lengths)
        if hasattr(ids, "detach"):  # torch tensor in, torch tensor out
            import torch

            return torch.from_numpy(out).to(ids.device)
        return out

    def _reverse_complement_array(self, arr: np.ndarray, lengths: Any) -> np.ndarray:
        if arr.ndim == 1:
            start, stop = self._content_span(arr)
            out = arr.copy()
            out[start:stop] = self._rc_content(arr[start:stop])
            return out
        if arr.ndim != 2:
            raise ValueError(f"ids must be 1-D (T,) or 2-D (B, T), got shape {arr.shape}")
        row_lengths = self._row_lengths(arr, lengths)
        out = arr.copy()
        for i in range(arr.shape[0]):
            row = arr[i, : row_lengths[i]]
            out[i, : row_lengths[i]] = self._reverse_complement_array(row, None)
        return out

    # ---- decoding -------------------------------------------------------------------------

    @abstractmethod
    def _decode_content(self, content: np.ndarray) -> str:
        """Decode ``(T,)`` ids that hold no ``[PAD]``/``[CLS]``/``[SEP]``."""

    def decode(self, ids: Any) -> str:
        """Decode ``(T,)`` ids to an upper-case string; ``[PAD]``, ``[CLS]``, ``[SEP]`` are skipped.

        ``[MASK]`` (and ``[UNK]`` for k-mers) decode to ``N``.
        """
        arr = self._as_ids(ids)
        if arr.ndim != 1:
            raise ValueError(
                f"decode takes one sequence of shape (T,), got shape {arr.shape}; "
                "use decode_batch for (B, T)"
            )
        keep = (arr != self.pad_id) & (arr != self.cls_id) & (arr != self.sep_id)
        return self._decode_content(arr[keep])

    def decode_batch(self, ids: Any, lengths: Any = None) -> list[str]:
        """Decode a right-padded ``(B, T)`` batch into ``B`` strings."""
        arr = self._as_ids(ids)
        if arr.ndim != 2:
            raise ValueError(f"decode_batch takes (B, T) ids, got shape {arr.shape}")
        row_lengths = self._row_lengths(arr, lengths)
        return [self.decode(arr[i, : row_lengths[i]]) for i in range(arr.shape[0])]


class NucleotideTokenizer(_DNATokenizer):
    """One token per base.

    Ids: ``A=0, C=1, G=2, T=3, N=4, [PAD]=5, [CLS]=6, [SEP]=7, [MASK]=8`` (``vocab_size=9``).
    There is no ``[UNK]``: ambiguity codes become ``N`` and other characters raise.

    Example:
        >>> tok = NucleotideTokenizer()
        >>> tok.encode("ACgtR").tolist()
        [0, 1, 2, 3, 4]
        >>> tok.decode(tok.reverse_complement_ids(tok.encode("AACG")))
        'CGTT'
    """

    def __init__(self) -> None:
        self.vocab = tuple(BASES) + _SPECIAL_NAMES
        self.n_id = _N_CODE
        self.pad_id, self.cls_id, self.sep_id, self.mask_id = range(5, 9)
        complement = np.arange(self.vocab_size, dtype=np.int64)
        complement[:4] = 3 - complement[:4]
        complement.flags.writeable = False
        self._complement = complement
        decode_table = np.zeros(self.vocab_size, dtype=np.uint8)
        decode_table[:5] = _BASE_BYTES
        decode_table[self.mask_id] = ord("N")
        self._decode_table = decode_table

    def __repr__(self) -> str:
        return "NucleotideTokenizer()"

    def _tokenize(self, codes: np.ndarray, offsets: np.ndarray) -> PackedTokens:
        return PackedTokens(codes.astype(np.int64), offsets.copy())

    def _decode_content(self, content: np.ndarray) -> str:
        return self._decode_table[content].tobytes().decode("ascii")


class KmerTokenizer(_DNATokenizer):
    """k-mer tokens, overlapping (stride 1) or non-overlapping (stride k), ``1 <= k <= 8``.

    See the module docstring for the id layout. A k-mer containing ``N`` maps to ``unk_id``.
    With ``overlapping=False`` the last ``L % k`` bases become single-base tokens; the reverse
    complement of such ids changes the tiling, so :meth:`reverse_complement_ids` decodes,
    reverse-complements and re-encodes them, and raises :class:`ValueError` when they hold
    ``[UNK]``/``[MASK]`` (the hidden bases make the re-tiling undefined).

    Args:
        k: k-mer length, an int in ``[1, 8]``.
        overlapping: stride 1 (``True``) or stride ``k`` (``False``).

    Example:
        >>> tok = KmerTokenizer(2)
        >>> tok.encode("ACGT").tolist()  # AC, CG, GT
        [1, 6, 11]
        >>> KmerTokenizer(2, overlapping=False).encode("ACGTA").tolist()  # AC, GT, single A
        [1, 11, 17]
    """

    def __init__(self, k: int, overlapping: bool = True) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"k must be an int in [1, {MAX_K}], got {k!r}")
        if not 1 <= k <= MAX_K:
            raise ValueError(
                f"k must be in [1, {MAX_K}], got {k}; larger k-mer vocabularies "
                f"(4**k ids) are not supported"
            )
        if not isinstance(overlapping, (bool, np.bool_)):
            raise TypeError(f"overlapping must be a bool, got {overlapping!r}")
        self.k = int(k)
        self.overlapping = bool(overlapping)
        n_kmers = 4**self.k
        self.n_kmers = n_kmers
        self.unk_id = n_kmers
        self.single_base_offset = n_kmers + 1
        self.pad_id, self.cls_id, self.sep_id, self.mask_id = range(n_kmers + 6, n_kmers + 10)

        kmer_ids = np.arange(n_kmers, dtype=np.int64)
        # digits[:, j] = j-th base (0..3) of each k-mer, most significant first
        shifts = 2 * np.arange(self.k - 1, -1, -1, dtype=np.int64)
        digits = (kmer_ids[:, None] >> shifts[None, :]) & 3
        self._kmer_bytes = _BASE_BYTES[digits]  # (4**k, k) uint8 ASCII
        self.vocab = tuple(
            [row.tobytes().decode("ascii") for row in self._kmer_bytes]
            + ["[UNK]"]
            + list(BASES)
            + list(_SPECIAL_NAMES)
        )
        complement = np.arange(self.vocab_size, dtype=np.int64)
        rc_digits = 3 - digits[:, ::-1]
        complement[:n_kmers] = (rc_digits << shifts[None, :]).sum(axis=1)
        single = self.single_base_offset
        complement[single : single + 4] = single + 3 - np.arange(4)
        complement.flags.writeable = False
        self._complement = complement

    def __repr__(self) -> str:
        return f"KmerTokenizer(k={self.k}, overlapping={self.overlapping})"

    def _window_ids(self, codes: np.ndarray) -> np.ndarray:
        """k-mer id of every window start ``p`` in ``[0, len(codes) - k]`` (``[UNK]`` if N)."""
        k = self.k
        n_windows = codes.size - k + 1
        if n_windows <= 0:
            return np.zeros(0, dtype=np.int64)
        digits = codes & np.uint8(3)  # N (4) -> 0, fixed up below
        values = np.zeros(n_windows, dtype=np.int32)  # 4**8 fits comfortably
        for j in range(k):
            values <<= 2
            values |= digits[j : j + n_windows]
        is_n = np.zeros(codes.size + 1, dtype=np.int32)
        np.cumsum(codes == _N_CODE, out=is_n[1:])
        has_n = (is_n[k:] - is_n[:-k]) > 0
        values[has_n] = self.unk_id
        return values.astype(np.int64)

    def _tokenize(self, codes: np.ndarray, offsets: np.ndarray) -> PackedTokens:
        k = self.k
        lengths = np.diff(offsets)
        windows = self._window_ids(codes)
        n_seq = lengths.size
        if self.overlapping:
            counts = np.maximum(lengths - k + 1, 0)
            cu = np.zeros(n_seq + 1, dtype=np.int64)
            np.cumsum(counts, out=cu[1:])
            if windows.size == cu[-1]:  # one sequence, or no window crosses a boundary
                return PackedTokens(windows, cu)
            # drop the (at most k - 1 per sequence) windows that run past their sequence end
            ends = offsets[1:]
            first_bad = np.maximum(offsets[:-1], ends - k + 1)
            n_bad = ends - first_bad
            bad_start = np.cumsum(n_bad) - n_bad
            bad = np.repeat(first_bad - bad_start, n_bad) + np.arange(
                int(n_bad.sum()), dtype=np.int64
            )
            keep = np.ones(windows.size, dtype=bool)
            keep[bad[bad < windows.size]] = False
            return PackedTokens(windows[keep], cu)
        n_full = lengths // k
        counts = n_full + lengths % k
        cu = np.zeros(n_seq + 1, dtype=np.int64)
        np.cumsum(counts, out=cu[1:])
        seq_of = np.repeat(np.arange(n_seq, dtype=np.int64), counts)
        within = np.arange(cu[-1], dtype=np.int64) - cu[:-1][seq_of]
        full = n_full[seq_of]
        is_kmer = within < full
        pos = offsets[:-1][seq_of] + np.where(is_kmer, within * k, full * k + within - full)
        ids = np.empty(pos.size, dtype=np.int64)
        ids[is_kmer] = windows[pos[is_kmer]]
        ids[~is_kmer] = self.single_base_offset + codes[pos[~is_kmer]].astype(np.int64)
        return PackedTokens(ids, cu)

    def ids_ending_at(self, codes: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
        """Id of the k-mer that *ends* at every base of nucleotide codes ``(L,)``: ``(L,)``
        int64, for a causal (next-base) model whose input at base ``t`` may only see bases
        ``<= t``.

        Entry ``t`` equals ``encode(seq)[t - k + 1]`` (the overlapping tokenisation); it is
        ``[UNK]`` when the k-mer holds an ``N`` or when fewer than ``k`` bases of the record
        end at ``t`` (the record's first ``k - 1`` bases, so no k-mer spans two records).

        Args:
            codes: nucleotide ids ``0..4`` (``NucleotideTokenizer`` ids of ``A C G T N``),
                several records joined end to end.
            starts: sorted 0-based start offsets of the records in ``codes`` (default: one
                record starting at 0).
        """
        codes = np.asarray(codes)
        if codes.ndim != 1:
            raise ValueError(f"codes must be 1-D (L,), got shape {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() > _N_CODE):
            raise ValueError(
                "codes must be nucleotide ids in 0..4 (A C G T N); tokenise with "
                "NucleotideTokenizer first"
            )
        codes = codes.astype(np.uint8)
        out = np.full(codes.size, self.unk_id, dtype=np.int64)
        out[self.k - 1 :] = self._window_ids(codes)
        starts = np.zeros(1, dtype=np.int64) if starts is None else np.asarray(starts, np.int64)
        if starts.ndim != 1 or np.any(starts < 0) or np.any(np.diff(starts) < 0):
            raise ValueError("starts must be sorted non-negative 0-based record offsets")
        head = (starts[:, None] + np.arange(self.k - 1, dtype=np.int64)[None, :]).ravel()
        out[head[head < codes.size]] = self.unk_id
        return out

    def count(self, seq: str) -> np.ndarray:
        """Overlapping k-mer counts of ``seq``: ``(4**k,)`` int64 (k-mers with N are skipped).

        Counts always use stride 1, whatever ``overlapping`` says.
        """
        windows = self._window_ids(_codes(seq))
        return np.bincount(windows[windows < self.n_kmers], minlength=self.n_kmers)

    def _rc_content(self, content: np.ndarray) -> np.ndarray:
        single = self.single_base_offset
        if self.overlapping or not np.any((content >= single) & (content < single + 5)):
            return self._complement[content[::-1]]
        if np.any(content == self.unk_id) or np.any(content == self.mask_id):
            raise ValueError(
                "cannot reverse-complement non-overlapping k-mer ids whose length is not a "
                "multiple of k when they contain [UNK]/[MASK] (the bases are unknown, so the "
                "re-tiling is undefined); reverse-complement the string before tokenising"
            )
        text = self._decode_content(content)
        return self._tokenize(_codes(reverse_complement(text)), np.array([0, len(text)])).ids

    def _decode_content(self, content: np.ndarray) -> str:
        k = self.k
        single = self.single_base_offset
        is_kmer = content < self.n_kmers
        is_single = (content >= single) & (content < single + 5)
        if self.overlapping:
            if np.any(is_single):
                raise ValueError(
                    "single-base ids only occur in non-overlapping tokenisations; these ids "
                    "do not come from an overlapping KmerTokenizer"
                )
            if content.size == 0:
                return ""
            out = np.full(content.size + k - 1, ord("N"), dtype=np.uint8)
            valid = np.flatnonzero(is_kmer)
            chars = self._kmer_bytes[content[valid]]  # (n_valid, k)
            for d in range(k):
                out[valid + d] = chars[:, d]
            for d in range(k):  # every valid window must agree with the assembled string
                mismatch = out[valid + d] != chars[:, d]
                if np.any(mismatch):
                    t = int(valid[np.flatnonzero(mismatch)[0]])
                    raise ValueError(
                        f"ids are not a consistent overlapping {k}-mer tokenisation: token {t} "
                        f"({self.vocab[int(content[t])]}) disagrees with its neighbours"
                    )
            return out.tobytes().decode("ascii")
        widths = np.where(is_single, 1, k)
        starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
        out = np.full(int(widths.sum()), ord("N"), dtype=np.uint8)
        kmer_pos = np.flatnonzero(is_kmer)
        chars = self._kmer_bytes[content[kmer_pos]]
        for d in range(k):
            out[starts[kmer_pos] + d] = chars[:, d]
        single_pos = np.flatnonzero(is_single)
        out[starts[single_pos]] = _BASE_BYTES[content[single_pos] - single]  # [UNK] stays N
        return out.tobytes().decode("ascii")
