"""
Selection cuts and the label corner plot
========================================

Apply the mission's quality cuts to a catalog of real labels (the 9618 DR12 giants in
``../shared``, with fields assigned for the example) and draw the corner plot of the selected
labels with the cut thresholds.
"""

import numpy as np
import pandas as pd

from skcannon.apogee import QualityCuts, format_cut_table, select_giants
from skcannon.pipeline.resources import find_shared
from skcannon.plotting import save_figure
from skcannon.plotting.science import corner_figure

shared = find_shared() / "apogee"
dr12 = pd.read_csv(shared / "labels" / "apogee_dr12_labels.csv")
rng = np.random.default_rng(0)
catalog = pd.DataFrame({
    "APOGEE_ID": dr12.APOGEE_ID, "TELESCOPE": "apo25m",
    "FIELD": rng.choice(["M15", "N6791", "K2_C4_168-21", "060+00"], len(dr12)),
    "SNR": rng.lognormal(np.log(120), 0.5, len(dr12)), "STARFLAG": 0, "ASPCAPFLAG": 0,
    "TEFF": dr12.TEFF, "LOGG": dr12.LOGG, "FE_H": dr12.FE_H,
    "MG_FE": dr12.MG_H - dr12.FE_H, "SI_FE": dr12.SI_H - dr12.FE_H,
})
selection = select_giants(catalog, cuts=QualityCuts())
print(format_cut_table(selection.attrs["cut_table"]))
figure = corner_figure(selection, ["TEFF", "LOGG", "FE_H", "MG_FE", "SI_FE"], QualityCuts())
save_figure(figure, "corner.png")
