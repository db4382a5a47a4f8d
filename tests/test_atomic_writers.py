"""Every file skcannon writes goes through ``integrity.atomic_write`` (a temporary name renamed
over the target when complete), so a file under its final name is always whole."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

import skcannon
from skcannon.integrity import write_csv_atomic, write_text_atomic

PACKAGE = Path(skcannon.__file__).resolve().parent
#: Calls that write a file.
WRITERS = {"to_csv", "to_parquet", "write_text", "write_bytes", "savefig", "writeto"}
#: Module functions that write a file (``np.save``, ``torch.save`` ...); the ``save`` methods of
#: skcannon's own objects write sealed HDF5 through ``atomic_write`` themselves.
MODULE_WRITERS = {("np", "save"), ("np", "savez"), ("np", "savez_compressed"), ("torch", "save")}


def _is_writer(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    owner = func.value.id if isinstance(func.value, ast.Name) else None
    return func.attr in WRITERS or (owner, func.attr) in MODULE_WRITERS


def unguarded_writes(source: str) -> list[int]:
    """Lines of writer calls that are not inside a ``with atomic_write(...)`` block."""
    tree = ast.parse(source)
    guarded: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call)
                and getattr(item.context_expr.func, "id",
                            getattr(item.context_expr.func, "attr", "")) == "atomic_write"
                for item in node.items):
            guarded.append((node.lineno, node.end_lineno))
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and _is_writer(node)
                and not any(start <= node.lineno <= end for start, end in guarded)):
            lines.append(node.lineno)
    return lines


def test_the_checker_sees_an_unguarded_write():
    assert unguarded_writes("table.to_csv(path)\n") == [1]
    assert unguarded_writes("import numpy as np\nnp.savez(path, a=a)\n") == [2]
    assert unguarded_writes("model.save(path)\n") == []
    assert unguarded_writes("with atomic_write(p) as tmp:\n    table.to_csv(tmp)\n") == []


def test_every_writer_goes_through_atomic_write():
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for line in unguarded_writes(path.read_text())]
    assert not found, found


def test_atomic_helpers_leave_no_temporary_file(tmp_path):
    table = pd.DataFrame({"a": [1, 2], "b": ["x", "é"]})
    write_csv_atomic(table, tmp_path / "sub" / "t.csv", index=False)
    assert pd.read_csv(tmp_path / "sub" / "t.csv").equals(table)
    write_text_atomic(tmp_path / "page.html", "<p>é</p>")
    assert (tmp_path / "page.html").read_text(encoding="utf-8") == "<p>é</p>"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["page.html", "sub", "t.csv"]


def test_save_figure_writes_the_format_of_its_suffix(tmp_path):
    from skcannon.plotting import save_figure
    from skcannon.plotting.common import new_figure

    figure, axes = new_figure()
    axes[0, 0].plot(np.arange(3))
    assert save_figure(figure, tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")
    assert save_figure(figure, tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]
