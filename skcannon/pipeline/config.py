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

    Attributes
    ----------
    shared : Path
        Directory of the shared resources (continuum pixels, reference model, label table ...).
    catalog : str or None
        allStar catalog: path, URL or "skyserver" (None: the allStar file at the archive).
    archive : str or None
        Archive base URL (None: ``$SKCANNON_ARCHIVE_URL`` or the SDSS SAS).
    data_dir : Path or None
        Data (cache) directory.
    fields : tuple of str or None
        FIELD values to select (None: all).
    cuts : QualityCuts
    output : Path
        Output directory.
    mirror : Path or None
        A local directory served on 127.0.0.1 as the archive (offline runs).
    n_workers : int
        Parallel downloads.
    progress : bool
        Progress bars on stderr.
    seed : int
        random_state of the split and the simulation.
    n_simulated : int
        Spectra simulated when too few labelled real stars are selected.
    """

    shared: Path = DEFAULT_SHARED
    catalog: str | None = None
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
