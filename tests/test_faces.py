"""Faces (course 4 week 4): L2-normalized encodings, distances, triplet mining on a constructed
batch, the P x K sampler, verification (threshold, ROC against scikit-learn), the pair
classifier, the face database, the AT&T loader, and one-shot learning on generated people."""

from pathlib import Path

import numpy as np
import pytest

import strata
from strata.vision import (
    FaceDatabase,
    L2Normalize,
    PairClassifier,
    PKSampler,
    all_pairs,
    batch_all_triplets,
    choose_threshold,
    encode,
    pairwise_distances,
    semi_hard_triplets,
    verification_report,
)
from strata.vision.faces_train import downscale, join, one_shot_accuracy, train_encoder, whiten

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ATT = SHARED / "faces" / "att_faces.tar"


def test_l2_normalize_gives_unit_rows_and_gradient_checks():
    # Not seed 0: gradcheck's upstream gradient is drawn with seed 0, and an upstream equal to
    # x itself is radial, which the normalization's gradient exactly removes (0 against 0).
    x = np.random.default_rng(3).normal(size=(4, 5))
    out = L2Normalize()(x).numpy()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(out, x / np.linalg.norm(x, axis=1, keepdims=True), rtol=1e-12)
    assert max(strata.gradcheck(lambda t: L2Normalize()(t), x)) < 1e-7
    assert L2Normalize()(np.zeros((1, 3), np.float32)).dtype == np.float32


def test_l2_normalize_saves_inside_a_whole_model(tmp_path):
    strata.seed(0)
    model = strata.nn.Sequential([strata.nn.Dense(3), L2Normalize()])
    x = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32)
    before = model.predict(x)
    strata.save_model(model, tmp_path / "m.safetensors")
    np.testing.assert_array_equal(strata.load_model(tmp_path / "m.safetensors").predict(x),
                                  before)


def test_pairwise_distances_plain_and_squared():
    E = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(pairwise_distances(E), [[0, 5], [5, 0]])
    np.testing.assert_allclose(pairwise_distances(E, E[:1], squared=True), [[0], [25]])
    with pytest.raises(strata.ShapeError, match=r"\(m, d\)"):
        pairwise_distances(np.zeros(3))


# Squared distances: d(0,1)=0.09 d(0,2)=0.25 d(0,3)=4 d(1,2)=0.04 d(1,3)=2.89 d(2,3)=2.25.
E = np.array([[0.0], [0.3], [0.5], [2.0]])
LABELS = np.array([0, 0, 1, 1])


def test_semi_hard_mining_on_a_constructed_batch():
    a, p, n = semi_hard_triplets(E, LABELS, alpha=0.2)
    # (0,1): 2 is in the band (0.09, 0.29). (1,0): none in the band; 2 (0.04) is the only
    # hard one. (2,3): none in (2.25, 2.45); of the hard ones 0 (0.25) is the mildest.
    # (3,2): 0 (4) and 1 (2.89) are beyond the margin: nothing to learn, skipped.
    assert list(zip(a, p, n)) == [(0, 1, 2), (1, 0, 2), (2, 3, 0)]
    a, p, n = semi_hard_triplets(E, LABELS, alpha=1.0)  # a wider band takes in 1 for (3, 2)
    assert list(zip(a, p, n)) == [(0, 1, 2), (1, 0, 2), (2, 3, 0), (3, 2, 1)]


def test_batch_all_mining_on_a_constructed_batch():
    triplets = list(zip(*batch_all_triplets(E, LABELS, alpha=0.2)))
    assert triplets == [(0, 1, 2), (1, 0, 2), (2, 3, 0), (2, 3, 1)]
    assert batch_all_triplets(E, np.arange(4))[0].size == 0  # no positives, no triplets
    with pytest.raises(strata.ShapeError, match="expected 4 labels"):
        batch_all_triplets(E, [0, 1])


def test_pk_sampler_batches_hold_p_people_times_k_images():
    labels = np.repeat(np.arange(5), 4)
    sampler = PKSampler(labels, P=2, K=3, seed=0)
    batches = list(sampler)
    assert len(sampler) == len(batches) == 2
    for batch in batches:
        people, counts = np.unique(labels[batch], return_counts=True)
        assert len(people) == 2 and (counts == 3).all() and len(set(batch)) == 6
    assert len({tuple(labels[b[::3]]) for b in batches}) == 2  # different people each batch
    with pytest.raises(ValueError, match="K >= 2"):
        PKSampler(labels, 2, 1)
    with pytest.raises(ValueError, match="hold 5 people"):
        PKSampler(labels, 6, 2)


def test_choose_threshold_maximizes_accuracy():
    d = np.array([0.1, 0.2, 0.3, 0.45, 0.5, 0.9])
    same = np.array([1, 1, 1, 0, 1, 0], bool)
    tau, accuracy = choose_threshold(d, same)
    assert accuracy == pytest.approx(5 / 6) and 0.3 < tau < 0.45
    assert choose_threshold([0.2, 0.2], [True, False])[1] == 0.5  # no cut between equals


