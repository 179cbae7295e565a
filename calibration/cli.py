"""`glyphgate calibrate`."""

from __future__ import annotations


def add_calibrate_arguments(p):
    p.add_argument("--artifacts", required=True, help="artifacts folder from `glyphgate export`; calibration.json and report/ go there")
    p.add_argument("--data", required=True, help="data folder with the ID split and the OOD sets")
    p.add_argument("--target-tpr", type=float, default=0.95, help="share of real glyphs kept below the threshold (default 0.95)")
    p.add_argument("--split", default="test", help="ID split the threshold is fitted on (default test)")
    p.add_argument("--baseline", action="append", default=[], metavar="ARTIFACTS",
                   help="artifacts folder of a baseline model (e.g. the classifier-mode run) to compare; repeatable")
    p.add_argument("--no-rbm", action="store_true", help="skip the BernoulliRBM baseline")


def calibrate(args) -> int:
    from .calibrate import calibrate as run

    cal = run(args.artifacts, args.data, target_tpr=args.target_tpr, split=args.split, baselines=args.baseline,
              rbm=not args.no_rbm)
    kinds = cal["metrics"]["kinds"]
    print(f"threshold {cal['threshold']:.4f}: TPR on {cal['split']} {cal['measured_tpr']:.4f} (target {cal['target_tpr']}), "
          f"accuracy {cal['id']['accuracy']:.4f}, ECE {cal['id']['ece']:.4f}")
    for kind, m in kinds.items():
        print(f"  {kind:7s} OOD: energy AUROC {m['scores']['energy']['auroc']:.4f}, FPR95 {m['scores']['energy']['fpr95']:.4f}, "
              f"missed at threshold {m['fpr_at_threshold']:.4f}")
    print(f"wrote {args.artifacts}/calibration.json and {args.artifacts}/report/index.html")
    return 0


def add_card_arguments(p):
    p.add_argument("--artifacts", required=True, help="calibrated artifacts folder; MODEL_CARD.md goes there")
    p.add_argument("--run", required=True, help="the training run folder the model was exported from")
    p.add_argument("--data", required=True, help="the data folder it was trained and calibrated on")
    p.add_argument("--baseline-run", default=None, help="run folder of the classifier baseline, if any")
    p.add_argument("--command", default="make model", help="the command that made it, for the card")


def card(args) -> int:
    from .card import write_card

    print(f"wrote {write_card(args.artifacts, args.run, args.data, args.baseline_run, args.command)}")
    return 0


def add_evaluate_arguments(p):
    p.add_argument("--artifacts", required=True, help="calibrated artifacts folder; results go to its real_scans.json and report/")
    p.add_argument("--data", required=True, help="folder from `glyphgate data import-page`: <class>/ and ood/<kind>/")
    p.add_argument("--name", required=True, help="name of this collection in real_scans.json (e.g. kant-bin)")
    p.add_argument("--source", default="", help="where the pages come from and their licence, for the card")


def evaluate(args) -> int:
    from .real import evaluate_real, summary_line

    print(summary_line(args.name, evaluate_real(args.artifacts, args.data, args.name, args.source)))
    print(f"wrote {args.artifacts}/real_scans.json")
    return 0
