"""Tests for titans_ts.encoders.dna: alphabet rules, k-mers, reverse complement, batches."""

from __future__ import annotations

import itertools
import re
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titans_ts.encoders.dna import (
    BASES,
    IUPAC_AMBIGUITY,
    KmerTokenizer,
    NucleotideTokenizer,
    normalize_sequence,
    reverse_complement,
)

ACGT = st.text(alphabet="ACGT", max_size=60)
ACGTN = st.text(alphabet="ACGTNacgtn", max_size=60)


def naive_kmer_ids(seq: str, k: int, stride: int) -> list[int]:
    """Reference k-mer ids by string slicing (N-containing k-mers -> 4**k)."""
    seq = seq.upper()
    out = []
    for start in range(0, len(seq) - k + 1, stride):
        kmer = seq[start : start + k]
        out.append(4**k if "N" in kmer else int("".join(str("ACGT".index(c)) for c in kmer), 4))
    return out


# --------------------------------------------------------------------------------------------
# alphabet and validation
# --------------------------------------------------------------------------------------------


def test_nucleotide_ids_and_vocab() -> None:
    tok = NucleotideTokenizer()
    assert tok.encode("ACGTN").tolist() == [0, 1, 2, 3, 4]
    assert tok.vocab == ("A", "C", "G", "T", "N", "[PAD]", "[CLS]", "[SEP]", "[MASK]")
    assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id) == (5, 6, 7, 8)
    assert tok.vocab_size == 9
    assert tok.encode("ACGT").dtype == np.int64


def test_lowercase_soft_mask_maps_to_upper() -> None:
    tok = NucleotideTokenizer()
    np.testing.assert_array_equal(tok.encode("acgtn"), tok.encode("ACGTN"))
    np.testing.assert_array_equal(tok.encode("AcGtNa"), [0, 1, 2, 3, 4, 0])
    assert normalize_sequence("acgTn") == "ACGTN"


@pytest.mark.parametrize("code", list(IUPAC_AMBIGUITY + IUPAC_AMBIGUITY.lower()))
def test_iupac_codes_map_to_n(code: str) -> None:
    tok = NucleotideTokenizer()
    assert tok.encode(f"A{code}C").tolist() == [0, 4, 1]
    assert normalize_sequence(f"a{code}c") == "ANC"
    assert KmerTokenizer(2).encode(f"A{code}C").tolist() == [16, 16]


@pytest.mark.parametrize(
    ("seq", "char", "position"),
    [
        ("ACGU", "'U'", 3),
        ("AC-GT", "'-'", 2),
        ("ACGT.", "'.'", 4),
        ("X", "'X'", 0),
        ("ACG T", "' '", 3),
        ("ACG\nT", "'\\n'", 3),
        ("AC1", "'1'", 2),
        ("ACGTé", "'é'", 4),
        ("ACGT*", "'*'", 4),
    ],
)
def test_invalid_character_error_names_char_and_position(
    seq: str, char: str, position: int
) -> None:
    expected = re.escape(f"invalid nucleotide {char} at position {position}:")
    for tokenizer in (NucleotideTokenizer(), KmerTokenizer(3), KmerTokenizer(2, overlapping=False)):
        with pytest.raises(ValueError, match=expected):
            tokenizer.encode(seq)
    with pytest.raises(ValueError, match=f"at position {position}"):
        reverse_complement(seq)
    with pytest.raises(ValueError, match=f"at position {position}"):
        normalize_sequence(seq)


def test_invalid_character_error_names_sequence_index_in_batch() -> None:
    tok = NucleotideTokenizer()
    with pytest.raises(ValueError, match=r"'Z' at position 1 of sequence 2"):
        tok.encode_batch(["ACGT", "", "AZ", "GG"])
    with pytest.raises(ValueError, match=r"'é' at position 0 of sequence 1"):
        tok.encode_batch(["ACGT", "éA"])
    with pytest.raises(ValueError, match=r"'Q' at position 3 of sequence 0 \(2 invalid"):
        KmerTokenizer(3).encode_packed(["ACGQQ", "AAA"])


