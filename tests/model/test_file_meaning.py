"""Sealed model files whose content makes no sense are refused at load, naming the problem:
the seal proves the bytes are ours, not that they mean something. Each damaged file here is
written with the sealing helpers, so the seal is right and only the meaning is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import skcannon
from skcannon.errors import BadFileError
from skcannon.integrity import read_sealed_hdf5, write_sealed_hdf5
from skcannon.model import Cannon
from skcannon.model.io import MODEL_FORMAT, MODEL_FORMAT_VERSION
from skcannon.persistence import ESTIMATOR_FORMAT, ESTIMATOR_FORMAT_VERSION
from skcannon.spectra import stack_spectra


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small trained model as a format-3 model file and as an estimator file."""
    rng = np.random.default_rng(0)
    n, p = 40, 24
    labels = pd.DataFrame({"TEFF": rng.uniform(4000, 5200, n), "LOGG": rng.uniform(1, 3.5, n)})
    flux = 1 - 0.1 * rng.random((1, p)) * (labels.TEFF.to_numpy()[:, None] / 5000)
    flux = flux + rng.normal(0, 0.01, (n, p))
    X = stack_spectra(flux, np.full((n, p), 1e4))
    model = Cannon(("TEFF", "LOGG"), order=1, n_error_factors=0).fit(
        labels, X, wavelength=np.linspace(15100, 16900, p))
    directory = tmp_path_factory.mktemp("meaning")
    return model.save(directory / "model.h5"), skcannon.save(model, directory / "est.h5")


def _rewrite(source, target, edit, *, prefix: str):
    """``source`` re-sealed as ``target`` after ``edit(arrays)`` on its state arrays."""
    fmt = (MODEL_FORMAT, MODEL_FORMAT_VERSION) if not prefix else (ESTIMATOR_FORMAT,
                                                                   ESTIMATOR_FORMAT_VERSION)
    attrs, arrays = read_sealed_hdf5(source, expected_format=fmt[0], expected_version=fmt[1],
                                     what="file")
    state = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
    edit(state)
    arrays = {**{k: v for k, v in arrays.items() if not k.startswith(prefix)},
              **{prefix + k: v for k, v in state.items()}}
    attrs = {k: v for k, v in attrs.items() if k != "checksum"}
    return write_sealed_hdf5(target, attrs, arrays)


def _set(key, make):
    def edit(arrays):
        arrays[key] = make(arrays[key])
    return edit


def _add_unknown(arrays):
    arrays["theta_old"] = arrays["theta"]


DAMAGES = {
    "theta-int64": (_set("theta", lambda a: np.round(a).astype(np.int64)),
                    "theta is stored as int64; expected floating point"),
    "theta-nan": (_set("theta", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 3,
                                                   np.nan, a)), "theta holds non-finite"),
    "range-reversed": (_set("label_range", lambda a: a[::-1].copy()),
                       "label_range of TEFF is reversed or empty"),
    "range-degenerate": (_set("label_range", lambda a: np.vstack([a[0], a[0]])),
                         "label_range of TEFF is reversed or empty"),
    "s2-huge": (_set("s2", lambda a: a + 1e300), r"s2 ranges .*plausible intrinsic variance"),
    "s2-negative": (_set("s2", lambda a: a - 1.0), "s2 ranges"),
    "scale-zero": (_set("label_scales", lambda a: a * 0), "label scales must be positive"),
    "scale-negative": (_set("label_scales", lambda a: -a), "label scales must be positive"),
    "mask-not-boolean": (_set("pixel_mask", lambda a: a * 7), "pixel_mask must hold 0/1"),
    "mask-empty": (_set("pixel_mask", lambda a: a * 0), "describes no pixel"),
    "offsets-shape": (_set("label_offsets", lambda a: np.r_[a, 0.0]),
                      r"label_offsets has shape \(3,\); expected \(2,\)"),
    "exponents-negative": (_set("exponents", lambda a: -a), "exponents must be non-negative"),
    "wavelength-reversed": (_set("wavelength", lambda a: a[::-1].copy()),
                            "wavelength is not strictly increasing"),
    "chi2-infinite": (_set("training_chi2", lambda a: a + np.inf), "training_chi2 holds non"),
    "unknown-array": (_add_unknown, "unexpected"),
}


@pytest.mark.parametrize("kind", ["model-file", "estimator-file"])
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_sealed_nonsense_is_refused_naming_the_problem(files, tmp_path, kind, damage):
    edit, message = DAMAGES[damage]
    source = files[0] if kind == "model-file" else files[1]
    target = _rewrite(source, tmp_path / "damaged.h5", edit,
                      prefix="" if kind == "model-file" else "state/0/")
    with pytest.raises(BadFileError, match=message) as info:
        skcannon.load(target) if kind == "estimator-file" else Cannon.load(target)
    assert str(info.value).startswith(str(target))


def test_an_untouched_rewrite_still_loads(files, tmp_path):
    """The helper itself changes nothing: an unedited copy loads and predicts the same."""
    for source, prefix in ((files[0], ""), (files[1], "state/0/")):
        target = _rewrite(source, tmp_path / f"same{len(prefix)}.h5", lambda a: None,
                          prefix=prefix)
        model = skcannon.load(target)
        original = skcannon.load(source)
        np.testing.assert_array_equal(model.predict([[4500.0, 2.0]]),
                                      original.predict([[4500.0, 2.0]]))