def test_verification_report_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    same = rng.random(200) < 0.3
    d = rng.normal(1.0 - 0.5 * same, 0.3)
    report = verification_report(d, same, tau=0.75)
    assert report.auc == pytest.approx(roc_auc_score(same, -d))
    assert report.accuracy == pytest.approx(np.mean((d < 0.75) == same))
    assert report.n_same == same.sum() and report.fpr[0] == 0 and report.tpr[-1] == 1
    with pytest.raises(ValueError, match="both kinds"):
        verification_report(d, np.ones(200, bool), 0.5)


def _people(n_people, per_person, size=16, seed=0, noise=0.35):
    """Generated "faces": one random smooth pattern per person plus noise per image."""
    rng = np.random.default_rng(seed)
    base = rng.random((n_people, size // 4, size // 4, 1)).repeat(4, 1).repeat(4, 2)
    X = base.repeat(per_person, 0) + noise * rng.normal(size=(n_people * per_person, size,
                                                                size, 1))
    return X.astype(np.float32), np.repeat(np.arange(n_people), per_person)


def test_pair_classifier_separates_same_from_different():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 8))
    E = centres.repeat(5, 0) + 0.1 * rng.normal(size=(30, 8))
    labels = np.repeat(np.arange(6), 5)
    i, j = np.triu_indices(30, 1)
    for form in ("abs", "chi2"):
        clf = PairClassifier(form).fit(E[i], E[j], labels[i] == labels[j], epochs=300)
        p = clf.predict_proba(E[i], E[j])
        assert np.mean((p > 0.5) == (labels[i] == labels[j])) > 0.9
    with pytest.raises(ValueError, match="form"):
        PairClassifier("cosine")


def test_face_database_identifies_and_round_trips(tmp_path):
    db = FaceDatabase(tau=0.5)
    db.add("younes", [[1.0, 0.0], [0.9, 0.1]])
    db.add("kian", [0.0, 1.0])
    assert db.identify([0.95, 0.0])[0] == "younes"
    name, distance = db.identify([-1.0, 0.0])
    assert name is None and distance == pytest.approx(np.sqrt(2))  # kian, too far: unknown
    assert db.verify([0.1, 0.9], "kian")[0] and not db.verify([0.1, 0.9], "younes")[0]
    db.save(tmp_path / "db.safetensors")
    back = FaceDatabase.load(tmp_path / "db.safetensors")
    assert back.names == ["younes", "kian"] and back.tau == 0.5
    np.testing.assert_array_equal(back.encodings[0], db.encodings[0])
    (tmp_path / "bad.safetensors").write_bytes(b"not a database")
    with pytest.raises(ValueError, match="not a face database"):
        FaceDatabase.load(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="'andrew' is not in the database"):
        db.verify([0, 1], "andrew")
    with pytest.raises(strata.ShapeError, match="2-d encoding"):
        db.identify([1.0, 0.0, 0.0])


def test_encoder_learns_one_shot_on_unseen_generated_people():
    X, labels = _people(12, 6)
    model, losses = train_encoder(X[labels < 8], labels[labels < 8], epochs=12, P=4, K=4,
                                  widths=(8, 16), encoding_size=16, augment=False, lr=0.01)
    E = encode(model, X[labels >= 8])
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-5)
    assert losses[-1] < losses[0]
    assert one_shot_accuracy(E, labels[labels >= 8]) >= 0.9
    tau, _ = choose_threshold(*all_pairs(encode(model, X[labels < 8]), labels[labels < 8]))
    assert verification_report(*all_pairs(E, labels[labels >= 8]), tau).auc > 0.9


def test_whiten_decorrelates_the_training_encodings_and_saves_as_one_model(tmp_path):
    strata.seed(0)
    encoder = strata.nn.Sequential([strata.nn.Flatten(), strata.nn.Dense(6), L2Normalize()])
    X = np.random.default_rng(2).normal(size=(50, 4, 3, 1)).astype(np.float32)
    whitened = whiten(encoder, X, eps=1e-6)
    both = np.concatenate([X, X[:, :, ::-1]])  # fitted on the images and their mirrors
    before_norm = strata.nn.Sequential(whitened.layers[:-1]).predict(both).astype(np.float64)
    np.testing.assert_allclose(before_norm.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(before_norm.T), np.eye(6), atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(whitened.predict(X), axis=1), 1.0, rtol=1e-5)
    strata.save_model(whitened, tmp_path / "w.safetensors")
    np.testing.assert_array_equal(strata.load_model(tmp_path / "w.safetensors").predict(X),
                                  whitened.predict(X))
    with pytest.raises(ValueError, match="whiten: expected eps > 0, got 0"):
        whiten(encoder, X, eps=0)


