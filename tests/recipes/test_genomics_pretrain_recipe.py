"""``recipes/genomics_pretrain.py`` on the real GUE data: a ``--quick`` pretraining run writes
a model that a classifier starts from, and a report whose numbers hang together."""

from __future__ import annotations

import json
import os
import pathlib

import pytest
import torch
from _scripts import load_recipe

from titans_ts.estimators import TitansDNALM

recipe = load_recipe("genomics_pretrain.py")


@pytest.fixture(autouse=True)
def _data() -> None:
    if not os.environ.get("TITANS_TS_DATA_DIR", "").strip():
        pytest.skip("TITANS_TS_DATA_DIR is not set; point it at the shared data folder")


def test_quick_pretraining_report_and_model(tmp_path: pathlib.Path, capsys) -> None:
    out = tmp_path / "lm"
    torch.set_num_threads(1)
    code = recipe.main(["--quick", "--tasks", "tf/0", "mouse/0", "--kmer-k", "4",
                        "--set", "d_model=16", "--set", "window=32", "--context-length", "64",
                        "--device", "cpu", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "pretrain_report.json").read_text())
    # 200 sequences per task, de-duplicated; bases counted over the corpus
    assert report["train_counts"] == {"tf/0": 200, "mouse/0": 200}
    assert 390 <= report["train_sequences"] <= 400
    assert report["train_bases"] == pytest.approx(101 * report["train_sequences"], rel=0.05)
    before, after = report["held_out_bits_per_base_before"], report["held_out_bits_per_base_after"]
    assert 1.0 < after < before  # two steps already move the untrained model towards 2 bits
    assert report["params"]["kmer_k"] == 4 and report["params"]["d_model"] == 16
    lm = TitansDNALM.load(out)
    assert lm.config_.kmer_k == 4
    assert "pretrained=" in capsys.readouterr().out


def test_bad_set_key_is_an_error() -> None:
    with pytest.raises(SystemExit):
        recipe.main(["--quick", "--set", "d_modle=64"])
