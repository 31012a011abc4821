"""Command line: python -m mnist_gan train | sweep | sample | interpolate | export ..."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import fields
from pathlib import Path

from .config import RECIPES, TRAINING_SETTINGS, GANConfig, recipe
from .device import DEVICES
from .errors import InvalidInput, MnistGanError


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per GANConfig field, so the CLI can never drift from the config."""
    group = parser.add_argument_group("run config (defaults: --recipe's, else the classic recipe)")
    labels = {s.name: f"{s.label}{': ' + s.info if s.info else ''}; " for s in TRAINING_SETTINGS}
    for f in fields(GANConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=labels.get(f.name))
        else:
            group.add_argument(flag, type={"int": int, "float": float, "str": str}[f.type], default=None,
                               metavar=f.type.upper(), help=f"{labels.get(f.name, '')}default {f.default}")


def _changes(args) -> dict:
    """The config flags given on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(GANConfig) if getattr(args, f.name) is not None}


def _config_from(args) -> GANConfig:
    """The config flags given on the command line, applied to --preset's config, else to --recipe."""
    if args.preset:
        return GANConfig.load(args.preset).replace(**_changes(args))
    return recipe(args.recipe, **_changes(args))


def _weights_dir(name_or_path: str | None) -> Path:
    from mnist_gan.model.generator import DEFAULT_MODEL, shipped_models

    name_or_path = name_or_path or DEFAULT_MODEL
    shipped = shipped_models()
    return shipped[name_or_path] if name_or_path in shipped else Path(name_or_path)


