"""Beyond the 2015 model at test time (issue #24), measured on spectra the Cannon did not
generate: the BinSpec per-pixel network of FGK dwarfs (skcannon.data.emulator, ../shared/apogee/
emulators) on the 7214-pixel APOGEE grid. A 4-label quadratic Cannon (TEFF LOGG FE_H ALPHA_FE;
VMACRO fixed at the middle of its range, n_error_factors=0) is trained on emulator spectra at
SNR 200 and then fits:

* RV: test spectra shifted by |v| <= 50 km/s (each chip's rest-frame spectrum interpolated by a
  not-a-knot cubic spline in log lambda), SNR 50-250: RV scatter, and label scatter with
  ``fit_rv=True`` against the same stars unshifted and the classic fit of the shifted ones;
* continuum: each chip multiplied by 1 + a x (x in [-1, 1] across the chip, |a| <= 2 %),
  classic fit vs ``continuum_order=1``, against the untilted spectra;
* fixed labels: LOGG held at its true value;
* visits: 3 visits per star at SNR 30-60, 10 % of the stars with visit RVs differing by 10-30
  km/s: RV_VARIABLE rates, and the joint labels against a classic fit of the rest-frame coadd
  (of other noise draws); then paired: the same noisy visits shifted by whole pixels and
  fitted jointly against their coadd at rest (``physics_visits_paired_*``);
* the hull: how much of the training labels' box the convex hull leaves out;
* the hull chosen by measurement (:func:`hull_choice_figures`, on REAL spectra: the 336 giants
  of ../shared/apogee/real_labelled; :func:`hull_choice_emulator_figures` on emulator
  spectra): the convex hull against a k-nearest-neighbour distance in scaled labels as
  predictors of large label errors of held-out stars, some in a hole of the training set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.common import SHARED

SOURCE = ("BinSpec FGK-dwarf emulator (El-Badry et al. 2018 network, ../shared/apogee/emulators) "
          "on the 7214-px APOGEE grid; shifted spectra by cubic-spline interpolation per chip")
NAMES = ("TEFF", "LOGG", "FE_H", "ALPHA_FE")


def _setup():
    from skcannon.data.emulator import SpectrumEmulator

    emulator = SpectrumEmulator.from_npz(SHARED / "apogee" / "emulators"
                                         / "binspec_dwarf_nn_normalized.npz")
    with np.load(SHARED / "apogee" / "continuum" / "apogee_wavelength.npz") as f:
        wavelength = f["wavelength"]
    return emulator, wavelength


def _flux(emulator, labels):
    middle = 0.5 * (emulator.label_min[4] + emulator.label_max[4])
    return emulator.flux(np.c_[labels, np.full(len(labels), middle)])


def _shifted(flux, wavelength, rv):
    from scipy.interpolate import CubicSpline

    from skcannon.inference.doppler import SPEED_OF_LIGHT, SegmentGrid

    grid = SegmentGrid.from_wavelength(wavelength, wavelength.size)
    x = np.log10(wavelength)
    out = np.empty_like(flux)
    for a, b in zip(grid.start, grid.stop, strict=True):
        for n, v in enumerate(rv):                       # one spline per star and chip
            moved = x[a:b] - np.log10(1 + v / SPEED_OF_LIGHT)
            out[n, a:b] = CubicSpline(x[a:b], flux[n, a:b])(moved)
    return out


def _spectra(flux, snr, rng):
    sigma = np.ones_like(flux) / np.asarray(snr, float)[:, None]
    X = np.zeros((len(flux), 3, flux.shape[1]))
    X[:, 0] = flux + rng.normal(size=flux.shape) * sigma
    X[:, 1] = sigma ** -2
    return X


def _scatter(fit_labels, truth):
    return np.std(fit_labels - truth, axis=0)


def _record(figures, tag, values):
    for name, value in zip(NAMES, values, strict=True):
        figures[f"physics_{tag}_{name}"] = round(float(value), 5)


def _rv_figures(model, emulator, wavelength, n_test, rng) -> dict:
    labels = emulator.sample_labels(n_test, seed=11, margin=0.15)[:, :4]
    snr = rng.uniform(50, 250, n_test)
    rv = rng.uniform(-50, 50, n_test)
    flux = _flux(emulator, labels)
    rest = model.infer_labels(_spectra(flux, snr, rng))
    X = _spectra(_shifted(flux, wavelength, rv), snr, rng)
    classic, joint = model.infer_labels(X), model.infer_labels(X, fit_rv=True,
                                                                 rv_bounds=(-100, 100))
    figures = {"physics_rv_scatter_kms": round(float(np.std(joint.rv - rv)), 4),
               "physics_rv_max_error_kms": round(float(np.max(np.abs(joint.rv - rv))), 4),
               **_rv_pulls(model, wavelength, (flux, rv, joint), snr)}
    _record(figures, "rv_rest_scatter", _scatter(rest.labels, labels))
    _record(figures, "rv_shifted_classic_scatter", _scatter(classic.labels, labels))
    _record(figures, "rv_shifted_fit_rv_scatter", _scatter(joint.labels, labels))
    figures["physics_rv_label_cost_max"] = round(float(np.max(
        _scatter(joint.labels, labels) / _scatter(rest.labels, labels) - 1)), 4)
    return figures


def _rv_pulls(model, wavelength, shifted, snr) -> dict:
    """RV pulls (error / rv_err) of the fit of the spline-shifted spectra ``shifted`` = (rest
    flux, rv, fit), with the formal errors alone (RV_SYSTEMATIC taken out) and as given, and
    of the same stars shifted by whole pixels (exact: no interpolated truth; their own noise
    generator, so that the other figures keep their draws)."""
    from skcannon.inference.doppler import SegmentGrid
    from skcannon.inference.nuisance import RV_SYSTEMATIC, _move_back

    flux, rv, fit = shifted
    grid = SegmentGrid.from_wavelength(wavelength, wavelength.size)
    pixels = np.round(grid.shift(rv)).astype(int)
    moved = _move_back(grid, flux, np.ones_like(flux), -pixels)[0]
    exact = model.infer_labels(_spectra(moved, snr, np.random.default_rng(14)), fit_rv=True,
                               rv_bounds=(-100, 100))
    figures = {}
    for tag, result, truth in (("", fit, rv), ("_whole_pixel", exact, grid.velocity(pixels))):
        formal = np.sqrt(result.rv_err ** 2 - RV_SYSTEMATIC ** 2)
        figures[f"physics_rv_pull_std{tag}"] = round(float(np.std(
            (result.rv - truth) / result.rv_err)), 3)
        figures[f"physics_rv_pull_std{tag}_formal"] = round(float(np.std(
            (result.rv - truth) / formal)), 3)
    figures["physics_rv_systematic_kms"] = RV_SYSTEMATIC
    return figures


def _continuum_figures(model, emulator, wavelength, n_test, rng) -> dict:
    from skcannon.inference.doppler import SegmentGrid

    labels = emulator.sample_labels(n_test, seed=12, margin=0.15)[:, :4]
    snr = rng.uniform(50, 250, n_test)
    flux = _flux(emulator, labels)
    grid = SegmentGrid.from_wavelength(wavelength, wavelength.size)
    slopes = rng.uniform(-0.02, 0.02, (n_test, len(grid.start)))
    tilt = 1 + slopes @ grid.continuum_basis(1)[:, 1::2].T
    rest = model.infer_labels(_spectra(flux, snr, rng))
    X = _spectra(flux * tilt, snr, rng)
    classic, profiled = model.infer_labels(X), model.infer_labels(X, continuum_order=1)
    figures = {}
    _record(figures, "continuum_untilted_scatter", _scatter(rest.labels, labels))
    _record(figures, "continuum_tilted_classic_scatter", _scatter(classic.labels, labels))
    _record(figures, "continuum_tilted_order1_scatter", _scatter(profiled.labels, labels))
    for tag, fit in (("classic", classic), ("order1", profiled)):
        figures[f"physics_continuum_{tag}_cost_max"] = round(float(np.max(
            _scatter(fit.labels, labels) / _scatter(rest.labels, labels) - 1)), 4)
    fixed = model.infer_labels(_spectra(flux, snr, rng), fixed={"LOGG": labels[:, 1]})
    _record(figures, "fixed_logg_scatter", _scatter(fixed.labels, labels))
    return figures


def _visit_figures(model, emulator, wavelength, n_stars, rng) -> dict:
    labels = emulator.sample_labels(n_stars, seed=13, margin=0.15)[:, :4]
    rv = np.repeat(rng.uniform(-40, 40, n_stars)[:, None], 3, axis=1)
    variable = np.zeros(n_stars, bool)
    variable[: max(1, n_stars // 10)] = True
    jumps = rng.uniform(10, 30, (variable.sum(), 2)) * rng.choice([-1, 1], (variable.sum(), 2))
    rv[variable, 1:] += jumps
    snr = rng.uniform(30, 60, (n_stars, 3))
    flux = np.repeat(_flux(emulator, labels), 3, axis=0)
    X = _spectra(_shifted(flux, wavelength, rv.ravel()), snr.ravel(), rng)
    fit = model.infer_visits([X[3 * i:3 * i + 3] for i in range(n_stars)],
                             rv_bounds=(-100, 100))
    rest = _spectra(flux, snr.ravel(), rng).reshape(n_stars, 3, 3, -1)   # rest-frame visits
    ivar = rest[:, :, 1]
    coadd = np.zeros((n_stars, 3, flux.shape[1]))
    coadd[:, 1] = ivar.sum(axis=1)
    coadd[:, 0] = (rest[:, :, 0] * ivar).sum(axis=1) / coadd[:, 1]
    coadd_fit = model.infer_labels(coadd)
    constant = ~variable
    figures = {
        "physics_visits_variable_flagged": round(float(fit.rv_variable[variable].mean()), 4),
        "physics_visits_constant_flagged": round(float(fit.rv_variable[constant].mean()), 4),
        "physics_visits_rv_scatter_kms": round(float(np.std(fit.visit_rv - rv)), 4),
        "physics_visits_n_stars": int(n_stars)}
    _record(figures, "visits_joint_scatter", _scatter(fit.labels[constant], labels[constant]))
    _record(figures, "visits_coadd_scatter", _scatter(coadd_fit.labels[constant],
                                                      labels[constant]))
    figures.update(_paired_visit_figures(model, wavelength, (labels, flux, snr)))
    return figures


def _paired_visit_figures(model, wavelength, stars) -> dict:
    """Joint visit labels against the coadd of the SAME noisy visits: rest-frame visits
    (their own noise generator) shifted by whole pixels (exact, up to +-10: +-41 km/s), fitted
    jointly (RVs fitted), their inverse-variance coadd at rest (the true RVs: an oracle) and
    the coadd built with RVs fitted visit by visit (:func:`_found_rv_coadd`), each fitted
    classically; scatter about the truth, and the joint fit's against each coadd's."""
    from skcannon.inference.doppler import SegmentGrid
    from skcannon.inference.nuisance import _move_back

    labels, flux, snr = stars
    n_stars = len(labels)
    rng = np.random.default_rng(15)
    rest = _spectra(flux, snr.ravel(), rng)
    grid = SegmentGrid.from_wavelength(wavelength, wavelength.size)
    X = rest.copy()
    X[:, 0], X[:, 1] = _move_back(grid, rest[:, 0], rest[:, 1],
                                  -rng.integers(-10, 11, len(rest)))
    joint = model.infer_visits(X, groups=np.repeat(np.arange(n_stars), 3),
                               rv_bounds=(-100, 100))
    visits = rest.reshape(n_stars, 3, 3, -1)
    coadd = np.zeros((n_stars, 3, flux.shape[1]))
    coadd[:, 1] = visits[:, :, 1].sum(axis=1)
    coadd[:, 0] = (visits[:, :, 0] * visits[:, :, 1]).sum(axis=1) / coadd[:, 1]
    joint_scatter = _scatter(joint.labels, labels)
    coadd_scatter = _scatter(model.infer_labels(coadd).labels, labels)
    found = _found_rv_coadd(model, wavelength, X, rest[:, 1])
    found_scatter = _scatter(model.infer_labels(found).labels, labels)
    figures = {}
    _record(figures, "visits_paired_joint_scatter", joint_scatter)
    _record(figures, "visits_paired_coadd_scatter", coadd_scatter)
    _record(figures, "visits_paired_joint_over_coadd", joint_scatter / coadd_scatter)
    _record(figures, "visits_paired_fitted_rv_coadd_scatter", found_scatter)
    _record(figures, "visits_paired_joint_over_fitted_rv_coadd", joint_scatter / found_scatter)
    return figures


def _found_rv_coadd(model, wavelength, X, rest_ivar):
    """The coadd a pipeline builds without the true RVs (3 visits per star, rows of ``X``):
    each visit's RV fitted alone (``fit_rv``), the visit shifted back to rest by it (cubic
    spline per chip, as apStar combines visits), the inverse-variance mean; inverse variance
    ``rest_ivar`` where the visit's data reach."""
    from skcannon.inference.doppler import SegmentGrid
    from skcannon.inference.nuisance import _move_back

    single = model.infer_labels(X, fit_rv=True, rv_bounds=(-100, 100))
    grid = SegmentGrid.from_wavelength(wavelength, wavelength.size)
    back = _shifted(X[:, 0], wavelength, -single.rv)
    reach = _move_back(grid, X[:, 0], X[:, 1],
                       np.round(grid.shift(single.rv)).astype(int))[1] > 0
    ivar = np.where(reach, rest_ivar, 0.0).reshape(-1, 3, X.shape[2])
    coadd = np.zeros((len(ivar), 3, X.shape[2]))
    coadd[:, 1] = ivar.sum(axis=1)
    coadd[:, 0] = (np.nan_to_num(back).reshape(ivar.shape) * ivar).sum(axis=1) / np.where(
        coadd[:, 1] > 0, coadd[:, 1], 1.0)
    return coadd


