"""ONNX Runtime (CPU) vs PyTorch: images/s of an exported model against the PyTorch path, same images.

Timed over the same images (synthetic faces of ``faceparse.data.synthetic``,
512x512 by default; or a pipeline's val split), one process, the same number
of CPU threads for both:

- ``pytorch``           ``faceparse.predict.runner.run_split`` without TTA - the evaluate
                        step's plain pass: the config's test pipeline, mmseg's
                        ``test_step``, masks at each image's size;
- ``onnxruntime``       ``faceparse.predict.parse.Parser`` at scale 1.0 with the exported
                        model - the same decode, resize, the ONNX graph, logits resized
                        back, argmax - writing the same label PNGs;
- ``faceparse.predict.parse``   the CLI's :func:`faceparse.predict.parse.parse_folder` at scale 1.0 over
                        the same images: also the overlay JPEGs and parse.json, every
                        file written atomically (more output than ``pytorch`` writes);
- ``pytorch forward`` / ``onnxruntime forward``  the network alone, 10 calls on one image
                        at the model's input size (batch 1), no data handling.

Each is warmed up once, then repeated (interleaved); the best time of each is
reported, with the masks' agreement between the two paths. Prints a table,
writes JSON.

Usage::

    python bench/bench_onnx.py                            # demo_tiny, random weights, 32 faces
    python bench/bench_onnx.py --model demo_tiny          # the pipeline's selected checkpoint and val split
    python bench/bench_onnx.py --config configs/seed_convnext_xl.py --images 8
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_predict import _random_checkpoint  # the same random-weight model (bench/ is the script's path)
from faceparse.mm.pipelines import config_test_pipeline, input_resize, without_annotations
from faceparse.predict.export import export_onnx
from faceparse.predict.exportable import exportable
from faceparse.predict.models import load_model, model_paths
from faceparse.predict.parse import parse_folder
from faceparse.predict.photo_parser import OnnxBackend, Parser, read_image
from faceparse.predict.runner import run_split
from faceparse.records import SplitFiles, split_files

FORWARDS = 10  # network-only calls per timed run


def _faces(folder: Path, n: int, size: int) -> SplitFiles:
    from faceparse.data.synthetic import generate_face

    folder.mkdir(parents=True)
    names = [f"face_{i:03d}" for i in range(n)]
    for i, name in enumerate(names):
        jpeg, _ = generate_face(size=size, seed=7, split="val", index=i)
        (folder / f"{name}.jpg").write_bytes(jpeg)
    return SplitFiles("val", tuple(names), tuple(str(folder / f"{n}.jpg") for n in names), None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a pipeline model: results/models/{model}/{train,best}.json, its val split")
    ap.add_argument("--config", default="configs/demo_tiny.py", help="mmseg config (without --model)")
    ap.add_argument("--checkpoint", help="checkpoint for --config (random weights when absent)")
    ap.add_argument("--validation", default="results/data/validation.json", help="the index --model uses")
    ap.add_argument("--images", type=int, default=32, help="synthetic faces (or the first N of val with --model)")
    ap.add_argument("--size", type=int, default=512, help="size of the synthetic faces")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of both runtimes")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repeats; the best time is reported")
    ap.add_argument("--out", default="results/bench/bench_onnx.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        return _bench(args, Path(tmp))


def _bench(args, tmp: Path) -> int:
    if args.model:
        config, checkpoint = model_paths(
            f"results/models/{args.model}/best.json", f"results/models/{args.model}/train.json"
        )
        files = split_files(args.validation, "val")
        files = SplitFiles("val", files.names[: args.images], files.images[: args.images], None)
    else:
        config = args.config
        checkpoint = args.checkpoint or _random_checkpoint(config, tmp / "random.pth")
        files = _faces(tmp / "faces", args.images, args.size)
    model, cfg = load_model(config, checkpoint, "cpu")
    resize = input_resize(cfg)
    with Image.open(files.images[0]) as im:
        photo_hw = (im.height, im.width)
    export_onnx(model, cfg, tmp / "model.onnx", example_size=resize["scale"][::-1] if resize["scale"] else photo_hw)
    parser = Parser(OnnxBackend(tmp / "model.onnx", args.threads), [1.0], False)
    input_hw = parser.input_size(*photo_hw, 1.0)
    pipeline = without_annotations(config_test_pipeline(cfg))
    wrapper = exportable(model, cfg)
    x = torch.rand(1, 3, *input_hw) * 255
    session = parser.backend.session

    def pytorch() -> None:
        run_split(model, files, pipeline, out_dir=tmp / "pred_torch", batch_size=1, workers=0)

    def onnxruntime() -> None:
        out = tmp / "pred_onnx"
        out.mkdir(exist_ok=True)
        for name, image in zip(files.names, files.images):
            Image.fromarray(parser.parse(read_image(image)), mode="L").save(out / f"{name}.png")

    photos = tmp / "photos"  # the images as one folder for parse_folder (a val split's folder holds more)
    photos.mkdir()
    for name, image in zip(files.names, files.images):
        (photos / f"{name}{Path(image).suffix}").symlink_to(Path(image).resolve())

    cli_runs = itertools.count()

    def parse_cli() -> None:  # a new output folder each time: nothing to replace
        parse_folder(photos, tmp / f"parsed_{next(cli_runs)}", parser, progress=False)

    def pytorch_forward() -> None:
        with torch.inference_mode():
            for _ in range(FORWARDS):
                wrapper(x)

    def onnx_forward() -> None:
        for _ in range(FORWARDS):
            session.run(["logits"], {"image": x.numpy()})

    plan = {
        "pytorch": (pytorch, len(files.names)),
        "onnxruntime": (onnxruntime, len(files.names)),
        "faceparse.predict.parse": (parse_cli, len(files.names)),
        "pytorch forward": (pytorch_forward, FORWARDS),
        "onnxruntime forward": (onnx_forward, FORWARDS),
    }
    best = _best_times(plan, args.repeat)
    import onnxruntime as ort

    runs = {name: {"seconds": best[name], "images_per_s": plan[name][1] / best[name]} for name in plan}
    rate = {name: run["images_per_s"] for name, run in runs.items()}
    result = {
        "config": str(config),
        "checkpoint": str(checkpoint) if args.model or args.checkpoint else "random weights",
        "images": len(files.names),
        "photo_size": list(photo_hw),
        "model_input_size": list(input_hw),
        "threads": args.threads,
        "repeat": args.repeat,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "runs": runs,
        "speedup": {
            "end_to_end": rate["onnxruntime"] / rate["pytorch"],
            "parse_cli": rate["faceparse.predict.parse"] / rate["pytorch"],
            "network": rate["onnxruntime forward"] / rate["pytorch forward"],
        },
        "mask_agreement_percent": _agreement(tmp / "pred_torch", tmp / "pred_onnx", files.names),
    }
    _print(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _best_times(plan: dict, repeat: int) -> dict[str, float]:
    """Each run's best wall time over ``repeat`` interleaved rounds, after one warm-up round."""
    for fn, _ in plan.values():  # warm-up: first-call costs land on no measured run
        fn()
    best = {name: float("inf") for name in plan}
    for _ in range(repeat):
        for name, (fn, _) in plan.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _agreement(a_dir: Path, b_dir: Path, names) -> float:
    """Percent of pixels on which two folders' label PNGs agree."""
    agree = total = 0
    for name in names:
        a = np.asarray(Image.open(a_dir / f"{name}.png"))
        b = np.asarray(Image.open(b_dir / f"{name}.png"))
        agree, total = agree + int((a == b).sum()), total + a.size
    return 100.0 * agree / total


def _print(result: dict) -> None:
    (h, w), (ih, iw) = result["photo_size"], result["model_input_size"]
    print(
        f"{result['images']} images {h}x{w}, model input {ih}x{iw}, {result['threads']} threads, "
        f"best of {result['repeat']}"
    )
    print(f"{'path':22s} {'images/s':>9s}")
    for name, run in result["runs"].items():
        print(f"{name:22s} {run['images_per_s']:9.2f}")
    speedup = result["speedup"]
    print(
        f"onnxruntime / pytorch: {speedup['end_to_end']:.2f}x end to end ({speedup['parse_cli']:.2f}x with the "
        f"CLI's overlays), {speedup['network']:.2f}x the network alone; masks agree on "
        f"{result['mask_agreement_percent']:.3f}% of pixels"
    )


if __name__ == "__main__":
    sys.exit(main())
