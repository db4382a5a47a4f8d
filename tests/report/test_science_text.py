"""Lab fidelity of the science figures: s^2, sequences inside the training range, log g."""

from __future__ import annotations

import numpy as np

from skcannon.plotting.science import scatter_figure
from skcannon.report.science import within_training
from skcannon.report.sections import giant_gravity_sentence, selection_section


def test_selection_states_log_g_of_a_solar_mass_star_from_the_package():
    sentence = giant_gravity_sentence()
    assert sentence == ("A solar-mass star has log g 4.44 at 1 R_sun, 2.09 at 15 R_sun and "
                        "0.44 at 100 R_sun.")
    assert sentence in selection_section([], []).caption


def test_sequences_stop_at_the_training_range(reference_model):
    low, high = reference_model.label_bounds(margin=0.0)
    median = (low + high) / 2
    beyond = median.copy()
    beyond[:2] = [3397.0, 0.5]                # the giant-branch tip of issue 23
    assert within_training(reference_model, np.array([median, beyond, low, high])).tolist() == [
        True, False, True, True]


def test_scatter_figure_draws_s_squared(reference_model):
    figure = scatter_figure(reference_model)
    ax = figure.axes[0]
    drawn = np.concatenate([line.get_ydata() for line in ax.lines])
    s2 = reference_model.s2_[reference_model.pixel_mask_]
    assert np.isclose(np.nanmax(drawn), s2.max())
    assert "s^2" in ax.get_ylabel()


def test_every_figure_works_for_a_model_trained_from_bare_arrays(simulated_set, reference_model):
    from skcannon.model import Cannon
    from skcannon.plotting import model_vs_data_figure
    from skcannon.plotting.common import PIXEL_AXIS, WAVELENGTH_AXIS
    from skcannon.plotting.science import gradient_figure, sequence_figure

    labels, X, _ = simulated_set
    names = list(reference_model.label_names)
    bare = Cannon(names).fit(labels[names][:120], X[:120])
    assert bare.wavelength_ is None
    point = labels[names].median().to_numpy()
    figures = [model_vs_data_figure(None, X[0, 0], X[0, 1], bare.predict(point[None])[0]),
               gradient_figure(bare, point), scatter_figure(bare),
               sequence_figure(bare, np.array([point, point]), np.array([0.0, 1.0]), "x")]
    for figure in figures:
        assert figure.axes[-1].get_xlabel() == PIXEL_AXIS or \
            PIXEL_AXIS in [ax.get_xlabel() for ax in figure.axes]
    top = figures[0].axes[0]
    assert top.lines[0].get_xdata()[-1] == X.shape[2] - 1     # every pixel, by index
    # given a wavelength, the model records it and the axis is in Angstrom
    with_grid = Cannon(names).fit(labels[names][:120], X[:120],
                                  wavelength=reference_model.wavelength_)
    assert np.array_equal(with_grid.wavelength_, reference_model.wavelength_)
    assert scatter_figure(with_grid).axes[0].get_xlabel() == WAVELENGTH_AXIS


def test_draw_normalization_from_raw_arrays(apstar_files):
    from skcannon.apogee import read_apstar, stack_apstar
    from skcannon.data.build import default_preprocessor, draw_normalization
    from tests.conftest import CONTINUUM_FILE

    X_raw = stack_apstar([read_apstar(apstar_files[0])])
    figure = draw_normalization(X_raw, default_preprocessor(CONTINUUM_FILE), title="star")
    assert len(figure.axes) == 3 and figure.axes[0].get_title() == "star"
    assert all(len(ax.lines) >= 1 for ax in figure.axes)
