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

#: What sphinx-gallery writes into the source tree while building (it must: Sphinx reads sources
#: only from there); removed when the build finishes, so a build leaves the checkout as it was
#: and everything it made is in the build directory.
GENERATED_IN_SOURCE = ("auto_examples", "sg_execution_times.rst")


def _remove_generated_sources(app, exception) -> None:
    import shutil

    for name in GENERATED_IN_SOURCE:
        path = Path(app.srcdir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def setup(app):
    app.connect("build-finished", _remove_generated_sources)