def test_rna_hint_and_counts_in_message() -> None:
    with pytest.raises(ValueError, match="replace U with T"):
        NucleotideTokenizer().encode("ACGU")


def test_type_errors() -> None:
    tok = NucleotideTokenizer()
    with pytest.raises(TypeError, match="got bytes"):
        tok.encode(b"ACGT")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single str"):
        tok.encode_batch("ACGT")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="at index 1"):
        tok.encode_batch(["ACGT", 5])  # type: ignore[list-item]


# --------------------------------------------------------------------------------------------
# k-mers
# --------------------------------------------------------------------------------------------


def test_kmer_vocab_layout() -> None:
    tok = KmerTokenizer(2)
    assert tok.vocab[:4] == ("AA", "AC", "AG", "AT")
    assert tok.vocab[15] == "TT"
    assert tok.vocab[16] == "[UNK]" and tok.unk_id == 16
    assert tok.vocab[17:22] == tuple(BASES)
    assert tok.vocab[22:] == ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
    assert tok.vocab_size == 4**2 + 10
    assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id) == (22, 23, 24, 25)


def test_kmer_overlapping_hand_examples() -> None:
    tok = KmerTokenizer(3)
    # ACG=0*16+1*4+2=6, CGT=1*16+2*4+3=27, GTA=2*16+3*4+0=44
    assert tok.encode("ACGTA").tolist() == [6, 27, 44]
    assert tok.encode("acgta").tolist() == [6, 27, 44]
    # any window touching N is [UNK] (64)
    assert tok.encode("ACNGTA").tolist() == [64, 64, 64, 44]
    assert tok.encode("AC").tolist() == []  # shorter than k: no tokens
    assert KmerTokenizer(1).encode("ACGTN").tolist() == [0, 1, 2, 3, 4]
    assert KmerTokenizer(8).encode("TTTTTTTTA").tolist() == [4**8 - 1, 4**8 - 4]


def test_kmer_non_overlapping_hand_examples() -> None:
    tok = KmerTokenizer(3, overlapping=False)
    single = tok.single_base_offset
    assert tok.encode("ACGTAC").tolist() == [6, 4 * 4 * 3 + 0 + 1]  # ACG, TAC
    # tail of length 2 becomes single-base tokens G, N
    assert tok.encode("ACGTACGN").tolist() == [6, 49, single + 2, single + 4]
    assert tok.encode("ANGTTT").tolist() == [64, 63]
    assert tok.encode("AC").tolist() == [single, single + 1]


def test_kmer_counts_hand_examples() -> None:
    tok = KmerTokenizer(2)
    counts = tok.count("AAAC")  # AA, AA, AC
    assert counts.shape == (16,) and counts.dtype == np.int64
    assert counts[0] == 2 and counts[1] == 1 and counts.sum() == 3
    counts = tok.count("ANAC")  # AN, NA skipped; AC
    assert counts.sum() == 1 and counts[1] == 1
    # non-overlapping token histogram: AAAC -> AA, AC
    ids = KmerTokenizer(2, overlapping=False).encode("AAACA")
    hist = np.bincount(ids, minlength=26)
    assert hist[0] == 1 and hist[1] == 1 and hist[17] == 1 and hist.sum() == 3


