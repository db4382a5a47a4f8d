"""Sphinx configuration: API pages from docstrings and the example gallery."""

from pathlib import Path

project = "skcannon"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx_gallery.gen_gallery"]
html_theme = "alabaster"
exclude_patterns = ["_build", "auto_examples/*.ipynb"]
sphinx_gallery_conf = {
    "examples_dirs": str(Path(__file__).resolve().parents[1] / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "download_all_examples": False,
    "matplotlib_animations": False,
}
