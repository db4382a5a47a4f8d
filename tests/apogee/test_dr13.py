"""What a survey really holds: real DR13 apStar and aspcapStar files (M dwarfs, failed ASPCAP fits,
one red giant) read, fitted by a giant model, and used as labels."""

from __future__ import annotations

import re

import numpy as np
import pytest
from astropy.io import fits

from skcannon.apogee.aspcap import aspcap_label_table, read_aspcapstar
from skcannon.apogee.reader import apogee_id_from_name, read_apstar, stack_apstar
from skcannon.data.build import default_preprocessor, normalize_spectra
from skcannon.errors import BadFileError, LabelError, TrainingSetError
from skcannon.model import Cannon
from tests.conftest import SHARED_APOGEE, shared_file

DR13 = SHARED_APOGEE / "dr13"
GIANT = "2M17334253-1654573"


@pytest.fixture(scope="module")
def dr13_pairs():
    """(apStar spectrum, aspcapStar spectrum) of every DR13 star, by APOGEE_ID order."""
    stars = sorted((DR13 / "stars").rglob("apStar-r6-*.fits"))
    if not stars:
        pytest.skip(f"no DR13 apStar files under {DR13}")
    aspcap = {apogee_id_from_name(p.name): p
              for p in (DR13 / "aspcap").rglob("aspcapStar-*.fits")}
    pairs = []
    for path in stars:
        spectrum = read_apstar(path)
        pairs.append((spectrum, read_aspcapstar(aspcap[spectrum.apogee_id])))
    return pairs


@pytest.fixture(scope="module")
def dr13_normalized(dr13_pairs):
    continuum = shared_file("apogee", "continuum", "cannon_cont_pixels_apogee.npz")
    return normalize_spectra(stack_apstar([a for a, _ in dr13_pairs]),
                             default_preprocessor(continuum))


def test_dr13_apstar_layout_is_read(dr13_pairs):
    for apstar, _ in dr13_pairs:
        with fits.open(apstar.path) as hdul:
            # combined + visits (2-D), or one visit (1-D): row 0 is the combined spectrum
            np.testing.assert_array_equal(apstar.flux, np.atleast_2d(hdul[1].data)[0])
            assert hdul[0].header["NVISITS"] == apstar.nvisits
        assert re.fullmatch(r"2M\d{8}[+-]\d{7}", apstar.apogee_id)
        assert apstar.wavelength.size == 8575 and 15100 < apstar.wavelength[0] < 15102


def test_aspcapstar_failures_are_decoded(dr13_pairs):
    table = aspcap_label_table([b for _, b in dr13_pairs])
    with_nulls = []
    for _, aspcap in dr13_pairs:
        with fits.open(aspcap.path) as hdul:
            param = hdul[4].data["PARAM"][0]
            if param[0] <= -9000:
                with_nulls.append(aspcap.apogee_id)
            np.testing.assert_allclose(aspcap.flux, hdul[1].data)
    failed = table[table.ASPCAP_FAILED]
    assert sorted(failed.APOGEE_ID) == sorted(with_nulls) and len(with_nulls) >= 5
    assert failed[["TEFF", "LOGG", "M_H", "ALPHA_M"]].isna().all().all()
    for row in failed.itertuples():
        assert "PARAM null (-9999) for TEFF" in row.ASPCAP_PROBLEM
        assert "STAR_BAD" in row.ASPCAPFLAG_NAMES.split(",")   # bit 23, decoded
        assert row.ASPCAPFLAG & (1 << 23)
    giant = table.set_index("APOGEE_ID").loc[GIANT]
    assert not giant.ASPCAP_FAILED and giant.ASPCAP_PROBLEM == ""
    assert giant.TEFF == pytest.approx(3788.4, abs=0.1)


def test_giant_model_flags_every_m_dwarf_and_fits_the_giant(dr13_pairs, dr13_normalized,
                                                            reference_model):
    fit = reference_model.infer_labels(dr13_normalized.normalized)
    ids = [a.apogee_id for a, _ in dr13_pairs]
    giant = ids.index(GIANT)
    dwarfs = np.arange(len(ids)) != giant
    # every M dwarf: never confident labels, and the reason is said
    assert not fit.confident[dwarfs].any()
    assert fit.unlike_training[dwarfs].all()
    for n in np.flatnonzero(dwarfs):
        assert any("unlike the training set" in r for r in fit.reasons(n))
    # the red giant: confident, close to ASPCAP's calibrated labels
    aspcap = dr13_pairs[giant][1].param
    assert fit.confident[giant]
    assert fit.labels[giant, 0] == pytest.approx(aspcap["TEFF"], abs=100)
    assert fit.labels[giant, 1] == pytest.approx(aspcap["LOGG"], abs=0.3)
    assert fit.labels[giant, 2] == pytest.approx(aspcap["M_H"], abs=0.15)
    table = fit.to_frame(ids=ids)
    assert list(table.loc[dwarfs, "UNLIKE_TRAINING"]) == [True] * int(dwarfs.sum())


def test_aspcap_failures_never_train_a_model(dr13_pairs, dr13_normalized):
    table = aspcap_label_table([b for _, b in dr13_pairs])
    names = ("TEFF", "LOGG", "M_H")
    with pytest.raises(LabelError) as info:
        Cannon(names).fit(table, dr13_normalized.normalized)
    for star in table[table.ASPCAP_FAILED].APOGEE_ID:
        assert star in str(info.value)
    assert GIANT not in str(info.value)
    # dropping them leaves too few stars, and says how many are needed
    with pytest.raises(TrainingSetError, match=r"needs at least 20"):
        Cannon(names, bad_labels="drop").fit(table, dr13_normalized.normalized)


@pytest.mark.parametrize("key, value", [("CRVAL1", 3.5), ("CDELT1", 0.0), ("CDELT1", 6e-5)])
def test_a_header_off_the_apstar_grid_is_refused(dr13_pairs, tmp_path, key, value):
    for source, reader in ((dr13_pairs[0][0].path, read_apstar),
                           (dr13_pairs[0][1].path, read_aspcapstar)):
        broken = tmp_path / f"broken-{reader.__name__}.fits"
        with fits.open(source) as hdul:
            hdul[1].header[key] = value
            hdul.writeto(broken, output_verify="silentfix")
        with pytest.raises(BadFileError, match=f"{broken.name}.*not the apStar grid"):
            reader(broken)


def test_an_apstar_file_is_not_an_aspcapstar_file(dr13_pairs):
    with pytest.raises(BadFileError, match="not an aspcapStar file"):
        read_aspcapstar(dr13_pairs[0][0].path)
