"""TitansDNALM: pretraining, streamed bits per base (pieces == one call), save/load, and
initialising a classifier from the pretrained weights."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from titans_ts.estimators import TitansDNALM, TitansSequenceClassifier
from titans_ts.training.dna_lm import GenomeStreams, genome_codes, stream_genome

TINY: dict = {
    "d_model": 8,
    "n_heads": 2,
    "n_layers": 1,
    "n_persistent": 2,
    "memory_chunk_size": 8,
    "window": 16,
    "context_length": 48,
    "windows_per_epoch": 128,
    "max_epochs": 3,
    "batch_size": 16,
    "learning_rate": 3e-2,  # large for a tiny model: 24 steps learn the repeat
    "accelerator": "cpu",
    "random_state": 0,
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def genome() -> str:
    """A 3 kb sequence with strong structure: a 7-base repeat plus 10% random bases."""
    rng = np.random.default_rng(0)
    text = np.frombuffer(("ACGGTCA" * 430).encode(), dtype=np.uint8).copy()
    noise = rng.random(text.size) < 0.1
    text[noise] = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, noise.sum())]
    return text.tobytes().decode()


@pytest.fixture(scope="module")
def lm(genome) -> TitansDNALM:
    return TitansDNALM(**TINY).fit(genome)


def test_learns_structure_below_two_bits(lm, genome):
    bits = lm.bits_per_base(genome)
    assert np.isfinite(bits) and bits < 1.5, bits  # uniform over ACGT is 2 bits
    assert lm.score(genome) == pytest.approx(-bits)
    assert lm.train_bits_per_base_ is not None and len(lm.history_) == 3


def test_streaming_in_pieces_equals_one_call(lm, genome):
    codes = genome_codes(genome[:700])
    whole = list(stream_genome(lm.model_, codes, piece_length=10**6))[-1]
    for piece in (1, 7, 64, 333):
        split = list(stream_genome(lm.model_, codes, piece_length=piece, report_every=200))
        assert split[-1].bases == whole.bases == len(codes) - 1
        assert split[-1].bits_per_base == pytest.approx(whole.bits_per_base, abs=1e-5)
        assert [r.bases for r in split[:-1]] == sorted(r.bases for r in split[:-1])


def test_per_base_nats_agree_with_bits_per_base_and_pieces(lm, genome):
    """``nats`` scores each base once, in order: its mean is ``bits_per_base`` * ln 2,
    pieces give the same per-base values, and a base's score depends only on the bases
    before it (changing base 400 leaves bases 1..400 scored as before)."""
    seq = genome[:700]
    nats = lm.nats(seq)
    assert nats.shape == (699,) and nats.dtype == np.float64 and (nats > 0).all()
    assert nats.mean() / np.log(2) == pytest.approx(lm.bits_per_base(seq), abs=1e-5)
    np.testing.assert_allclose(lm.nats(seq, piece_length=37), nats, atol=2e-5)
    reset = lm.nats(seq, reset_every=160)
    np.testing.assert_allclose(reset[:160], nats[:160], atol=2e-5)  # same state so far
    assert np.abs(reset[160:] - nats[160:]).max() > 1e-3
    other = "A" if seq[400] != "A" else "C"
    changed = lm.nats(seq[:400] + other + seq[401:])
    np.testing.assert_allclose(changed[:399], nats[:399], atol=2e-5)  # bases 1..399
    assert abs(changed[399] - nats[399]) > 1e-6  # base 400 itself is the target there


def test_reset_every_equals_separate_segments(lm, genome):
    """``reset_every=R`` scores every base as separate calls on ``codes[jR : (j+1)R + 1]``,
    whatever the piece length; it differs from the carried stream."""
    codes = genome_codes(genome[:700])
    R = 160
    nats = bases = 0.0
    for s in range(0, len(codes) - 1, R):
        seg = list(stream_genome(lm.model_, codes[s : s + R + 1]))[-1]
        nats += seg.bits_per_base * seg.bases
        bases += seg.bases
    for piece in (7, 64, 4096):
        reset = list(stream_genome(lm.model_, codes, piece_length=piece, reset_every=R))[-1]
        assert reset.bases == bases == len(codes) - 1
        assert reset.bits_per_base == pytest.approx(nats / bases, abs=1e-5)
    carried = lm.bits_per_base(genome[:700])
    assert abs(carried - lm.bits_per_base(genome[:700], reset_every=R)) > 1e-4
    assert lm.bits_per_base(genome[:700], reset_every=10**9) == pytest.approx(carried, abs=1e-5)
    with pytest.raises(ValueError, match="reset_every"):
        lm.stream(genome[:50], reset_every=0)
    with pytest.raises(TypeError, match="reset_every"):
        lm.stream(genome[:50], reset_every=512.0)


def test_fasta_input_and_save_load(lm, genome, tmp_path):
    from titans_ts.encoders.seqio import write_fasta

    fasta = write_fasta({"chr": genome[:900]}, tmp_path / "g.fa.gz")
    a = lm.bits_per_base(fasta)
    assert a == pytest.approx(lm.bits_per_base(genome[:900]), abs=1e-12)
    loaded = TitansDNALM.load(lm.save(tmp_path / "lm"))
    assert loaded.get_params() == lm.get_params()
    assert loaded.carry_windows_ == lm.carry_windows_ == (len(genome) - 1) // 48  # capped
    assert loaded.bits_per_base(genome[:900]) == a


def test_same_seed_same_model(genome):
    a = TitansDNALM(**{**TINY, "max_epochs": 1}).fit(genome).bits_per_base(genome[:300])
    b = TitansDNALM(**{**TINY, "max_epochs": 1}).fit(genome).bits_per_base(genome[:300])
    assert a == b


def test_classifier_starts_from_pretrained_lm(lm, tmp_path):
    from titans_ts.datasets.synthetic_dna import make_planted_motif_dataset

    folder = lm.save(tmp_path / "lm")
    split, _ = make_planted_motif_dataset(48, length=(20, 30), motif_length=6, seed=1)
    clf = TitansSequenceClassifier(
        pretrained=str(folder), max_epochs=1, learning_rate=1e-12, early_stopping=False,
        position_embedding=False,
        accelerator="cpu", random_state=0,
    ).fit(split.sequences, split.labels)
    # sizes come from the LM, dropout (regularisation of the fine-tuning) from the classifier
    assert clf.config_.backbone == dataclasses.replace(lm.config_.backbone, dropout=0.1)
    assert lm.config_.backbone.dropout == 0.0
    for key, value in lm.model_.state_dict().items():
        if key.startswith(("backbone.", "embedding.")):
            torch.testing.assert_close(clf.model_.state_dict()[key], value, rtol=0, atol=1e-9)
    with pytest.raises(FileNotFoundError, match="no estimator.json"):
        TitansSequenceClassifier(pretrained=str(tmp_path / "nope"), accelerator="cpu").fit(
            split.sequences, split.labels
        )


def test_conventions_and_bad_inputs(genome, tmp_path):
    est = TitansDNALM(**TINY)
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        est.bits_per_base(genome)
    with pytest.raises(ValueError, match="invalid nucleotide 'U' at position 2"):
        est.fit("ACUT" * 100)
    with pytest.raises(ValueError, match="fewer than context_length"):
        est.fit("ACGT" * 5)
    with pytest.raises(FileNotFoundError, match="is not a file"):
        est.fit(str(tmp_path / "missing.fa"))
    with pytest.raises(TypeError, match="FASTA path"):
        est.fit(42)
    with pytest.raises(ValueError, match="'context_length' parameter of TitansDNALM"):
        TitansDNALM(context_length=0).fit(genome)


@pytest.fixture(scope="module")
def kmer_lm(genome) -> TitansDNALM:
    return TitansDNALM(**TINY, kmer_k=3).fit(genome)


def test_kmer_input_lm_learns_and_streams_in_pieces(kmer_lm, genome):
    assert kmer_lm.config_.kmer_k == 3 and kmer_lm.config_.vocab_size == 4**3 + 10
    assert kmer_lm.bits_per_base(genome) < 1.5
    codes = genome_codes(genome[:500])
    whole = list(stream_genome(kmer_lm.model_, codes, piece_length=10**6))[-1]
    for piece in (1, 2, 37):  # pieces shorter than k: the k-mer ids are cut before the pieces
        split = list(stream_genome(kmer_lm.model_, codes, piece_length=piece))[-1]
        assert split.bits_per_base == pytest.approx(whole.bits_per_base, abs=1e-5)


def test_kmer_windows_pair_kmer_inputs_with_next_bases():
    from titans_ts.encoders.dna import KmerTokenizer
    from titans_ts.training.dna_lm import GenomeWindows, input_ids

    codes, starts = genome_codes(["ACGTTGCA", "GGATC"], with_starts=True)
    assert starts.tolist() == [0, 8]
    ids = input_ids(codes, 3, starts)
    windows = GenomeWindows(codes, 4, ids=ids)
    assert len(windows) == 13 - 4
    inputs, targets = windows[8]
    tok = KmerTokenizer(3)
    # bases 8..11 of "ACGTTGCA" + "GGATC" are G G A T, all in record 2: the 3-mers ending
    # there are [UNK] [UNK] (fewer than 3 bases of the record) GGA GAT; targets are 9..12
    assert inputs.tolist() == [tok.unk_id, tok.unk_id, *tok.encode("GGAT").tolist()]
    assert targets.tolist() == genome_codes("GATC").tolist()
    nuc_inputs, nuc_targets = GenomeWindows(codes, 4)[8]
    assert nuc_inputs.tolist() == codes[8:12].tolist() and nuc_targets.equal(targets)


def test_kmer_lm_initialises_a_kmer_classifier(kmer_lm, genome, tmp_path):
    from titans_ts.datasets.synthetic_dna import make_planted_motif_dataset

    folder = kmer_lm.save(tmp_path / "lm")
    loaded = TitansDNALM.load(folder)
    assert loaded.config_ == kmer_lm.config_
    assert loaded.bits_per_base(genome[:400]) == kmer_lm.bits_per_base(genome[:400])
    # records are streamed with their own k-mers (none spans two strings)
    records = [genome[:150], genome[150:400]]
    codes, starts = genome_codes(records, with_starts=True)
    expected = list(stream_genome(kmer_lm.model_, codes, starts=starts))[-1].bits_per_base
    assert kmer_lm.bits_per_base(records) == pytest.approx(expected, abs=1e-9)
    split, _ = make_planted_motif_dataset(48, length=(20, 30), motif_length=6, seed=1)
    clf = TitansSequenceClassifier(
        pretrained=str(folder), max_epochs=1, learning_rate=1e-12, early_stopping=False,
        position_embedding=False, accelerator="cpu", random_state=0,
    ).fit(split.sequences, split.labels)
    assert getattr(clf.tokenizer_, "k", None) == 3
    for key, value in kmer_lm.model_.state_dict().items():
        if key.startswith(("backbone.", "embedding.")):
            torch.testing.assert_close(clf.model_.state_dict()[key], value, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="kmer_k=4 but pretrained="):
        TitansSequenceClassifier(pretrained=str(folder), kmer_k=4, accelerator="cpu").fit(
            split.sequences, split.labels
        )
    with pytest.raises(ValueError, match="'kmer_k' parameter of TitansDNALM"):
        TitansDNALM(kmer_k=9).fit(genome)


def test_genome_streams_read_on_where_the_last_step_stopped():
    from titans_ts.training.dna_lm import EpochSteps, GenomeStreams

    rng = np.random.default_rng(3)
    codes = rng.integers(0, 5, 400).astype(np.uint8)
    ids = rng.integers(0, 9, 400)  # any per-base input ids: rows must be cut from them too
    streams = GenomeStreams(codes, 5, rows=3, carry=4, ids=ids, seed=7)
    sampler = EpochSteps(10)
    sampler.set_epoch(2)
    items = [streams[i] for i in sampler]
    assert [reset for *_, reset in items] == [True, False, False, False] * 2 + [True, False]
    for episode in range(3):
        first = streams.starts(2, episode)
        for j, (inputs, targets, _) in enumerate(items[4 * episode : 4 * episode + 4]):
            assert inputs.shape == targets.shape == (3, 5)
            for r, o in enumerate(first):
                lo = o + 5 * j  # row r reads on from where its previous step stopped
                assert inputs[r].tolist() == ids[lo : lo + 5].tolist()
                assert targets[r].tolist() == codes[lo + 1 : lo + 6].tolist()
    assert (streams.starts(2, 0) != streams.starts(2, 1)).any()
    assert (streams.starts(2, 0) != streams.starts(3, 0)).any()
    again = GenomeStreams(codes, 5, rows=3, carry=4, ids=ids, seed=7)
    assert again[(2, 5)][0].equal(items[5][0])  # seeded: the same whatever the access order
    # exactly one episode fits: every row starts at 0 and the last target is the last base
    tight = GenomeStreams(codes[:21], 5, rows=6, carry=4)
    assert (tight.starts(0, 0) == 0).all() and (tight.starts(5, 3) == 0).all()
    assert (tight[(0, 3)][1][:, -1] == int(codes[20])).all()
    with pytest.raises(ValueError, match="fewer than the 21"):
        GenomeStreams(codes[:20], 5, rows=1, carry=4)
    with pytest.raises(ValueError, match="fewer than the 401"):
        GenomeStreams(codes, 100, rows=1, carry=4)
    with pytest.raises(ValueError, match="carry must be a positive int"):
        GenomeStreams(codes, 5, rows=1, carry=0)


def test_stream_loss_continues_the_state(lm, genome):
    """Two windows with the state carried score exactly what one window over both does."""
    model = lm.model_
    codes = torch.from_numpy(genome_codes(genome[:201]).astype(np.int64))[None]
    inputs, targets = codes[:, :-1], codes[:, 1:]
    with torch.no_grad():
        whole = model.loss(inputs, targets)
        first, state = model.stream_loss(inputs[:, :77], targets[:, :77])
        second, _ = model.stream_loss(inputs[:, 77:], targets[:, 77:], state)
        fresh, _ = model.stream_loss(inputs[:, 77:], targets[:, 77:])
    assert float(first * 77 + second * 123) / 200 == pytest.approx(float(whole), abs=1e-5)
    assert abs(float(second) - float(fresh)) > 1e-4


def test_carry_windows_trains_with_the_state_carried(genome, monkeypatch):
    from titans_ts.training.dna_lm import GenomeStreams, TitansDNAModel

    seen: list[int | None] = []
    original = TitansDNAModel.stream_loss

    def spy(self, inputs, targets, state=None):
        seen.append(None if state is None else state.position)
        assert state is None or not any(
            t.requires_grad for layer in state.layers for t in _tensors(layer)
        )  # detached: gradients stop at the step boundary
        return original(self, inputs, targets, state)

    epochs: set[int] = set()
    original_starts = GenomeStreams.starts

    def starts_spy(self, epoch, episode):
        epochs.add(epoch)
        return original_starts(self, epoch, episode)

    monkeypatch.setattr(TitansDNAModel, "stream_loss", spy)
    monkeypatch.setattr(GenomeStreams, "starts", starts_spy)
    lm = TitansDNALM(**{**TINY, "carry_windows": 3}).fit(genome)
    # 128 windows / batch 16 = 8 steps per epoch, the state dropped every 3 and every epoch
    assert seen == [None, 48, 96, None, 48, 96, None, 48] * 3
    assert epochs == {0, 1, 2}  # Lightning told the sampler the epoch: fresh stretches
    assert lm.bits_per_base(genome) < 1.5
    assert TitansDNALM(**{**TINY, "carry_windows": 3}).fit(genome).bits_per_base(
        genome[:300]
    ) == lm.bits_per_base(genome[:300])  # reproducible
    with pytest.raises(ValueError, match="on one device.*carry_windows=1"):
        TitansDNALM(**{**TINY, "carry_windows": 2, "devices": 2}).fit(genome)
    with pytest.raises(ValueError, match="'carry_windows' parameter of TitansDNALM"):
        TitansDNALM(**{**TINY, "carry_windows": 0}).fit(genome)
    assert lm.carry_windows_ == 3
    # more windows than the sequence holds: as many as fit, (3010 - 1) // 48
    capped = TitansDNALM(**{**TINY, "carry_windows": 100, "max_epochs": 1}).fit(genome)
    assert capped.carry_windows_ == (len(genome) - 1) // 48 == 62


def _tensors(obj) -> Iterator[torch.Tensor]:
    """Every tensor inside a (nested dataclass / sequence) stream state."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _tensors(getattr(obj, f.name))
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)


