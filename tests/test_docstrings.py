"""Every public name (each module's ``__all__``) has a docstring a user can read: numpydoc
``Parameters`` when it takes any (a dataclass may document its fields under ``Attributes``
instead) and ``Returns``/``Yields`` when a function returns something."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re

import skcannon

#: Parameter kinds a docstring must name (``*args`` and ``**kwargs`` are not required).
_NAMED = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
          inspect.Parameter.KEYWORD_ONLY)


def _has_section(doc: str, *titles: str) -> bool:
    """True when ``doc`` has a numpydoc section with one of ``titles`` (title, then dashes)."""
    return any(re.search(rf"^\s*{title}\s*\n\s*-{{3,}}\s*$", doc, re.MULTILINE)
               for title in titles)


def _parameters(obj) -> list[str]:
    """Named parameters of a function, or of a class's constructor (without ``self``)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):          # a constructor without a Python signature
        return []
    return [name for name, p in signature.parameters.items()
            if p.kind in _NAMED and name not in ("self", "cls")]


def _returns_something(function) -> bool:
    """False only for a function annotated ``-> None``."""
    annotation = inspect.signature(function).return_annotation
    return annotation not in (None, "None")


def docstring_problems(obj) -> list[str]:
    """The numpydoc sections ``obj``'s docstring lacks (an empty list when it is complete).

    Parameters
    ----------
    obj : function or class

    Returns
    -------
    list of str
        "Parameters", "Returns" (either may appear), or "docstring" when it has none.
    """
    doc = inspect.getdoc(obj) or ""
    if not doc.strip():
        return ["docstring"]
    missing = []
    documented = ("Parameters", "Attributes") if dataclasses.is_dataclass(obj) \
        else ("Parameters",)
    if _parameters(obj) and not _has_section(doc, *documented):
        missing.append("Parameters")
    if inspect.isfunction(obj) and _returns_something(obj) and \
            not _has_section(doc, "Returns", "Yields"):
        missing.append("Returns")
    return missing


def public_objects() -> dict[str, object]:
    """Every function and class named in a ``skcannon`` module's ``__all__``, once, by its
    qualified name where it is defined (modules needing a missing optional dependency are
    left out)."""
    names = ["skcannon"] + [module.name for module in
                            pkgutil.walk_packages(skcannon.__path__, "skcannon.")
                            if not module.name.endswith("__main__")]
    found: dict[str, object] = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:    # an optional dependency (torch for skcannon.nn)
            if (exc.name or "").split(".")[0] == "skcannon":
                raise
            continue
        for attribute in getattr(module, "__all__", ()):
            obj = getattr(module, attribute)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return found


def test_every_public_name_has_parameters_and_returns():
    offenders = [f"{name}: lacks {', '.join(problems)}"
                 for name, obj in sorted(public_objects().items())
                 if (problems := docstring_problems(obj))]
    assert not offenders, "\n".join(offenders)


def test_the_walk_finds_the_public_api():
    found = public_objects()
    for name in ("skcannon.model.cannon.Cannon", "skcannon.evaluation.metrics.label_bias",
                 "skcannon.data.dataset.SpectralDataset", "skcannon.errors.BadFileError"):
        assert name in found, name


# -- the checker itself can fail -----------------------------------------------------------
def _undocumented(flux, order=3):
    return flux


def _without_returns(flux, order=3):
    """Scale the flux.

    Parameters
    ----------
    flux : ndarray of shape (n_stars, n_pixels)
    order : int, default=3
    """
    return flux


def _documented(flux, order=3) -> float:
    """Scale the flux.

    Parameters
    ----------
    flux : ndarray of shape (n_stars, n_pixels)
    order : int, default=3

    Returns
    -------
    float
    """
    return 0.0


def _no_result(path) -> None:
    """Write nothing.

    Parameters
    ----------
    path : str
    """


def _mentions_only(flux):
    """Parameters and Returns are named in this sentence, but there are no sections."""
    return flux


class _PlainClass:
    """A class whose constructor takes a parameter it does not document."""

    def __init__(self, order: int = 3) -> None:
        self.order = order


@dataclasses.dataclass
class _DocumentedFields:
    """A dataclass documenting its fields as attributes.

    Attributes
    ----------
    order : int, default=3
    """

    order: int = 3


@dataclasses.dataclass
class _UndocumentedFields:
    """A dataclass that says nothing about its fields."""

    order: int = 3


def test_checker_flags_a_planted_undocumented_function():
    assert docstring_problems(_undocumented) == ["docstring"]
    assert docstring_problems(_without_returns) == ["Returns"]
    assert docstring_problems(_mentions_only) == ["Parameters", "Returns"]
    assert docstring_problems(_PlainClass) == ["Parameters"]
    assert docstring_problems(_UndocumentedFields) == ["Parameters"]


def test_checker_accepts_complete_docstrings():
    assert docstring_problems(_documented) == []
    assert docstring_problems(_no_result) == []
    assert docstring_problems(_DocumentedFields) == []