@settings(max_examples=60, deadline=None)
@given(seq=ACGTN, k=st.integers(1, 8), overlapping=st.booleans())
def test_kmer_matches_naive_slicing(seq: str, k: int, overlapping: bool) -> None:
    tok = KmerTokenizer(k, overlapping=overlapping)
    expected = naive_kmer_ids(seq, k, 1 if overlapping else k)
    if not overlapping:
        tail = seq[(len(seq) // k) * k :].upper()
        expected += [tok.single_base_offset + BASES.index(c) for c in tail]
    assert tok.encode(seq).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(st.text(alphabet="ACGTN", min_size=1, max_size=20), min_size=1, max_size=4),
    k=st.integers(1, 8),
)
def test_ids_ending_at_matches_per_record_tokenisation(records: list[str], k: int) -> None:
    """Entry t is the overlapping k-mer ending at base t of its own record, [UNK] before."""
    tok = KmerTokenizer(k)
    codes = NucleotideTokenizer().encode("".join(records))
    starts = np.cumsum([0] + [len(r) for r in records[:-1]])
    got = tok.ids_ending_at(codes, starts)
    expected: list[int] = []
    for rec in records:
        expected += [tok.unk_id] * min(k - 1, len(rec)) + naive_kmer_ids(rec, k, 1)
    assert got.dtype == np.int64 and got.tolist() == expected


def test_ids_ending_at_hand_example_and_bad_input() -> None:
    tok = KmerTokenizer(2)
    codes = NucleotideTokenizer().encode("ACGTAC")
    assert tok.ids_ending_at(codes).tolist() == [16, 1, 6, 11, 12, 1]  # [UNK] AC CG GT TA AC
    assert tok.ids_ending_at(codes, [0, 3]).tolist() == [16, 1, 6, 16, 12, 1]  # ACG | TAC
    with pytest.raises(ValueError, match="nucleotide ids in 0..4"):
        tok.ids_ending_at(np.array([0, 7]))
    with pytest.raises(ValueError, match="sorted non-negative"):
        tok.ids_ending_at(codes, [3, 0])


@pytest.mark.parametrize("k", [0, 9, -1])
def test_k_out_of_bounds(k: int) -> None:
    with pytest.raises(ValueError, match=r"k must be in \[1, 8\]"):
        KmerTokenizer(k)


@pytest.mark.parametrize("k", [2.0, "3", True])
def test_k_wrong_type(k: object) -> None:
    with pytest.raises(TypeError, match="k must be an int"):
        KmerTokenizer(k)  # type: ignore[arg-type]


def test_k_bounds_inclusive() -> None:
    assert KmerTokenizer(1).vocab_size == 4 + 10
    assert KmerTokenizer(8).vocab_size == 4**8 + 10


# --------------------------------------------------------------------------------------------
# reverse complement
# --------------------------------------------------------------------------------------------


def test_reverse_complement_string_examples() -> None:
    assert reverse_complement("AACG") == "CGTT"
    assert reverse_complement("acgtN") == "Nacgt"
    assert reverse_complement("RYKMBVDHSW") == "WSDHBVKMRY"
    assert reverse_complement("") == ""


@settings(max_examples=50, deadline=None)
@given(seq=st.text(alphabet="ACGTNacgtn" + IUPAC_AMBIGUITY, max_size=80))
def test_reverse_complement_twice_is_identity_for_strings(seq: str) -> None:
    assert reverse_complement(reverse_complement(seq)) == seq


@settings(max_examples=60, deadline=None)
@given(seq=ACGTN, k=st.integers(1, 6), overlapping=st.booleans())
def test_rc_ids_equal_tokenising_rc_string(seq: str, k: int, overlapping: bool) -> None:
    tok = KmerTokenizer(k, overlapping=overlapping)
    ids = tok.encode(seq)
    rc_string_ids = tok.encode(reverse_complement(seq))
    for source, target in ((ids, rc_string_ids), (rc_string_ids, ids)):
        if not overlapping and len(seq) % k and tok.unk_id in source:
            # the re-tiling needs bases hidden inside [UNK]: documented error
            with pytest.raises(ValueError, match="reverse-complement the string"):
                tok.reverse_complement_ids(source)
        else:
            np.testing.assert_array_equal(tok.reverse_complement_ids(source), target)


@settings(max_examples=40, deadline=None)
@given(seq=ACGTN)
def test_nucleotide_rc_ids_twice_is_identity(seq: str) -> None:
    tok = NucleotideTokenizer()
    ids = tok.encode(seq, add_cls=True, add_sep=True)
    rc = tok.reverse_complement_ids(ids)
    assert rc[0] == tok.cls_id and rc[-1] == tok.sep_id  # specials stay in place
    np.testing.assert_array_equal(rc[1:-1], tok.encode(reverse_complement(seq)))
    np.testing.assert_array_equal(tok.reverse_complement_ids(rc), ids)


def test_rc_ids_of_padded_batch() -> None:
    seqs = ["ACGTTG", "A", "", "GGGCA"]
    for tok in (NucleotideTokenizer(), KmerTokenizer(2), KmerTokenizer(2, overlapping=False)):
        batch = tok.encode_batch(seqs, add_cls=True)
        rc = tok.reverse_complement_ids(batch.input_ids)
        expected = tok.encode_batch([reverse_complement(s) for s in seqs], add_cls=True)
        np.testing.assert_array_equal(rc, expected.input_ids)
        np.testing.assert_array_equal(tok.reverse_complement_ids(rc), batch.input_ids)
        np.testing.assert_array_equal(
            tok.reverse_complement_ids(batch.input_ids, batch.lengths), rc
        )


def test_rc_ids_reject_left_padding() -> None:
    tok = NucleotideTokenizer()
    ids = np.array([[tok.pad_id, 0, 1]])
    with pytest.raises(ValueError, match="right padding"):
        tok.reverse_complement_ids(ids)


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seq=ACGT, k=st.integers(1, 8), overlapping=st.booleans())
def test_decode_round_trip_acgt(seq: str, k: int, overlapping: bool) -> None:
    tok = KmerTokenizer(k, overlapping=overlapping)
    if overlapping and 0 < len(seq) < k:
        assert tok.decode(tok.encode(seq)) == ""  # no tokens: nothing to decode
        return
    assert tok.decode(tok.encode(seq)) == seq


