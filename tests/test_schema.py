"""One declared output schema: every writer (LabelFit.to_frame, the survey's input rows and FITS
header, the docs table) reads it, so a new column is one declaration plus the code computing
it, and the packed FLAGS column's bits are the declared ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skcannon import schema
from skcannon.inference.fitting import LabelFit

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _fit(n: int = 4, names=("TEFF", "LOGG")) -> LabelFit:
    rng = np.random.default_rng(1)
    L = len(names)
    covariance = np.einsum("nij,nkj->nik", *(2 * [rng.normal(size=(n, L, L))]))
    flags = {k: rng.random(n) < 0.5 for k in ("converged", "on_bound", "outside_training",
                                               "starts_disagree", "unlike_training")}
    return LabelFit(labels=rng.normal(size=(n, L)), covariance=covariance,
                    chi2=rng.random(n), reduced_chi2=rng.random(n),
                    n_good=np.arange(n) + 100, best_start=np.zeros(n, int),
                    second_chi2=np.full(n, np.inf), excess_scatter=rng.random(n),
                    label_names=tuple(names), **flags)


def test_to_frame_has_exactly_the_declared_fit_columns_in_order():
    fit = _fit()
    table = fit.to_frame(ids=["a", "b", "c", "d"])
    expected = ["APOGEE_ID", *(c.name for c, _, _ in schema.label_columns(fit.label_names)),
                *(c.name for c in schema.columns(schema.FIT))]
    assert list(table.columns) == expected
    assert list(table.columns[:4]) == ["APOGEE_ID", "TEFF", "TEFF_ERR", "TEFF_ERR_FORMAL"]
    np.testing.assert_array_equal(table.COV_TEFF_LOGG, fit.covariance[:, 0, 1])
    np.testing.assert_array_equal(table.LOGG_ERR_FORMAL, fit.formal_uncertainties[:, 1])


def test_flags_packs_the_declared_bits():
    bits = schema.flag_bits()
    assert list(bits) == ["CONVERGED", "ON_BOUND", "OUTSIDE_TRAINING", "UNLIKE_TRAINING",
                          "STARTS_DISAGREE", "CONFIDENT", "LABELS_FIXED", "RV_VARIABLE"]
    assert sorted(bits.values()) == list(range(len(bits)))
    table = _fit(n=16).to_frame()
    for name, bit in bits.items():
        np.testing.assert_array_equal((table.FLAGS.to_numpy() >> bit) & 1,
                                      table[name].to_numpy().astype(int))
    assert table.FLAGS.dtype == np.int64


def test_two_flags_on_one_bit_are_refused(monkeypatch):
    monkeypatch.setattr(schema, "COLUMNS", schema.COLUMNS + (
        schema.Column("ALSO_BIT_0", "bool", "clash", schema.FIT, source="converged", bit=0),))
    with pytest.raises(ValueError, match="flag bits declared twice"):
        schema.flag_bits()


@dataclass
class _FitWithPeak(LabelFit):
    """A fit that also reports a new quantity and a new flag (the code computing them)."""

    @property
    def peak_residual(self) -> np.ndarray:
        return self.chi2 * 2.0

    @property
    def poor_fit(self) -> np.ndarray:
        return self.reduced_chi2 > 0.5


def test_a_new_column_is_one_declaration_plus_the_code_computing_it(monkeypatch, tmp_path):
    from astropy.io import fits

    from skcannon.survey.catalog import write_catalog

    monkeypatch.setattr(schema, "COLUMNS", schema.COLUMNS + (
        schema.Column("PEAK_RESIDUAL", "float64", "largest residual, a new column", schema.FIT,
                      source="peak_residual"),
        schema.Column("POOR_FIT", "bool", "reduced chi^2 above 0.5, a new flag", schema.FIT,
                      source="poor_fit", bit=8)))
    fit = _FitWithPeak(**vars(_fit()))
    table = fit.to_frame()
    np.testing.assert_array_equal(table.PEAK_RESIDUAL, fit.chi2 * 2.0)
    np.testing.assert_array_equal((table.FLAGS.to_numpy() >> 8) & 1, fit.poor_fit.astype(int))
    path = write_catalog(table, tmp_path / "c.fits", fit.label_names)
    header = fits.getheader(path, 1)
    names = {header[f"TTYPE{k}"]: k for k in range(1, header["TFIELDS"] + 1)}
    assert header[f"TCOMM{names['PEAK_RESIDUAL']}"] == "largest residual, a new column"
    assert header["FLAG8"] == "POOR_FIT"
    assert "``PEAK_RESIDUAL``" in schema.rst_table() and "``POOR_FIT``" in schema.rst_table()


def test_the_catalog_describes_every_column_and_names_the_products(tmp_path):
    from astropy.io import fits

    from skcannon.data.products import product_names
    from skcannon.survey.catalog import write_catalog

    names = ("TEFF", "LOGG", "FE_H")
    table = pd.DataFrame({c.name: [0.0] for c in schema.output_columns(names)})
    header = fits.getheader(write_catalog(table, tmp_path / "c.fits", names), 1)
    for k in range(1, header["TFIELDS"] + 1):
        assert header[f"TCOMM{k}"], header[f"TTYPE{k}"]
    product = [k for k in range(1, header["TFIELDS"] + 1) if header[f"TTYPE{k}"] == "PRODUCT"]
    assert all(name in header[f"TCOMM{product[0]}"] for name in product_names())
    assert [header[f"FLAG{b}"] for b in schema.flag_bits().values()] == list(schema.flag_bits())


def test_input_rows_and_bad_file_rows_follow_the_schema(tmp_path):
    from skcannon.survey.chunk import fill_unfitted, read_inputs

    table, spectra = read_inputs([str(tmp_path / "missing.fits")])
    assert list(table.columns) == [c.name for c in schema.columns(schema.INPUT)]
    assert list(table.STATUS) == [schema.STATUS_MISSING] and not spectra
    dtypes = dict(_fit().to_frame().dtypes)
    filled = fill_unfitted(table.copy(), dtypes)
    assert filled.FLAGS.tolist() == [0] and filled.N_PIXELS.tolist() == [-1]
    assert filled.CONFIDENT.tolist() == [False] and np.isnan(filled.CHI2[0])


def test_the_docs_page_lists_every_column_as_the_schema_declares_it():
    page = (DOCS / "columns.rst").read_text()
    assert schema.rst_table() in page, "docs/columns.rst is stale: regenerate its table"
    for declared in schema.output_columns(("TEFF", "LOGG")):
        assert f"``{declared.name}``" in page
    assert "columns" in (DOCS / "index.rst").read_text()


def test_every_declared_column_has_a_type_and_a_description():
    for declared in schema.output_columns(("TEFF", "LOGG", "FE_H")):
        assert declared.dtype in ("str", "int64", "float64", "bool"), declared
        assert declared.description, declared
        assert (declared.bit is None) or declared.dtype == "bool", declared
        assert declared.group in (schema.INPUT, schema.FIT, schema.RUN)