@pytest.mark.parametrize("fraction", [0.05, 0.3])
def test_genome_streams_write_exact_repeats_into_one_stream(fraction):
    """``repeat_fraction``: each row's stream holds exact copies of its own earlier
    stretches, covering about that fraction of it; steps still read on where the previous
    step stopped, and the same (seed, epoch, episode) gives the same streams."""
    codes = np.random.default_rng(0).integers(0, 4, 40_000)
    streams = GenomeStreams(codes, 64, rows=3, carry=300, seed=1, repeat_fraction=fraction,
                            repeat_length=(16, 128))
    pos = streams.positions(0, 0).numpy()
    assert pos.shape == (3, 300 * 64 + 1)
    plain = pos[:, :1] + np.arange(pos.shape[1])
    for row, base in zip(pos, plain):
        copied = row != base
        assert 0.4 * fraction < copied.mean() < 2.0 * fraction
        # copies come from earlier in the same stream, as stretches of consecutive bases
        for t in np.flatnonzero(copied):
            assert row[t] in row[:t]
        within = copied[:-1] & copied[1:]
        assert (np.diff(row)[within] == 1).mean() > 0.95
    x0, y0, reset0 = streams[(0, 0)]
    x1, _, reset1 = streams[(0, 1)]
    assert reset0 and not reset1
    torch.testing.assert_close(x1[:, 0], y0[:, -1])  # nucleotide ids equal the codes
    torch.testing.assert_close(y0, torch.from_numpy(codes[pos[:, 1:65]]))
    again = GenomeStreams(codes, 64, rows=3, carry=300, seed=1, repeat_fraction=fraction,
                          repeat_length=(16, 128))
    np.testing.assert_array_equal(again.positions(0, 0).numpy(), pos)
    assert not np.array_equal(again.positions(0, 1).numpy(), pos)


