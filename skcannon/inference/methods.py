"""The registry of label-fitting methods: a name and a function, registered together.

A method is a function ``fit(state, flux, ivar, *, n_starts, margin, seed) -> LabelFit`` on a
model's learned state (:class:`skcannon.model.CannonState`, see
:func:`skcannon.inference.fitting.fit_labels`) and normalized spectra (n_stars, n_pixels).
``Cannon.infer_labels(method=...)`` dispatches through :data:`FIT_METHODS`, and the ``fit
--method`` choices of the command line come from it. Registered here:

* ``"lm"``: batched multi-start Levenberg-Marquardt
  (:func:`~skcannon.inference.fitting.fit_labels`).
* ``"trf"``: scipy's least_squares star by star, the reference path
  (:func:`~skcannon.inference.reference.fit_labels_reference`).

A new method is one function and one :func:`register_fit_method` call.
"""

from __future__ import annotations

from collections.abc import Callable

from skcannon.inference.fitting import LabelFit, fit_labels
from skcannon.inference.reference import fit_labels_reference

#: A label-fitting method: ``fit(state, flux, ivar, *, n_starts, margin, seed) -> LabelFit``.
FitMethod = Callable[..., LabelFit]

#: The registered label-fitting methods, by name.
FIT_METHODS: dict[str, FitMethod] = {"lm": fit_labels, "trf": fit_labels_reference}


def register_fit_method(name: str, function: FitMethod, *, replace: bool = False) -> FitMethod:
    """Make ``function`` the label-fitting method called ``name``.

    Parameters
    ----------
    name : str
        The method's name (``Cannon.infer_labels(method=name)``, ``skcannon fit --method``).
    function : callable
        ``function(state, flux, ivar, *, n_starts, margin, seed) -> LabelFit``.
    replace : bool, default=False
        Allow replacing a method already registered under ``name``.

    Returns
    -------
    callable
        ``function``, unchanged.

    Raises
    ------
    ValueError
        ``name`` is empty or already registered (without ``replace``), or ``function`` is not
        callable.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a fitting method's name must be a non-empty string; got {name!r}")
    if not callable(function):
        raise ValueError(f"fitting method {name!r}: {function!r} is not callable")
    if name in FIT_METHODS and not replace:
        raise ValueError(f"fitting method {name!r} is already registered "
                         "(pass replace=True to replace it)")
    FIT_METHODS[name] = function
    return function


def fit_method(name: str) -> FitMethod:
    """The label-fitting method registered as ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    callable
        ``fit(state, flux, ivar, *, n_starts, margin, seed) -> LabelFit``.

    Raises
    ------
    ValueError
        No method has that name (the message lists the registered ones).
    """
    try:
        return FIT_METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"method must be one of {', '.join(map(repr, FIT_METHODS))}; "
                         f"got {name!r}") from None
