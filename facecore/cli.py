"""Command line: ``python -m facecore evaluate-lfw ...``, ``evaluate ...`` (own data; :mod:`facecore.cli_calibration`) and ``embed ...``.

A missing or misplaced LFW (``--data-home``, ``$FACECORE_LFW_HOME``) is a sentence on stderr and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from facecore import cli_calibration, cli_keys
from facecore.config import DEFAULT_DETECTOR, PipelineConfig
from facecore.detection import DETECTORS
from facecore.embedding import DEFAULT_EMBEDDER, EMBEDDERS
from facecore.embedding.base import builtin_embedders
from facecore.evaluation.datasets import LFW_SUBSETS, LfwSource
from facecore.verification.metrics import METRICS


def _choices_help(registry, names: list[str]) -> str:
    """One line per choice from the registry, with the weights' terms where they are restricted."""
    lines = []
    for name in names:
        cls = registry.get(name)
        terms = f" ({cls.licence})" if cls.licence and cls.licence not in cls.summary else ""
        lines.append(f"{name}: {cls.summary}{terms}")
    return "; ".join(lines).replace("%", "%%")


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """The options that make a :class:`~facecore.config.PipelineConfig`, listed from the registries."""
    parser.add_argument(
        "--detector", choices=DETECTORS.names(), default=DEFAULT_DETECTOR, help=_choices_help(DETECTORS, DETECTORS.names())
    )
    parser.add_argument(
        "--embedder", choices=builtin_embedders(), default=DEFAULT_EMBEDDER,
        help=_choices_help(EMBEDDERS, builtin_embedders()),
    )
    parser.add_argument(
        "--flip-tta", action="store_true", help="average each chip's and its mirror's embedding"
    )


