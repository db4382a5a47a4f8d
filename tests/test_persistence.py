"""skcannon.save / skcannon.load: the fitted Pipeline is the model, in one sealed HDF5 file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import skcannon
from skcannon.apogee.preprocessor import default_preprocessor, preprocessing_recipe
from skcannon.errors import BadFileError
from skcannon.integrity import write_sealed_hdf5
from skcannon.model import Cannon, CannonRegressor
from skcannon.persistence import (
    ESTIMATOR_FORMAT,
    ESTIMATOR_FORMAT_VERSION,
    fit_transformers,
    model_digest,
)


@pytest.fixture(scope="module")
def raw_X(real_spectra):
    """Real apStar spectra (DR17 and the older layout), shape (n, 3, 8575)."""
    return real_spectra[1]


@pytest.fixture(scope="module")
def fitted_pipeline(reference_model, continuum_file, raw_X):
    """masking -> regridding -> normalization (the shared continuum pixels, as a path) -> the
    reference model, fitted on real spectra."""
    pipeline = make_pipeline(*default_preprocessor(continuum_file).named_steps.values(),
                             CannonRegressor.from_fitted(reference_model, n_starts=2))
    pipeline[:-1].fit(raw_X)
    return pipeline


def test_a_fitted_pipeline_round_trips_and_predicts_identically(fitted_pipeline, raw_X,
                                                                 tmp_path):
    path = skcannon.save(fitted_pipeline, tmp_path / "model.h5",
                         provenance={"training": "test"})
    loaded = skcannon.load(path)
    assert isinstance(loaded, Pipeline)
    assert [name for name, _ in loaded.steps] == [name for name, _ in fitted_pipeline.steps]
    np.testing.assert_array_equal(loaded.predict(raw_X), fitted_pipeline.predict(raw_X))
    # the continuum pixels are stored, not the name of a file that may change
    normalizer = loaded.named_steps["continuumnormalizer"]
    np.testing.assert_array_equal(normalizer.continuum_pixels,
                                  fitted_pipeline[-2].continuum_mask_)
    assert loaded[-1].get_params()["n_starts"] == 2
    assert model_digest(loaded) == model_digest(fitted_pipeline)
    with pytest.raises(FileExistsError):
        skcannon.save(fitted_pipeline, path)


def test_a_pipeline_trained_end_to_end_round_trips(simulated_set, tmp_path):
    """A Pipeline fitted with fit(X, y) (its regressor trained), GridSearchCV-style names."""
    labels, X, _ = simulated_set
    names = ["TEFF", "LOGG", "FE_H", "ALPHA_M"]
    pipeline = Pipeline([("masker", skcannon.BitmaskMasker()),
                         ("cannonregressor", CannonRegressor(Cannon(names, order=1),
                                                             n_starts=1))])
    pipeline.fit(X[:200], labels[names].to_numpy()[:200])
    loaded = skcannon.load(skcannon.save(pipeline, tmp_path / "p.h5"))
    np.testing.assert_array_equal(loaded.predict(X[200:240]), pipeline.predict(X[200:240]))
    assert loaded.get_params()["cannonregressor__cannon__order"] == 1


def test_a_bare_cannon_and_regressor_round_trip(simulated_set, tmp_path):
    labels, X, _ = simulated_set
    names = ["TEFF", "LOGG", "FE_H", "ALPHA_M"]
    censors = {"ALPHA_M": np.arange(X.shape[2]) % 3 == 0}
    cannon = Cannon(names, censors=censors, n_error_factors=3,
                    scatter_grid=np.array([0.0, 1e-6, 1e-4, 1e-2])).fit(labels.iloc[:200],
                                                                       X[:200])
    loaded = skcannon.load(skcannon.save(cannon, tmp_path / "c.h5"))
    assert isinstance(loaded, Cannon)
    for name in ("theta_", "s2_", "pixel_mask_", "error_factors_", "censor_mask_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(cannon, name))
        # the memory layout too (BLAS sums another order of a Fortran-ordered matrix)
        assert getattr(loaded, name).flags.f_contiguous == getattr(cannon, name).flags.f_contiguous
        assert getattr(loaded, name).flags.c_contiguous == getattr(cannon, name).flags.c_contiguous
    np.testing.assert_array_equal(loaded.censors["ALPHA_M"], censors["ALPHA_M"])
    np.testing.assert_array_equal(loaded.scatter_grid, cannon.scatter_grid)
    np.testing.assert_array_equal(loaded.infer_labels(X[200:230]).labels,
                                  cannon.infer_labels(X[200:230]).labels)
    regressor = CannonRegressor(Cannon(names, order=1), seed=3).fit(X[:200], labels.iloc[:200])
    back = skcannon.load(skcannon.save(regressor, tmp_path / "r.h5"))
    assert isinstance(back, CannonRegressor) and back.seed == 3
    assert not hasattr(back.cannon, "theta_")                 # the parameter stays unfitted
    np.testing.assert_array_equal(back.predict(X[200:230]), regressor.predict(X[200:230]))
    clone(back)                                               # still an ordinary estimator


def test_what_cannot_be_stored_is_refused_before_writing(reference_model, tmp_path):
    with pytest.raises(ValueError, match="cannot store a StandardScaler"):
        skcannon.save(make_pipeline(StandardScaler(), CannonRegressor.from_fitted(
            reference_model)), tmp_path / "x.h5")
    with pytest.raises(ValueError, match="must end in a CannonRegressor"):
        skcannon.save(make_pipeline(skcannon.BitmaskMasker()), tmp_path / "x.h5")
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        skcannon.save(Cannon(), tmp_path / "x.h5")
    with pytest.raises(TypeError, match="takes a fitted Pipeline"):
        skcannon.save(StandardScaler(), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def _crafted(path, tree: dict, arrays: dict | None = None):
    """A correctly sealed estimator file holding ``tree`` (as an attacker could write)."""
    attrs = {"format": ESTIMATOR_FORMAT, "format_version": ESTIMATOR_FORMAT_VERSION,
             "package_version": "0", "provenance": "{}", "estimator": json.dumps(tree)}
    return write_sealed_hdf5(path, attrs, arrays or {"params/0": np.zeros(3)})


@pytest.mark.parametrize("tree", [
    {"class": "Popen", "params": {"args": "touch pwned"}},
    {"class": "Pipeline", "params": {"steps": [{"__tuple__": [
        "evil", {"class": "os.system", "params": {}}]}]}, "n_pixels_in": 3},
    {"class": "BitmaskMasker", "params": {"bad_bits": {"__array__": "params/0"}}},
], ids=["top", "nested", "not-a-model"])
def test_a_class_outside_the_allow_list_is_refused(tree, tmp_path):
    path = _crafted(tmp_path / "evil.h5", tree)
    with pytest.raises(BadFileError, match=str(path)) as error:
        skcannon.load(path)
    assert "refused" in str(error.value) or "not a model" in str(error.value)
    assert not (tmp_path / "pwned").exists()


def test_a_flipped_byte_or_a_foreign_file_is_refused(fitted_pipeline, tmp_path):
    path = skcannon.save(fitted_pipeline, tmp_path / "model.h5")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped = tmp_path / "flipped.h5"
    flipped.write_bytes(bytes(data))
    with pytest.raises(BadFileError, match=f"{flipped}: checksum mismatch"):
        skcannon.load(flipped)
    foreign = tmp_path / "foreign.h5"
    foreign.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 1000)
    with pytest.raises(BadFileError, match=f"{foreign}: not a sealed"):
        skcannon.load(foreign)
    with pytest.raises(BadFileError, match="no such"):
        skcannon.load(tmp_path / "missing.h5")
    extra = _crafted(tmp_path / "extra.h5", {"class": "Cannon", "params": {}})
    with pytest.raises(BadFileError, match="unexpected datasets params/0"):
        skcannon.load(extra)
    unfitted = _crafted(tmp_path / "unfitted.h5", {"class": "CannonRegressor", "params": {
        "seed": {"__array__": "params/0"}}})
    with pytest.raises(BadFileError, match="holds an unfitted CannonRegressor"):
        skcannon.load(unfitted)


def test_old_model_files_load_with_and_without_their_recipe(reference_model, continuum_file,
                                                            fitted_pipeline, raw_X, tmp_path):
    recipe = preprocessing_recipe(default_preprocessor(continuum_file))
    with_recipe = reference_model.save(tmp_path / "v3.h5", provenance={"preprocessing": recipe})
    loaded = skcannon.load(with_recipe)
    assert isinstance(loaded, Pipeline) and isinstance(loaded[-1], CannonRegressor)
    np.testing.assert_array_equal(loaded[-1].cannon_.theta_, reference_model.theta_)
    np.testing.assert_array_equal(loaded[:-1].transform(raw_X),
                                  fitted_pipeline[:-1].transform(raw_X))
    bare = skcannon.load(reference_model.save(tmp_path / "bare.h5"))
    assert isinstance(bare, Cannon)
    np.testing.assert_array_equal(bare.s2_, reference_model.s2_)
    broken = reference_model.save(tmp_path / "broken.h5",
                                  provenance={"preprocessing": {"format": "other"}})
    with pytest.raises(BadFileError, match="its preprocessing recipe"):
        skcannon.load(broken)


def test_the_digest_follows_the_preprocessing(fitted_pipeline, raw_X):
    other = clone(fitted_pipeline[:-1]).set_params(continuumnormalizer__order=2)
    changed = Pipeline([*fit_transformers(other, raw_X.shape[2]).steps,
                        ("cannonregressor", fitted_pipeline[-1])])
    assert model_digest(changed) != model_digest(fitted_pipeline)
    with pytest.raises(ValueError, match="the preprocessing gives 8575 pixels"):
        fit_transformers(Pipeline([("masker", skcannon.BitmaskMasker()),
                                   ("cannonregressor", fitted_pipeline[-1])]), raw_X.shape[2])
