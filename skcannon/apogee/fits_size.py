"""The length a FITS file must have, from its own headers: a truncation check with no warnings.

astropy only *warns* when a file is shorter than its headers imply, and turning that warning into
an error needs ``warnings.catch_warnings``, which is not thread-safe (parallel downloads
validate files in threads). So readers check the length first: walk the headers (2880-byte
blocks of 80-character cards up to ``END``), add each HDU's data size, and compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skcannon.errors import BadFileError

#: FITS block length: headers and data are padded to multiples of it.
FITS_BLOCK = 2880
#: Length of one header card.
FITS_CARD = 80


def _card_value(text: str) -> str:
    """The value part of a card's text after ``= ``: a quoted string (with ``''`` escapes)
    kept with its quotes, else the text before any ``/`` comment, stripped."""
    text = text.strip()
    if text.startswith("'"):
        end = 1
        while True:
            end = text.find("'", end)
            if end < 0:
                return text                      # unterminated: left for the parser to refuse
            if text[end + 1:end + 2] == "'":
                end += 2
                continue
            return text[:end + 1]
    return text.split("/", 1)[0].strip()


def _cards(data: bytes, start: int, name: str) -> tuple[dict[str, str], int]:
    """The keyword -> raw value text of the header at ``start``, and where its data start."""
    values: dict[str, str] = {}
    position = start
    while True:
        block = data[position:position + FITS_BLOCK]
        if len(block) < FITS_BLOCK:
            raise BadFileError(name, f"truncated: the header at byte {start} has no END card "
                                     f"before the file ends ({len(data)} bytes)")
        position += FITS_BLOCK
        text = block.decode("ascii", errors="replace")  # one character per byte: cards align
        for offset in range(0, FITS_BLOCK, FITS_CARD):
            card = text[offset:offset + FITS_CARD]
            keyword = card[:8].strip()
            if keyword == "END":
                return values, position
            if card[8:10] == "= " and keyword not in values:
                values[keyword] = _card_value(card[10:])


def _integer(values: dict[str, str], key: str, name: str, default: int | None = None) -> int:
    text = values.get(key)
    if text is None:
        if default is None:
            raise BadFileError(name, f"FITS header lacks {key}")
        return default
    try:
        return int(text)
    except ValueError:
        raise BadFileError(name, f"FITS header {key} = {text!r} is not an integer") from None


@dataclass(frozen=True)
class HDULayout:
    """Where one HDU lies in a FITS file.

    Attributes
    ----------
    cards : dict of str -> str  keyword -> raw value text (strings keep their quotes)
    data_start, data_size : int  byte offset and length of the data (unpadded)
    bitpix : int
    shape : tuple of int  NAXISn, slowest axis first (numpy order)
    """

    cards: dict
    data_start: int
    data_size: int
    bitpix: int
    shape: tuple


def hdu_layout(data: bytes, name: str) -> list[HDULayout]:
    """Every HDU of the FITS file ``data``, from its headers (no data is read).

    Raises
    ------
    BadFileError
        Naming ``name``: not FITS (no SIMPLE card), a header without END, or header values that
        are not integers.
    """
    if not data.startswith(b"SIMPLE  ="):
        raise BadFileError(name, "not a FITS file (it does not start with a SIMPLE card)")
    layouts = []
    position = 0
    while True:
        values, data_start = _cards(data, position, name)
        n_axes = _integer(values, "NAXIS", name)
        bitpix = _integer(values, "BITPIX", name)
        shape = tuple(_integer(values, f"NAXIS{axis}", name) for axis in range(n_axes, 0, -1))
        elements = int(np.prod(shape)) if n_axes else 0
        pcount = _integer(values, "PCOUNT", name, default=0)
        gcount = _integer(values, "GCOUNT", name, default=1)
        size = abs(bitpix) // 8 * gcount * (pcount + elements)
        layouts.append(HDULayout(values, data_start, size, bitpix, shape))
        position = data_start + -(-size // FITS_BLOCK) * FITS_BLOCK
        if position >= len(data) or not data[position:position + 8].startswith(b"XTENSION"):
            return layouts


def fits_expected_size(data: bytes, name: str, layout: list[HDULayout] | None = None) -> int:
    """Bytes the FITS file ``data`` needs according to its headers (every HDU; the last one's
    data without the padding some writers leave out). ``layout``: its :func:`hdu_layout`, when
    already parsed."""
    last = (hdu_layout(data, name) if layout is None else layout)[-1]
    return last.data_start + last.data_size


_IMAGE_TYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def image_row(data: bytes, layout: HDULayout, name: str, hdu: int) -> np.ndarray:
    """Row 0 of a 2-D image HDU (or the whole of a 1-D one), scaled by BSCALE/BZERO, read
    straight from the file's bytes.

    Raises
    ------
    BadFileError
        The HDU holds no image, or its type is not a FITS image type.
    """
    return _image(data, layout, name, hdu, rows=1)[0]


def image_array(data: bytes, layout: HDULayout, name: str, hdu: int) -> np.ndarray:
    """The whole of a 1-D or 2-D image HDU, shape ``layout.shape`` (2-D: (NAXIS2, NAXIS1)),
    scaled by BSCALE/BZERO, read straight from the file's bytes (see :func:`image_row`)."""
    array = _image(data, layout, name, hdu, rows=layout.shape[0] if len(layout.shape) == 2
                   else 1)
    return array if len(layout.shape) == 2 else array[0]