@settings(max_examples=40, deadline=None)
@given(seq=ACGTN)
def test_nucleotide_decode_round_trip(seq: str) -> None:
    tok = NucleotideTokenizer()
    assert tok.decode(tok.encode(seq, add_cls=True, add_sep=True)) == seq.upper()


def test_decode_with_n() -> None:
    # overlapping: a base is recovered if any k-mer covering it is free of N
    assert KmerTokenizer(2).decode(KmerTokenizer(2).encode("ACNGT")) == "ACNGT"
    assert KmerTokenizer(3).decode(KmerTokenizer(3).encode("ACNGTA")) == "NNNGTA"
    tok = KmerTokenizer(3, overlapping=False)
    assert tok.decode(tok.encode("ACGTNAGG")) == "ACGNNNGG"


def test_decode_rejects_inconsistent_overlapping_ids() -> None:
    tok = KmerTokenizer(2)
    with pytest.raises(ValueError, match="not a consistent overlapping"):
        tok.decode(np.array([0, 15]))  # AA then TT cannot overlap
    with pytest.raises(ValueError, match="outside"):
        tok.decode(np.array([tok.vocab_size]))
    with pytest.raises(TypeError, match="integer"):
        tok.decode(np.array([0.5]))


def test_decode_batch_round_trip() -> None:
    seqs = ["ACGTAC", "AC", "", "TTTTGGGGA"]
    tok = KmerTokenizer(3, overlapping=False)
    batch = tok.encode_batch(seqs, add_cls=True, add_sep=True)
    assert tok.decode_batch(batch.input_ids) == seqs


# --------------------------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------------------------


def test_encode_batch_padding_and_mask() -> None:
    tok = NucleotideTokenizer()
    batch = tok.encode_batch(["ACG", "A", "GGTT"], add_cls=True, add_sep=True)
    P, C, S = tok.pad_id, tok.cls_id, tok.sep_id
    np.testing.assert_array_equal(
        batch.input_ids,
        [[C, 0, 1, 2, S, P], [C, 0, S, P, P, P], [C, 2, 2, 3, 3, S]],
    )
    np.testing.assert_array_equal(batch.lengths, [5, 3, 6])
    np.testing.assert_array_equal(batch.attention_mask, batch.input_ids != P)
    assert batch.attention_mask.dtype == bool and batch.input_ids.dtype == np.int64