def _config(args: argparse.Namespace) -> PipelineConfig:
    return PipelineConfig(
        detector=args.detector,
        embedder=args.embedder,
        flip_tta=args.flip_tta,
        use_detector_landmarks=not getattr(args, "dlib_landmarks", False),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facecore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser("evaluate-lfw", help="run the LFW pairs protocol over the full pipeline")
    evaluate.add_argument(
        "--data-home",
        type=Path,
        default=None,
        help="folder holding lfw_home/ (read-only); default: $FACECORE_LFW_HOME, else scikit-learn's data "
        "home, else the bundled mini LFW",
    )
    _add_pipeline_options(evaluate)
    evaluate.add_argument("--metric", choices=METRICS, default="euclidean")
    evaluate.add_argument(
        "--pairs",
        choices=tuple(LFW_SUBSETS),
        default=None,
        help="10_folds (View 2, pairs.txt), dev_train/dev_test (View 1) or demo (the bundled pack's "
        "300 pairs); default: 10_folds on full LFW, else demo",
    )
    evaluate.add_argument("--limit", type=int, default=None, help="use at most N pairs, balanced over folds")
    evaluate.add_argument(
        "--dlib-landmarks",
        action="store_true",
        help="align with dlib's 5 points even when the detector has landmarks",
    )
    evaluate.add_argument("--no-cache", action="store_true", help="recompute every embedding")
    evaluate.add_argument(
        "--cache-dir", type=Path, default=None, help="default: $FACECORE_CACHE_DIR or ~/.cache/facecore"
    )

    download = commands.add_parser(
        "download-lfw", help="download full LFW through scikit-learn (about 230 MB; needs internet)"
    )
    download.add_argument(
        "--data-home", type=Path, default=None, help="where to put it; default: scikit-learn's data home"
    )

    embed = commands.add_parser("embed", help="detect and embed every face in images")
    embed.add_argument("images", nargs="+", type=Path)
    _add_pipeline_options(embed)
    embed.add_argument("--json", action="store_true", help="JSON lines only (no readable notes on stderr)")
    cli_calibration.add_evaluate(commands, _add_pipeline_options)
    cli_calibration.add_operating_points(commands, _add_pipeline_options)
    cli_calibration.add_verify_batch(commands, _add_pipeline_options)
    cli_keys.add_commands(commands)

    gallery = commands.add_parser("gallery", help="manage galleries (see facecore.gallery.stores for URLs)")
    gallery_commands = gallery.add_subparsers(dest="gallery_command", required=True)
    copy = gallery_commands.add_parser(
        "copy", help="copy every person and face from one gallery to another (safe to run again)"
    )
    copy.add_argument("--from", dest="source", required=True, help="sqlite:///folder or postgresql://user@host/db")
    copy.add_argument("--to", dest="target", required=True, help="the gallery to copy into (created if new)")
    return parser


def _lfw_source(data_home: Path | None) -> LfwSource:
    """The LFW in ``data_home``, or :func:`~facecore.evaluation.datasets.find_lfw`'s when None.

    FileNotFoundError, with a message for people, when that folder (or ``$FACECORE_LFW_HOME``) holds no LFW.
    """
    from facecore.evaluation.datasets import LFW_HOME_ENV, describe_lfw, find_lfw

    if data_home is None:
        try:
            return find_lfw()
        except FileNotFoundError as error:
            if os.environ.get(LFW_HOME_ENV):
                raise FileNotFoundError(f"${LFW_HOME_ENV} is {os.environ[LFW_HOME_ENV]}: {error}") from error
            raise
    try:
        return describe_lfw(data_home.expanduser())
    except FileNotFoundError as error:
        raise FileNotFoundError(f"--data-home {data_home} holds no LFW. {error}") from error


def run_evaluate_lfw(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facecore.cache import EmbeddingCache
    from facecore.evaluation.lfw import evaluate_lfw

    try:
        source = _lfw_source(args.data_home)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.data_home = source.home
    print(f"using {source.describe()}", file=sys.stderr)
    if args.pairs is None:
        args.pairs = source.benchmark_subset
    if args.pairs not in source.subsets:
        print(
            f"error: the LFW at {source.home} has no {LFW_SUBSETS[args.pairs]}, so no --pairs {args.pairs}; "
            f"it has: {', '.join(source.subsets) or 'no pairs file at all'}.",
            file=sys.stderr,
        )
        return 2
    cache = None if args.no_cache else EmbeddingCache(args.cache_dir)
    with tqdm(total=0, unit="img", desc=f"embedding LFW ({args.detector})", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        evaluation = evaluate_lfw(
            args.data_home,
            _config(args),
            metric=args.metric,
            subset=args.pairs,
            limit=args.limit,
            cache=cache,
            progress=progress,
        )
    summary = evaluation.summary()
    print(
        f"LFW {args.pairs}: {summary['pairs']} pairs, {summary['images']} images, protocol: "
        f"{evaluation.config['protocol']}"
    )
    print(
        f"pipeline: detector={args.detector} embedder={evaluation.config['embedder']} metric={args.metric} "
        f"landmarks={evaluation.config['landmarks']}"
    )
    print(
        f"accuracy {100 * summary['accuracy']:.2f}% +- {100 * summary['accuracy_std']:.2f}   "
        f"AUC {summary['auc']:.4f}   EER {100 * summary['eer']:.2f}%   "
        f"TAR@FAR=1e-3 {100 * summary['tar_at_far_1e-3']:.2f}%   threshold {summary['threshold']:.4f}"
    )
    print(
        f"no face found in {summary['no_face']} of {summary['images']} images (centre box used); "
        f"{summary['seconds']:.1f} s"
    )
    print(json.dumps(summary))
    return 0


def run_embed(args: argparse.Namespace) -> int:
    from facecore.images import ImageError, read_bytes
    from facecore.pipeline import build_pipeline

    pipeline = build_pipeline(_config(args))
    failures = 0
    for path in args.images:
        try:
            found = pipeline.process_bytes(read_bytes(path))
        except ImageError as error:
            failures += 1
            print(f"{path}: {error}", file=sys.stderr)
            continue
        if not args.json:
            print(f"{path}: {len(found)} face(s)", file=sys.stderr)
        for item in found:
            record = {
                "image": str(path),
                "box": list(item.face.box),
                "score": round(float(item.face.score), 6),
                "embedding": [round(float(v), 7) for v in item.embedding],
            }
            print(json.dumps(record))
    return 1 if failures else 0


def run_download_lfw(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facecore.evaluation.datasets import DownloadError, download_lfw

    with tqdm(unit="B", unit_scale=True, desc="downloading LFW", file=sys.stderr) as bar:
        try:
            home = download_lfw(args.data_home, progress=lambda done: bar.update(done - bar.n))
        except DownloadError as error:
            print(error, file=sys.stderr)
            return 2
    print(f"LFW is in {home}.")
    try:
        source = _lfw_source(None)
    except FileNotFoundError as error:
        print(f"error: but the lab will not find it: {error}", file=sys.stderr)
        return 2
    print(f"Now using {source.describe()}.")
    return 0


def run_gallery(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facecore.gallery import GalleryError, open_gallery
    from facecore.gallery.copying import copy_gallery

    try:
        with open_gallery(args.source) as source, open_gallery(args.target) as target, tqdm(
            unit="face", desc="copying"
        ) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            report = copy_gallery(source, target, progress=progress)
    except GalleryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


COMMANDS = {
    "evaluate-lfw": run_evaluate_lfw,
    "embed": run_embed,
    "download-lfw": run_download_lfw,
    "evaluate": lambda args: cli_calibration.run_evaluate(args, _config(args)),
    "operating-points": lambda args: cli_calibration.run_operating_points(args, _config(args)),
    "verify-batch": lambda args: cli_calibration.run_verify_batch(args, _config(args)),
    "api-key": cli_keys.run,
    "gallery": run_gallery,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
