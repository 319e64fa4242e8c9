"""``python -m pipeline train``: train Meso-4 on labelled face crops and write weights the scanner loads.

    python -m pipeline train DATA -o weights/NAME.h5 [--epochs N --batch-size N --seed N --init-weights PATH]

The flags map one to one onto :class:`pipeline.training.train.TrainConfig`; the steps and the
files written are described in :mod:`pipeline.training.train`. ``--help`` imports no TensorFlow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.common import (
    DefaultsHelpFormatter,
    OneLineParser,
    clip_given_as_data,
    fail,
    input_problem,
    output_folder_problem,
    sibling_command,
    start_logging,
)
from pipeline.faces.crop import CROP_MARGIN, DEFAULT_RESIZE, RESIZE_INTERPOLATIONS
from pipeline.training.train import TRAINABLE_ARCHITECTURES, AugmentConfig, TrainConfig
from pipeline.training.train_head import HeadConfig

HEAD_ARCHITECTURE = "effnet-lite0-head"


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=prog,
        formatter_class=DefaultsHelpFormatter,
        description="Train Meso-4 on labelled face crops (output p_fake, 1 = fake); "
        "split by source video, never by image.",
    )
    p.add_argument(
        "data",
        metavar="DATA",
        help="folder with real/ and fake/ subfolders, a manifest CSV file,label[,source_video][,split], or a "
        "mix of face sets MIX.json (sources, weights, framings: see pipeline/training/mix.py); a mix is "
        "calibrated after training (temperature and threshold in the spec)",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="WEIGHTS.h5", help="weights file to write (+ .json sidecar)"
    )
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="passes over the training faces at most")
    p.add_argument(
        "--batch-size", type=int, default=TrainConfig.batch_size, metavar="FACES", help="faces per training step"
    )
    p.add_argument("--seed", type=int, default=TrainConfig.seed, help="split, initialisation, shuffling, augmentation")
    p.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate, help="Adam's initial rate")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=TrainConfig.val_fraction,
        help="share of each label's faces (whole source videos) kept for validation",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=TrainConfig.patience,
        metavar="EPOCHS",
        help="epochs without a better validation AUC before stopping",
    )
    p.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        metavar="STEPS",
        help="batches per epoch; default: one pass over the training faces",
    )
    p.add_argument("--init-weights", metavar="PATH", help="start from these Meso-4 weights (fine-tuning)")
    p.add_argument(
        "--resize",
        choices=RESIZE_INTERPOLATIONS,
        default=DEFAULT_RESIZE,
        help="interpolation to 256x256 pixels, recorded in the spec",
    )
    p.add_argument(
        "--crop-margin",
        type=float,
        default=CROP_MARGIN,
        metavar="RATIO",
        help="crop side / detector box side of the training faces, recorded in the spec so the scanner "
        "crops the same way (the default is the dataset builder's)",
    )
    p.add_argument(
        "--architecture",
        choices=(*TRAINABLE_ARCHITECTURES, HEAD_ARCHITECTURE),
        default=TrainConfig.architecture,
        help="the network: Meso-4 or MesoInception-4 (MesoNet, Afchar et al. 2018), trained end to end; or "
        f"{HEAD_ARCHITECTURE}: a head on a frozen EfficientNet-Lite0, fitted on cached features (DATA must be a "
        "mix whose sources carry a split column; output NAME.npz)",
    )
    p.add_argument(
        "--feature-cache",
        metavar="DIR",
        default=None,
        help=f"{HEAD_ARCHITECTURE}: folder of the backbone feature cache (built where missing, resumed; "
        "default: <cache folder>/features)",
    )
    p.add_argument(
        "--views",
        type=int,
        default=HeadConfig.views,
        help=f"{HEAD_ARCHITECTURE}: cached views per face (view 0 as is, the others augmented)",
    )
    p.add_argument(
        "--hidden",
        default=",".join(str(h) for h in HeadConfig.hidden),
        metavar="WIDTHS",
        help=f"{HEAD_ARCHITECTURE}: hidden layer widths, comma-separated ('' or 0: logistic regression)",
    )
    p.add_argument("--alpha", type=float, default=HeadConfig.alpha, help=f"{HEAD_ARCHITECTURE}: L2 penalty")
    p.add_argument(
        "--backbone",
        default=None,
        metavar="ONNX",
        help=f"{HEAD_ARCHITECTURE}: the exported backbone (default: weights/effnet_lite0_blocks.onnx)",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        metavar="MINUTES",
        help="time budget in minutes: no epoch starts that would end past it; the best epoch so far is kept, "
        "calibrated and written as after early stopping",
    )
    p.add_argument("--no-augment", action="store_true", help="train on the faces as they are")
    p.add_argument("--report-dir", metavar="DIR", help="history, curves and split (default: <output stem>_train/)")
    p.add_argument("--name", help="spec name (default: the output's stem)")
    p.add_argument("--license", default="", help="licence text for the spec (default: none)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The flags, one to one. Raises ``ValueError`` naming a bad value."""
    return TrainConfig(
        data=Path(args.data),
        output=Path(args.output),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        val_fraction=args.val_fraction,
        seed=args.seed,
        patience=args.patience,
        init_weights=Path(args.init_weights) if args.init_weights else None,
        resize=args.resize,
        crop_margin=args.crop_margin,
        architecture=args.architecture,
        max_minutes=args.max_minutes,
        augment=None if args.no_augment else AugmentConfig(),
        steps_per_epoch=args.steps_per_epoch,
        report_dir=Path(args.report_dir) if args.report_dir else None,
        name=args.name,
        license=args.license,
    )


