"""The joint space (seed 001): the loss by hand, ranks, training (determinism, no test-pin
leak, resumption), retrieval against random, user interests, search and the CLI."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from embed_fixtures import synthetic_data  # noqa: E402

from pinterest_mm.embed.interests import InterestConfig, interest_labels, user_clusters  # noqa: E402
from pinterest_mm.embed.model import Batch, mixture_loss, pair_loss  # noqa: E402
from pinterest_mm.embed.report import embed_report, format_report  # noqa: E402
from pinterest_mm.embed.retrieval import retrieve, score_ranks, true_ranks  # noqa: E402
from pinterest_mm.embed.search import SearchContext, available_spaces, nearest  # noqa: E402
from pinterest_mm.embed.space import JointSpace, unit  # noqa: E402
from pinterest_mm.embed.train import EmbedConfig, evaluate, space_vectors, train  # noqa: E402
from pinterest_mm.store import Store  # noqa: E402

FAST = EmbedConfig(dim=32, filters=(16, 8, 8), batch_size=64, epochs=6, lr=5e-3, lr_step=4)

# ----------------------------------------------------------------------------- the loss by hand
T = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])  # texts (unit)
U = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])  # users (unit)
# S = T U^T = [[1, .6, 0], [0, .8, 1], [.8, .96, .6]]; m = 0.2
# post 1: pos 1   -> [.2-1+.6]+ = 0, [.2-1+0]+ = 0
# post 2: pos .8  -> [.2-.8+0]+ = 0, [.2-.8+1]+ = .4
# post 3: pos .6  -> [.2-.6+.8]+ = .4, [.2-.6+.96]+ = .56        total 1.36 over N = 3


def test_pair_loss_by_hand():
    eye = torch.eye(3, dtype=torch.bool)
    s, n = pair_loss(T, U, torch.tensor([True, True, True]), eye, 0.2)
    assert n == 3 and s.item() == pytest.approx(1.36)


def test_pair_loss_margin_and_negatives():
    eye = torch.eye(3, dtype=torch.bool)
    s, _ = pair_loss(T, U, torch.tensor([True, True, True]), eye, 0.0)  # m = 0: post 2 .2; post 3 .2 + .36
    assert s.item() == pytest.approx(0.2 + 0.2 + 0.36)
    same = eye.clone()
    same[2, 0] = same[0, 2] = True  # posts 1 and 3 are the same user: u1 is no negative of t3
    s, _ = pair_loss(T, U, torch.tensor([True, True, True]), same, 0.2)
    assert s.item() == pytest.approx(0.4 + 0.56)


def test_pair_loss_skips_missing_modality():
    # post 2 has no user: it is no anchor, and u2 is no negative of the others
    s, n = pair_loss(T, U, torch.tensor([True, False, True]), torch.eye(3, dtype=torch.bool), 0.2)
    assert n == 2 and s.item() == pytest.approx(0.4)


def _batch(users, has_image=(True, True, True), has_text=(True, True, True)):
    return Batch(image=torch.zeros(3, 2), text=torch.zeros(3, 1, dtype=torch.long),
                 user=torch.tensor(users), pin=torch.arange(3),
                 has_image=torch.tensor(has_image), has_text=torch.tensor(has_text))


def test_mixture_loss_normalizes_each_pair_and_weights_them():
    emb = {"text": T, "user": U, "image": T}
    loss, parts = mixture_loss(emb, _batch([0, 1, 2]), (1.0, 0.0, 0.0))
    assert loss.item() == pytest.approx(1.36 / 3) and set(parts) == {"text_user"}
    # image == text, so image-user equals text-user; image-text (lambda 0) is skipped
    loss, parts = mixture_loss(emb, _batch([0, 1, 2]), (0.5, 0.0, 0.5))
    assert loss.item() == pytest.approx(1.36 / 3) and set(parts) == {"text_user", "image_user"}
    # post 2 without a user (-1) and post 3 without an image: N differs per pair
    loss, parts = mixture_loss(emb, _batch([0, -1, 2], has_image=(True, True, False)), (0.5, 0.0, 0.5))
    assert parts["text_user"] == pytest.approx(0.4 / 2)  # anchors 1, 3; negatives u1, u3
    assert parts["image_user"] == pytest.approx(0.0)  # anchor 1 only; its negative u3 scores 0
    assert loss.item() == pytest.approx(0.5 * 0.2)


# ----------------------------------------------------------------------------- ranks
def test_median_rank_on_a_known_ranking():
    scores = np.array([[0.9, 0.5, 0.1, 0.3],    # truth 2: ranked 4th
                       [0.1, 0.8, 0.7, 0.95],   # truth 0 and 3: ranks 4 and 1 -> median 2.5
                       [0.2, 0.3, 0.9, 0.0]])   # truth 2: 1st
    ranks = true_ranks(scores, [np.array([2]), np.array([0, 3]), np.array([2])])
    assert [r.tolist() for r in ranks] == [[4], [4, 1], [1]]
    s = score_ranks("t", ranks, 4, k=2)
    assert s.mean_median_rank == pytest.approx((4 + 2.5 + 1) / 3)
    assert s.recall_at_k == pytest.approx((0 + 0.5 + 1) / 3)
    assert s.random_median_rank == 2.5 and s.random_recall_at_k == 0.5
    assert s.normalized_rank == pytest.approx(s.mean_median_rank / 4)


def test_retrieve_perfect_and_reversed():
    X = unit(np.eye(5, dtype=np.float32))
    truth = [np.array([i]) for i in range(5)]
    assert retrieve("x", X, X, truth).mean_median_rank == 1.0
    assert retrieve("x", X, -X, truth).mean_median_rank == 5.0


# ----------------------------------------------------------------------------- training
def _train(tmp_path, data, cfg=FAST, **kw):
    return train(Store(tmp_path), data.dataset, cfg, data=data, **kw)


def test_training_is_deterministic(tmp_path):
    data = synthetic_data()
    a = _train(tmp_path / "a", data).space
    b = _train(tmp_path / "b", data).space
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.meta["history"] == b.meta["history"]


def test_no_test_pin_is_used_in_training(tmp_path):
    data = synthetic_data()
    ref = _train(tmp_path / "ref", data).space
    leak = copy.deepcopy(data)
    test = leak.rows("test")
    rng = np.random.default_rng(9)
    leak.image[test] = rng.normal(0, 5, leak.image[test].shape)
    leak.words[test] = rng.integers(1, len(leak.vocab) + 1, leak.words[test].shape)
    leak.saves.loc[leak.saves["split"] == "test", "user"] = rng.permutation(
        leak.saves.loc[leak.saves["split"] == "test", "user"].to_numpy())
    other = _train(tmp_path / "leak", leak).space
    train_rows = data.rows("train")
    np.testing.assert_array_equal(ref.users, other.users)
    np.testing.assert_array_equal(ref.image[train_rows], other.image[train_rows])
    np.testing.assert_array_equal(ref.text[train_rows], other.text[train_rows])
    assert ref.meta["history"] == other.meta["history"]


def test_resume_gives_the_same_space_and_a_second_run_is_cached(tmp_path):
    data = synthetic_data()
    full = _train(tmp_path / "full", data).space
    part = _train(tmp_path / "part", data, stop_after=2)
    assert part.space is None and len(part.history) == 2
    resumed = _train(tmp_path / "part", data)
    assert resumed.status == "resumed"
    np.testing.assert_array_equal(full.users, resumed.space.users)
    np.testing.assert_array_equal(full.text, resumed.space.text)
    again = _train(tmp_path / "part", data)
    assert again.status == "cached"
    np.testing.assert_array_equal(again.space.users, full.users)


def test_checkpoint_is_chosen_on_validation(tmp_path):
    res = _train(tmp_path, synthetic_data())
    hist = res.space.meta["history"]
    best = min(hist, key=lambda h: h["val_score"])
    assert res.space.meta["best_epoch"] == best["epoch"]
    assert not list((tmp_path / "checkpoints").rglob("*.pkl")) and not list((tmp_path / "checkpoints").rglob("*.pt"))


def test_trained_space_beats_random_on_test(tmp_path):
    data = synthetic_data()
    sp = _train(tmp_path, data, replace(FAST, epochs=10)).space
    scores = evaluate(data, space_vectors(sp), "test")
    assert set(scores) == {"image->text", "text->user", "image->user"}
    for s in scores.values():
        assert s.mean_median_rank < 0.6 * s.random_median_rank, s
    # an image-text-only space does not learn users: text->user stays near random
    it = _train(tmp_path, data, replace(FAST, lambdas=(0.0, 1.0), epochs=10)).space
    s_it = evaluate(data, space_vectors(it), "test")
    assert s_it["image->text"].mean_median_rank < 0.5 * s_it["image->text"].random_median_rank


def test_space_round_trip_and_text_query(tmp_path):
    data = synthetic_data()
    sp = _train(tmp_path, data).space
    loaded = JointSpace.load(tmp_path / "checkpoints" / "synth" / FAST.tag)
    np.testing.assert_array_equal(loaded.users, sp.users)
    q = loaded.embed_texts([" ".join(data.vocab[0:5])])  # words of class 0 ("Animals")
    assert q.shape == (1, FAST.dim)
    idx, _ = nearest(loaded.text, q[0], 10)
    assert (data.pins["label"].to_numpy()[idx] == 0).mean() >= 0.8
    assert not loaded.embed_texts(["zzz qqq"]).any()  # no known word: the zero vector


def test_dataset_without_users_gets_image_text_only(tmp_path):
    data = synthetic_data(with_users=False)
    rep = embed_report(Store(tmp_path), "synth", base=FAST, data=data)
    assert set(rep.retrieval["task"]) == {"image->text"}
    assert set(rep.retrieval["setting"]) == {"embed-0-1", "random"}  # only the image-text space
    assert rep.notes and "no users" in rep.notes[0]
    assert rep.interests.empty and rep.clusters.empty
    assert "no users" in format_report(rep)


# ----------------------------------------------------------------------------- interests, clusters
def test_interest_labels_follow_the_threshold():
    data = synthetic_data()
    idx, Y = interest_labels(data, InterestConfig(threshold=0.1, min_saves=3))
    s = data.saves[data.saves["split"].isin(["val", "test"]) & (data.saves["user"] >= 0)]
    labels = data.pins["label"].to_numpy()
    for u, y in zip(idx, Y):
        labs = labels[s.loc[s["user"] == u, "row"]]
        share = np.bincount(labs, minlength=4) / len(labs)
        assert y.tolist() == (share >= 0.1).tolist()
    assert 0 < Y.sum() < Y.size and (Y.sum(1) >= 1).all()
    assert len(idx) == (s.groupby("user").size() >= 3).sum()
    assert (Y.sum(1) > 1).any()  # someone has a second interest above 0.1 (not just the top one)


def test_report_tables_on_synthetic_data(tmp_path):
    data = synthetic_data(n=240)
    rep = embed_report(Store(tmp_path), "synth", settings=[(0.33, 0.33), (1.0, 0.0)], base=FAST, data=data,
                       interests=InterestConfig(threshold=0.3, min_saves=2, folds=3), k_clusters=4)
    r = rep.retrieval
    rnd = r[r["setting"] == "random"].set_index("task")["mean_median_rank"]
    joint = r[r["setting"] == FAST.tag].set_index("task")["mean_median_rank"]
    assert (joint < rnd).all()
    assert {"avg-text", "avg-image"} <= set(r["setting"])
    f1 = rep.interests.set_index("representation")["macro_f1"]
    assert f1[FAST.tag] > f1["random"] and f1["avg-text"] > f1["random"]
    assert rep.main == FAST.tag and len(rep.clusters) == 4
    # users of one preferred category cluster together: a cluster's top category dominates
    assert rep.clusters["top_categories"].str.contains(r"\((?:[6-9]\d|100)%\)").sum() >= 2
    json.dumps(rep.to_dict())


def test_clusters_name_top_categories():
    data = synthetic_data()
    users = np.zeros((len(data.users), 2), np.float32)
    users[:, 0] = [int(u[1:]) // 3 for u in data.users]  # the user's preferred category
    pins = unit(np.eye(len(data.pins), 2, dtype=np.float32))
    cl = user_clusters(data, users, pins, k=4)
    assert len(cl) == 4 and cl["users"].sum() == len(data.users)


def test_nearest_excludes_and_orders():
    M = unit(np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32))
    idx, s = nearest(M, np.array([1, 0], np.float32), 3, exclude=np.array([0]))
    assert idx.tolist() == [1, 2, 3] and s[0] > s[1] > s[2]


def test_search_context_user_view(tmp_path):
    data = synthetic_data()
    sp = _train(tmp_path, data).space
    saves = data.saves[["pin_id", "user_id", "row"]]
    ctx = SearchContext(sp, data.pins, saves, data.classes, sp.pin_vectors(), unit(sp.users))
    pins, users = ctx.user_view(data.users[0], k=10)
    assert "own_save" in pins and pins["own_save"].any()
    assert data.users[0] not in users["user_id"].tolist()
    assert available_spaces(Store(tmp_path), "synth") == [FAST.tag]


# ----------------------------------------------------------------------------- the command line
def test_cli_embed_messages(tmp_path, monkeypatch, capsys):
    from pinterest_mm.cli import main

    monkeypatch.setenv("PINTEREST_MM_HOME", str(tmp_path))
    assert main(["embed", "nothing-here"]) == 2
    assert "No dataset named 'nothing-here'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["embed", "x", "--lambdas", "a,b"])
    assert exc.value.code == 2 and "give two numbers" in capsys.readouterr().err
    with pytest.raises(ValueError, match="l1 \\+ l2 <= 1"):
        EmbedConfig(lambdas=(0.9, 0.5))