def _hull_figures(model, rng) -> dict:
    low, high = model.label_range_
    box = rng.uniform(low, high, (20000, len(low)))
    return {"physics_hull_vertices": int(len(model.label_hull_)),
            "physics_hull_box_fraction_outside": round(float(
                1 - model.state_.inside_training(box).mean()), 4)}


#: The hull's competitor: a label vector is outside when its distance (scaled labels) to its
#: KNN_K-th nearest training star exceeds this percentile of the training stars' own
#: leave-one-out distances.
KNN_K, KNN_PERCENTILE = 5, 99.0
#: A label error is large above this many times the median error of its label.
LARGE_ERROR = 3.0


def knn_distance(train: np.ndarray, points: np.ndarray, k: int = KNN_K,
                 percentile: float = KNN_PERCENTILE) -> np.ndarray:
    """The k-nearest-neighbour criterion (labels scaled by the training spread): each point's
    distance to its k-th nearest training star over ``percentile`` of the training stars'
    leave-one-out k-th-neighbour distances (outside: above 1)."""
    from scipy.spatial import cKDTree

    centre, scale = train.mean(axis=0), train.std(axis=0)
    tree = cKDTree((train - centre) / scale)
    own = tree.query((train - centre) / scale, k=k + 1)[0][:, k]     # itself excluded
    distance = tree.query((np.asarray(points) - centre) / scale, k=k)[0][:, k - 1]
    return distance / np.percentile(own, percentile)


