"""Exceptions raised by skcannon.

Every error names the file, URL or star it is about, so a user can find the culprit in a batch.
"""

from __future__ import annotations


class SkcannonError(Exception):
    """Base class of all skcannon errors."""


class BadFileError(SkcannonError, ValueError):
    """A file is missing, truncated, corrupt, or does not have the expected layout.

    The message is ``"<path>: <problem>"``.

    Parameters
    ----------
    path : str or path-like
        The file.
    problem : str
        What is wrong with it.

    Attributes
    ----------
    path : str
        The file, as a string.
    problem : str
        What is wrong with it.
    """

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CatalogError(SkcannonError, ValueError):
    """A catalog lacks a column, names an unknown field, or cannot be read."""


class DownloadError(SkcannonError, OSError):
    """A file could not be fetched from the archive (after all retries).

    The message is ``"<url>: <problem>"``.

    Parameters
    ----------
    url : str
        The URL that was fetched.
    problem : str
        Why it failed.

    Attributes
    ----------
    url : str
        The URL that was fetched.
    problem : str
        Why it failed.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")


class LabelError(SkcannonError, ValueError):
    """Labels unusable for training: nulls, NaN, implausible, constant or collinear values."""


class TrainingSetError(SkcannonError, ValueError):
    """A training set too small, or too masked, to learn the model's terms."""


class ExtrapolationWarning(UserWarning):
    """Labels outside the training set were asked of the model (``Cannon.predict``,
    ``Cannon.gradient``): it extrapolates there."""
