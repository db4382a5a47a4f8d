"""The length a FITS file must have, from its own headers: a truncation check with no warnings.

astropy only *warns* when a file is shorter than its headers imply, and turning that warning into
an error needs ``warnings.catch_warnings``, which is not thread-safe (parallel downloads
validate files in threads). So readers check the length first: walk the headers (2880-byte
blocks of 80-character cards up to ``END``), add each HDU's data size, and compare.
"""

from __future__ import annotations

from skcannon.errors import BadFileError

#: FITS block length: headers and data are padded to multiples of it.
FITS_BLOCK = 2880
#: Length of one header card.
FITS_CARD = 80


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
        for offset in range(0, FITS_BLOCK, FITS_CARD):
            card = block[offset:offset + FITS_CARD].decode("ascii", errors="replace")
            keyword = card[:8].strip()
            if keyword == "END":
                return values, position
            if card[8:10] == "= ":
                values[keyword] = card[10:].split("/", 1)[0].strip()


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


def fits_expected_size(data: bytes, name: str) -> int:
    """Bytes the FITS file ``data`` needs according to its headers (every HDU; the last one's
    data without the padding some writers leave out).

    Raises
    ------
    BadFileError
        Naming ``name``: not FITS (no SIMPLE card), a header without END, or header values that
        are not integers.
    """
    if not data.startswith(b"SIMPLE  ="):
        raise BadFileError(name, "not a FITS file (it does not start with a SIMPLE card)")
    position = 0
    while position < len(data):
        values, data_start = _cards(data, position, name)
        n_axes = _integer(values, "NAXIS", name)
        bitpix = abs(_integer(values, "BITPIX", name))
        elements = 0
        if n_axes:
            elements = 1
            for axis in range(1, n_axes + 1):
                elements *= _integer(values, f"NAXIS{axis}", name)
        pcount = _integer(values, "PCOUNT", name, default=0)
        gcount = _integer(values, "GCOUNT", name, default=1)
        size = bitpix // 8 * gcount * (pcount + elements)
        position = data_start + -(-size // FITS_BLOCK) * FITS_BLOCK
        if position >= len(data) or not data[position:position + 8].startswith(b"XTENSION"):
            return data_start + size      # the last HDU's padding is not required
    return position


def check_fits_length(data: bytes, name: str) -> None:
    """Raise :class:`BadFileError` naming ``name`` unless ``data`` is exactly as long as its
    FITS headers imply (the last HDU padded to a whole block, or not padded at all): shorter is
    a truncated download or copy; longer, or in between, means bytes were inserted or appended.
    """
    needed = fits_expected_size(data, name)
    padded = -(-needed // FITS_BLOCK) * FITS_BLOCK
    if len(data) < needed:
        raise BadFileError(name, f"truncated: {len(data)} bytes, but its FITS headers imply "
                                 f"{needed}")
    if len(data) not in (needed, padded):
        raise BadFileError(name, f"damaged: {len(data)} bytes, but its FITS headers imply "
                                 f"{padded} (bytes inserted or appended)")
