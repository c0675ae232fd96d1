"""Command line for one's own data and operating points.

* ``python -m facecore evaluate --folder DIR | --pairs CSV --images DIR [--detector] [--embedder]``
  prints readable lines, then, last, one JSON line with the keys of ``evaluate-lfw``'s summary (plus
  the set's name and pair counts). ``--per-pair FILE`` writes one CSV row per pair (names, truth,
  distance, fold, decision at the k-fold threshold); ``--save-as NAME --target T [--activate]``
  stores an operating point chosen on the set in the gallery. A bad input exits with status 2 and
  one sentence on stderr, and prints no summary.
* ``python -m facecore operating-points list|activate NAME|deactivate [--detector] [--embedder] [--metric]``
  lists (last line: JSON) and chooses the active point of a configuration in the gallery.
* ``--gallery`` (``evaluate``, ``operating-points``, ``verify-batch``) is a gallery URL or a folder and
  defaults to the gallery the API serves (``$FACECORE_GALLERY_URL``, else ``$FACECORE_GALLERY_DIR``, else
  ``./gallery``): see :func:`facecore.cli_keys.open_cli_gallery`. A gallery that cannot be opened exits
  with status 2 and one sentence on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from facecore.cli_keys import GALLERY_HELP, open_cli_gallery
from facecore.gallery.operating_points import OperatingPoints, check_name
from facecore.verification.metrics import METRICS
from facecore.verification.operating_points import TARGETS


def add_evaluate(commands, add_pipeline_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``evaluate`` sub-command's options."""
    evaluate = commands.add_parser(
        "evaluate", help="score a labelled set of your own (a folder per person, or a pairs CSV and its images)"
    )
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--folder", type=Path, help="a folder with one sub-folder of photos per person")
    source.add_argument("--pairs", type=Path, help="a CSV with the columns image_a,image_b,same (1 or 0)")
    evaluate.add_argument("--images", type=Path, help="the folder the pairs CSV's image names are relative to")
    add_pipeline_options(evaluate)
    evaluate.add_argument("--metric", choices=METRICS, default="euclidean")
    evaluate.add_argument("--max-impostors", type=int, default=None, help="impostor pairs sampled from a folder")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the impostor sample and the bootstrap")
    evaluate.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples of the procedure (0: none)")
    evaluate.add_argument("--per-pair", type=Path, default=None, help="write per-pair distances and decisions here")
    evaluate.add_argument("--save-as", default=None, help="store an operating point of this name, chosen on the set")
    evaluate.add_argument("--target", choices=TARGETS[:-1], default="FAR <= 0.1%", help="what --save-as chooses for")
    evaluate.add_argument("--activate", action="store_true", help="make the saved operating point the active one")
    evaluate.add_argument("--gallery", default=None, help=GALLERY_HELP)
    evaluate.add_argument("--no-cache", action="store_true", help="recompute every embedding")
    evaluate.add_argument("--cache-dir", type=Path, default=None, help="default: $FACECORE_CACHE_DIR or ~/.cache/facecore")


def _pair_set(args: argparse.Namespace):
    from facecore.evaluation.own_pairs import MAX_IMPOSTORS, OwnDataError, folder_pairs, read_pairs_csv

    if args.folder is not None:
        return folder_pairs(args.folder, max_impostors=args.max_impostors or MAX_IMPOSTORS, seed=args.seed)
    if args.images is None:
        raise OwnDataError("--pairs needs --images, the folder its image names are relative to.")
    if not args.pairs.is_file():
        raise OwnDataError(f"The pairs file {args.pairs} does not exist.")
    return read_pairs_csv(args.pairs, args.images)


def _gallery(args: argparse.Namespace):
    return open_cli_gallery(args.gallery)


