"""APOGEE DR17 constants, defined once.

Sources
-------
* apStar wavelength grid: header keys CRVAL1 = 4.179, CDELT1 = 6e-6 (log10 Angstrom, vacuum),
  NWAVE = 8575 of every DR17 apStar file (APOGEE data model, ``apStar`` page).
* Archive layout: SDSS DR17 Science Archive Server (``https://data.sdss.org/sas/dr17``).
* Default fields and quality cuts: the skcannon mission (M15, NGC 6791, a K2 campaign-4 field and a
  disk field), cut values as in the issue "Foundation and APOGEE DR17 data access".
"""

from __future__ import annotations

from skcannon.labels import NULL_THRESHOLD

#: Number of pixels of an apStar spectrum.
APSTAR_N_PIXELS = 8575
#: log10(wavelength / Angstrom) of the first apStar pixel.
APSTAR_LOG10_WAVELENGTH_START = 4.179
#: Step of the apStar log10 wavelength grid.
APSTAR_LOG10_WAVELENGTH_STEP = 6e-6

#: Public SDSS Science Archive Server; a mirror or local server can be given instead.
DEFAULT_ARCHIVE_URL = "https://data.sdss.org/sas"
#: Environment variable that overrides the archive base URL.
ARCHIVE_URL_ENV = "SKCANNON_ARCHIVE_URL"
#: Environment variable that overrides the data (cache) directory.
DATA_DIR_ENV = "SKCANNON_DATA_DIR"

#: Version of the DR17 ASPCAP results in the archive's catalog files (the SAS default,
#: sdss.org/dr17/irspec/spectro_data); SkyServer's DR17 tables were loaded from "synspec".
ARCHIVE_CATALOG_VERSION = "synspec_rev1"
#: Version of the ASPCAP results in SkyServer's DR17 ``aspcapStar`` table.
SKYSERVER_CATALOG_VERSION = "synspec"
#: Archive directory of the DR17 ASPCAP catalog files, relative to the archive base URL.
CATALOG_DIR = f"dr17/apogee/spectro/aspcap/dr17/{ARCHIVE_CATALOG_VERSION}"
#: Archive path of the full DR17 allStar catalog (733,901 rows, ~4 GB).
ALLSTAR_PATH = f"{CATALOG_DIR}/allStar-dr17-{ARCHIVE_CATALOG_VERSION}.fits"
#: Archive path of allStarLite (the same rows, fewer columns; every column skcannon reads).
ALLSTARLITE_PATH = f"{CATALOG_DIR}/allStarLite-dr17-{ARCHIVE_CATALOG_VERSION}.fits"

#: Archive path template of a DR17 combined spectrum, relative to the archive base URL
#: (``{prefix}`` from :data:`TELESCOPE_FILE_PREFIX`).
APSTAR_PATH_TEMPLATE = (
    "dr17/apogee/spectro/redux/dr17/stars/{telescope}/{field}/{prefix}Star-dr17-{apogee_id}.fits"
)
#: File-name prefix of each telescope's files: ``as`` for the LCO 2.5-m (APOGEE-South), ``ap``
#: for APO (APOGEE-North). Sources: sdss/apogee 0.17.26 ``python/apogee/utils/apload.py``
#: (``allfile``: prefix 'ap' for instrument apogee-n, else 'as'), the sdss/tree DR17 path
#: templates (``asStar`` for lco25m) and sdss_access ``apgprefix``.
TELESCOPE_FILE_PREFIX = {"apo25m": "ap", "apo1m": "ap", "lco25m": "as"}

#: File-name pattern of DR17 combined spectra of either hemisphere (``apStar-dr17-*``,
#: ``asStar-dr17-*``), what the archive paths above point to.
APSTAR_DR17_GLOB = "a[ps]Star-dr17-*.fits"

#: The mission's fields.
DEFAULT_FIELDS = ("M15", "N6791", "K2_C4_168-21", "060+00")
#: ASPCAP's value for "no measurement".
ASPCAP_NULL = -9999.0
#: Values at or below this in a label table are nulls (-9999 and its rounded variants).
ASPCAP_NULL_THRESHOLD = NULL_THRESHOLD

#: apStar HDUs holding combined flux, its uncertainty and APOGEE_PIXMASK.
HDU_FLUX, HDU_ERROR, HDU_PIXMASK = 1, 2, 3
#: Primary-header keys giving the first/last pixel of each detector chip (blue, green, red).
CHIP_HEADER_KEYS = {"blue": ("BMIN", "BMAX"), "green": ("GMIN", "GMAX"), "red": ("RMIN", "RMAX")}

#: Largest relative deviation of a file's CRVAL1/CDELT1 from the apStar grid that is accepted
#: (the headers store ~12 significant digits; every later step assumes the standard grid).
GRID_HEADER_RTOL = 1e-6

#: aspcapStar HDUs: normalized flux, its uncertainty, ASPCAP's best-fit model, the ASPCAP table.
ASPCAP_HDU_FLUX, ASPCAP_HDU_ERROR, ASPCAP_HDU_MODEL, ASPCAP_HDU_TABLE = 1, 2, 3, 4
#: Positions in ASPCAP's PARAM/FPARAM vectors of the labels skcannon uses (DR13-DR17 layout:
#: Teff, log g, vmicro, [M/H], [C/M], [N/M], [alpha/M], vsini, [O/M]).
ASPCAP_PARAM_INDEX = {"TEFF": 0, "LOGG": 1, "M_H": 3, "ALPHA_M": 6}
#: aspcapStar pixels with an uncertainty at or above this (normalized flux) are unusable
#: (ASPCAP stores large errors for masked pixels and the chip gaps).
ASPCAP_BAD_ERROR = 0.5

#: apVisit HDUs (DR16/DR17 ``apVisit-<apred>-<plate>-<mjd>-<fiber>.fits``, APOGEE data model):
#: flux, its uncertainty, APOGEE_PIXMASK and the wavelength (Angstrom, vacuum, observed frame),
#: each one row per chip (NAXIS2 = 3) of 4096 pixels.
APVISIT_HDU_FLUX, APVISIT_HDU_ERROR, APVISIT_HDU_PIXMASK, APVISIT_HDU_WAVELENGTH = 1, 2, 3, 4
#: Chips and pixels per chip of an apVisit file.
APVISIT_N_CHIPS, APVISIT_CHIP_PIXELS = 3, 4096
#: Speed of light in km/s (radial velocities in the headers are in km/s).
SPEED_OF_LIGHT_KMS = 299792.458

#: The lab's named stars (Lab 2): the report's and the checkpoints' defaults.
#: The star whose normalization the report shows (a DR17 apStar file in the shared mirror).
NORMALIZATION_STAR = "2M21235315+1244123"
#: The training star whose spectrum the report and checkpoint 2 compare with the model (the
#: lab: "some of the objects in the training set").
MODEL_STAR = "2M03533659+2512012"
#: The star of the mystery spectrum the lab fits blind (``apogee/mystery/``).
MYSTERY_STAR = "2M16333217+3942519"
