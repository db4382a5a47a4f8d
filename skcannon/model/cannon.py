"""The Cannon as a scikit-learn estimator (generative direction: labels -> spectra)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import reprlib
import sys
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from skcannon.errors import BadFileError, ExtrapolationWarning, LabelError, TrainingSetError
from skcannon.inference.calibration import extrapolate_floor, learn_calibration
from skcannon.inference.fitting import LabelFit
from skcannon.inference.methods import fit_method
from skcannon.inference.nuisance import (
    DEFAULT_RV_BOUNDS,
    check_nuisance_options,
    fit_labels_nuisance,
)
from skcannon.inference.posterior import log_likelihood
from skcannon.inference.visits import fit_visits, visit_layout
from skcannon.labels import DEFAULT_LABELS, fitted_column, label_problems, unusable_labels_message
from skcannon.model.checks import (
    REPEATED_SPECTRUM,
    check_label_spread,
    check_training_spectra,
    duplicate_spectra,
    duplicates_message,
)
from skcannon.model.error_factors import DEFAULT_ERROR_FACTORS, learn_error_factors
from skcannon.model.hull import hull_vertices
from skcannon.model.io import read_model, write_model
from skcannon.model.label_priors import alternate, check_label_err, missing_entries
from skcannon.model.scaling import LabelScaling
from skcannon.model.state import PARAMETER_FIELDS, CannonState
from skcannon.model.training import MIN_STARS_PER_TERM, train_censored, train_pixels
from skcannon.model.vectorizer import MAX_ORDER, PolynomialVectorizer, parse_terms
from skcannon.spectra import FLUX, IVAR, check_spectra
from skcannon.stats import robust_scatter

#: The parameters of :class:`Cannon`, declared once: validated by ``fit`` (scikit-learn's
#: ``_parameter_constraints`` mechanism); :class:`CannonRegressor` wraps a Cannon instead of
#: repeating them.
CANNON_PARAMETER_CONSTRAINTS: dict = {
    "label_names": ["array-like"],
    "order": [Interval(Integral, 1, MAX_ORDER, closed="both")],
    "terms": [str, None],
    "censors": [dict, None],
    "n_error_factors": [Interval(Integral, 0, None, closed="left")],
    "clean_k": [Interval(Real, 0, None, closed="neither"), None],
    "bad_labels": [StrOptions({"raise", "drop"})],
    "duplicates": [StrOptions({"raise", "drop"})],
    "missing_labels": [StrOptions({"drop", "infer"}), None],
    "label_errors": [StrOptions({"prior", "ignore"})],
    "label_iterations": [Interval(Integral, 1, None, closed="left")],
    "calibration_folds": [Interval(Integral, 0, None, closed="left")],
    "scatter_grid": ["array-like", None],
    "regularization": [Interval(Real, 0, None, closed="left")],
    "min_good_fraction": [Interval(Real, 0, 1, closed="right")],
    "verbose": ["verbose"],
}


def check_label_names(label_names) -> tuple[str, ...]:
    """``label_names`` as a tuple of distinct, non-empty strings (else ValueError)."""
    names = tuple(label_names) if not isinstance(label_names, str) else (label_names,)
    if (not names or not all(isinstance(n, str) and n for n in names)
            or len(set(names)) != len(names)):
        raise ValueError(f"label_names must be distinct, non-empty strings; got {label_names!r}")
    return names


#: Parameters that change nothing a fitted model has learned (free to change after fit).
USE_FREE_PARAMETERS = ("verbose",)


def _same_value(a, b) -> bool:
    """Parameter values equal in content (arrays by value, lists and tuples alike)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except (TypeError, ValueError):
            return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b


def check_unchanged(fitted: dict | None, current: dict, owner: str) -> None:
    """Refuse to use a model whose parameters changed after it was fitted.

    Parameters
    ----------
    fitted : dict or None
        The parameters the model was fitted (or loaded) with; None: not recorded (no check).
    current : dict
        ``get_params(deep=False)`` now.
    owner : str
        How the parameters are named in the message (e.g. "Cannon", "CannonRegressor cannon").

    Raises
    ------
    sklearn.exceptions.NotFittedError
        Naming the first changed parameter, its fitted and its current value.
    """
    if fitted is None:
        return
    for name, value in fitted.items():
        if not _same_value(value, current.get(name)):
            raise NotFittedError(
                f"{owner}: {name} was {reprlib.repr(value)} at fit and is now "
                f"{reprlib.repr(current.get(name))}; the learned state belongs to the "
                f"parameters it was fitted with: fit again, or set {name} back")


#: Folds of the cross-validated judgement of training-set cleaning (``clean_k``).
CLEANING_FOLDS = 3
#: Largest relative difference between two pixels' wavelengths on "the same" grid (float32
#: storage of Angstrom values rounds at ~6e-8; one APOGEE pixel is ~1.4e-5 wide).
GRID_RTOL = 1e-6


def _merge_fits(parts: list, n_stars: int) -> LabelFit:
    """One LabelFit of ``n_stars`` from (row indices, LabelFit) parts covering every row."""
    first = parts[0][1]
    merged = {}
    for item in dataclasses.fields(LabelFit):
        value = getattr(first, item.name)
        if isinstance(value, np.ndarray) and item.name != "training_range":
            out = np.empty((n_stars,) + value.shape[1:], dtype=value.dtype)
            for rows, fit in parts:
                out[rows] = getattr(fit, item.name)
            merged[item.name] = out
        else:
            merged[item.name] = value
    return LabelFit(**merged)