def main(argv: list[str] | None = None, prog: str = "python -m pipeline train") -> int:
    """Exit 0 with weights and sidecar written; 2 with a one-line message for usage errors (data
    missing or of the wrong kind, such as one clip; an output, ``--init-weights`` or
    ``--report-dir`` of the wrong kind; bad values)."""
    args = build_parser(prog).parse_args(argv)
    start_logging(args.quiet)
    from pipeline.errors import ScannerError, writing
    from pipeline.training.train import train

    if problem := clip_given_as_data(
        args.data,
        "train",
        "face crops: a folder with real/ and fake/ subfolders of images, a manifest CSV or a MIX.json",
        f"to make them from clips: {sibling_command(prog, 'extract')} CLIPS -o DATASET",
    ):
        return fail(prog, problem)
    if args.architecture == HEAD_ARCHITECTURE:
        return _train_head(prog, args)
    try:
        config = config_from_args(args)
    except ScannerError as exc:
        return fail(prog, str(exc))
    if config.init_weights is not None and (problem := input_problem(config.init_weights, "--init-weights", "file")):
        return fail(prog, problem)
    if config.output.exists() and not config.output.is_file():
        return fail(prog, f"output {config.output} is not a file")
    if config.report_dir is not None and (problem := output_folder_problem(config.report_dir, "--report-dir")):
        return fail(prog, problem)
    try:
        with writing(config.output):
            train(config)
    except ScannerError as exc:  # ours only: anything else is a bug, with its traceback
        return fail(prog, str(exc))
    return 0


def _train_head(prog: str, args: argparse.Namespace) -> int:
    """``--architecture effnet-lite0-head``: cache features, fit the head, write ``NAME.npz`` and its sidecar."""
    from pipeline.errors import ScannerError, writing
    from pipeline.models.weights import REPO_WEIGHTS_DIR, cache_dir
    from pipeline.training.mix import is_mix_file
    from pipeline.training.train_head import train_head_model

    if not is_mix_file(args.data):
        return fail(prog, f"{HEAD_ARCHITECTURE} trains on a mix of face sets (MIX.json), got {args.data}")
    if not str(args.output).endswith(".npz"):
        return fail(prog, f"{HEAD_ARCHITECTURE} writes a head file NAME.npz, got {args.output}")
    try:
        hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip() and int(h) > 0)
        config = HeadConfig(hidden=hidden, alpha=args.alpha, views=args.views, seed=args.seed)
    except ValueError as exc:  # int() of a --hidden part, or HeadConfig's ConfigError
        return fail(prog, f"bad head setting: {exc}")
    if args.max_minutes is not None and not args.max_minutes > 0:
        return fail(prog, f"--max-minutes must be > 0, got {args.max_minutes}")
    backbone = Path(args.backbone) if args.backbone else REPO_WEIGHTS_DIR / "effnet_lite0_blocks.onnx"
    cache = Path(args.feature_cache) if args.feature_cache else cache_dir() / "features"
    try:
        with writing(args.output):
            train_head_model(
                args.data,
                args.output,
                backbone_path=backbone,
                cache_root=cache,
                config=config,
                max_minutes=args.max_minutes,
                license_text=args.license,
            )
    except ScannerError as exc:
        return fail(prog, str(exc))
    return 0