def cmd_train(args) -> int:
    from tqdm import tqdm

    from mnist_gan.training import events
    from mnist_gan.training.trainer import interrupts_stop, open_run

    from .data import load_mnist
    from .device import select_device

    device = select_device(args.device)  # before TensorFlow starts: it fixes the devices it sees
    data = load_mnist(args.data)
    if args.resume:
        # flags given with --resume change the run from here on (e.g. --steps to train longer)
        run_dir = Path(args.resume)
        trainer = open_run(run_dir, data, changes=_changes(args))
    else:
        config = _config_from(args)
        run_dir = Path(args.run_dir or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{config.architecture}")
        trainer = open_run(run_dir, data, config)
    trainer.notes["command"] = shlex.join(["python", "-m", "mnist_gan", *args.argv])
    bar = tqdm(total=trainer.config.steps, initial=trainer.step, unit="it", dynamic_ncols=True, disable=args.quiet)

    def show(event: events.Event) -> None:
        match event:
            case events.Step():
                bar.update(event.step - bar.n)
                bar.set_postfix(d_real=f"{event.d_acc_real:.2f}", d_fake=f"{event.d_acc_fake:.2f}",
                                g=f"{event.g_loss:.2f}", img_s=f"{event.images_per_sec:.0f}", refresh=False)
            case events.Quality():
                bar.write(f"step {event.step}: " + ", ".join(f"{k}={v:.3g}" for k, v in event.metrics.items()
                                                             if isinstance(v, float)))
            case events.StateChanged(state=events.State.FAILED):
                bar.write(event.message)

    trainer.subscribe(show)
    print(f"training on {device} (Ctrl-C stops it, saved)", flush=True)
    try:
        with interrupts_stop(trainer):
            state = trainer.run()
    except KeyboardInterrupt:  # a second Ctrl-C: out now, with the last checkpoint kept
        bar.close()
        print(f"interrupted; the run folder {run_dir} keeps its last checkpoint (resume with --resume {run_dir})")
        return 130
    bar.close()
    print(f"{state} at step {trainer.step}; run folder {run_dir} (resume with --resume {run_dir})")
    return 0


def cmd_sweep(args) -> int:
    from mnist_gan.sweeps.spec import load_spec, ranked
    from mnist_gan.sweeps.tune_runner import INSTALL_HINT, ray_available, run_sweep

    if not ray_available():
        raise InvalidInput(INSTALL_HINT)
    spec = load_spec(args.spec)  # every trial's config checked before Ray starts
    resume = f"run the same command again to resume: {shlex.join(['python', '-m', 'mnist_gan', *args.argv])}"
    try:
        rows = run_sweep(spec, args.out, data=args.data, address=args.address, max_concurrent=args.max_concurrent,
                         device=args.device)
    except KeyboardInterrupt:
        print(f"interrupted; {resume}")
        return 130
    for row in ranked(rows, spec)[:5]:
        shown = {key: "-" if row[key] is None else f"{row[key]:.4g}" for key in ("cfid", spec.rank_by)}
        figure = "" if spec.rank_by == "cfid" else f"best {spec.rank_by} {shown[spec.rank_by]}, "
        print(f"  {row['trial']}: {row['status']}, {row['steps']} steps, {figure}best cFID {shown['cfid']}, "
              f"weights {row['best']}")
    unfinished = sum(row["status"] not in ("finished", "stopped early", "diverged") for row in rows)
    if unfinished:
        print(f"{unfinished} trial(s) did not finish (failed or interrupted); {resume}")
    return 0


def cmd_sample(args) -> int:
    import numpy as np

    from mnist_gan.model.generator import Generator

    from .images import encode_png, grid_shape, make_grid

    generator = Generator.load(_weights_dir(args.weights))
    labels = None
    if args.digit is not None:
        if not generator.config.conditional:
            raise InvalidInput(f"--digit needs a class-conditional model; {generator.name} is unconditional")
        labels = np.full(args.n, args.digit)
    images = generator.generate(args.seed, args.n, labels, args.temperature)
    for out in args.out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".npz":
            np.savez_compressed(out, images=images)
        else:
            out.write_bytes(encode_png(make_grid(images, *grid_shape(len(images)), scale=args.scale)))
        print(f"wrote {out} ({len(images)} images from {generator.name}, seed {args.seed})")
    return 0


def cmd_interpolate(args) -> int:
    import numpy as np

    from mnist_gan.model.generator import Generator

    from .images import encode_gif, encode_png, interpolation, make_grid, to_uint8

    generator = Generator.load(_weights_dir(args.weights))
    z = interpolation(args.seed_a, args.seed_b, args.frames, generator.config.latent_dim)
    labels = np.full(len(z), args.digit) if args.digit is not None else None
    frames = to_uint8(generator.images(z, labels))
    Path(args.out).write_bytes(encode_png(make_grid(frames, rows=1, scale=args.scale)))
    print(f"wrote {args.out}")
    if args.gif:
        Path(args.gif).write_bytes(encode_gif(frames))
        print(f"wrote {args.gif}")
    return 0


def cmd_export(args) -> int:
    from mnist_gan.model.onnx_export import ONNX_FILE, ONNX_INFO, export_folder

    folder = _weights_dir(args.weights)
    info = export_folder(folder, args.out)
    inputs = ", ".join(f"{spec['name']} {spec['dtype']} {spec['shape']}" for spec in info["inputs"])
    print(f"wrote {Path(args.out) / ONNX_FILE} ({info['bytes']:,} bytes, sha256 {info['sha256'][:12]}…) and "
          f"{ONNX_INFO}: {info['generator']}; inputs {inputs}; output image [-1, 1]")
    return 0


def cmd_push(args) -> int:
    from mnist_gan.hub import push_pull

    folder = _weights_dir(args.weights)
    result = push_pull.push(folder, args.repo_id, push_pull.resolve_token(), private=args.private, tag=args.tag,
                      endpoint=args.endpoint)
    tagged = f" (tag {result.tag})" if result.tag else ""
    print(f"pushed {folder} to {result.repo_id} at {result.commit_sha}{tagged}")
    print(result.url)
    return 0


def cmd_pull(args) -> int:
    from mnist_gan.hub import push_pull
    from mnist_gan.model.generator import describe

    result = push_pull.pull(args.repo_id, args.revision, token=push_pull.resolve_token(), endpoint=args.endpoint,
                      cache_dir=args.cache_dir)
    print(f"pulled {result.repo_id} at {result.commit_sha}: a {describe(GANConfig.load(result.folder))}, "
          "every file checked")
    print(result.folder)
    print(f"sample it: python -m mnist_gan sample --weights {shlex.quote(str(result.folder))} --out grid.png")
    return 0


def cmd_deploy_space(args) -> int:
    from mnist_gan.hub import push_pull, space

    result = space.deploy(args.repo_id, push_pull.resolve_token(), private=args.private, admins=args.admins,
                          hardware=args.hardware, endpoint=args.endpoint)
    print(f"deployed {result.uploaded} files to the Space {result.repo_id} at {result.commit_sha}"
          + (f"; removed {len(result.deleted)} that no longer exist" if result.deleted else ""))
    if result.admins is not None:
        print(f"{space.ADMINS_VARIABLE}={result.admins or '(nobody: training, push and pull are closed)'}")
    print(result.url)
    return 0


def cmd_evaluate(args) -> int:
    import json
    import os

    import numpy as np

    from mnist_gan.model.generator import METRICS_FILE, Generator
    from mnist_gan.quality import metrics

    from .atomic_files import write_json
    from .data import load_mnist

    classifier = metrics.Classifier.load()
    labels = None
    if args.samples:
        with np.load(args.samples, allow_pickle=False) as npz:
            if "images" not in npz.files:
                raise InvalidInput(f"{args.samples} has no 'images' array (uint8 (N, 28, 28) or float [-1, 1])")
            images = npz["images"][:args.n]
            labels = npz["labels"][:args.n] if "labels" in npz.files else None
        name = str(args.samples)
    else:
        generator = Generator.load(_weights_dir(args.weights))
        z, labels = metrics.sample_inputs(args.seed, args.n, generator.config.latent_dim, generator.config.conditional)
        images, name = generator.images(z, labels), generator.name
    data_path = args.data or os.environ.get("MNIST_GAN_DATA")
    data = load_mnist(data_path) if data_path else None
    # precision/recall/density/coverage: against as many real test images as samples (the shipped bank without
    # --data, when it holds enough)
    bank = classifier.bank
    reals = (metrics.real_features(classifier, data, len(images)) if data else
             bank[:len(images)] if bank is not None and len(bank) >= len(images) else None)
    row = metrics.score(classifier, images, labels, *((data.x_train, data.x_test) if data else (None, None)),
                        reals=reals)
    row["seed"] = None if args.samples else args.seed
    references = classifier.record.get("reference_rows", {})
    covered = None
    if args.coverage:
        if args.samples:
            raise InvalidInput("--coverage inverts test digits with a generator: use it with --weights")
        from mnist_gan.quality import coverage

        covered = coverage.run(str(_weights_dir(args.weights)), args.coverage, data_path,
                               log=lambda line: print(line, file=sys.stderr))
    if args.json:
        # not "coverage": the quality row has a kNN coverage of its own
        extra = {"inversion_coverage": _coverage_json(covered)} if covered else {}
        print(json.dumps({name: row, **references, **extra}, indent=2))
    else:
        _print_quality({name: row, **{f"reference: {k}": v for k, v in references.items()}})
        if data is None:
            print("memorisation not computed: it needs the training images (pass --data or set MNIST_GAN_DATA)")
        if reals is None:
            print(f"precision/recall/density/coverage not computed: more samples than the {metrics.BANK_FILE} "
                  "bank holds; pass --data")
    if covered and not args.json:
        _print_coverage(covered, as_json=False)
    if args.write:
        if args.samples:
            raise InvalidInput("--write saves metrics.json into a weights folder: use it with --weights")
        row["command"] = shlex.join(["python", "-m", "mnist_gan", *args.argv])
        write_json(generator.folder / METRICS_FILE, row)
        print(f"wrote {generator.folder / METRICS_FILE}", file=sys.stderr)
    return 0


def cmd_coverage(args) -> int:
    import os

    from mnist_gan.inside.figures import pairs
    from mnist_gan.quality import coverage

    from .images import encode_png

    result = coverage.run(str(_weights_dir(args.weights)), args.n, args.data or os.environ.get("MNIST_GAN_DATA"),
                          args.restarts, log=lambda line: print(line, file=sys.stderr))
    _print_coverage(result, args.json)
    if args.out:
        Path(args.out).write_bytes(encode_png(pairs(result["targets"], result["reconstructions"])))
        print(f"wrote {args.out}: the {len(result['worst'])} worst-covered digits over their reconstructions",
              file=sys.stderr)
    return 0


def _coverage_json(result: dict) -> dict:
    keep = ("rows", "exact_bar", "own_sample_error_median", "labels_given", "test_digits", "training_digits")
    return {k: v for k, v in result.items() if k in keep}


def _print_coverage(result: dict, as_json: bool) -> None:
    import json

    from mnist_gan.quality import coverage

    if as_json:
        print(json.dumps(_coverage_json(result), indent=2))
        return
    print(f"coverage of {result['test_digits']}{' (each given its true digit)' if result['labels_given'] else ''}; "
          "error: RMS pixel difference (0-1); well: below the digit's own half-pixel-shift error; nearest: among "
          f"{result['training_digits']}; optimiser's slack: error <= {result['exact_bar']:.4f} (95th percentile "
          "of inverting 200 of the model's own samples)")
    print(coverage.table(result))


def _print_quality(rows: dict[str, dict]) -> None:
    """One Markdown table: a row per sample set, a column per metric."""
    columns = ["n", "cfid", "cfid_x_real", "classifier_score", "recognisable", "class_min", "class_max", "class_kl",
               "label_agreement", "nn_ratio", "near_copies", "precision", "recall", "density", "coverage"]
    columns = [c for c in columns if any(c in row for row in rows.values())]

    def cell(value) -> str:
        return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    print("| set | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(cell(row.get(c)) for c in columns) + " |")


def cmd_train_classifier(args) -> int:
    from mnist_gan.quality import metrics

    from .atomic_files import write_json
    from .data import load_mnist

    data = load_mnist(args.data)
    if args.references_only:  # keep the trained judge; recompute the bank and the reference rows
        record = metrics.Classifier.load(args.out).record
        record["references_command"] = shlex.join(["python", "-m", "mnist_gan", *args.argv])
    else:
        model, record = metrics.train_classifier(data, epochs=args.epochs, seed=args.seed)
        record["command"] = shlex.join(["python", "-m", "mnist_gan", *args.argv])
        _, test_features = metrics.Classifier(model).predict(data.x_test)
        metrics.save_classifier(args.out, model, record, test_features)
    classifier = metrics.Classifier.load(args.out)
    metrics.save_reference_bank(args.out, classifier, data)
    references = metrics.baseline_rows(classifier, data)
    if args.references_only:
        # keep the figures already recorded (a recomputation differs in the 7th digit: float summation order), so
        # every model's cFID x real stays as it was; add the new ones
        references["held_out_cfid"] = record.get("held_out_cfid", references["held_out_cfid"])
        for name, row in record.get("reference_rows", {}).items():
            references["reference_rows"][name] = {**references["reference_rows"][name], **row}
    record.update(references)
    write_json(Path(args.out) / metrics.CLASSIFIER_RECORD, record)
    print(f"test accuracy {record['test_accuracy']:.4f}; wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_gan", description="Train and sample MNIST GANs.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a GAN (progress bar, checkpoints, resumable)")
    train.add_argument("--data", help="MNIST .npz (keys x_train, y_train, x_test, y_test); default $MNIST_GAN_DATA "
                                      "or keras.datasets download")
    train.add_argument("--run-dir", help="folder for checkpoints, sample grids and final weights")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in this folder from its checkpoint")
    train.add_argument("--preset", metavar="WEIGHTS_DIR", help="start from this folder's gan_config.json")
    train.add_argument("--recipe", choices=sorted(RECIPES), default="classic",
                       help="the named recipe the config flags change (default: classic, the Keras GAN recipe; "
                            "recommended: the Train tab's)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--device", choices=DEVICES, default="auto",
                       help="auto (default): a GPU when TensorFlow sees one, else the CPU; gpu fails without one")
    _add_config_flags(train)
    train.set_defaults(func=cmd_train)

    sweep = sub.add_parser("sweep", help="many runs on Ray Tune: grid, seeds, random search, ASHA early stopping",
                           description="Run the trials of SPEC (JSON; README: Sweeps) on Ray Tune; again with the "
                                       "same --out, resume it. Needs pip install -r requirements-ray.txt.")
    sweep.add_argument("spec", help="the sweep spec, a JSON file: base, grid, seeds, sample, early_stopping")
    sweep.add_argument("--out", required=True, help="the sweep folder: runs/, results.json, results.md, tune/")
    sweep.add_argument("--data", help="MNIST .npz (default $MNIST_GAN_DATA or keras.datasets download); on a "
                                      "cluster, at the same path on every node")
    sweep.add_argument("--address", help="a Ray cluster's address (HOST:PORT of `ray start --head`); default: a "
                                         "local Ray on 127.0.0.1 with this machine's cores")
    sweep.add_argument("--max-concurrent", type=int, help="trials at a time (default: one per CPU); each gets an "
                                                          "equal share of the CPUs as its threads")
    sweep.add_argument("--device", choices=DEVICES, default="auto", help="as train's; a GPU is shared among trials")
    sweep.set_defaults(func=cmd_sweep)

    sample = sub.add_parser("sample", help="write a PNG grid and/or an .npz of generated digits")
    sample.add_argument("--weights", help="shipped model name or weights folder (default: the default model)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--n", type=int, default=64, help="number of images (1..100000)")
    sample.add_argument("--digit", type=int, choices=range(10), help="conditional models: draw only this digit")
    sample.add_argument("--temperature", type=float, default=1.0, help="scale of z")
    sample.add_argument("--scale", type=int, default=2, help="PNG upscaling factor")
    sample.add_argument("--out", action="append", required=True,
                        help="output file: .png (grid) or .npz (key images, uint8 (N, 28, 28)); repeatable")
    sample.set_defaults(func=cmd_sample)

    interp = sub.add_parser("interpolate", help="spherical interpolation between two seeds: frame strip + GIF")
    interp.add_argument("--weights", help="shipped model name or weights folder")
    interp.add_argument("--seed-a", type=int, default=0)
    interp.add_argument("--seed-b", type=int, default=1)
    interp.add_argument("--frames", type=int, default=16)
    interp.add_argument("--digit", type=int, choices=range(10), help="conditional models: the digit to draw")
    interp.add_argument("--scale", type=int, default=2)
    interp.add_argument("--out", default="interpolation.png", help="frame strip PNG")
    interp.add_argument("--gif", help="also write an animated GIF here")
    interp.set_defaults(func=cmd_interpolate)

    export = sub.add_parser("export", help="write the generator as ONNX (generator.onnx) with a JSON that describes "
                                           "it: what the page runs in the browser")
    export.add_argument("--weights", help="shipped model name or weights folder (default: the default model)")
    export.add_argument("--out", required=True, help="folder for generator.onnx and generator.onnx.json")
    export.set_defaults(func=cmd_export)

    hub_help = "Hub URL (default $HF_ENDPOINT or https://huggingface.co)"
    push = sub.add_parser("push", help="publish a weights folder to the Hugging Face Hub (token: $HF_TOKEN)")
    push.add_argument("repo_id", help="owner/name; created if needed")
    push.add_argument("--weights", help="shipped model name or weights folder (default: the default model)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--tag", help="also tag the commit, e.g. v1")
    push.add_argument("--endpoint", help=hub_help)
    push.set_defaults(func=cmd_push)

    pull = sub.add_parser("pull", help="download a model from the Hub, check every file's sha256, and load-check it")
    pull.add_argument("repo_id", help="owner/name")
    pull.add_argument("--revision", default="main", help="branch, tag or full commit sha (a sha pulled before "
                                                         "loads offline)")
    pull.add_argument("--endpoint", help=hub_help)
    pull.add_argument("--cache-dir", help="download cache (default: the Hugging Face cache, $HF_HOME)")
    pull.set_defaults(func=cmd_pull)

    deploy = sub.add_parser("deploy-space", help="create or update a Hugging Face Space running this app, in one "
                                                 "commit (token: $HF_TOKEN)")
    deploy.add_argument("repo_id", help="OWNER/NAME of the Space; created (Gradio SDK) if needed")
    deploy.add_argument("--private", action="store_true", help="create the Space private")
    deploy.add_argument("--admins", metavar="ALICE,BOB", help="Hugging Face users who may train, push and pull on "
                        "the Space (sets its MNIST_GAN_ADMINS variable; without it the variable is left as it is, "
                        "and a Space with none is closed to changes)")
    deploy.add_argument("--hardware", help="request this hardware, e.g. cpu-basic (the free default) or cpu-upgrade")
    deploy.add_argument("--endpoint", help=hub_help)
    deploy.set_defaults(func=cmd_deploy_space)

    evaluate = sub.add_parser("evaluate", help="quality metrics (cFID, classifier score, classes, memorisation)")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="shipped model name or weights folder")
    source.add_argument("--samples", help=".npz with images (uint8 (N, 28, 28) or [-1, 1]) and optional labels")
    evaluate.add_argument("--n", type=int, default=10_000, help="number of samples (compare cFID only at equal N)")
    evaluate.add_argument("--seed", type=int, default=0, help="latent seed for --weights")
    evaluate.add_argument("--data", help="MNIST .npz for the memorisation check (default $MNIST_GAN_DATA; "
                                         "skipped without it)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.add_argument("--write", action="store_true", help="also save metrics.json into the weights folder")
    evaluate.add_argument("--coverage", type=int, default=0, metavar="N",
                          help="also invert N held-out test digits: can the generator draw every digit? (the "
                               "coverage command; not the table's kNN coverage column)")
    evaluate.set_defaults(func=cmd_evaluate)

    cover = sub.add_parser("coverage", help="invert held-out test digits: can the generator draw every digit?")
    cover.add_argument("--weights", help="shipped model name or weights folder (default: the default model)")
    cover.add_argument("--n", type=int, default=1000, help="test digits to invert (the first N)")
    cover.add_argument("--data", help="MNIST .npz (default $MNIST_GAN_DATA, else the bundled sample's 1,000 test "
                                      "digits)")
    cover.add_argument("--restarts", type=int, default=4, help="restarts per digit")
    cover.add_argument("--out", help="PNG of the worst-covered digits over their reconstructions")
    cover.add_argument("--json", action="store_true", help="print JSON instead of a table")
    cover.set_defaults(func=cmd_coverage)

    classifier = sub.add_parser("train-classifier", help="train the judge the quality metrics use")
    classifier.add_argument("--data", help="MNIST .npz (default $MNIST_GAN_DATA or keras.datasets download)")
    classifier.add_argument("--out", default="weights/classifier", help="folder for the classifier")
    classifier.add_argument("--epochs", type=int, default=8)
    classifier.add_argument("--seed", type=int, default=0)
    classifier.add_argument("--references-only", action="store_true",
                            help="keep the trained classifier in --out; rewrite its feature bank and reference rows")
    classifier.set_defaults(func=cmd_train_classifier)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    if getattr(args, "n", 1) is not None and not 1 <= getattr(args, "n", 1) <= 100_000:
        print("error: --n must be between 1 and 100000", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except MnistGanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug: the traceback goes to a file, the terminal gets one line that says where
        import tempfile
        import traceback

        with tempfile.NamedTemporaryFile("w", prefix="mnist-gan-error-", suffix=".log", delete=False) as log:
            traceback.print_exception(e, file=log)
        print(f"internal error ({type(e).__name__}): this is a bug, not your input; its traceback is in {log.name}",
              file=sys.stderr)
        return 3
