"""Time ``label_chunk`` on one chunk of files with whichever skcannon is first on PYTHONPATH
(run in a subprocess by bench_survey: this checkout's package, or the package source of an
older commit, e.g. d3d2c30, whose ``label_chunk(inputs, model, recipe)`` took a Cannon and a
preprocessing recipe). Prints one JSON object: the best of ``repeats`` seconds and the stages'
seconds of the current code (when it has them)."""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path


def main(paths_file: str, shared: str, repeats: int) -> None:
    from skcannon.apogee.reference import load_reference_model
    from skcannon.survey.chunk import label_chunk

    paths = Path(paths_file).read_text().split()
    apogee = Path(shared) / "apogee"
    model = load_reference_model(apogee / "reference" / "cannon_apokasc_dr12")
    continuum = apogee / "continuum" / "cannon_cont_pixels_apogee.npz"
    if "recipe" in inspect.signature(label_chunk).parameters:      # the d3d2c30 interface
        from skcannon.preprocessing.recipe import preprocessing_recipe

        from skcannon.data.build import default_preprocessor

        recipe = preprocessing_recipe(default_preprocessor(continuum))

        def chunk():
            return label_chunk(paths, model, recipe)
    else:
        from skcannon.pipeline.model import model_pipeline

        pipeline = model_pipeline(model, continuum)[0]

        def chunk():
            return label_chunk(paths, pipeline)
    chunk()                                                          # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        table = chunk()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": min(seconds), "rows": len(table),
                      "package": str(Path(inspect.getfile(label_chunk)).parents[2])}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