def test_encode_batch_matches_encode_per_sequence() -> None:
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGTN"), int(n))) for n in rng.integers(0, 30, 200)]
    for k, overlapping in itertools.product(range(1, 9), (True, False)):
        tok = KmerTokenizer(k, overlapping=overlapping)
        packed = tok.encode_packed(seqs)
        assert len(packed) == len(seqs)
        for i, seq in enumerate(seqs):
            np.testing.assert_array_equal(packed[i], tok.encode(seq))
        batch = tok.encode_batch(seqs)
        for i, seq in enumerate(seqs):
            ids = tok.encode(seq)
            np.testing.assert_array_equal(batch.input_ids[i, : ids.size], ids)
            assert np.all(batch.input_ids[i, ids.size :] == tok.pad_id)


def test_encode_batch_truncation() -> None:
    tok = NucleotideTokenizer()
    with pytest.raises(ValueError, match="sequence 1 has 7 tokens, more than max_length=5"):
        tok.encode_batch(["ACG", "ACGTA"], add_cls=True, add_sep=True, max_length=5)
    batch = tok.encode_batch(
        ["ACG", "ACGTA"], add_cls=True, add_sep=True, max_length=5, truncation=True
    )
    np.testing.assert_array_equal(
        batch.input_ids, [[6, 0, 1, 2, 7], [6, 0, 1, 2, 7]]
    )
    with pytest.raises(ValueError, match="no room"):
        tok.encode_batch(["A"], add_cls=True, add_sep=True, max_length=1)


def test_encode_batch_torch() -> None:
    torch = pytest.importorskip("torch")
    tok = KmerTokenizer(3)
    batch = tok.encode_batch(["ACGTA", "ACG"], return_tensors="pt")
    assert batch.input_ids.dtype == torch.long and batch.attention_mask.dtype == torch.bool
    assert batch.input_ids.tolist() == [[6, 27, 44], [6, tok.pad_id, tok.pad_id]]
    assert batch.lengths.tolist() == [3, 1]
    assert tok.decode_batch(batch.input_ids) == ["ACGTA", "ACG"]
    rc = tok.reverse_complement_ids(batch.input_ids)
    assert isinstance(rc, torch.Tensor) and rc.dtype == torch.long
    assert tok.decode_batch(rc) == ["TACGT", "CGT"]
    with pytest.raises(ValueError, match="return_tensors"):
        tok.encode_batch(["A"], return_tensors="tf")  # type: ignore[arg-type]


def test_encode_empty_batch() -> None:
    batch = NucleotideTokenizer().encode_batch([])
    assert batch.input_ids.shape == (0, 0) and batch.lengths.shape == (0,)


# --------------------------------------------------------------------------------------------
# speed
# --------------------------------------------------------------------------------------------


def test_tokenizing_5_mbp_is_fast() -> None:
    rng = np.random.default_rng(0)
    genome = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, 5_000_000)]
    seq = genome.tobytes().decode("ascii")
    for tok in (NucleotideTokenizer(), KmerTokenizer(6), KmerTokenizer(8, overlapping=False)):
        tok.encode(seq[:1000])  # warm-up
        # CPU time of this process: other jobs on the machine do not make the test fail
        start = time.process_time()
        ids = tok.encode(seq)
        elapsed = time.process_time() - start
        assert elapsed < 1.0, f"{tok!r} took {elapsed:.2f} s of CPU on 5 Mbp"
        assert ids.size in (5_000_000, 5_000_000 - 5, 625_000)
    start = time.process_time()
    rc = reverse_complement(seq)
    assert time.process_time() - start < 1.0
    assert rc[:10] == reverse_complement(seq[-10:])