def check_training_labels(values: np.ndarray, names: Sequence[str], n_terms: int) -> None:
    """Refuse training labels that cannot determine the model's terms.

    Parameters
    ----------
    values : ndarray, shape (n_stars, n_labels)  usable labels
    names : sequence of str
    n_terms : int  terms of the model (the constant included)

    Raises
    ------
    TrainingSetError
        Fewer than ``MIN_STARS_PER_TERM * n_terms`` stars (a pixel needs that many unmasked
        stars to be trained).
    LabelError
        A constant label, or labels that are linear combinations of each other.
    """
    needed = MIN_STARS_PER_TERM * n_terms
    if len(values) < needed:
        raise TrainingSetError(
            f"training set: {len(values)} stars with usable labels; a model with {n_terms} "
            f"terms ({len(names)} labels) needs at least {needed} (2 per term)")
    spread = values.max(axis=0) - values.min(axis=0)
    constant = [f"{name} (= {values[0, i]:g} for all {len(values)} stars)"
                for i, name in enumerate(names) if spread[i] == 0]
    if constant:
        raise LabelError(f"labels: constant label {', '.join(constant)}: nothing to learn; "
                         "leave it out of label_names")
    centred = (values - values.mean(axis=0)) / spread
    if np.linalg.matrix_rank(centred, tol=1e-9) < len(names):
        correlation = np.corrcoef(centred.T)
        pairs = [f"{names[i]} and {names[j]}" for i in range(len(names))
                 for j in range(i + 1, len(names)) if abs(correlation[i, j]) > 1 - 1e-9]
        raise LabelError("labels: collinear labels " + (", ".join(pairs) if pairs else
                         f"(one of {', '.join(names)} is a combination of the others)")
                         + ": their effects cannot be told apart")


def _training_hash(labels: np.ndarray, X: np.ndarray) -> str:
    """SHA-256 of the training labels, flux and inverse variance (star by star: no copies)."""
    digest = hashlib.sha256(np.ascontiguousarray(labels).data)
    for star in X:                                # rows of a contiguous X are views
        digest.update(np.ascontiguousarray(star[FLUX]).data)
        digest.update(np.ascontiguousarray(star[IVAR]).data)
    return digest.hexdigest()


