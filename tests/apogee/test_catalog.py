"""Catalog reading and the selection cuts, counted independently row by row."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from skcannon.apogee.catalog import (
    QualityCuts,
    catalog_columns,
    format_cut_table,
    read_catalog,
    read_selection,
    select_giants,
    skyserver_query,
    write_selection,
)
from skcannon.apogee.constants import DEFAULT_FIELDS
from skcannon.errors import CatalogError
from skcannon.labels import DEFAULT_LABELS
from tests.conftest import SHARED_APOGEE, shared_file


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    """An allStar-like table built from the real DR12 giant labels (real label distribution),
    given fields, telescopes, SNR, ASPCAP nulls and duplicate entries with a fixed seed."""
    labels = pd.read_csv(shared_file("apogee", "labels", "apogee_dr12_labels.csv"))
    rng = np.random.default_rng(42)
    n = 3000
    rows = labels.sample(n, random_state=1).reset_index(drop=True)
    frame = pd.DataFrame({
        "APOGEE_ID": rows.APOGEE_ID.astype(str),
        "TELESCOPE": rng.choice(["apo25m", "lco25m"], n),
        "FIELD": rng.choice([*DEFAULT_FIELDS, "000+02", "K2_C6_A"], n),
        "SNR": rng.lognormal(np.log(90), 0.7, n),
        "STARFLAG": rng.integers(0, 4, n),
        "ASPCAPFLAG": rng.integers(0, 4, n),
        "TEFF": rows.TEFF + rng.normal(0, 400, n),  # spread some stars into the dwarf/hot range
        "LOGG": rows.LOGG + rng.normal(0, 0.8, n),
        "FE_H": rows.FE_H,
        "MG_FE": rows.MG_H - rows.FE_H,
        "SI_FE": rows.SI_H - rows.FE_H,
    })
    for label in DEFAULT_LABELS:
        frame[f"{label}_ERR"] = np.abs(rng.normal(0.05, 0.01, n))
        frame.loc[rng.random(n) < 0.03, label] = -9999.0
    frame.loc[rng.random(n) < 0.01, "MG_FE"] = np.nan
    dup = frame.sample(150, random_state=2).copy()  # same stars seen again elsewhere
    dup["FIELD"] = rng.choice(DEFAULT_FIELDS, len(dup))
    dup["SNR"] = dup["SNR"] * rng.uniform(0.5, 1.5, len(dup))
    return pd.concat([frame, dup], ignore_index=True)


def independent_selection(frame: pd.DataFrame, fields, cuts: QualityCuts) -> list[int]:
    """Row indices kept, by a plain loop (no shared code with select_giants)."""
    kept = []
    for i, row in enumerate(frame.to_dict("records")):
        if row["FIELD"] not in fields:
            continue
        values = [row[label] for label in DEFAULT_LABELS]
        if cuts.require_labels and any(math.isnan(v) or v == -9999.0 for v in values):
            continue
        if not row["SNR"] >= cuts.min_snr:
            continue
        if row["LOGG"] > cuts.max_logg or row["TEFF"] > cuts.max_teff:
            continue
        if row["FE_H"] < cuts.min_feh:
            continue
        kept.append(i)
    if cuts.duplicates == "keep":
        return kept
    best: dict[str, int] = {}
    for i in kept:
        star = frame.APOGEE_ID[i]
        if star not in best or frame.SNR[i] > frame.SNR[best[star]]:
            best[star] = i
    return sorted(best.values())


@pytest.mark.parametrize("cuts", [
    QualityCuts(),
    QualityCuts(duplicates="highest_snr"),
    QualityCuts(min_snr=100, max_logg=3.5, max_teff=5200, min_feh=-0.5,
                duplicates="highest_snr"),
])
def test_cut_counts_match_independent_computation(catalog, cuts):
    selection = select_giants(catalog, cuts=cuts)
    expected = independent_selection(catalog, DEFAULT_FIELDS, cuts)
    assert len(selection) == len(expected) > 100
    assert sorted(selection.APOGEE_ID) == sorted(catalog.APOGEE_ID[expected])
    table = selection.attrs["cut_table"]
    assert table[0]["remaining"] == len(catalog)
    assert table[-1]["remaining"] == len(selection)
    for before, after in zip(table, table[1:], strict=False):
        assert before["remaining"] - after["removed"] == after["remaining"]
    assert selection.APOGEE_ID.is_unique == (cuts.duplicates == "highest_snr")
    assert (selection.SNR >= cuts.min_snr).all()
    assert not selection[list(DEFAULT_LABELS)].isna().any().any()
    text = format_cut_table(table)
    assert "SNR >= " in text and "duplicates" in text


def test_duplicates_keep_highest_snr(catalog):
    selection = select_giants(catalog, cuts=QualityCuts(duplicates="highest_snr"))
    everything = select_giants(catalog, cuts=QualityCuts(duplicates="keep"))
    best = everything.groupby("APOGEE_ID").SNR.max()
    assert (selection.N_ENTRIES > 1).sum() > 10
    np.testing.assert_array_equal(selection.SNR.to_numpy(), best[selection.APOGEE_ID].to_numpy())
    assert set(selection.APOGEE_ID) == set(everything.APOGEE_ID)


def test_keep_duplicates_keeps_all_by_default_and_counts_them(catalog):
    kept = select_giants(catalog)
    assert kept.attrs["cuts"]["duplicates"] == "keep"
    best = select_giants(catalog, cuts=QualityCuts(duplicates="highest_snr"))
    assert len(kept) > len(best)
    assert not kept.APOGEE_ID.is_unique
    counts = kept.APOGEE_ID.value_counts()
    repeated = int(counts[counts > 1].sum())
    assert kept.attrs["duplicate_entries"] == repeated > 0
    row = kept.attrs["cut_table"][-1]
    assert row["removed"] == 0
    assert (f"{repeated} entries of {int((counts > 1).sum())} stars seen more than once"
            in row["cut"])
    # keep-all minus highest-SNR = the extra entries of the repeated stars
    assert len(kept) - len(best) == repeated - int((counts > 1).sum())


def test_unknown_field_is_named(catalog):
    with pytest.raises(CatalogError, match="unknown field.*NOT_A_FIELD"):
        select_giants(catalog, fields=["M15", "NOT_A_FIELD"])


def test_fits_round_trip_with_bytes_and_nulls(catalog, tmp_path):
    path = tmp_path / "allStar-extract.fits"
    table = Table.from_pandas(catalog.fillna(-9999.0))
    for column in ("APOGEE_ID", "TELESCOPE", "FIELD"):
        table[column] = np.char.encode(np.asarray(table[column], dtype=str), "ascii")
    table["EXTRA_ARRAY"] = np.zeros((len(table), 3))  # allStar has multi-d columns: ignored
    table.write(path)
    read = read_catalog(path)
    assert list(read.columns) == catalog_columns()
    assert read.APOGEE_ID.tolist() == catalog.APOGEE_ID.tolist()
    assert len(select_giants(read)) == len(select_giants(catalog))


def test_missing_column_names_file_and_column(catalog, tmp_path):
    path = tmp_path / "no_snr.csv"
    catalog.drop(columns=["SNR"]).to_csv(path, index=False)
    with pytest.raises(CatalogError, match=r"no_snr\.csv.*SNR"):
        read_catalog(path)


def test_corrupt_catalog(tmp_path):
    path = tmp_path / "allStar.fits"
    path.write_bytes(b"not a fits file at all")
    with pytest.raises(CatalogError, match="allStar.fits"):
        read_catalog(path)


@pytest.mark.parametrize("suffix", [".csv", ".fits"])
def test_selection_file_round_trip(catalog, tmp_path, suffix):
    selection = select_giants(catalog)
    path = write_selection(selection, tmp_path / f"sel{suffix}")
    back = read_selection(path)
    assert back.APOGEE_ID.tolist() == selection.APOGEE_ID.tolist()
    np.testing.assert_allclose(back.TEFF, selection.TEFF)
    for column in ("TEFF_ERR", "SNR", "STARFLAG", "ASPCAPFLAG", "FIELD", "TELESCOPE"):
        assert column in back.columns


def test_skyserver_sql_selects_fields_and_labels():
    sql = skyserver_query(["M15", "N6791"])
    assert "JOIN aspcapStar" in sql and "'M15', 'N6791'" in sql
    assert "a.si_fe_err" in sql
    with pytest.raises(ValueError):
        skyserver_query(["x'; DROP TABLE"])


def test_real_catalog_extract_when_present():
    """Cut counts on a real allStar extract, if one is placed in ../shared/apogee."""
    found = sorted(SHARED_APOGEE.rglob("allStar*.fits")) + sorted(
        SHARED_APOGEE.rglob("allStar*.csv"))
    if not found:
        pytest.skip(f"no allStar extract under {SHARED_APOGEE}")
    frame = read_catalog(found[0])
    fields = [f for f in DEFAULT_FIELDS if f in set(frame.FIELD)] or None
    if fields is None:
        pytest.skip("extract has none of the default fields")
    selection = select_giants(frame, fields=fields)
    assert len(selection) == len(independent_selection(frame, fields, QualityCuts()))


@pytest.mark.parametrize("cut", ["min_snr", "max_logg", "max_teff", "min_feh"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "4", None])
def test_a_cut_that_is_not_a_finite_number_is_refused(catalog, cut, value):
    # a cut at NaN compares false everywhere: max_logg=nan kept every dwarf without a word
    with pytest.raises(ValueError, match=f"QualityCuts.{cut} must be a finite number"):
        QualityCuts(**{cut: value})
    usual = getattr(QualityCuts(), cut)
    kept = select_giants(catalog, cuts=QualityCuts(**{cut: np.float32(usual)}))
    assert 0 < len(kept) < len(catalog)          # numpy scalars are numbers too


def test_fits_selection_with_non_ascii_text_round_trips(tmp_path):
    from astropy.io import fits

    from skcannon.apogee.catalog import decode_fits_column

    table = pd.DataFrame({"APOGEE_ID": ["2M00000000+0000000", "étoile-Ω"],
                          "TELESCOPE": "apo25m", "FIELD": ["M15", "Ørsted"],
                          "PATH": ["/data/a.fits", "/données/b.fits"], "SNR": [80.0, 90.0]})
    path = write_selection(table, tmp_path / "sel.fits")     # was a UnicodeEncodeError
    back = read_selection(path)
    assert back.APOGEE_ID.tolist() == table.APOGEE_ID.tolist()
    assert back.FIELD.tolist() == table.FIELD.tolist()
    with fits.open(path) as hdul:
        assert decode_fits_column(hdul[1].data["PATH"]).tolist() == table.PATH.tolist()
    ascii_only = write_selection(table.iloc[:1], tmp_path / "ascii.fits")
    with fits.open(ascii_only) as hdul:                     # plain text stays plain text
        assert hdul[1].data["APOGEE_ID"][0] == "2M00000000+0000000"


# -- nulls in every form (issue 22: SkyServer's -9999.99 passed every cut) ------------------
def null_catalog() -> pd.DataFrame:
    """Six entries in M15: one good, then one null of each form (the last two both
    -9999.99, one in TEFF, which old code let through "TEFF <= 5700")."""
    good = {"TEFF": 4500.0, "LOGG": 2.0, "FE_H": -0.2, "MG_FE": 0.1, "SI_FE": 0.05}
    rows = []
    for i, (label, value) in enumerate([(None, None), ("TEFF", np.nan), ("LOGG", -9999.0),
                                        ("FE_H", -9999.99), ("MG_FE", " "),
                                        ("TEFF", -9999.99)]):
        labels = {**good, **({label: value} if label else {})}
        rows.append({"APOGEE_ID": f"2M0000000{i}", "TELESCOPE": "apo25m", "FIELD": "M15",
                     "SNR": 100.0, "STARFLAG": 0, "ASPCAPFLAG": 0, **labels,
                     **{f"{k}_ERR": 0.01 for k in good}})
    return pd.DataFrame(rows).astype({"MG_FE": object})


def test_every_null_form_is_dropped_and_counted():
    from skcannon.labels import null_forms

    forms = null_forms(np.array([1.0, np.nan, np.inf, -9999, -9999.99, -9000.0, -8999.0]))
    assert forms["non-finite"].tolist() == [False, True, True, False, False, False, False]
    assert forms["sentinel"].tolist() == [False, False, False, True, True, True, False]
    text = null_forms(pd.Series(["4500", "", " ", None, "-9999.99", "abc"], dtype=object))
    assert text["empty"].tolist() == [False, True, True, False, False, True]
    assert text["non-finite"].tolist() == [False, False, False, True, False, False]
    assert text["sentinel"].tolist() == [False, False, False, False, True, False]

    selection = select_giants(null_catalog(), fields=["M15"])
    assert selection.APOGEE_ID.tolist() == ["2M00000000"]
    assert selection.attrs["null_counts"] == {"non-finite": 1, "sentinel": 3, "empty": 1}
    row = selection.attrs["cut_table"][2]
    assert row["removed"] == 5
    assert "1 NaN/inf, 3 <= -9000 (null sentinel), 1 empty" in row["cut"]
    kept = select_giants(null_catalog(), fields=["M15"],
                         cuts=QualityCuts(require_labels=False))
    assert kept[list(DEFAULT_LABELS)].isna().sum().sum() == 5     # every null is now NaN
    assert kept.attrs["null_counts"] == {"non-finite": 0, "sentinel": 0, "empty": 0}


@pytest.mark.parametrize("suffix", [".fits", ".csv"])
def test_nulls_survive_each_file_format(tmp_path, suffix):
    """FITS (NaN, -9999) and a SkyServer-like CSV (-9999.99, a blank cell) give the same
    selection and counts."""
    frame = null_catalog()
    if suffix == ".fits":
        frame["MG_FE"] = frame.MG_FE.replace(" ", np.nan).astype(float)  # FITS has no text
        Table.from_pandas(frame).write(tmp_path / f"allStarLite-dr17-synspec_rev1{suffix}")
    else:
        frame.to_csv(tmp_path / f"allStarLite-dr17-synspec_rev1{suffix}", index=False)
    catalog = read_catalog(tmp_path / f"allStarLite-dr17-synspec_rev1{suffix}")
    assert catalog.attrs["catalog_version"] == "synspec_rev1"
    selection = select_giants(catalog, fields=["M15"])
    assert selection.APOGEE_ID.tolist() == ["2M00000000"]
    assert sum(selection.attrs["null_counts"].values()) == 5
    assert selection.CATALOG_VERSION.tolist() == ["synspec_rev1"]


def test_extratarg_and_highest_snr_differ_as_documented():
    """Star A's highest-SNR entry (DR17's primary) has a null label: DR17's EXTRATARG bit 4
    drops its other entry too, highest_snr keeps that surviving entry, keep keeps it."""
    frame = null_catalog().iloc[[0, 0, 1, 1]].reset_index(drop=True)
    frame["APOGEE_ID"] = ["2MA", "2MA", "2MB", "2MB"]
    frame.loc[:, "TEFF"] = [4500.0, 4600.0, np.nan, 4700.0]
    frame["SNR"] = [80.0, 120.0, 150.0, 90.0]
    frame["EXTRATARG"] = [16, 0, 0, 16]               # bit 4 on the lower-SNR entry
    pick = {rule: select_giants(frame, fields=["M15"], cuts=QualityCuts(duplicates=rule))
            for rule in ("keep", "highest_snr", "extratarg")}
    assert pick["keep"].SNR.tolist() == [80.0, 120.0, 90.0]
    assert pick["keep"].attrs["duplicate_entries"] == 2
    assert pick["highest_snr"].SNR.tolist() == [120.0, 90.0]
    assert pick["extratarg"].SNR.tolist() == [120.0]     # star B lost: its primary is null
    with pytest.raises(CatalogError, match="EXTRATARG"):
        select_giants(frame.drop(columns="EXTRATARG"), fields=["M15"],
                      cuts=QualityCuts(duplicates="extratarg"))
    with pytest.raises(ValueError, match="duplicates"):
        QualityCuts(duplicates="first")


def test_catalog_versions_are_recorded_and_mixing_is_visible():
    from skcannon.apogee.catalog import catalog_version

    assert catalog_version("skyserver") == "synspec"
    assert catalog_version("https://x/allStar-dr17-synspec_rev1.fits") == "synspec_rev1"
    assert catalog_version("https://x/allStar-dr17-synspec.fits") == "synspec"
    assert catalog_version("extract.csv") == "unknown"
    mixed = null_catalog().iloc[[0, 0]].reset_index(drop=True)
    mixed["APOGEE_ID"] = ["2MA", "2MB"]
    mixed["CATALOG_VERSION"] = ["synspec", "synspec_rev1"]
    selection = select_giants(mixed, fields=["M15"])
    assert selection.attrs["catalog_versions"] == ["synspec", "synspec_rev1"]


def test_an_empty_file_cell_means_no_file_name(tmp_path):
    from skcannon.apogee.archive import apstar_relpath

    frame = null_catalog().iloc[:2].assign(FILE=["asStar-dr17-x.fits", None])
    frame.to_csv(tmp_path / "c.csv", index=False)
    catalog = read_catalog(tmp_path / "c.csv")
    assert catalog.FILE.tolist() == ["asStar-dr17-x.fits", ""]
    assert apstar_relpath("lco25m", "F", "2M1", file=catalog.FILE[1]).endswith(
        "asStar-dr17-2M1.fits")


def test_a_catalog_csv_naming_a_column_twice_is_refused(tmp_path):
    from skcannon.apogee.catalog import read_catalog
    from skcannon.errors import SkcannonError

    path = tmp_path / "allStar.csv"
    path.write_text("APOGEE_ID,TEFF,LOGG,TEFF\n2M0,4500,2.5,5200\n")
    with pytest.raises(SkcannonError, match="column TEFF appears more than once"):
        read_catalog(path)
