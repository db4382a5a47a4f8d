"""Shared fixtures: where the real data in ../shared live, and an archive server with faults."""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from skcannon.apogee.mirror import ArchiveMirror, ArchiveRequestHandler
from skcannon.pipeline.resources import SharedData

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKCANNON_SHARED", REPO.parent / "shared"))
SHARED_APOGEE = SHARED / "apogee"


def shared_file(*parts: str) -> Path:
    """A file in ../shared, or skip the test saying which file is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data file {path} is not present")
    return path


@pytest.fixture(scope="session")
def apstar_files() -> list[Path]:
    """The real DR17 apStar files in ../shared/apogee/dr17/stars (at least one, else skip)."""
    files = sorted((SHARED_APOGEE / "dr17" / "stars").rglob("apStar-dr17-*.fits"))
    if not files:
        pytest.skip(f"no apStar files under {SHARED_APOGEE / 'dr17' / 'stars'}")
    return files


class FaultState:
    """What the fault-injecting server should do; counts requests per path."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.drop_first: int = 0  # drop the connection mid-body for the first N requests of a path
        self.corrupt: set[str] = set()  # file names served as garbage
        self.no_length_half: set[str] = set()  # half the body, no Content-Length, then close
        self.html: set[str] = set()  # an HTML error page with status 200
        self.error_first: int = 0  # HTTP 500 for the first N requests of a path
        self.stall: set[str] = set()  # send 64 kB, then stall (until the test ends)
        self.ranges: list[str] = []  # Range headers received
        self.released = threading.Event()  # ends the stalls

    def hit(self, path: str) -> int:
        with self.lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            return self.requests[path]


