"""A local replica of the DR17 archive layout for tests: real apStar files placed (as symbolic
links) under the archive's own paths, for APO (``apStar-dr17-*``, apo25m and apo1m) and LCO
(``asStar-dr17-*``, lco25m: an apStar file under the southern name; the content is the same
format). Served by :class:`skcannon.apogee.mirror.ArchiveMirror` with no route rewriting."""

from __future__ import annotations

import os
from pathlib import Path

#: The replica's stars: (telescope, field, APOGEE_ID, index of the real file it links to).
#: The ids are the real files' own (OBJID), so a reader sees a consistent file.
REPLICA_FIELDS = {"apo25m": "000+02", "lco25m": "K2_C4_168-21", "apo1m": "calibration"}


def real_id(path: Path) -> str:
    """The APOGEE_ID in a shared apStar file name."""
    return path.stem.removeprefix("apStar-dr17-")


def build_archive_replica(root: Path, apstar_files: list[Path]) -> list[dict]:
    """Place one real file per telescope of :data:`REPLICA_FIELDS` under ``root`` at its DR17
    archive path (the file name as DR17 names it: asStar for lco25m); return one dict per file
    with APOGEE_ID, TELESCOPE, FIELD, FILE and path."""
    rows = []
    for k, (telescope, field) in enumerate(REPLICA_FIELDS.items()):
        source = apstar_files[k % len(apstar_files)]
        star = real_id(source)
        prefix = "as" if telescope.startswith("lco") else "ap"
        name = f"{prefix}Star-dr17-{star}.fits"
        rel = f"dr17/apogee/spectro/redux/dr17/stars/{telescope}/{field}/{name}"
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source, target)
        rows.append({"APOGEE_ID": star, "TELESCOPE": telescope, "FIELD": field, "FILE": name,
                     "path": target})
    return rows
