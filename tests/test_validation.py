"""Cross-validation with scikit-learn's tools, scorers, outliers, and the validate command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from skcannon.cli import main
from skcannon.data.build import default_preprocessor
from skcannon.data.dataset import SpectralDataset
from skcannon.data.simulate import simulate_raw_spectra
from skcannon.evaluation import find_outliers, kfold_validate, split_validate
from skcannon.evaluation.metrics import label_robust_scatter, label_scatter, label_scorers
from skcannon.model import Cannon, CannonRegressor
from skcannon.plotting import one_to_one_figure, pull_figure, save_figure


@pytest.fixture(scope="module")
def table_and_X(simulated_set):
    labels, X, snr = simulated_set
    table = labels.copy()
    table["SNR"] = snr
    return table, X


def test_metrics_by_hand():
    truth = np.array([[1.0], [2.0], [3.0], [4.0]])
    pred = truth + np.array([[0.1], [-0.1], [0.3], [0.1]])
    assert label_scatter(truth, pred, label=0) == pytest.approx(np.std([0.1, -0.1, 0.3, 0.1]))
    assert label_robust_scatter(truth, pred, label=0) == pytest.approx(1.4826 * 0.1)
    assert set(label_scorers(["A"])) == {"bias_A", "scatter_A", "robust_scatter_A"}


def test_split_validate_is_reproducible_and_accurate(table_and_X, reference_model):
    table, X = table_and_X
    names = list(reference_model.label_names)
    first = split_validate(CannonRegressor(Cannon(names)), X, table, random_state=7)
    again = split_validate(CannonRegressor(Cannon(names)), X, table, random_state=7)
    np.testing.assert_array_equal(first.test_index, again.test_index)
    assert len(first.test_index) == len(X) // 2
    assert not set(first.test_index) & set(first.train_index)
    accuracy = first.accuracy.set_index("label")
    # spectra simulated from the reference model: a few tens of K, a few hundredths of a dex
    assert accuracy.loc["TEFF", "robust_scatter"] < 40
    assert accuracy.loc["LOGG", "robust_scatter"] < 0.08
    assert accuracy.loc["FE_H", "robust_scatter"] < 0.03
    assert {"snr_range", "label", "bias", "scatter"} <= set(first.by_snr.columns)
    # formal errors ignore the error of a model trained on 300 stars, so CV pulls exceed 1
    # (with the true model they are 1: tests/inference); they are never below it
    assert np.all(np.nanstd(first.pulls, axis=0) > 0.8)


def test_cross_val_score_over_the_whole_pipeline(reference_model, giant_labels, apstar_files,
                                                 continuum_file):
    """masking -> regridding -> normalization -> Cannon on raw-like apStar spectra."""
    names = list(reference_model.label_names)
    labels = giant_labels.sample(240, random_state=4).reset_index(drop=True)
    rng = np.random.default_rng(9)
    raw = simulate_raw_spectra(reference_model, labels, rng.uniform(80, 200, len(labels)), rng,
                               apstar_files, continuum_file)
    assert raw.shape[2] == 8575
    pipeline = make_pipeline(*default_preprocessor(continuum_file).named_steps.values(),
                             CannonRegressor(Cannon(names), n_starts=2))
    y = labels[names].to_numpy()
    scores = cross_val_score(pipeline, raw, y, cv=3,
                             scoring=label_scorers(names)["robust_scatter_TEFF"])
    assert len(scores) == 3 and np.all(-scores < 80)
    folds = kfold_validate(pipeline, raw, y, names, n_splits=2, random_state=0)
    assert list(folds.fold) == [0, 1] and (folds["scatter_LOGG"] > 0).all()


def test_outliers_are_listed_with_reasons(table_and_X, reference_model):
    table, X = table_and_X
    names = list(reference_model.label_names)
    result = split_validate(CannonRegressor(Cannon(names)), X, table, random_state=1)
    reference = result.reference.copy()
    reference[0, 0] += 500                          # a wrong reference label
    info = table.iloc[result.test_index].reset_index(drop=True)
    info.loc[0, "ASPCAPFLAG"] = (1 << 16) | (1 << 23)
    outliers = find_outliers(reference, result.fit, names, k=3, info=info)
    row = outliers[outliers["index"] == 0].iloc[0]
    assert row["TEFF_OFF_SIGMA"] < -10
    assert "TEFF_BAD" in row["EXPLANATION"] and "STAR_BAD" in row["EXPLANATION"]


def test_figures_are_real_images(table_and_X, reference_model, tmp_path):
    table, X = table_and_X
    names = list(reference_model.label_names)
    result = split_validate(CannonRegressor(Cannon(names)), X, table, random_state=2)
    for name, figure in (("o2o.png", one_to_one_figure(result.reference, result.fit.labels,
                                                       names, color=table.SNR.to_numpy()
                                                       [result.test_index])),
                         ("pulls.png", pull_figure(result.pulls, names))):
        path = save_figure(figure, tmp_path / name)
        image = imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 600 and image[..., :3].std() > 0.05


def test_validate_and_outliers_commands(table_and_X, reference_model, tmp_path, capsys):
    table, X = table_and_X
    dataset = SpectralDataset(reference_model.wavelength_, X[:, 0], X[:, 1],
                              X[:, 2].astype(np.int64), table.reset_index(drop=True),
                              np.zeros(len(X), dtype=np.int64))
    dataset.save(tmp_path / "d.h5")
    out = tmp_path / "val"
    assert main(["validate", str(tmp_path / "d.h5"), "--folds", "2", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "accuracy on the test half" in text and "2-fold" in text
    accuracy = pd.read_csv(out / "accuracy.csv")
    assert set(accuracy.label) == {"TEFF", "LOGG", "FE_H", "ALPHA_M"}
    assert (out / "one_to_one.png").stat().st_size > 10_000
    assert main(["outliers", str(out / "test_half.h5"), "--model",
                 str(out / "model_train_half.h5"), "-o", str(tmp_path / "out")]) == 0
    listed = pd.read_csv(tmp_path / "out" / "outliers.csv")
    assert len(listed) == len(list((tmp_path / "out").glob("outlier_*.png"))) or len(listed) > 20


def test_grid_search_shows_each_fit_on_stderr_when_asked(simulated_set, capsys):
    """progress=True: one line per candidate and fold on stderr (nothing on stdout); the
    default stays quiet."""
    from skcannon.evaluation.validation import grid_search

    labels, X, _ = simulated_set
    names = ["TEFF", "LOGG", "FE_H"]
    y = labels[names].to_numpy()[:120]
    grid = {"cannon__regularization": [0.0, 10.0]}
    grid_search(CannonRegressor(Cannon(names)), X[:120, :, :800], y, grid, names, n_splits=2,
                progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert sum("[CV] END" in line for line in captured.err.splitlines()) == 4
    grid_search(CannonRegressor(Cannon(names)), X[:120, :, :800], y, grid, names, n_splits=2)
    assert capsys.readouterr().err == ""


def test_kfold_shows_each_fold_on_stderr_when_asked(simulated_set, capsys):
    """progress=True: one line per fold on stderr (nothing on stdout), the same table; the
    default stays quiet."""
    from skcannon.evaluation.validation import kfold_validate

    labels, X, _ = simulated_set
    names = ["TEFF", "LOGG", "FE_H"]
    y = labels[names].to_numpy()[:120]
    shown = kfold_validate(CannonRegressor(Cannon(names)), X[:120, :, :800], y, names,
                           n_splits=3, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert sum("[CV] END" in line for line in captured.err.splitlines()) == 3
    quiet = kfold_validate(CannonRegressor(Cannon(names)), X[:120, :, :800], y, names,
                           n_splits=3)
    assert capsys.readouterr().err == ""
    columns = [c for c in shown.columns if not c.endswith("_time")]
    pd.testing.assert_frame_equal(shown[columns], quiet[columns])
