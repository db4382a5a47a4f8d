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
