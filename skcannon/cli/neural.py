"""Neural-network commands: nn train, nn compare."""

from __future__ import annotations

import argparse
import sys

from skcannon.cli.common import FRACTION, NON_NEGATIVE_INT, POSITIVE_INT, labels_to_use
from skcannon.errors import SkcannonError
from skcannon.integrity import write_csv_atomic
from skcannon.labels import require_usable_labels


def _nn_inputs(args):
    """Dataset, label names, the Cannon's split (halves, ``--seed``) and the arrays, for the nn
    commands; None (with a message) when torch or skorch is missing."""
    try:
        import skcannon.nn  # noqa: F401
    except ImportError as exc:
        print(f"skcannon nn: needs torch and skorch (pip install \"skcannon[nn]\"): {exc}",
              file=sys.stderr)
        return None
    import numpy as np
    from sklearn.model_selection import train_test_split

    from skcannon.data import open_dataset

    dataset = open_dataset(args.dataset)
    names = labels_to_use(args.labels, dataset.labels.columns, args.dataset)
    require_usable_labels(dataset.label_array(names), names, list(dataset.ids),
                          hint="the network needs a usable label for every star")
    train, test = train_test_split(np.arange(len(dataset)), test_size=0.5,
                                   random_state=args.seed)
    return dataset, names, train, test, dataset.X, dataset.label_array(names)


def cmd_nn_train(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    inputs = _nn_inputs(args)
    if inputs is None:
        return 2
    from skcannon import nn as snn
    from skcannon.nn.compare import method_table
    from skcannon.plotting import save_figure
    from skcannon.plotting.comparison import loss_figure

    dataset, names, train, test, X, y = inputs
    out = Path(args.output)
    histories, tables = {}, []
    for kind in args.kind:
        start = time.perf_counter()
        model = snn.fit_nn(kind, X[train], y[train], X[test], y[test], seed=args.seed,
                           max_epochs=args.max_epochs, progress=True)
        seconds = time.perf_counter() - start
        snn.save_nn(model, out, kind, names,
                    options={"seed": args.seed, "max_epochs": args.max_epochs,
                             "train_seconds": round(seconds, 1)})
        histories[kind] = snn.loss_history(model)
        predicted = model.predict(X[test])
        table = pd_frame(predicted, names, dataset.ids[test])
        write_csv_atomic(table, out / f"{kind}_validation_predictions.csv", index=False)
        tables.append(method_table(y[test], predicted, names, f"NN ({kind})"))
        print(f"{kind}: {len(histories[kind][0])} epochs in {seconds:.0f} s")
    save_figure(loss_figure(histories), out / "loss_curves.png")
    import pandas as pd

    summary = pd.concat(tables, ignore_index=True)
    write_csv_atomic(summary, out / "nn_accuracy.csv", index=False)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"weights, headers, loss curves and predictions in {out}/")
    return 0


def pd_frame(values, names, ids):
    """Predictions as a table with APOGEE_ID."""
    import pandas as pd

    table = pd.DataFrame(values, columns=list(names))
    table.insert(0, "APOGEE_ID", list(ids))
    return table


def cmd_nn_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    inputs = _nn_inputs(args)
    if inputs is None:
        return 2
    from skcannon.model import Cannon
    from skcannon.nn import LoadedNN
    from skcannon.nn.compare import method_table, training_size_study
    from skcannon.plotting import save_figure
    from skcannon.plotting.comparison import comparison_figure

    dataset, names, train, test, X, y = inputs
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    nets = {kind: LoadedNN(args.nn_dir, kind) for kind in args.kind}
    for kind, net in nets.items():                       # before any training
        if list(net.label_names) != list(names):
            raise SkcannonError(f"--nn-dir: {args.nn_dir}: the {kind} network predicts "
                                f"{', '.join(net.label_names)}, not {', '.join(names)}")
    step = _steps(1 + len(nets) + 2 * len(args.fractions))
    step(f"training the Cannon on {len(train)} stars, fitting {len(test)} test stars")
    cannon = Cannon(label_names=tuple(names)).fit(y[train], X[train])
    rows = [method_table(y[test], cannon.infer_labels(X[test]).labels, names, "Cannon")]
    for kind, net in nets.items():
        step(f"NN ({kind}) of {args.nn_dir} predicting {len(test)} test stars")
        rows.append(method_table(y[test], net.predict(X[test]), names, f"NN ({kind})"))
    table = pd.concat(rows, ignore_index=True)
    write_csv_atomic(table, out / "comparison.csv", index=False)
    save_figure(comparison_figure(table), out / "comparison.png")
    print(f"same split (random_state={args.seed}): {len(train)} training / {len(test)} test "
          "stars")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    fractions = list(args.fractions)            # each in (0, 1], checked at parse
    if fractions:
        sizes = training_size_study(X[train], y[train], X[test], y[test], names, fractions,
                                    args.kind[0], args.seed, {"max_epochs": args.max_epochs},
                                    report=step)
        write_csv_atomic(sizes, out / "training_size.csv", index=False)
        save_figure(comparison_figure(sizes), out / "training_size.png")
        print("\nby training-set size (robust scatter):")
        print(sizes.pivot_table(index=["n_train", "method"], columns="label",
                                values="robust_scatter").to_string(
                                    float_format=lambda v: f"{v:.4g}"))
    print(f"tables and figures in {out}/")
    return 0


def _steps(total: int):
    """A function writing ``"nn compare: step k/total: <what it does>"`` on stderr, k counting
    its calls (:func:`skcannon.inference.progress.progress_line`)."""
    import itertools

    from skcannon.inference.progress import progress_line

    counter = itertools.count(1)
    return lambda doing: progress_line("nn compare: step", next(counter), total, doing=doing)


def register(sub) -> None:
    """Add this module's commands to the ``skcannon`` subparsers."""
    nn_parser = sub.add_parser("nn", help="neural-network regressor: train, compare",
                               description="A PyTorch network (skorch) predicting labels from "
                                           "spectra, on the Cannon's split (needs the 'nn' "
                                           "extra).")
    nn_sub = nn_parser.add_subparsers(dest="nn_command", required=True, metavar="COMMAND")
    for name, helptext, func in (
            ("train", "train networks on the train half, early stopping on the other",
             cmd_nn_train),
            ("compare", "NN vs Cannon on the same split, and vs training-set size",
             cmd_nn_compare)):
        p = nn_sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("dataset", help="labelled dataset (HDF5)")
        p.add_argument("--labels", nargs="+", default=None, help="label columns")
        p.add_argument("--kind", nargs="+", choices=["mlp", "cnn"], default=["mlp", "cnn"],
                       help="architectures (default: both)")
        p.add_argument("--seed", type=NON_NEGATIVE_INT, default=42,
                       help="random_state of the split (as 'skcannon validate') and torch")
        p.add_argument("--max-epochs", type=POSITIVE_INT, default=150, help="epochs at most")
        p.add_argument("--output", "-o", default=f"nn_{name}", help="output directory")
        if name == "compare":
            p.add_argument("--nn-dir", required=True, help="directory of 'skcannon nn train'")
            p.add_argument("--fractions", type=FRACTION, nargs="*", default=[0.25, 0.5, 1.0],
                           help="training-set fractions (0 < f <= 1) to compare (default "
                                "0.25 0.5 1)")
        p.set_defaults(func=func, owns_output=True)