def test_members_are_trained_with_their_own_seeds_and_joined_into_one_model(tmp_path):
    X, labels = _people(6, 4)
    kw = dict(epochs=2, P=3, K=4, widths=(4,), encoding_size=5, whiten_eps=None)
    model, histories = train_encoder(X, labels, members=2, seed=7, **kw)
    second, history = train_encoder(X, labels, seed=8, **kw)  # the member of seed 7 + 1
    assert len(histories) == 2 and histories[1] == history and len(history) == 2
    first = model.layers[0].branches[0]
    expected = np.concatenate([first.predict(X), second.predict(X)], 1) / np.sqrt(2)
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5, atol=1e-6)
    strata.save_model(model, tmp_path / "joined.safetensors")
    np.testing.assert_array_equal(strata.load_model(tmp_path / "joined.safetensors").predict(X),
                                  model.predict(X))
    with pytest.raises(ValueError, match="members, got 0"):
        train_encoder(X, labels, members=0)
    with pytest.raises(ValueError, match="at least 2 encoders, got 1"):
        join([second])


def test_downscale_averages_blocks():
    X = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(downscale(X)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


# --- the AT&T faces ----------------------------------------------------------------------------

def test_att_loader_reads_the_tar_in_memory(monkeypatch, tmp_path):
    if not ATT.is_file():
        pytest.skip(f"{ATT} is not there (see ../shared/datasets/SOURCES.md)")
    monkeypatch.setenv("STRATA_DATA", str(SHARED))
    X, Y = strata.data.load_att_faces()
    assert X.shape == (400, 112, 92, 1) and X.dtype == np.float32
    assert 0 <= X.min() and X.max() <= 1 and (np.bincount(Y) == 10).all()


def test_att_loader_names_the_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("STRATA_DATA", str(tmp_path))
    with pytest.raises(OSError, match=r"att_faces\.tar is missing.*STRATA_DATA"):
        strata.data.load_att_faces()
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "att_faces.tar").write_bytes(b"corrupt")
    with pytest.raises(strata.data.ChecksumError, match="sha256"):
        strata.data.load_att_faces()


def test_one_shot_on_unseen_att_people_meets_the_target(monkeypatch):
    """The issue's measured task: 4 folds x 10 unseen people, one-shot top-1 of at least 0.95
    and well above nearest neighbour on pixels and on PCA. The defaults (3 encoders joined, zoom
    augmentation, whitening) measured 0.96 with one BLAS thread (seeds 0-2) and 0.9586 on 2
    threads against about 0.86 and 0.85; a single encoder reaches 0.936 to 0.956 depending on
    its seed (docs/FACES.md). About 11 minutes on 2 cores."""
    if not ATT.is_file():
        pytest.skip(f"{ATT} is not there (see ../shared/datasets/SOURCES.md)")
    from strata.vision.faces_cli import FacesConfig
    from strata.vision.faces_train import run_folds

    monkeypatch.setenv("STRATA_DATA", str(SHARED))
    X, Y = strata.data.load_att_faces()
    folds = run_folds(downscale(X, 2), Y, 4, FacesConfig().train_options())
    mean = {m: np.mean([f[m].one_shot for f in folds]) for m in ("encoder", "pixels", "pca")}
    assert mean["encoder"] >= 0.95
    assert mean["encoder"] > max(mean["pixels"], mean["pca"]) + 0.05
    assert np.mean([f["encoder"].auc for f in folds]) > 0.97


def test_faces_commands_train_enroll_verify_identify(tmp_path, monkeypatch, capsys):
    if not ATT.is_file():
        pytest.skip(f"{ATT} is not there (see ../shared/datasets/SOURCES.md)")
    from strata import cli

    monkeypatch.setenv("STRATA_DATA", str(SHARED))
    run = tmp_path / "faces"
    assert cli.main(["faces", "train", "--people", "6", "--folds", "2", "--epochs", "1",
                     "--people-per-batch", "3", "--images-per-person", "3", "--quiet",
                     "--out", str(run)]) == 0
    assert {"model.safetensors", "config.json", "metrics.json", "roc_curve.png",
            "distances.png", "hardest_errors.png", "report.md"} <= {p.name for p in
                                                                     run.iterdir()}
    assert "| triplet-loss encoder |" in (run / "report.md").read_text()
    photos = SHARED / "faces"
    assert cli.main(["faces", "enroll", str(run), "younes", str(photos / "younes.jpg")]) == 0
    assert cli.main(["faces", "enroll", str(run), "kian", str(photos / "kian.jpg")]) == 0
    capsys.readouterr()
    assert cli.main(["faces", "verify", str(run), str(photos / "younes.jpg"), "younes"]) == 0
    assert "It's younes (distance 0.00" in capsys.readouterr().out
    assert cli.main(["faces", "identify", str(run), str(photos / "kian.jpg")]) == 0
    assert capsys.readouterr().out.startswith("kian (distance 0.00")
    assert cli.main(["faces", "verify", str(run), str(photos / "kian.jpg"), "andrew"]) == 2
    assert "'andrew' is not in the database" in capsys.readouterr().err