def _check_inference_options(*, n_starts, margin, seed) -> None:
    """Refuse label-fitting options out of range (ValueError naming the option)."""
    for name, value in (("n_starts", n_starts), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0; got {value!r}")
    if (isinstance(margin, bool) or not isinstance(margin, Real) or not np.isfinite(margin)
            or margin < 0):
        raise ValueError(f"margin must be a finite number >= 0; got {margin!r}")


class Cannon(BaseEstimator):
    """The Cannon (Ness et al. 2015): per pixel, a polynomial in the scaled labels plus an
    intrinsic scatter s^2, learned by maximum likelihood.

    The generative face, labels -> spectra: ``fit(labels, spectra)``, ``predict(labels)``.
    For spectra -> labels in a Pipeline, wrap it in :class:`CannonRegressor`; the two faces
    are described in docs/model.rst.

    Parameters
    ----------
    label_names : sequence of str
        Labels, in order (default TEFF, LOGG, FE_H, MG_FE, SI_FE).
    order : int
        Polynomial order of the default terms (2: the quadratic Cannon; 1: linear; 3: cubic).
    terms : str or None
        Explicit terms in label-vector notation, e.g. ``"TEFF^3 TEFF^2 TEFF LOGG TEFF*LOGG
        FE_H"`` (the constant is implied; every label needs its linear term); overrides
        ``order``. See :mod:`skcannon.model.vectorizer`.
    censors : dict or None
        Censoring (Casey et al. 2016): ``{label: mask}`` with a boolean mask of shape
        (n_pixels,) per censored label; every term involving that label is exactly zero where
        its mask is False (e.g. [Mg/Fe] only in Mg windows). Labels not named act everywhere.
    n_error_factors : int
        Correlated model error: the number of error factors learned from the training
        residuals (0: independent pixels, the classic Cannon; at most a quarter of the stars
        and of the pixels are used). Label fitting then uses the full pixel covariance. Default
        10: chosen by cross-validation on real APOGEE giants (README, bench_real). See
        :mod:`skcannon.model.error_factors`.
    clean_k : float or None
        Training-set cleaning: infer every training star's labels with a classic model trained
        without it (3-fold), drop the stars whose labels are off by more than ``clean_k``
        robust scatters in any label or whose reduced chi^2 is that many robust scatters above
        the median, and train on the rest (None: keep every star). The dropped stars and why:
        ``dropped_``.
    bad_labels : {"raise", "drop"}
        Training stars with unusable labels (catalog nulls such as ASPCAP's -9999, NaN,
        non-numbers, values outside :data:`skcannon.labels.PLAUSIBLE_RANGES`): "raise" a
        :class:`~skcannon.errors.LabelError` naming them (default), or "drop" them and list
        them in ``dropped_``.
    duplicates : {"raise", "drop"}
        Training rows whose spectrum repeats an earlier row's (flux on the same usable pixels:
        one star counted twice, its labels weighted twice and its errors underestimated):
        "raise" a :class:`~skcannon.errors.TrainingSetError` naming them (default), or "drop"
        them (keeping the first) and list them in ``dropped_``.
    missing_labels : {None, "drop", "infer"}
        Training stars with some labels missing (NaN, or a catalog null such as -9999): None
        treats them as ``bad_labels`` says (default, the classic behaviour); "drop" drops them
        (listed in ``dropped_``) whatever ``bad_labels`` says; "infer" trains with the labels
        they have and infers the missing ones from their spectra, alternating with the
        model's training (see :mod:`skcannon.model.label_priors`; the first model is trained
        on the complete stars, which must be enough to train it).
    label_errors : {"prior", "ignore"}
        What ``fit(..., label_err=...)`` does with the catalog's label errors: "prior"
        (default) treats every training star's labels as unknowns with Gaussian priors
        N(catalog, label_err^2) (errors-in-variables, alternating training; see
        :mod:`skcannon.model.label_priors`); "ignore" trains on the catalog values as if exact
        (the classic Cannon). Without ``label_err`` both are the classic Cannon.
    label_iterations : int
        Most alternations of model and labels for ``label_err`` or ``missing_labels="infer"``
        (default 10; they stop earlier once no label moves by more than 1e-3 standard
        deviations).
    calibration_folds : int
        Calibrated uncertainties (0: off): the training stars' labels are inferred in this many
        cross-validation folds (and in 2 folds) by models like this one, and a per-label
        systematic uncertainty (a floor) is learned so that the held-out pulls have unit
        variance, extrapolated to the full training set (see
        :mod:`skcannon.inference.calibration`); label fits then report sqrt(formal^2 +
        floor^2) as the uncertainty (the formal one stays available). Costs
        ``calibration_folds`` + 2 extra trainings.
    scatter_grid : array_like or None
        s^2 grid used to bracket every pixel's maximum (None: the default wide grid).
    regularization : float
        L1 strength on the non-constant coefficients (Casey et al. 2016); 0 = classic Cannon.
    min_good_fraction : float
        Pixels unmasked in fewer than this fraction of the training stars are excluded.
    verbose : int
        0: silent; 1 or more: a progress bar over pixels on stderr while training.

    Attributes
    ----------
    theta_ : ndarray, shape (n_pixels, n_terms)
    s2_ : ndarray, shape (n_pixels,)
    pixel_mask_ : ndarray of bool, shape (n_pixels,)
        True for pixels the model describes (trained); False for excluded pixels.
    scaling_ : LabelScaling
    label_range_ : ndarray, shape (2, n_labels)
        Minimum and maximum of each training label.
    wavelength_ : ndarray, shape (n_pixels,) or None
    training_log_likelihood_, training_chi2_, training_dof_ : ndarray, shape (n_pixels,)
    n_training_stars_ : int
    training_hash_ : str
        SHA-256 of the training labels, flux and inverse variance.
    provenance_ : dict
        Where the model came from (empty after ``fit``; as saved for a loaded model).
    censor_mask_ : ndarray of bool, shape (n_labels, n_pixels), or None
        Where each label's terms may act (from ``censors``).
    error_factors_ : ndarray, shape (n_pixels, n_factors), or None
        The correlated model error U (from ``n_error_factors``).
    calibration_ : ndarray, shape (n_labels,), or None
        Systematic uncertainty floor per label (from ``calibration_folds``).
    label_hull_ : ndarray, shape (n_vertices, n_labels), or None
        Vertices of the convex hull of the training labels: "inside the training set" for
        ``predict``/``gradient`` warnings and the OUTSIDE_TRAINING flag (None for models saved
        before it was kept: the per-label ``label_range_`` box).
    dropped_ : DataFrame
        Training stars dropped (row, id when the labels have APOGEE_ID, reason): unusable
        labels with ``bad_labels="drop"``, then those ``clean_k`` drops (with their fitted
        labels); empty when none (not stored in model files).
    training_labels_ : ndarray, shape (n_training_stars, n_labels)
        The labels the model was trained on: the catalog's (classic fit), or the training
        stars' posterior labels with ``label_err`` or ``missing_labels="infer"`` (not stored
        in model files).
    training_label_err_ : ndarray, shape (n_training_stars, n_labels), or None
        Their posterior 1-sigma errors (None for a classic fit).
    label_iterations_ : int
        Alternations run (0 for a classic fit).

    Notes
    -----
    The learned state belongs to the parameters it was fitted (or loaded) with: after
    ``set_params`` changes any of them but ``verbose`` (e.g. ``label_names`` reordered,
    ``order``, ``terms``, ``censors``, ``n_error_factors``), every use of the fitted model
    (``predict``, ``gradient``, ``infer_labels``, ``log_likelihood``, ``score``, ``state_``,
    ``save``) raises :class:`~sklearn.exceptions.NotFittedError` naming the parameter, until
    it is fitted again or the parameter set back.
    """

    _parameter_constraints: dict = CANNON_PARAMETER_CONSTRAINTS

    def __init__(self, label_names: Sequence[str] = DEFAULT_LABELS, *, order: int = 2,
                 terms: str | None = None, censors: dict | None = None,
                 n_error_factors: int = DEFAULT_ERROR_FACTORS, clean_k: float | None = None,
                 bad_labels: str = "raise", duplicates: str = "raise",
                 missing_labels: str | None = None, label_errors: str = "prior",
                 label_iterations: int = 10, calibration_folds: int = 0, scatter_grid=None,
                 regularization: float = 0.0, min_good_fraction: float = 0.5,
                 verbose: int = 0) -> None:
        self.label_names = label_names
        self.order = order
        self.terms = terms
        self.censors = censors
        self.n_error_factors = n_error_factors
        self.clean_k = clean_k
        self.bad_labels = bad_labels
        self.duplicates = duplicates
        self.missing_labels = missing_labels
        self.label_errors = label_errors
        self.label_iterations = label_iterations
        self.calibration_folds = calibration_folds
        self.scatter_grid = scatter_grid
        self.regularization = regularization
        self.min_good_fraction = min_good_fraction
        self.verbose = verbose

    # -- helpers -------------------------------------------------------------------------------
    @property
    def vectorizer_(self) -> PolynomialVectorizer:
        """The polynomial vectorizer of this model (its ``terms``, else all up to ``order``)."""
        names = check_label_names(self.label_names)
        terms = None if self.terms is None else parse_terms(self.terms, names)
        return PolynomialVectorizer(len(names), order=self.order, terms=terms)

    def censor_mask(self, n_pixels: int) -> np.ndarray | None:
        """``censors`` as one array (n_labels, n_pixels) of bool (True: the label may act
        there), or None when nothing is censored. Raises ValueError for an unknown label or a
        mask of the wrong shape, or one False everywhere."""
        if not self.censors:
            return None
        names = list(check_label_names(self.label_names))
        mask = np.ones((len(names), n_pixels), dtype=bool)
        for name, allowed in self.censors.items():
            if name not in names:
                raise ValueError(f"censors: {name!r} is not one of the labels {names}")
            allowed = np.asarray(allowed)
            if allowed.shape != (n_pixels,) or allowed.dtype != bool:
                raise ValueError(f"censors: the mask of {name} must be boolean with shape "
                                 f"({n_pixels},) like the spectra; got {allowed.dtype} "
                                 f"{allowed.shape}")
            if not allowed.any():
                raise ValueError(f"censors: the mask of {name} is False on every pixel, so "
                                 f"{name} would act nowhere and could not be inferred; leave "
                                 "it out of label_names")
            mask[names.index(name)] = allowed
        return mask

    def label_array(self, labels, *, name: str = "labels") -> np.ndarray:
        """Labels as an array (n_stars, n_labels) in ``label_names`` order, checked for NaN."""
        array, _ = self._label_values(labels, name=name)
        bad = ~np.isfinite(array)
        if bad.any():
            names = list(self.label_names)
            rows = np.flatnonzero(bad.any(axis=1))
            raise LabelError(f"{name} have missing or non-finite values in {len(rows)} row(s), "
                             f"e.g. row {rows[0]} ({names[int(np.flatnonzero(bad[rows[0]])[0])]})")
        return array

    def label_bounds(self, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Physical lower and upper label bounds: the training range widened by ``margin`` of
        its width on each side (shared by label fitting, the TRF path and the MCMC priors;
        see :meth:`CannonState.label_bounds`)."""
        self._check_fitted()
        return self.state_.label_bounds(margin)

    # -- estimator API -------------------------------------------------------------------------
    def fit(self, labels, spectra, *, wavelength=None, label_err=None):
        """Learn theta and s^2 from labelled spectra.

        Parameters
        ----------
        labels : array_like (n_stars, n_labels) or DataFrame with ``label_names`` columns
        spectra : ndarray, shape (n_stars, 3, n_pixels)
            Normalized spectra (flux, inverse variance, bitmask; see skcannon.spectra).
        wavelength : array_like, shape (n_pixels,), optional
            Stored with the model.
        label_err : array_like, shape (n_stars, n_labels) or (n_labels,), or DataFrame, optional
            1-sigma errors of the labels (a DataFrame: columns ``NAME`` or ``NAME_ERR``; 0:
            exact, inf: unknown). With ``label_errors="prior"`` the training stars' labels are
            unknowns with these Gaussian priors (errors-in-variables; posterior labels in
            ``training_labels_``). Per star, so that cross-validation splits it like the labels.

        Returns
        -------
        self
        """
        self._validate_params()
        names = check_label_names(self.label_names)
        label_values, ids = self._label_values(labels)
        X = check_spectra(spectra, name="spectra")
        if X.shape[0] != label_values.shape[0]:
            raise ValueError(f"{label_values.shape[0]} label rows but {X.shape[0]} spectra")
        err = None if label_err is None or self.label_errors == "ignore" else \
            check_label_err(label_err, label_values.shape, names)
        check_training_spectra(X, ids)
        keep, dropped = self._usable_rows(label_values, ids, X)
        if self.missing_labels == "infer":
            label_values = np.where(missing_entries(label_values), np.nan, label_values)
        rows = np.flatnonzero(keep)
        complete = rows[np.isfinite(label_values[keep]).all(axis=1)]
        check_training_labels(label_values[complete], names, self.vectorizer_.n_terms)
        check_label_spread(label_values[complete], names, [ids[n] for n in complete],
                           self.vectorizer_.exponents.max(axis=0))
        self.dropped_ = pd.DataFrame(dropped, columns=["row", "id", "reason"])
        if self.clean_k is not None:
            if len(complete) < len(rows):
                raise ValueError("clean_k cannot judge stars with missing labels; use "
                                 "missing_labels='drop', or clean_k=None")
            kept, cleaned = self._cleaning(label_values[keep], X[keep])
            cleaned["row"] = rows[cleaned["row"].to_numpy(int)]
            cleaned.insert(1, "id", [ids[n] for n in cleaned["row"]])
            self.dropped_ = pd.concat([self.dropped_, cleaned], ignore_index=True) \
                if dropped else cleaned
            keep[rows[~kept]] = False
        self._train_labels(label_values[keep], None if err is None else err[keep], X[keep],
                           wavelength)
        if self.calibration_folds:
            self.calibration_ = self._calibration(self.training_labels_, X[keep])
        return self

    def _train_labels(self, label_values: np.ndarray, err: np.ndarray | None, X: np.ndarray,
                      wavelength) -> None:
        """Train on exact labels (classic), or alternating with the labels' posteriors when
        there are label errors ``err`` (n_stars, L) or missing labels (NaN in
        ``label_values``); sets ``training_labels_``, ``training_label_err_`` and
        ``label_iterations_``."""
        missing = ~np.isfinite(label_values)
        if err is None and not missing.any():
            self._train(label_values, X, wavelength, n_factors=self.n_error_factors)
            self.training_labels_, self.training_label_err_ = label_values, None
            self.label_iterations_ = 0
            return
        if err is None:
            err = np.zeros_like(label_values)        # known labels exact, missing ones free

        def train(values: np.ndarray, rows: np.ndarray) -> None:
            self._train(values, X[rows], wavelength, n_factors=self.n_error_factors)

        posterior = alternate(train, lambda: self.state_, X[:, FLUX], X[:, IVAR],
                              label_values, err, max_iter=self.label_iterations)
        self.training_labels_ = posterior.labels
        self.training_label_err_ = posterior.errors
        self.label_iterations_ = posterior.n_iter

    def _usable_rows(self, label_values: np.ndarray, ids: list[str], X: np.ndarray
                     ) -> tuple[np.ndarray, list[dict]]:
        """Which training stars to use (bool, (n_stars,)) and the dropped ones (row, id,
        reason): unusable labels (``bad_labels``), then repeated spectra (``duplicates``);
        each refused (LabelError, TrainingSetError) unless that option says "drop"."""
        missing = missing_entries(label_values)
        problems = label_problems(label_values, self.label_names)
        skipped = [""] * len(problems)         # missing labels dropped by missing_labels
        if self.missing_labels is not None and missing.any():
            filled = np.where(missing, np.nan, label_values)
            with np.errstate(all="ignore"):         # a label missing everywhere stays NaN
                filled = np.where(missing, np.nanmedian(filled, axis=0), filled)
            others = label_problems(filled, self.label_names)
            if self.missing_labels == "drop":
                skipped = [f"{p} (missing_labels='drop')" if p and not o else ""
                           for p, o in zip(problems, others, strict=True)]
            problems = others
        message = unusable_labels_message(problems, ids, hint=(
            "fix them, or drop them with bad_labels='drop' (skcannon train --drop-bad-labels)"))
        if message and self.bad_labels == "raise":
            raise LabelError(message)
        problems = [p or q for p, q in zip(problems, skipped, strict=True)]
        earlier = duplicate_spectra(X)
        if (earlier >= 0).any() and self.duplicates == "raise":
            raise TrainingSetError(duplicates_message(earlier, ids))
        for n in np.flatnonzero(earlier >= 0):
            problems[n] = problems[n] or f"{REPEATED_SPECTRUM} {ids[earlier[n]]} (row {earlier[n]})"
        dropped = [{"row": int(n), "id": ids[n], "reason": problem}
                   for n, problem in enumerate(problems) if problem]
        return np.array([not p for p in problems], dtype=bool), dropped

    def _held_out_fits(self, judge: Cannon, label_values: np.ndarray, X: np.ndarray,
                       n_folds: int) -> LabelFit:
        """Every star's labels inferred by ``judge`` (an unfitted Cannon) trained on the other
        folds (``n_folds``-fold, shuffled with a fixed seed), as one LabelFit."""
        from sklearn.base import clone
        from sklearn.model_selection import KFold

        parts = []
        for train, held_out in KFold(n_folds, shuffle=True, random_state=0).split(X):
            parts.append((held_out, clone(judge).fit(label_values[train], X[train])
                          .infer_labels(X[held_out])))
        return _merge_fits(parts, len(X))

    def _calibration(self, label_values: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The systematic-uncertainty floor (L,) from cross-validation of models like this one.

        The model's own error shrinks as its training set grows, so held-out residuals of
        models trained on fewer stars overstate it: the floor is measured with 2 folds (half
        the stars) and with ``calibration_folds`` folds, and floor^2 is extrapolated linearly in
        1 / n_train to all the stars (never above the larger-set value, never below 0; see
        :func:`skcannon.inference.calibration.extrapolate_floor`)."""
        from sklearn.base import clone

        n_folds = self.calibration_folds
        if n_folds < 2 or n_folds > len(X) // 2:      # a TrainingSetError is also a ValueError
            raise TrainingSetError(f"calibration_folds must be 0 or 2..{len(X) // 2} for "
                                   f"{len(X)} stars; got {n_folds}")
        judge = clone(self).set_params(calibration_folds=0, verbose=0)
        needed = MIN_STARS_PER_TERM * self.vectorizer_.n_terms
        feasible = [k for k in sorted({2, n_folds}) if len(X) * (k - 1) // k >= needed]
        if not feasible:
            raise TrainingSetError(
                f"calibration_folds={n_folds}: {len(X)} training stars leave "
                f"{len(X) * (n_folds - 1) // n_folds} per cross-validation model; "
                f"{needed} are needed (2 per term); use calibration_folds=0 or more stars")
        floors = {}
        for folds in feasible:       # half the stars only where that is enough to train
            fit = self._held_out_fits(judge, label_values, X, folds)
            floors[len(X) * (folds - 1) / folds] = learn_calibration(
                fit.labels - label_values, fit.formal_uncertainties).floor
        return extrapolate_floor(floors, len(X))

    def _label_values(self, labels, *, name: str = "labels") -> tuple[np.ndarray, list[str]]:
        """Labels (n_stars, L) in ``label_names`` order, non-numbers in a table as NaN, and an
        id per star (APOGEE_ID when the table has one, else the row number)."""
        names = list(self.label_names)
        if isinstance(labels, pd.DataFrame):
            missing = [n for n in names if n not in labels.columns]
            if missing:
                raise LabelError(f"{name} lack column(s) {', '.join(missing)}")
            repeated = [n for n in names if np.sum(labels.columns == n) > 1]
            if repeated:
                raise LabelError(f"{name} have more than one column named "
                                 f"{', '.join(repeated)}: which one is meant?")
            values = labels[names].apply(pd.to_numeric, errors="coerce").to_numpy(float)
            ids = (labels["APOGEE_ID"].astype(str).tolist() if "APOGEE_ID" in labels
                   else [f"row {n}" for n in range(len(labels))])
            return values, ids
        if np.iscomplexobj(labels):
            raise LabelError(f"{name} are complex numbers; labels must be real")
        try:
            values = np.atleast_2d(np.asarray(labels, dtype=float))
        except (TypeError, ValueError) as exc:
            raise LabelError(f"{name} are not numbers ({exc})") from None
        if values.ndim != 2 or values.shape[1] != len(names):
            raise LabelError(f"{name} must have shape (n_stars, {len(names)}) for labels "
                             f"{names}; got {values.shape}")
        return values, [f"row {n}" for n in range(len(values))]

    def _cleaning(self, label_values: np.ndarray, X: np.ndarray
                  ) -> tuple[np.ndarray, pd.DataFrame]:
        """Which training stars to keep (bool, (n_stars,)) and a table of the dropped ones.

        Each star is judged by a classic model (no error factors: those learned from bad labels
        would absorb the residuals that reveal them) trained without it (CLEANING_FOLDS-fold),
        so a bad label cannot pull the model towards itself."""
        from sklearn.base import clone

        judge = clone(self).set_params(clean_k=None, n_error_factors=0, calibration_folds=0,
                                       verbose=0)
        fit = self._held_out_fits(judge, label_values, X, CLEANING_FOLDS)
        residual = fit.labels - label_values
        k = float(self.clean_k)
        scatter = np.maximum(robust_scatter(residual, axis=0), np.finfo(float).tiny)
        far = np.abs(residual - np.nanmedian(residual, axis=0)) > k * scatter
        chi2 = fit.reduced_chi2
        extreme = chi2 > np.nanmedian(chi2) + k * robust_scatter(chi2[np.isfinite(chi2)])
        drop = far.any(axis=1) | extreme | ~np.isfinite(residual).all(axis=1)
        rows = []
        for n in np.flatnonzero(drop):
            why = [f"{name} off by {residual[n, i] / scatter[i]:+.1f} robust scatters"
                   for i, name in enumerate(self.label_names) if far[n, i]]
            if extreme[n]:
                why.append(f"extreme reduced chi2 ({chi2[n]:.2f})")
            rows.append({"row": int(n), **{fitted_column(name): fit.labels[n, i]
                                           for i, name in enumerate(self.label_names)},
                         "reason": "; ".join(why + fit.reasons(n)) or "no usable fit"})
        return ~drop, pd.DataFrame(rows, columns=None if rows else ["row", "reason"])

    def _train(self, label_values: np.ndarray, X: np.ndarray, wavelength, *,
               n_factors: int) -> None:
        """Learn the state from checked labels (n_stars, L) and spectra (n_stars, 3, P), with
        up to ``n_factors`` error factors."""
        names = check_label_names(self.label_names)
        vectorizer = self.vectorizer_
        censor = self.censor_mask(X.shape[2])
        check_training_labels(label_values, names, vectorizer.n_terms)
        scaling = LabelScaling.from_training(names, label_values)
        design = vectorizer.design_matrix(scaling.scale(label_values))
        # hash the training set in a thread meanwhile (hashlib releases the GIL on big buffers)
        with ThreadPoolExecutor(max_workers=1) as pool, \
                tqdm(total=X.shape[2], desc="training", unit="px", file=sys.stderr,
                     disable=not self.verbose) as bar:
            hashing = pool.submit(_training_hash, label_values, X)
            options = {"scatter_grid": self.scatter_grid, "regularization": self.regularization,
                       "min_good_fraction": self.min_good_fraction,
                       "progress": bar.update if self.verbose else None}
            if censor is None:
                result = train_pixels(design, X[:, FLUX], X[:, IVAR], **options)
            else:
                allowed = ~(vectorizer.term_labels()[None] & ~censor.T[:, None, :]).any(axis=2)
                result = train_censored(design, X[:, FLUX], X[:, IVAR], allowed, **options)
            training_hash = hashing.result()
        if not result.pixel_ok.any():
            needed = max(self.min_good_fraction * X.shape[0],
                         MIN_STARS_PER_TERM * vectorizer.n_terms)
            raise TrainingSetError(
                f"training set: no pixel is unmasked (inverse variance > 0) in enough stars "
                f"(at least {int(np.ceil(needed))} of {X.shape[0]}; min_good_fraction "
                f"{self.min_good_fraction:g}, {MIN_STARS_PER_TERM} stars per term): "
                "nothing to train; check the spectra's inverse variances")
        if censor is not None and not (censor & result.pixel_ok).any(axis=1).all():
            nowhere = [name for name, row in zip(names, censor & result.pixel_ok, strict=True)
                       if not row.any()]
            raise TrainingSetError(f"censors: {', '.join(nowhere)} may act only on pixels "
                                   "that could not be trained; it would act nowhere")
        factors = None
        n_factors = min(n_factors, X.shape[0] // 4, int(result.pixel_ok.sum()) // 4)
        if n_factors:     # at most a quarter of the stars and pixels: the covariance is noisy
            residual = X[:, FLUX] - design @ result.theta.T
            good = (X[:, IVAR] > 0) & result.pixel_ok[None, :]
            factors = learn_error_factors(residual, good, n_factors)
        self._set_state(CannonState(
            theta=result.theta, s2=result.s2, pixel_mask=result.pixel_ok, scaling=scaling,
            label_range=np.vstack([label_values.min(axis=0), label_values.max(axis=0)]),
            wavelength=None if wavelength is None else np.asarray(wavelength, float),
            training_log_likelihood=result.log_likelihood, training_chi2=result.chi2,
            training_dof=result.dof, n_training_stars=int(X.shape[0]),
            training_hash=training_hash, grid_index=result.grid_index, censor_mask=censor,
            error_factors=factors, label_hull=hull_vertices(label_values, scaling.scales)))

    def _set_state(self, state: CannonState) -> Cannon:
        """Make ``state`` this estimator's fitted attributes, each field ``x`` as ``x_`` (the one
        place they are set: :meth:`fit`, :meth:`load` and the published-model importer all come
        here). The fields of :data:`PARAMETER_FIELDS` are derived from the parameters: a
        state's own vectorizer must have the terms of :attr:`vectorizer_`."""
        if state.vectorizer is not None and not np.array_equal(
                state.vectorizer.exponents, self.vectorizer_.exponents):
            raise ValueError("the state's terms are not those of the model's parameters "
                             f"({len(self.label_names)} labels, order {self.order}, terms "
                             f"{self.terms!r})")
        if state.theta.shape[1] != self.vectorizer_.n_terms:
            raise ValueError(f"theta has {state.theta.shape[1]} terms; the model's terms "
                             f"({len(self.label_names)} labels, order {self.order}, terms "
                             f"{self.terms!r}) are {self.vectorizer_.n_terms}")
        if tuple(state.scaling.names) != tuple(self.label_names):
            raise ValueError(f"the state's labels {state.scaling.names} are not label_names "
                             f"{tuple(self.label_names)}")
        for item in dataclasses.fields(state):        # field x -> fitted attribute x_
            if item.name not in PARAMETER_FIELDS:
                setattr(self, f"{item.name}_", getattr(state, item.name))
        self._fitted_params = copy.deepcopy({
            k: v for k, v in self.get_params(deep=False).items()
            if k not in USE_FREE_PARAMETERS})
        return self

    def _check_fitted(self) -> None:
        """Fitted, and with the parameters it was fitted with (NotFittedError otherwise,
        naming the changed parameter: see :func:`check_unchanged`)."""
        check_is_fitted(self, "theta_")
        check_unchanged(getattr(self, "_fitted_params", None), self.get_params(deep=False),
                        type(self).__name__)

    @property
    def state_(self) -> CannonState:
        """The learned state as one value (see :class:`CannonState`), with the vectorizer."""
        self._check_fitted()
        return CannonState(**{item.name: getattr(self, f"{item.name}_")
                              for item in dataclasses.fields(CannonState)
                              if item.name not in PARAMETER_FIELDS},
                           vectorizer=self.vectorizer_)

    def predict(self, labels) -> np.ndarray:
        """Model spectra for label vectors, shape (n_stars, n_pixels) (excluded pixels: 1).

        Warns (one :class:`ExtrapolationWarning` naming how many rows) when label rows lie
        outside the training set (see :meth:`CannonState.inside_training
        <skcannon.model.CannonState.inside_training>`).
        """
        self._check_fitted()
        values = self.label_array(labels)
        self._warn_outside(values, "predict")
        design = self.vectorizer_.design_matrix(self.scaling_.scale(values))
        return design @ self.theta_.T

    def _warn_outside(self, values: np.ndarray, what: str) -> None:
        """One ExtrapolationWarning when rows of physical ``values`` (n, L) lie outside the
        training set; ``what`` names the caller."""
        outside = ~self.state_.inside_training(values)
        if outside.any():
            judge = ("the convex hull of the training labels" if self.label_hull_ is not None
                     else "each label's training range: this model records no hull")
            warnings.warn(
                f"{what}: {int(outside.sum())} of {len(values)} label rows lie outside the "
                f"training set ({judge}); the model extrapolates there", ExtrapolationWarning,
                stacklevel=3)

    def gradient(self, labels) -> np.ndarray:
        """Gradient spectra df/dlabel in physical units (per K, per dex); warns as
        :meth:`predict` does outside the training set.

        Returns
        -------
        ndarray, shape (n_stars, n_labels, n_pixels)
        """
        self._check_fitted()
        values = self.label_array(labels)
        self._warn_outside(values, "gradient")
        scaled = self.scaling_.scale(values)
        jacobian = self.vectorizer_.jacobian(scaled)              # (n, k, L)
        per_scaled = np.einsum("nkl,pk->nlp", jacobian, self.theta_)
        return per_scaled / self.scaling_.scales[None, :, None]

    def check_wavelength(self, wavelength, source: object = "spectra", *,
                         n_pixels: int | None = None) -> None:
        """Refuse spectra on another grid than the model's.

        ``wavelength`` (n_pixels,) is the spectra's grid, or None when it was not recorded:
        then only their number of pixels, ``n_pixels``, is compared. ``source`` names the
        spectra in the error. Grids agree when they have the same length and differ by at most
        :data:`GRID_RTOL` (relative) in every pixel; a model without a stored grid accepts any
        grid of its length.

        Raises
        ------
        BadFileError
            Naming ``source``, the two grids' lengths and ranges.
        """
        self._check_fitted()
        ours, size = self.wavelength_, self.theta_.shape[0]
        if wavelength is None:
            if n_pixels is None or n_pixels == size:
                return
            theirs = np.arange(n_pixels, dtype=float)
        else:
            theirs = np.asarray(wavelength, float)
            if ours is None and theirs.shape == (size,):
                return
            if ours is not None and theirs.shape == ours.shape and np.all(
                    np.abs(theirs - ours) <= GRID_RTOL * np.abs(ours)):
                return

        def describe(grid: np.ndarray | None) -> str:
            if grid is None or wavelength is None or not grid.size:
                return f"{size if grid is None else grid.size} pixels"
            return f"{grid.size} pixels, {grid.min():.6g}-{grid.max():.6g}"

        raise BadFileError(source, f"wavelength grid ({describe(theirs)}) is not the model's "
                                   f"({describe(ours)}); prepare the spectra with the model's "
                                   "preprocessing")

    def infer_labels(self, spectra, *, method: str = "lm", n_starts: int = 4,
                     margin: float = 0.1, seed: int = 0, fixed: dict | None = None,
                     fit_rv: bool = False, rv_bounds=DEFAULT_RV_BOUNDS,
                     continuum_order: int | None = None) -> LabelFit:
        """Labels of normalized spectra (the inverse of :meth:`predict`).

        Parameters
        ----------
        spectra : ndarray, shape (n_stars, 3, n_pixels)
        method : str, default="lm"
            A registered label-fitting method (see :mod:`skcannon.inference.methods`): "lm",
            batched multi-start Levenberg-Marquardt (fast); "trf", scipy's least_squares star
            by star from the training mean (reference path); or one added with
            :func:`~skcannon.inference.methods.register_fit_method`.
        n_starts : int, default=4
            Starts besides the linearized guess ("lm"); >= 0.
        margin : float, default=0.1
            Bounds: the training label range widened by this fraction on each side; finite,
            >= 0.
        seed : int, default=0
            Seed of the spread starting points; >= 0.
        fixed : dict of str to float or array_like of shape (n_stars,), default=None
            Labels held fixed at given values (e.g. asteroseismic log g, a cluster's [Fe/H]):
            the other labels are fitted, the fixed ones returned exactly as given and marked
            in ``LabelFit.fixed`` (NaN in an array: that star's label is fitted).
        fit_rv : bool, default=False
            Fit a radial velocity jointly with the labels (the model shifted on its
            log-linear wavelength grid): ``LabelFit.rv``/``rv_err`` in km/s, + = redshift
            relative to the spectra's frame (see docs/physics.rst).
        rv_bounds : tuple of float, default=(-400.0, 400.0)
            Radial velocity bounds (km/s) with ``fit_rv``.
        continuum_order : int or None, default=None
            Multiply the model by a polynomial of this order per segment of the grid (chip),
            its coefficients profiled out analytically (None: the spectra's continuum is
            trusted, the classic Cannon).

        Returns
        -------
        LabelFit
            Labels, covariances (physical units), chi^2 and flags per star
            (``.to_frame()`` gives a table). For "trf", labels and chi^2 only are meaningful
            beyond those of the batched path. ``fixed``, ``fit_rv``, ``continuum_order``
            ("lm" only): :func:`skcannon.inference.nuisance.fit_labels_nuisance`.

        Raises
        ------
        ValueError
            An option out of range, an unregistered method, spectra of another width.
        """
        self._check_fitted()
        _check_inference_options(n_starts=n_starts, margin=margin, seed=seed)
        fit = fit_method(method)
        X = check_spectra(spectra, self.theta_.shape[0], name="spectra")
        options = {"n_starts": n_starts, "margin": margin, "seed": seed}
        if fixed is None and not fit_rv and continuum_order is None:
            return fit(self.state_, X[:, FLUX], X[:, IVAR], **options)
        nuisance = check_nuisance_options(self.label_names, len(X), method=method,
                                          fixed=fixed, fit_rv=fit_rv, rv_bounds=rv_bounds,
                                          continuum_order=continuum_order)
        return fit_labels_nuisance(self.state_, X[:, FLUX], X[:, IVAR], **nuisance, **options)

    def infer_visits(self, visits, *, groups=None, rv_bounds=DEFAULT_RV_BOUNDS,
                     continuum_order: int | None = None, n_starts: int = 4,
                     margin: float = 0.1, seed: int = 0) -> LabelFit:
        """Labels of stars observed in several visits: one label vector per star, a radial
        velocity (and continuum) per visit, and RV-variable stars flagged.

        Parameters
        ----------
        visits : sequence of ndarray, each of shape (n_visits_i, 3, n_pixels)
            Each star's visit spectra (normalized, on the model's grid, each in its own frame);
            with ``groups``, one stacked array (n_rows, 3, n_pixels).
        groups : array_like of shape (n_rows,), default=None
            The star of each row of a stacked ``visits`` array (e.g. APOGEE_IDs): rows with
            the same value are one star's visits; stars in order of first appearance.
        rv_bounds : tuple of float, default=(-400.0, 400.0)
            Velocity bounds per visit, km/s.
        continuum_order : int or None, default=None
            Per-visit, per-chip continuum polynomial (see :meth:`infer_labels`).
        n_starts, margin, seed
            As in :meth:`infer_labels`.

        Returns
        -------
        LabelFit
            One row per star (see :func:`skcannon.inference.visits.fit_visits`): ``rv`` the
            visits' mean, ``visit_rv``/``visit_rv_err`` per visit, ``rv_chi2``,
            ``rv_variable`` (column RV_VARIABLE), ``visit_chi2_excess``.
        """
        self._check_fitted()
        _check_inference_options(n_starts=n_starts, margin=margin, seed=seed)
        X, star, slot = visit_layout(visits, groups)
        X = check_spectra(X, self.theta_.shape[0], name="visits")
        options = check_nuisance_options(self.label_names, len(X), fixed=None, fit_rv=True,
                                         rv_bounds=rv_bounds, continuum_order=continuum_order)
        return fit_visits(self.state_, X[:, FLUX], X[:, IVAR], star, slot,
                          rv_bounds=options["rv_bounds"], continuum_order=continuum_order,
                          n_starts=n_starts, margin=margin, seed=seed)

    def log_likelihood(self, labels, spectra) -> np.ndarray:
        """ln p(spectra | labels) per star over the model's pixels, shape (n_stars,) (with error
        factors: the multivariate normal of covariance diag(sigma^2 + s^2) + U U^T)."""
        self._check_fitted()
        X = check_spectra(spectra, self.theta_.shape[0], name="spectra")
        values = self.label_array(labels)
        if len(values) != len(X):
            raise ValueError(f"{len(values)} label rows but {len(X)} spectra: one label row "
                             "per spectrum is needed")
        return log_likelihood(self.state_, values, X[:, FLUX], X[:, IVAR])

    def score(self, labels, spectra) -> float:
        """Mean log-likelihood per good pixel of held-out spectra (higher is better), so that
        GridSearchCV can tune ``scatter_grid`` and ``regularization`` on this estimator."""
        X = check_spectra(spectra, name="spectra")
        total = np.sum(self.log_likelihood(labels, X))      # checks shapes and the fit
        n_good = np.sum((X[:, IVAR] > 0) & self.pixel_mask_, axis=1)
        return float(total / max(np.sum(n_good), 1))

    # -- files -----------------------------------------------------------------------------------
    def save(self, path, *, overwrite: bool = False, provenance: dict | None = None):
        """Write the model to an HDF5 file (see :mod:`skcannon.model.io`)."""
        self._check_fitted()
        return write_model(path, self.get_params(), self.state_, self.vectorizer_.exponents,
                           overwrite=overwrite, provenance=provenance)

    @classmethod
    def load(cls, path) -> Cannon:
        """Read a model written by :meth:`save` (no training data needed; no code executed)."""
        params, state, exponents = read_model(path)
        names = params.pop("label_names")
        if state.error_factors is not None:
            params["n_error_factors"] = state.error_factors.shape[1]
        if state.censor_mask is not None:
            params["censors"] = {name: mask for name, mask in zip(names, state.censor_mask,
                                                                    strict=True)
                                 if not mask.all()}
        try:
            model = cls(names, **params)
            if not np.array_equal(model.vectorizer_.exponents, exponents):
                raise ValueError("the stored term exponents do not match the model's terms")
            return model._set_state(state)
        except ValueError as exc:
            raise BadFileError(path, str(exc)) from exc

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        return tags
