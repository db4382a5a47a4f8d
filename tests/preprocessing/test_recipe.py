"""The preprocessing recipe stored with a model rebuilds exactly the Pipeline it describes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

from skcannon.apogee import APOGEE_CHIP_REGIONS, apogee_masker, apogee_regridder
from skcannon.apogee.preprocessor import (
    preprocessing_recipe,
    preprocessor_from_recipe,
    recipe_or_none,
)
from skcannon.apogee.reader import read_apstar, stack_apstar
from skcannon.data.build import default_preprocessor
from tests.conftest import CONTINUUM_FILE


@pytest.mark.parametrize("options", [{}, {"basis": "sincos", "order": 2, "clip_sigma": 2.5}])
def test_round_trip_gives_the_same_normalized_spectra(apstar_files, options):
    original = default_preprocessor(CONTINUUM_FILE, **options)
    recipe = json.loads(json.dumps(preprocessing_recipe(original)))   # survives JSON
    assert len(recipe["continuum_pixels"]) == 529 and recipe["n_pixels"] == 7214
    rebuilt = preprocessor_from_recipe(recipe)
    X = stack_apstar([read_apstar(p) for p in apstar_files])
    np.testing.assert_array_equal(rebuilt.fit_transform(X), original.fit_transform(X))
    assert rebuilt[-1].basis == options.get("basis", "chebyshev")


def test_recipes_record_regions_and_older_ones_mean_the_chips(apstar_files):
    """A recipe written before regions were a parameter (no ``regions`` key) rebuilds APOGEE's
    per-chip normalization; other regions (or one over the grid, None) travel in the recipe."""
    X = stack_apstar([read_apstar(p) for p in apstar_files])
    recipe = preprocessing_recipe(default_preprocessor(CONTINUUM_FILE))
    assert recipe["regions"] == [list(r) for r in APOGEE_CHIP_REGIONS]
    assert recipe["source_wavelength"] is recipe["target_wavelength"] is None   # standard grids
    assert recipe["normalizer_wavelength"] is None
    older = {k: v for k, v in recipe.items() if k != "regions"}
    rebuilt = preprocessor_from_recipe(older)
    assert rebuilt[-1].regions == APOGEE_CHIP_REGIONS
    np.testing.assert_array_equal(rebuilt.fit_transform(X),
                                  default_preprocessor(CONTINUUM_FILE).fit_transform(X))
    for regions in (None, ((15100.0, 16000.0), (16000.0, 17000.0))):
        other = preprocessing_recipe(default_preprocessor(CONTINUUM_FILE, regions=regions))
        back = preprocessor_from_recipe(json.loads(json.dumps(other)))
        assert back[-1].regions == regions
        np.testing.assert_array_equal(
            back.fit_transform(X),
            default_preprocessor(CONTINUUM_FILE, regions=regions).fit_transform(X))
    assert not np.array_equal(back.fit_transform(X), rebuilt.fit_transform(X))


def test_other_options_give_another_recipe():
    plain = preprocessing_recipe(default_preprocessor(CONTINUUM_FILE))
    assert preprocessing_recipe(default_preprocessor(CONTINUUM_FILE, order=4)) != plain
    fewer = np.zeros(7214, bool)
    fewer[:300] = True
    other = preprocessing_recipe(default_preprocessor(fewer))
    assert other["continuum_sha256"] != plain["continuum_sha256"]


def test_a_damaged_or_foreign_recipe_is_refused():
    recipe = preprocessing_recipe(default_preprocessor(CONTINUUM_FILE))
    changed = dict(recipe, continuum_pixels=recipe["continuum_pixels"][1:])
    with pytest.raises(ValueError, match="do not match their checksum"):
        preprocessor_from_recipe(changed)
    with pytest.raises(ValueError, match="lacks 'bad_bits'"):
        preprocessor_from_recipe({k: v for k, v in recipe.items() if k != "bad_bits"})
    with pytest.raises(ValueError, match="not a preprocessing recipe"):
        preprocessor_from_recipe({"format": "something else"})


def test_a_pipeline_of_other_steps_has_no_recipe():
    pipeline = make_pipeline(apogee_masker(), apogee_regridder())
    with pytest.raises(ValueError, match="needs the steps"):
        preprocessing_recipe(pipeline)
    assert recipe_or_none(pipeline) is None


def test_a_prepared_dataset_records_its_recipe_and_train_stores_it(apstar_files, tmp_path):
    """The recipe travels dataset file -> `skcannon train` -> model file (checksummed)."""
    import pandas as pd

    from skcannon.apogee.reader import read_apstar
    from skcannon.cli import main
    from skcannon.data.build import build_dataset
    from skcannon.model import Cannon

    spectra = [read_apstar(p) for p in apstar_files]
    preprocessor = default_preprocessor(CONTINUUM_FILE, order=2)
    dataset, _ = build_dataset(spectra, pd.DataFrame({"APOGEE_ID": [s.apogee_id
                                                                    for s in spectra]}),
                               preprocessor)
    assert dataset.provenance["preprocessing_recipe"] == preprocessing_recipe(preprocessor)
    # train on copies of the two stars with made-up labels (the provenance is what matters)
    n = 40
    rng = np.random.default_rng(0)
    X = dataset.X[np.arange(n) % len(spectra)].copy()
    X[:, 0] *= 1 + 0.01 * rng.standard_normal(X[:, 0].shape)
    labels = pd.DataFrame({"APOGEE_ID": [f"s{i}" for i in range(n)],
                           "TEFF": rng.uniform(4000, 5000, n), "LOGG": rng.uniform(1, 3, n)})
    from skcannon.data.dataset import SpectralDataset

    big = SpectralDataset.from_spectra(dataset.wavelength, X, labels,
                                       provenance=dataset.provenance)
    big.save(tmp_path / "train.h5")
    assert main(["train", str(tmp_path / "train.h5"), "-o", str(tmp_path / "m.h5"),
                 "--labels", "TEFF", "LOGG", "--no-progress"]) == 0
    # the model file holds the fitted Pipeline: that preprocessing, then the trained Cannon
    import skcannon

    loaded = skcannon.load(tmp_path / "m.h5")
    assert isinstance(loaded[-1].cannon_, Cannon)
    stored = preprocessing_recipe(loaded[:-1])
    assert stored == preprocessing_recipe(preprocessor) and stored["order"] == 2


def test_apogee_helpers_are_the_transformers_with_apogee_values(apstar_files):
    import skcannon
    from skcannon.apogee import DEFAULT_BAD_PIXEL_BITS, apogee_normalizer, apogee_preprocessor
    from skcannon.apogee.grids import apstar_wavelength, aspcap_dr17_wavelength
    from skcannon.preprocessing import BitmaskMasker, ContinuumNormalizer, Regridder

    assert skcannon.apogee_preprocessor is apogee_preprocessor is default_preprocessor
    assert apogee_masker().bad_bits == DEFAULT_BAD_PIXEL_BITS
    np.testing.assert_array_equal(apogee_regridder("dr17").fit().wavelength_,
                                  aspcap_dr17_wavelength())
    with pytest.raises(ValueError, match="target must be one of"):
        apogee_regridder("dr99")
    grid = apogee_regridder().fit().wavelength_
    explicit = make_pipeline(
        BitmaskMasker(DEFAULT_BAD_PIXEL_BITS), Regridder(apstar_wavelength(), grid),
        ContinuumNormalizer(CONTINUUM_FILE, wavelength=grid, regions=APOGEE_CHIP_REGIONS))
    X = stack_apstar([read_apstar(p) for p in apstar_files])
    np.testing.assert_array_equal(apogee_preprocessor(CONTINUUM_FILE).fit_transform(X),
                                  explicit.fit_transform(X))
    assert apogee_normalizer(CONTINUUM_FILE).fit().regions_.shape == (3, 2)