def add_operating_points(commands, add_pipeline_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``operating-points`` sub-command's options."""
    points = commands.add_parser("operating-points", help="list the stored operating points or choose the active one")
    points.add_argument("action", choices=("list", "activate", "deactivate"))
    points.add_argument("name", nargs="?", default=None, help="the point to activate")
    add_pipeline_options(points)
    points.add_argument("--metric", choices=METRICS, default="euclidean")
    points.add_argument("--all", action="store_true", help="list every configuration's points")
    points.add_argument("--gallery", default=None, help=GALLERY_HELP)


def _log(gallery, action: str, result: dict) -> None:
    """One audit-log entry for a change made from the command line (caller ``"(cli)"``)."""
    from facecore.gallery import audit

    entry = audit.AuditEntry("(cli)", f"cli: {action}", result)
    audit.record(gallery.database, entry, retention_days=audit.configured_retention_days())


def run_operating_points(args: argparse.Namespace, config) -> int:
    from facecore.gallery import GalleryError

    try:
        gallery = _gallery(args)
    except GalleryError as error:
        print(error, file=sys.stderr)
        return 2
    with gallery:
        points = OperatingPoints(gallery.database)
        try:
            if args.action == "activate":
                if not args.name:
                    print("Name the operating point to activate.", file=sys.stderr)
                    return 2
                active = points.activate(config, args.metric, args.name)
                _log(gallery, "operating-points activate", {"operating_point": active.name, "metric": args.metric})
                print(f"active: {active.describe()}")
            elif args.action == "deactivate":
                points.activate(config, args.metric, None)
                _log(gallery, "operating-points deactivate", {"operating_point": None, "metric": args.metric})
                print(f"no active operating point for {config.describe()}, {args.metric}: the default decides")
            listed = points.list(None if args.all else config, None if args.all else args.metric)
        except GalleryError as error:
            print(error, file=sys.stderr)
            return 2
    for p in listed:
        print(f"{'*' if p.active else ' '} {p.describe()}")
    rows = [
        {"name": p.name, "model_version": p.model_version, "detector": p.detector, "metric": p.metric,
         "threshold": p.threshold, "source": p.source, "set_name": p.set_name, "set_size": p.set_size,
         "target": p.target, "active": p.active}
        for p in listed
    ]
    print(json.dumps(rows))
    return 0


def add_verify_batch(commands, add_pipeline_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``verify-batch`` sub-command's options."""
    batch = commands.add_parser("verify-batch", help="verify every pair of a CSV (image_a,image_b) and write a CSV")
    batch.add_argument("--pairs", type=Path, required=True, help="CSV with image_a,image_b (and optionally same)")
    batch.add_argument("--images", type=Path, required=True, help="the folder the CSV's image names are relative to")
    batch.add_argument("--output", type=Path, default=None, help="where to write the answers (default: stdout)")
    add_pipeline_options(batch)
    batch.add_argument("--metric", choices=METRICS, default="euclidean")
    batch.add_argument("--threshold", type=float, default=None, help="decide with this instead of the active point")
    batch.add_argument("--gallery", default=None, help="whose active operating point decides; " + GALLERY_HELP)
    batch.add_argument("--cache-dir", type=Path, default=None, help="default: $FACECORE_CACHE_DIR or ~/.cache/facecore")


def run_verify_batch(args: argparse.Namespace, config) -> int:
    """Write the answers, trailer included, to ``--output`` only once the whole answer checks complete.

    They go to a hidden ``.<name>.*.partial`` file beside ``--output``, read back with
    ``batch_verify.check_complete`` and only then renamed over it; a batch that stops (an image that
    cannot be decoded) or checks incomplete leaves no ``--output`` file, says so on stderr and exits 1.
    Without ``--output`` the rows go to stdout as they come, so there the trailer is the only sign.
    """
    import os
    import tempfile
    from dataclasses import replace

    from facecore.cache import EmbeddingCache
    from facecore.evaluation.batch_verify import (
        MAX_PAIRS,
        BatchTally,
        IncompleteBatch,
        check_complete,
        verify_pages,
    )
    from facecore.evaluation.own_pairs import OwnDataError, read_pairs_csv
    from facecore.images import ImageError
    from facecore.pipeline import build_pipeline
    from facecore.quality import QualityMinimums
    from facecore.verification.operating_points import deciding_threshold

    try:
        if not args.pairs.is_file():
            raise OwnDataError(f"The pairs file {args.pairs} does not exist.")
        if args.output is not None and not args.output.parent.is_dir():
            raise OwnDataError(f"The folder of --output, {args.output.parent}, does not exist.")
        pair_set = read_pairs_csv(args.pairs, args.images, labelled=False, max_pairs=MAX_PAIRS)
        minimums = QualityMinimums.from_env()  # the batch's quality columns judge against these
    except (OwnDataError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    with _gallery(args) as gallery:
        chosen = deciding_threshold(config, args.metric, OperatingPoints(gallery.database).active(config, args.metric))
    if args.threshold is not None:
        chosen = replace(chosen, threshold=args.threshold, name="command line", source=f"{args.threshold:g}: --threshold")
    print(f"deciding with {chosen.name}: {chosen.source}", file=sys.stderr)
    pipeline = build_pipeline(config, cache=EmbeddingCache(args.cache_dir))
    tally = BatchTally()
    pages = verify_pages(
        pair_set, pipeline.embed_primary_faces_with_quality, chosen, metric=args.metric, minimums=minimums, tally=tally
    )
    if args.output is None:
        try:
            for text in pages:
                sys.stdout.write(text)
        except (ImageError, OSError) as error:
            print(f"verify-batch stopped after {tally.answered} of {len(pair_set.pairs)} pairs: {error}", file=sys.stderr)
            return 1
        return 0
    handle, partial = tempfile.mkstemp(prefix=f".{args.output.name}.", suffix=".partial", dir=args.output.parent)
    try:
        with os.fdopen(handle, "w", newline="") as out:
            for text in pages:
                out.write(text)
        check_complete(Path(partial).read_text(), expected=len(pair_set.pairs))
        os.replace(partial, args.output)
    except (ImageError, OSError, IncompleteBatch) as error:
        print(
            f"verify-batch stopped after {tally.answered} of {len(pair_set.pairs)} pairs: {error} "
            f"Nothing was written to {args.output}.",
            file=sys.stderr,
        )
        return 1
    finally:
        Path(partial).unlink(missing_ok=True)
    return 0


def run_evaluate(args: argparse.Namespace, config) -> int:
    from tqdm import tqdm

    from facecore.cache import EmbeddingCache
    from facecore.evaluation.analysis import procedure_summary_with_ci
    from facecore.evaluation.own_data import evaluate_pairs
    from facecore.evaluation.own_pairs import OwnDataError
    from facecore.gallery import GalleryError

    try:
        if args.save_as is not None:
            check_name(args.save_as)  # before the slow part, not after it
        pair_set = _pair_set(args)
    except (OwnDataError, FileNotFoundError, GalleryError) as error:
        print(error, file=sys.stderr)
        return 2
    cache = None if args.no_cache else EmbeddingCache(args.cache_dir)
    with tqdm(total=0, unit="img", desc=f"embedding {pair_set.name}", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            evaluation = evaluate_pairs(pair_set, config, metric=args.metric, cache=cache, progress=progress)
        except ValueError as error:  # e.g. too few pairs of a class for the folds
            print(f"{pair_set.name} cannot be scored: {error}", file=sys.stderr)
            return 2
    summary = evaluation.summary()
    print(
        f"{pair_set.name}: {summary['genuine_pairs']} genuine + {summary['impostor_pairs']} impostor pairs, "
        f"{summary['images']} images, protocol: {evaluation.config['protocol']}"
    )
    print(f"pipeline: detector={config.detector} embedder={evaluation.config['embedder']} metric={args.metric}")
    print(
        f"accuracy {100 * summary['accuracy']:.2f}% +- {100 * summary['accuracy_std']:.2f}   "
        f"AUC {summary['auc']:.4f}   EER {100 * summary['eer']:.2f}%   "
        f"TAR@FAR=1e-3 {100 * summary['tar_at_far_1e-3']:.2f}%   threshold {summary['threshold']:.4f}"
    )
    if args.bootstrap > 0:
        table = procedure_summary_with_ci(evaluation.distances, evaluation.same, n_boot=args.bootstrap, seed=args.seed)
        print(f"the whole procedure (choose the threshold, then use it), {args.bootstrap} bootstrap resamples:")
        for row in table.itertuples(index=False):
            print(f"  {row.metric:<9} {row.value:.4f}  95% interval [{row[2]:.4f}, {row[3]:.4f}]")
    print(f"no face found in {summary['no_face']} of {summary['images']} images (centre box used); {summary['seconds']:.1f} s")
    if args.per_pair is not None:
        evaluation.per_pair().to_csv(args.per_pair, index=False)
        print(f"per-pair distances and decisions written to {args.per_pair}")
    if args.save_as is not None:
        from facecore.verification.operating_points import from_pairs

        try:
            point = from_pairs(args.save_as, config, args.metric, evaluation.distances, evaluation.same,
                               target=args.target, source="own set", set_name=pair_set.name)
            with _gallery(args) as gallery:
                saved = OperatingPoints(gallery.database).save(point, activate=args.activate)
                _log(gallery, "evaluate --save-as", {"operating_point": saved.name, "target": saved.target,
                                                     "threshold": saved.threshold, "active": saved.active})
        except (ValueError, GalleryError) as error:
            print(f"The operating point was not saved: {error}", file=sys.stderr)
            return 2
        print(f"saved {saved.describe()}{' (active)' if saved.active else ''} in the gallery at {gallery.location}")
        if saved.caveat:
            print(f"Warning: {saved.caveat}", file=sys.stderr)
    print(json.dumps(summary))
    return 0