def _flag_figures(tag: str, flagged: np.ndarray, large: np.ndarray, size: np.ndarray,
                  hole: np.ndarray) -> dict:
    """Precision, recall, flagged fraction, error ratio of one flag (``physics_<tag>_*``)."""
    out = {"flagged_fraction": flagged.mean(),
           "precision": large[flagged].mean() if flagged.any() else np.nan,
           "recall": flagged[large].mean() if large.any() else np.nan,
           "error_ratio": (np.median(size[flagged]) / np.median(size[~flagged])
                           if flagged.any() and (~flagged).any() else np.nan),
           "hole_flagged": flagged[hole].mean(), "random_flagged": flagged[~hole].mean()}
    return {f"physics_{tag}_{key}": round(float(value), 4) for key, value in out.items()}


def _hull_vs_knn(y: np.ndarray, fit_split, n_splits: int, n_hole: int, n_random: int,
                 seed: int, tag: str = "") -> dict:
    """Hold out a hole and random stars ``n_splits`` times, fit them with the model trained
    on the rest (``fit_split(train, test)`` -> LabelFit), and compare the flags (see
    :func:`hull_choice_figures`); keys ``physics_<flag><tag>_*``."""
    z = (y - y.mean(axis=0)) / y.std(axis=0)
    rng = np.random.default_rng(seed)
    rows = {"error": [], "hull": [], "knn": [], "hole": []}
    for _ in range(n_splits):                                  # one model per split
        centre = rng.integers(len(y))
        hole = np.argsort(np.sum((z - z[centre]) ** 2, axis=1))[:n_hole]
        rest = np.setdiff1d(np.arange(len(y)), hole)
        others = rng.choice(rest, n_random, replace=False)
        train = np.setdiff1d(rest, others)
        test = np.r_[hole, others]
        fit = fit_split(train, test)
        rows["error"].append(fit.labels - y[test])
        rows["hull"].append(fit.outside_training)
        rows["knn"].append(knn_distance(y[train], fit.labels))
        rows["hole"].append(np.arange(len(test)) < n_hole)
    error, hole = np.abs(np.concatenate(rows["error"])), np.concatenate(rows["hole"])
    size = np.max(error / np.median(error, axis=0), axis=1)
    large = size > LARGE_ERROR
    figures = {f"physics_hull_choice{tag}_large_fraction": round(float(large.mean()), 4)}
    hull, knn = np.concatenate(rows["hull"]), np.concatenate(rows["knn"])
    matched = knn > np.quantile(knn, 1 - hull.mean())     # the kNN flagging as many as the hull
    for name, flagged in (("hull", hull), ("knn", knn > 1), ("knn_matched", matched)):
        figures.update(_flag_figures(name + tag, flagged, large, size, hole))
    return figures


