"""A survey's outputs stay one set when the process is really killed (SIGKILL) at any rename of
the merge: after each kill, :func:`check_outputs` finds the old set or the new one, whole."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from skcannon.survey.outputs import COMMIT_DIR, MANIFEST, OUTPUT_FILES, check_outputs

#: Writes the set ``tag`` into ``out``, SIGKILLing itself just before its ``kill_at``-th
#: ``os.replace`` (0: never).
WRITER = """
import os, signal, sys
from pathlib import Path
from skcannon.survey.outputs import write_outputs

out, tag, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
real, calls = os.replace, [0]

def replace(source, destination):
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(source, destination)

os.replace = replace
write_outputs(out, lambda path: path.write_text(tag), {"run": tag}, [{"run": tag}])
print(calls[0])
"""


def _write(out: Path, tag: str, kill_at: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WRITER, str(out), tag, str(kill_at)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2])


def _set_of(out: Path) -> set[str]:
    """The run tags the checked set's three files hold (one tag for a whole set)."""
    check_outputs(out)
    return {(out / OUTPUT_FILES[0]).read_text(),
            json.loads((out / OUTPUT_FILES[1]).read_text())[0]["run"],
            json.loads((out / OUTPUT_FILES[2]).read_text())["run"]}


@pytest.mark.slow
def test_a_sigkill_at_every_rename_leaves_the_old_set_or_the_new_one(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    first = _write(out, "run0", 0)
    assert first.returncode == 0, first.stderr
    n_renames = int(first.stdout)
    assert n_renames >= len(OUTPUT_FILES) + 2          # staged files, commit, install
    before, kept_old = "run0", 0
    for kill_at in range(1, n_renames + 1):
        tag = f"run{kill_at}"
        killed = _write(out, tag, kill_at)
        assert killed.returncode == -9, (kill_at, killed.stderr)
        tags = _set_of(out)
        assert tags in ({before}, {tag}), (kill_at, before, tags)
        kept_old += tags == {before}
        before = tags.pop()
        assert not (out / COMMIT_DIR).exists()          # a cut-short install was completed
    assert 0 < kept_old < n_renames                    # kills before and after the commit
    assert len(list(out.glob(".survey-staging-*"))) <= 1   # killed runs' staging removed
    assert _write(out, "last", 0).returncode == 0
    assert _set_of(out) == {"last"} and not list(out.glob(".survey-staging-*"))
    assert (out / MANIFEST).is_file()


def test_a_live_runs_staging_is_left_alone(tmp_path):
    from skcannon.survey.outputs import STAGING_PREFIX, remove_dead_staging

    live = tmp_path / f"{STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-abcd1234"
    other_host = tmp_path / f"{STAGING_PREFIX}elsewhere-host-1-abcd1234"
    live.mkdir()
    other_host.mkdir()
    remove_dead_staging(tmp_path)
    assert live.is_dir() and other_host.is_dir()