def _image(data: bytes, layout: HDULayout, name: str, hdu: int, rows: int) -> np.ndarray:
    """The first ``rows`` rows of an image HDU, shape (rows, NAXIS1)."""
    if layout.bitpix not in _IMAGE_TYPES or len(layout.shape) not in (1, 2):
        raise BadFileError(name, f"HDU {hdu} is not a 1-D or 2-D image (BITPIX "
                                 f"{layout.bitpix}, shape {layout.shape})")
    length = layout.shape[-1]
    raw = np.frombuffer(data, dtype=_IMAGE_TYPES[layout.bitpix], count=length * rows,
                        offset=layout.data_start).reshape(rows, length)
    scale = float(layout.cards.get("BSCALE", "1").replace("D", "E"))
    zero = float(layout.cards.get("BZERO", "0").replace("D", "E"))
    if scale != 1 or zero != 0:
        return raw.astype(float) * scale + zero
    return raw.astype(raw.dtype.newbyteorder("="))


def card_text(layout: HDULayout, key: str, default=None):
    """A card's value as Python: str for quoted strings (trailing blanks removed), bool for
    T/F, int or float for numbers; ``default`` when the card is absent or unreadable."""
    text = layout.cards.get(key)
    if text is None:
        return default
    if text.startswith("'"):
        return text[1:-1].replace("''", "'").rstrip()
    if text in ("T", "F"):
        return text == "T"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text.replace("D", "E"))
        except ValueError:
            return default


def check_fits_length(data: bytes, name: str, layout: list[HDULayout] | None = None
                      ) -> list[HDULayout]:
    """Raise :class:`BadFileError` naming ``name`` unless ``data`` is exactly as long as its
    FITS headers imply (the last HDU padded to a whole block, or not padded at all): shorter is
    a truncated download or copy; longer, or in between, means bytes were inserted or appended.
    Returns the file's :func:`hdu_layout` (``layout``, when already parsed).
    """
    layout = hdu_layout(data, name) if layout is None else layout
    needed = fits_expected_size(data, name, layout)
    padded = -(-needed // FITS_BLOCK) * FITS_BLOCK
    if len(data) < needed:
        raise BadFileError(name, f"truncated: {len(data)} bytes, but its FITS headers imply "
                                 f"{needed}")
    if len(data) not in (needed, padded):
        raise BadFileError(name, f"damaged: {len(data)} bytes, but its FITS headers imply "
                                 f"{padded} (bytes inserted or appended)")
    return layout


def read_file_bytes(path: str | Path) -> bytes:
    """The whole file, read once (every reader parses from these bytes).

    Raises
    ------
    BadFileError
        Naming the file: it does not exist or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, "no such file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadFileError(path, f"cannot be read ({exc})") from exc