def hull_choice_figures(n_splits: int = 40, n_hole: int = 25, n_random: int = 30,
                        seed: int = 0) -> dict:
    """The hull against a kNN distance as predictors of large label errors, on REAL spectra
    (../shared/apogee/real_labelled: 336 APOGEE giants, 100 pixels, TEFF LOGG PARAM_M_H).

    Each split holds out a hole (the ``n_hole`` stars nearest, in scaled labels, to a random
    star: a region absent from training, inside or at the edge of the distribution) and
    ``n_random`` other random stars, trains the default Cannon on the rest and fits the held-out
    spectra; a star's error is its largest |fitted - true| / median |error| of that label over
    all splits, large above :data:`LARGE_ERROR`. Each flag judges the fitted labels: the hull
    (OUTSIDE_TRAINING as ``infer_labels`` sets it: hull and per-label range),
    :func:`knn_distance` above 1, and (``knn_matched``) the kNN distance cut to flag as many
    stars as the hull. Returns ``physics_hull_*`` / ``physics_knn_*`` (precision, recall,
    flagged fraction, median error flagged / unflagged, fraction of hole and random stars
    flagged)."""
    from skcannon.data import load_labelled_arrays
    from skcannon.model import Cannon

    names = ("TEFF", "LOGG", "PARAM_M_H")
    real = load_labelled_arrays(SHARED / "apogee" / "real_labelled" / "real_giants_100px.npz")
    y = real.table[list(names)].to_numpy(float)

    def fit_split(train, test):
        model = Cannon(names).fit(pd.DataFrame(y[train], columns=names), real.X[train])
        return model.infer_labels(real.X[test])

    figures = {"physics_hull_choice_source": f"real: {len(y)} APOGEE giants, "
               f"{real.X.shape[2]} px ({n_splits} splits: hole of {n_hole} + {n_random} random "
               f"held out)", "physics_knn_k": KNN_K, "physics_knn_percentile": KNN_PERCENTILE}
    figures.update(_hull_vs_knn(y, fit_split, n_splits, n_hole, n_random, seed))
    return figures