def test_genome_streams_reject_bad_repeats():
    codes = np.zeros(5000, dtype=np.int64)
    with pytest.raises(ValueError, match="repeat_fraction"):
        GenomeStreams(codes, 64, rows=2, carry=4, repeat_fraction=0.6)
    with pytest.raises(ValueError, match="repeat_length"):
        GenomeStreams(codes, 64, rows=2, carry=4, repeat_fraction=0.1, repeat_length=(8, 4))


def test_repeat_fraction_and_theta_max_reach_training(genome, monkeypatch, tmp_path):
    """``repeat_fraction`` trains on :class:`GenomeStreams` with copies written in (also
    with ``carry_windows=1``, a fresh state every step); ``memory_theta_max`` sets the
    memory's inner learning-rate cap and survives save/load."""
    made: list[float] = []
    original_init = GenomeStreams.__init__

    def init_spy(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(self.repeat_fraction)

    monkeypatch.setattr(GenomeStreams, "__init__", init_spy)
    lm = TitansDNALM(**{**TINY, "carry_windows": 1, "repeat_fraction": 0.2,
                        "memory_theta_max": 0.05}).fit(genome)
    assert made == [0.2]
    assert lm.config_.backbone.memory.theta_max == 0.05
    assert lm.bits_per_base(genome) < 1.8
    loaded = TitansDNALM.load(lm.save(tmp_path / "lm"))
    assert loaded.config_.backbone.memory.theta_max == 0.05
    assert loaded.bits_per_base(genome[:300]) == lm.bits_per_base(genome[:300])
    with pytest.raises(ValueError, match="'repeat_fraction' parameter"):
        TitansDNALM(**{**TINY, "repeat_fraction": 0.7}).fit(genome)
    with pytest.raises(ValueError, match="on one device"):
        TitansDNALM(**{**TINY, "carry_windows": 1, "repeat_fraction": 0.1,
                       "devices": 2}).fit(genome)
