"""Sphinx configuration: API pages from docstrings and the example gallery."""

from pathlib import Path

project = "skcannon"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx_gallery.gen_gallery"]
html_theme = "alabaster"
#: Parameter types are prose ("path", "array_like, shape (n,)"), not cross-references: as
#: references, a type named like an attribute elsewhere ("path", "labels") is ambiguous.
napoleon_use_param = False
napoleon_use_rtype = False
#: scikit-learn adds metadata-routing methods (set_fit_request ...) to every estimator; their
#: docstrings point into scikit-learn's own glossary, which this build does not have.
autodoc_default_options = {
    "exclude-members": ", ".join(f"set_{method}_request" for method in (
        "fit", "predict", "score", "transform", "inverse_transform", "partial_fit",
        "split", "decision_function", "predict_proba")),
}
exclude_patterns = ["_build", "auto_examples/*.ipynb"]
sphinx_gallery_conf = {
    "examples_dirs": str(Path(__file__).resolve().parents[1] / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "download_all_examples": False,
    "matplotlib_animations": False,
}