def hull_choice_emulator_figures(n_pool: int = 400, n_splits: int = 20, n_hole: int = 25,
                                 n_random: int = 30, seed: int = 0) -> dict:
    """:func:`hull_choice_figures` on emulator spectra: a pool of ``n_pool`` BinSpec dwarfs
    drawn uniformly over the emulator's whole range (training SNR 200, held-out SNR 100), a
    quadratic Cannon without error factors per split. Keys ``physics_hull_emulator_*``,
    ``physics_knn_emulator_*``, ``physics_knn_matched_emulator_*``."""
    from skcannon import Cannon

    emulator, wavelength = _setup()
    y = emulator.sample_labels(n_pool, seed=20, margin=0.0)[:, :4]
    rng = np.random.default_rng(seed)
    flux = _flux(emulator, y)
    train_X, test_X = _spectra(flux, np.full(n_pool, 200.0), rng), _spectra(
        flux, np.full(n_pool, 100.0), rng)

    def fit_split(train, test):
        model = Cannon(NAMES, n_error_factors=0).fit(pd.DataFrame(y[train], columns=NAMES),
                                                     train_X[train], wavelength=wavelength)
        return model.infer_labels(test_X[test])

    figures = {"physics_hull_choice_emulator_source": f"{SOURCE}; pool of {n_pool} over the "
               f"emulator's range, {n_splits} splits: hole of {n_hole} + {n_random} random"}
    figures.update(_hull_vs_knn(y, fit_split, n_splits, n_hole, n_random, seed,
                                tag="_emulator"))
    return figures


def run(n_train: int = 400, n_test: int = 300, n_visit_stars: int = 200) -> dict:
    """The figures (``physics_*``): see the module notes; sizes as given."""
    from skcannon import Cannon

    emulator, wavelength = _setup()
    rng = np.random.default_rng(42)
    labels = emulator.sample_labels(n_train, seed=10)[:, :4]
    X = _spectra(_flux(emulator, labels), np.full(n_train, 200.0), rng)
    model = Cannon(NAMES, n_error_factors=0).fit(pd.DataFrame(labels, columns=NAMES), X,
                                                 wavelength=wavelength)
    figures = {"physics_data_source": SOURCE, "physics_n_train": n_train,
               "physics_n_test": n_test}
    figures.update(_rv_figures(model, emulator, wavelength, n_test, rng))
    figures.update(_continuum_figures(model, emulator, wavelength, n_test, rng))
    figures.update(_visit_figures(model, emulator, wavelength, n_visit_stars, rng))
    figures.update(_hull_figures(model, rng))
    figures.update(hull_choice_figures())
    figures.update(hull_choice_emulator_figures())
    return figures
