"""Peak memory and time of `python -m faceparse.predict.parse` per photo size.

One photo per size (a synthetic face of ``faceparse.data.synthetic`` scaled up
to the size, 4:3, JPEG quality 90) in a folder of its own, parsed by a fresh
process running the CLI (``faceparse.predict.parse.main``) with an ONNX export on the
CPU; the process reports its peak resident memory (``VmHWM`` of
``/proc/self/status``, else ``getrusage`` ``ru_maxrss``) and its wall time. A
process that only loads the model gives the baseline. Prints a table, writes
JSON.

Usage::

    python bench/bench_parse.py                     # demo_tiny, random weights, 1 and 12 MP, 3 scales x flip
    python bench/bench_parse.py --onnx results/models/demo_tiny/export/demo_tiny.onnx
    python bench/bench_parse.py --scales 1.0 --no-flip --megapixels 1 12 24
    python bench/bench_parse.py --src /tmp/old/src  # another checkout's faceparse (e.g. before a change)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

# Runs in the child: the CLI (or only the model load), then the process's own peak memory: VmHWM, the
# high-water mark of its address space since exec (ru_maxrss would also count the parent's memory,
# which a forked child holds until it execs), or ru_maxrss where /proc is missing.
CHILD = """
import json, resource, sys, time
argv = json.loads(sys.argv[1])
start = time.perf_counter()
if argv[0] == "--load-only":
    from faceparse.predict.photo_parser import load_backend
    load_backend(argv[1], threads=int(argv[2]))
    status = 0
else:
    from faceparse.predict.parse import main
    status = main(argv)
seconds = time.perf_counter() - start
try:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except OSError:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"status": status, "seconds": seconds, "max_rss_mib": kib / 1024}))
"""


def _photo(folder: Path, megapixels: float) -> tuple[int, int]:
    """A 4:3 synthetic face of ``megapixels`` as ``folder/face.jpg``; its (h, w)."""
    from faceparse.data.synthetic import generate_face

    jpeg, _ = generate_face(size=512, seed=7, split="val", index=0)
    w = int(round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    h = int(round(w * 3 / 4))
    face = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    folder.mkdir(parents=True)
    cv2.imwrite(
        str(folder / "face.jpg"),
        cv2.resize(face, (w, h), interpolation=cv2.INTER_LINEAR),
        [cv2.IMWRITE_JPEG_QUALITY, 90],
    )
    return h, w


def _random_onnx(config: str, tmp: Path) -> Path:
    """``config`` with random weights, exported (bench_onnx's model; needs the training stack)."""
    from bench_predict import _random_checkpoint  # bench/ is the script's path
    from faceparse.mm.pipelines import input_resize
    from faceparse.predict.export import export_onnx
    from faceparse.predict.models import load_model

    model, cfg = load_model(config, _random_checkpoint(config, tmp / "random.pth"), "cpu")
    scale = input_resize(cfg)["scale"] or [512, 512]
    export_onnx(model, cfg, tmp / "model.onnx", example_size=scale[::-1])
    return tmp / "model.onnx"


def _child(argv: list[str], src: str | None) -> dict:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(argv)], capture_output=True, text=True, env=env, timeout=3600
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"the parse process failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", help="an exported model (default: --config with random weights, exported)")
    ap.add_argument("--config", default="configs/demo_tiny.py", help="mmseg config of the random-weight model")
    ap.add_argument("--megapixels", type=float, nargs="+", default=[1.0, 12.0], help="photo sizes")
    ap.add_argument("--scales", type=float, nargs="+", default=[0.75, 1.0, 1.25], help="TTA scales")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="face-aware flip TTA")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the model")
    ap.add_argument("--src", help="a folder put first on the child's PYTHONPATH (another checkout's src/)")
    ap.add_argument("--out", default="results/bench/bench_parse.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_parse_") as tmp_name:
        tmp = Path(tmp_name)
        onnx = Path(args.onnx) if args.onnx else _random_onnx(args.config, tmp)
        runs = [{"photo": "none (model load only)", **_child(["--load-only", str(onnx), str(args.threads)], args.src)}]
        for mp in args.megapixels:
            h, w = _photo(tmp / f"in_{mp:g}", mp)
            cli = [
                str(tmp / f"in_{mp:g}"),
                str(tmp / f"out_{mp:g}"),
                "--model",
                str(onnx),
                "--threads",
                str(args.threads),
                "--scales",
                *map(str, args.scales),
                "--flip" if args.flip else "--no-flip",
            ]
            runs.append({"photo": f"{h}x{w}", "megapixels": h * w / 1e6, **_child(cli, args.src)})
    result = {
        "model": str(args.onnx or f"{args.config}, random weights"),
        "tta": {"scales": args.scales, "flip": args.flip},
        "threads": args.threads,
        "src": args.src or "this checkout",
        "cpu": platform.processor() or platform.machine(),
        "runs": runs,
    }
    print(f"TTA scales {args.scales}, flip {args.flip}, {args.threads} threads; {result['model']}")
    print(f"{'photo (HxW)':24s} {'peak RSS MiB':>12s} {'seconds':>8s} {'exit':>4s}")
    for run in runs:
        print(f"{run['photo']:24s} {run['max_rss_mib']:12.0f} {run['seconds']:8.1f} {run['status']:4d}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(run["status"] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
