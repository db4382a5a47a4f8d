"""The shared data the main job and the commands use, and the stars they name: one place.

The layout is that of ``../shared`` beside the repository (see its README): continuum pixels,
ASPCAP element windows, MIST isochrones, the published reference model and the DR12 label
table. :class:`SharedData` names each file; :func:`find_shared` finds the directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Environment variable naming the shared data directory explicitly.
SHARED_ENV = "SKCANNON_SHARED"
#: The shared data directory relative to a checkout's root (the default of every option).
DEFAULT_SHARED = Path("../shared")


@dataclass(frozen=True)
class SharedData:
    """Paths of the shared resources below one root directory.

    Each property is a path whether or not the file exists; :meth:`missing` says which of the
    resources are absent, so callers can say so instead of failing later.
    """

    root: Path = DEFAULT_SHARED

    @property
    def apogee(self) -> Path:
        """The archive-like mirror (``apogee/``: dr17/stars, continuum, reference, ...)."""
        return Path(self.root) / "apogee"

    @property
    def continuum(self) -> Path:
        """The 529 Cannon continuum pixels on the 7214-pixel grid."""
        return self.apogee / "continuum" / "cannon_cont_pixels_apogee.npz"

    @property
    def windows(self) -> Path:
        """ASPCAP's element windows (l31c masks) on the 7514-pixel grid."""
        return self.apogee / "aspcap_windows" / "aspcap_l31c_masks.npy"

    @property
    def isochrones(self) -> Path:
        """The directory of MIST v1.2 isochrones exported as CSV."""
        return Path(self.root) / "isochrones" / "mist_v1.2"

    @property
    def reference_model(self) -> Path:
        """The published 4-label APOKASC Cannon model (directory)."""
        return self.apogee / "reference" / "cannon_apokasc_dr12"

    @property
    def real_labelled(self) -> Path:
        """Real labelled giants: 336 normalized spectra of 100 pixels with ASPCAP labels."""
        return self.apogee / "real_labelled" / "real_giants_100px.npz"

    @property
    def mystery(self) -> Path:
        """The mystery apStar spectrum (``skcannon.apogee.constants.MYSTERY_STAR``, older DR14
        layout)."""
        return self.apogee / "mystery" / "mystery_spec_wiped.fits"

    @property
    def dr12_labels(self) -> Path:
        """The table of real DR12 giant labels."""
        return self.apogee / "labels" / "apogee_dr12_labels.csv"

    def missing(self) -> list[str]:
        """Names of the resources that are not present."""
        names = ("continuum", "windows", "isochrones", "reference_model", "dr12_labels")
        return [name for name in names if not getattr(self, name).exists()]


def find_shared(start: str | Path | None = None) -> Path:
    """The shared data directory: ``$SKCANNON_SHARED``, else the first ``shared/`` holding
    ``apogee/`` found in ``start`` (default: the working directory) or any of its parents."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env)
    here = Path(start or Path.cwd()).resolve()
    for parent in (here, *here.parents):
        if (parent / "shared" / "apogee").is_dir():
            return parent / "shared"
    raise FileNotFoundError(f"no shared/apogee directory in {here} or its parents; set "
                            f"{SHARED_ENV} to the shared data directory")
