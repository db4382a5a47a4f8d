"""Access to APOGEE data: catalog and cuts, archive paths, downloads, apStar and aspcapStar
reading, and APOGEE's defaults for the survey-free preprocessing transformers."""

from skcannon.apogee.archive import allstar_relpath, apstar_relpath, archive_url, data_dir
from skcannon.apogee.aspcap import AspcapStarSpectrum, aspcap_label_table, read_aspcapstar
from skcannon.apogee.bitmask import (
    APOGEE_PIXMASK_BITS,
    ASPCAPFLAG_BITS,
    DEFAULT_BAD_PIXEL_BITS,
    STARFLAG_BITS,
    bad_pixels,
    decode_flags,
)
from skcannon.apogee.catalog import (
    QualityCuts,
    format_cut_table,
    query_skyserver,
    read_catalog,
    read_selection,
    select_giants,
    write_selection,
)
from skcannon.apogee.download import DownloadReport, download_apstar, fetch_file
from skcannon.apogee.mirror import ArchiveMirror, index_apstar_files, serve_mirror
from skcannon.apogee.preprocessor import (
    APOGEE_CHIP_REGIONS,
    apogee_masker,
    apogee_normalizer,
    apogee_preprocessor,
    apogee_regridder,
)
from skcannon.apogee.reader import ApStarSpectrum, inverse_variance, read_apstar, stack_apstar

__all__ = [
    "APOGEE_CHIP_REGIONS", "apogee_masker", "apogee_normalizer", "apogee_preprocessor",
    "apogee_regridder",
    "APOGEE_PIXMASK_BITS", "ASPCAPFLAG_BITS", "DEFAULT_BAD_PIXEL_BITS", "STARFLAG_BITS",
    "ApStarSpectrum", "ArchiveMirror", "AspcapStarSpectrum", "aspcap_label_table",
    "read_aspcapstar", "DownloadReport", "QualityCuts",
    "allstar_relpath", "apstar_relpath", "archive_url", "bad_pixels", "data_dir", "decode_flags",
    "download_apstar", "fetch_file", "format_cut_table", "index_apstar_files", "inverse_variance",
    "query_skyserver", "read_apstar", "read_catalog", "read_selection", "select_giants",
    "serve_mirror", "stack_apstar", "write_selection",
]
