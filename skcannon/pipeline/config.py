"""The main job's configuration: one frozen value instead of parameter lists repeated across
stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from skcannon.apogee.catalog import QualityCuts
from skcannon.apogee.constants import DEFAULT_FIELDS
from skcannon.pipeline.resources import DEFAULT_SHARED, SharedData


@dataclass(frozen=True)
class JobConfig:
    """Everything the main job's stages take.

    Path-like values given as strings are turned into :class:`~pathlib.Path`, and ``fields``
    into a tuple (one string: a tuple of it).

    Attributes
    ----------
    shared : Path, default=Path("../shared")
        Directory of the shared resources (continuum pixels, reference model, label table ...).
    catalog : str or None, default=None
        Catalog: path, URL, "skyserver", "allstar" or "allstarlite" (None: allStarLite at
        the archive; see :func:`skcannon.apogee.catalog.load_catalog_source`).
    skyserver_url : str or None, default=None
        SkyServer base URL for ``catalog="skyserver"`` (None: astroquery's).
    archive : str or None, default=None
        Archive base URL (None: ``$SKCANNON_ARCHIVE_URL`` or the SDSS SAS).
    data_dir : Path or None, default=None
        Data (cache) directory (None: ``$SKCANNON_DATA_DIR``, else a per-user cache).
    fields : tuple of str or None, default=("M15", "N6791", "K2_C4_168-21", "060+00")
        FIELD values to select (None: all).
    cuts : QualityCuts, default=QualityCuts()
        The quality cuts of the selection (:class:`skcannon.apogee.catalog.QualityCuts`).
    output : Path, default=Path("skcannon-output")
        Output directory.
    mirror : Path or None, default=None
        A local directory served on 127.0.0.1 as the archive (offline runs).
    n_workers : int, default=4
        Parallel downloads.
    progress : bool, default=True
        Progress bars on stderr.
    seed : int, default=42
        random_state of the split and the simulation.
    n_simulated : int, default=1880
        Spectra simulated when too few labelled real stars are selected.
    """

    shared: Path = DEFAULT_SHARED
    catalog: str | None = None
    skyserver_url: str | None = None
    archive: str | None = None
    data_dir: Path | None = None
    fields: tuple[str, ...] | None = DEFAULT_FIELDS
    cuts: QualityCuts = field(default_factory=QualityCuts)
    output: Path = Path("skcannon-output")
    mirror: Path | None = None
    n_workers: int = 4
    progress: bool = True
    seed: int = 42
    n_simulated: int = 1880

    def __post_init__(self) -> None:   # normalise types once (frozen: via object.__setattr__)
        for name in ("shared", "output", "data_dir", "mirror"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.fields is not None and not isinstance(self.fields, tuple):
            object.__setattr__(self, "fields", tuple(_as_sequence(self.fields)))

    @property
    def resources(self) -> SharedData:
        """The shared resources below :attr:`shared`."""
        return SharedData(self.shared)

    @property
    def figures_dir(self) -> Path:
        """Where the report and its figures go."""
        return self.output / "report"


def _as_sequence(value: Sequence[str] | str) -> Sequence[str]:
    return [value] if isinstance(value, str) else value
