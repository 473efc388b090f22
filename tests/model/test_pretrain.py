"""Masked-beat pretraining: masks, metrics against scikit-learn, the copy-the-previous-bar baseline, and a
few-step run of the recipe whose report has the agreed shape."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from bat.model.pairwise import DESCRIPTOR_NAMES
from bat.train import PretrainConfig, PretrainRecipe, load_encoder, run_pretrain
from bat.train.evaluate import previous_bar
from bat.train.metrics import auroc, bce_loss, f1, score
from bat.train.objective import mask_beats, masked_bce


def _desc(bar: list[int], pos: list[int]) -> torch.Tensor:
    d = torch.zeros(1, len(bar), len(DESCRIPTOR_NAMES), dtype=torch.int64)
    d[0, :, DESCRIPTOR_NAMES.index("bar_index")] = torch.tensor(bar)
    d[0, :, DESCRIPTOR_NAMES.index("beat_in_bar")] = torch.tensor(pos)
    return d


def test_beat_masks_hit_the_rate_on_real_beats_only():
    valid = torch.ones(64, 500, dtype=torch.bool)
    valid[:, 400:] = False
    m = mask_beats(valid, torch.zeros(64, 500, 7, dtype=torch.int64), 0.15, generator=torch.Generator().manual_seed(0))
    assert not m[:, 400:].any()
    assert m[:, :400].float().mean().item() == pytest.approx(0.15, abs=0.01)


def test_every_window_gets_a_masked_beat():
    valid = torch.zeros(50, 6, dtype=torch.bool)
    valid[:, :3] = True
    m = mask_beats(valid, torch.zeros(50, 6, 7, dtype=torch.int64), 0.01, generator=torch.Generator().manual_seed(0))
    assert (m.sum(1) >= 1).all() and not m[:, 3:].any()


def test_bar_masks_hide_whole_bars():
    bar = [b for b in range(40) for _ in range(3)]
    desc = _desc([b + 10 for b in bar], [k % 3 for k in range(120)]).expand(20, -1, -1)
    gen = torch.Generator().manual_seed(1)
    m = mask_beats(torch.ones(20, 120, dtype=torch.bool), desc, 0.2, span="bar", generator=gen)
    per_bar = m.view(20, 40, 3)
    assert ((per_bar.sum(-1) == 0) | (per_bar.sum(-1) == 3)).all()
    assert per_bar.any(-1).float().mean().item() == pytest.approx(0.2, abs=0.05)


def test_loss_is_feature_sum_averaged_over_masked_beats():
    logits = torch.zeros(1, 3, 4)
    bits = torch.ones(1, 3, 4, dtype=torch.bool)
    masked = torch.tensor([[True, False, True]])
    assert masked_bce(logits, bits, masked).item() == pytest.approx(4 * np.log(2))


def test_auroc_and_f1_match_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    s = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    assert auroc(s, y) == pytest.approx(roc_auc_score(y, s))
    assert f1(s >= 0.5, y) == pytest.approx(f1_score(y, s >= 0.5))
    assert np.isnan(auroc(s, np.zeros(300, bool)))
    assert auroc(np.full(300, 0.2), y) == pytest.approx(0.5)


def test_score_skips_constant_features_and_groups():
    truth = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]], bool)
    prob = np.array([[0.9, 0.1, 0.8], [0.2, 0.3, 0.7], [0.6, 0.2, 0.9], [0.4, 0.1, 0.6]])
    s = score(prob, truth, ["a", "a", "b"])
    assert s["n_features_scored"] == 1 and s["auroc_macro"] == 1.0 and s["f1_macro"] == 1.0
    assert s["groups"]["b"]["auroc_macro"] is None and s["groups"]["a"]["n_features_scored"] == 1
    assert s["loss"] == pytest.approx(bce_loss(prob, truth))


def test_previous_bar_finds_the_same_beat_one_bar_earlier():
    # a pickup beat (bar 0, beat 2), then 3/4 bars, a 4/4 bar, a 3/4 bar
    bar = [0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4]
    pos = [2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2]
    got = previous_bar(_desc(bar, pos)[0].numpy())
    assert got.tolist() == [-1, -1, -1, 0, 1, 2, 3, 4, 5, 6, -1, 7, 8, 9]


def test_pretrain_run_writes_checkpoints_and_the_report(tmp_path, small_store):
    cfg = PretrainConfig(model="tiny", steps=4, batch_size=4, max_len=32, log_every=2, seed=3)
    report = run_pretrain(cfg, tmp_path, compare_plain=True, store=small_store)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    for row in [on_disk["model"], *on_disk["baselines"].values()]:
        assert set(row) >= {"loss", "auroc_macro", "f1_macro"}
        assert all(isinstance(row[k], float) for k in ("loss", "auroc_macro", "f1_macro"))
    assert set(on_disk["baselines"]) == {"base_rate", "copy_previous_bar", "plain_encoder"}
    assert on_disk["baselines"]["base_rate"]["auroc_macro"] == pytest.approx(0.5)
    assert set(on_disk["groups"]["model"]) == set(small_store.feature_groups)
    assert on_disk["params"]["model"] > 0 and on_disk["train"]["history"][-1]["step"] == 4
    model = load_encoder(tmp_path / "model.pt")
    assert model.cfg.pairwise and not load_encoder(tmp_path / "plain.pt").cfg.pairwise


def test_training_goes_through_a_deepspeed_engine(small_store):
    from deepspeed import DeepSpeedEngine

    recipe = PretrainRecipe(PretrainConfig(steps=2, batch_size=2, max_len=32), store=small_store).setup()
    assert isinstance(recipe.engine, DeepSpeedEngine) and recipe.model is recipe.engine
    assert recipe.ds_config["zero_optimization"]["stage"] == 0 and not recipe.ds_config["bf16"]["enabled"]
    before = [p.detach().clone() for p in recipe.module.parameters()]
    recipe.train()
    assert recipe.step == 2 and recipe.engine.global_steps == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, recipe.module.parameters()))


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, small_store):
    """Stop after step 3 of 7 (checkpoint every 3), resume in a new recipe: same weights, optimizer and data."""
    cfg = PretrainConfig(steps=7, batch_size=3, max_len=32, checkpoint_every=3, log_every=1, seed=2)
    straight = PretrainRecipe(cfg, store=small_store).setup()
    straight.train()
    first = PretrainRecipe(cfg, store=small_store).setup()
    first.train(steps=4, checkpoint_dir=tmp_path)  # checkpoints at step 3 (and 4: the last step asked for)
    shutil.rmtree(tmp_path / "step000000004")
    (tmp_path / "latest").write_text("step000000003")  # as if killed between steps 3 and 4
    second = PretrainRecipe(cfg, store=small_store).setup()
    assert second.resume(tmp_path) and second.step == 3 and second.position.offset > 0
    history = second.train(checkpoint_dir=tmp_path)
    assert [e["step"] for e in history] == [4, 5, 6, 7]
    for a, b in zip(straight.module.state_dict().values(), second.module.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert sorted(p.name for p in tmp_path.glob("step*")) == ["step000000006", "step000000007"]  # newest two kept
    other = PretrainRecipe(replace(cfg, batch_size=4), store=small_store).setup()
    with pytest.raises(ValueError, match="batch_size=3"):
        other.resume(tmp_path)


def test_a_fresh_run_in_a_used_folder_starts_over(tmp_path, small_store):
    cfg = PretrainConfig(steps=4, batch_size=2, max_len=32, checkpoint_every=2, log_every=2)
    run_pretrain(replace(cfg, steps=6), tmp_path, compare_plain=False, store=small_store)
    report = run_pretrain(cfg, tmp_path, compare_plain=False, store=small_store)  # no resume: from step 0
    assert report["train"]["resumed_at"]["model"] is None and report["train"]["history"][-1]["step"] == 4
    folder = tmp_path / "checkpoints" / "model"
    assert sorted(p.name for p in folder.glob("step*")) == ["step000000002", "step000000004"]
    assert (folder / "latest").read_text() == "step000000004"