def make_fault_handler(state: FaultState) -> type:
    class FaultHandler(ArchiveRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            count = state.hit(self.path)
            local = Path(self.translate_path(self.path))
            name = local.name
            if self.headers.get("Range"):
                state.ranges.append(self.headers["Range"])
            if local.is_file() and count <= state.error_first:
                self.send_error(500, "Internal Server Error")
                return
            if local.is_file() and name in state.html:
                body = b"<html><body>502 Bad Gateway</body></html>"
                self._send(body, len(body))
                return
            if local.is_file() and name in state.no_length_half:
                body = local.read_bytes()
                self.send_response(200)
                self.end_headers()           # no Content-Length: the body ends at close
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            if local.is_file() and name in state.stall and not self.headers.get("Range"):
                body = local.read_bytes()
                self._send_start(len(body))
                self.wfile.write(body[:65536])
                self.wfile.flush()
                state.released.wait(120)
                return
            if local.is_file() and name in state.corrupt:
                body = b"SIMPLE  =                    T" + b"\x00garbage" * 100
                self._send(body, len(body))
                return
            if local.is_file() and count <= state.drop_first:
                body = local.read_bytes()
                self._send(body[: len(body) // 2], len(body))  # promise all, send half, close
                self.close_connection = True
                return
            super().do_GET()

        def _send_start(self, length: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/fits")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()

        def _send(self, body: bytes, length: int) -> None:
            self._send_start(length)
            self.wfile.write(body)
            self.wfile.flush()

    return FaultHandler


@pytest.fixture
def archive_server(apstar_files):
    """A real HTTP server on 127.0.0.1 (free port) serving ../shared/apogee like the archive.

    Yields ``(url, state)``; set ``state.drop_first`` / ``state.corrupt`` to inject faults.
    """
    state = FaultState()
    with ArchiveMirror(SHARED_APOGEE, handler=make_fault_handler(state)) as mirror:
        yield mirror.url, state
        state.released.set()


CONTINUUM_FILE = SharedData(SHARED).continuum


@pytest.fixture(scope="session")
def continuum_file() -> Path:
    """The 529-pixel Cannon continuum mask (skip if absent)."""
    if not CONTINUUM_FILE.is_file():
        pytest.skip(f"{CONTINUUM_FILE} not present")
    return CONTINUUM_FILE


@pytest.fixture(scope="session")
def real_spectra(apstar_files):
    """Real apStar spectra (DR17 files plus the older-layout mystery file) as an X array."""
    from skcannon.apogee.reader import read_apstar, stack_apstar

    files = list(apstar_files)
    mystery = SHARED_APOGEE / "mystery" / "mystery_spec_wiped.fits"
    if mystery.is_file():
        files.append(mystery)
    spectra = [read_apstar(f) for f in files]
    X = stack_apstar(spectra)
    return spectra, X


REFERENCE_DIR = SharedData(SHARED).reference_model
LABELS_CSV = SharedData(SHARED).dr12_labels


@pytest.fixture(scope="session")
def reference_model():
    """The published 4-label APOKASC model (skip if absent)."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"{REFERENCE_DIR} not present")
    from skcannon.apogee.reference import load_reference_model

    return load_reference_model(REFERENCE_DIR)


@pytest.fixture(scope="session")
def giant_labels():
    """Real DR12 giant labels for the reference model's label set (skip if absent)."""
    if not LABELS_CSV.is_file():
        pytest.skip(f"{LABELS_CSV} not present")
    from skcannon.apogee.label_tables import dr12_giant_labels
    from skcannon.apogee.reference import REFERENCE_LABELS

    return dr12_giant_labels(LABELS_CSV, REFERENCE_LABELS)


@pytest.fixture(scope="session")
def real_set():
    """The 336 real labelled giants (100 pixels each) as LabelledArrays (skip if absent)."""
    from skcannon.data import load_labelled_arrays

    path = SHARED / "apogee" / "real_labelled" / "real_giants_100px.npz"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return load_labelled_arrays(path)


@pytest.fixture(scope="session")
def real_model_file(tmp_path_factory):
    """The real labelled set's file and a model trained on it by ``skcannon train`` (once per
    session; tests read it, never change it)."""
    from skcannon.cli import main

    real = shared_file("apogee", "real_labelled", "real_giants_100px.npz")
    model = tmp_path_factory.mktemp("real_model") / "model.h5"
    assert main(["train", str(real), "-o", str(model), "--no-progress"]) == 0
    return real, model


@pytest.fixture(scope="session")
def noise_templates(apstar_files):
    from skcannon.data.simulate import noise_templates_from_apstar

    return noise_templates_from_apstar(apstar_files)


@pytest.fixture(scope="session")
def simulated_set(reference_model, giant_labels, noise_templates):
    """600 spectra simulated from the reference model at real DR12 giant labels, SNR 50-250,
    with real error shapes and bad-pixel masks (fixed seed)."""
    from skcannon.data.simulate import simulate_spectra

    rng = np.random.default_rng(2024)
    labels = giant_labels.sample(600, random_state=7).reset_index(drop=True)
    snr = rng.uniform(50, 250, len(labels))
    X = simulate_spectra(reference_model, labels, snr, rng, noise_templates)
    return labels, X, snr


class FileReads:
    """Counts files opened for reading while active, through Python's audit hook "open" (every
    ``open``/``io.open``/``Path.read_bytes`` of the process, library code included). A hook
    cannot be removed, so one recorder serves the whole session and is switched on per test."""

    def __init__(self) -> None:
        self.active = False
        self.reads: Counter = Counter()
        self.lock = threading.Lock()

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active or event != "open":
            return
        path, mode = args[0], args[1]
        if isinstance(path, int) or mode is None or any(c in str(mode) for c in "wax+"):
            return
        with self.lock:
            self.reads[os.fsdecode(path)] += 1

    def under(self, directory: Path) -> Counter:
        """Reads of files below ``directory``, by resolved path."""
        root = str(Path(directory).resolve())
        return Counter({p: n for p, n in self.reads.items()
                        if str(Path(p).resolve()).startswith(root)})


_FILE_READS = FileReads()
sys.addaudithook(_FILE_READS)


@pytest.fixture
def file_reads():
    """Record every file the test's own process opens for reading (see :class:`FileReads`)."""
    _FILE_READS.reads.clear()
    _FILE_READS.active = True
    try:
        yield _FILE_READS
    finally:
        _FILE_READS.active = False


#: scikit-learn's contract checks that need no data: construction, parameters, cloning,
#: repr, unfitted use. They apply to every estimator, including those taking 3-D spectra
#: arrays, for which scikit-learn's data checks are skipped (three_d_array tag).
CONTRACT_CHECKS = ["check_no_attributes_set_in_init", "check_parameters_default_constructible",
                   "check_get_params_invariance", "check_set_params", "check_estimator_repr",
                   "check_do_not_raise_errors_in_init_or_set_params", "check_estimator_cloneable",
                   "check_estimators_unfitted"]


def run_contract_check(estimator, check_name: str) -> None:
    """Run one of :data:`CONTRACT_CHECKS` on a clone of ``estimator``."""
    from sklearn.base import clone
    from sklearn.utils import estimator_checks

    getattr(estimator_checks, check_name)(type(estimator).__name__, clone(estimator))


@pytest.fixture(scope="session")
def emulator():
    """The independent spectrum generator in ../shared/apogee/emulators (FGK dwarfs, 7214 px)."""
    from skcannon.data.emulator import SpectrumEmulator

    return SpectrumEmulator.from_npz(
        shared_file("apogee", "emulators", "binspec_dwarf_nn_normalized.npz")
    )
