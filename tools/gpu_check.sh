#!/usr/bin/env bash
# The seed model on a GPU, in one command for a bare, offline GPU machine.
#
#   tools/gpu_check.sh OUT_DIR WHEELS_DIR          GPU mode
#   tools/gpu_check.sh --cpu OUT_DIR [WHEELS_DIR]  CPU mode (this repository's .venv, configs/demo_tiny.py)
#
# GPU mode expects Python 3.12 with torch (CUDA), timm, numpy, opencv and a
# C++ compiler, and no mmcv/mmengine/mmseg; WHEELS_DIR is what
# tools/prepare_gpu_wheels.sh made. Within FACEPARSE_CHECK_SECONDS (480) it
#   1. installs the carried wheels into a scratch site-packages (no network)
#      and compiles mmcv's ops from the patched sdist with all cores (CPU ops,
#      as tools/build_mmcv.sh builds them: our models use no mmcv CUDA op);
#   2. records the machine and the package versions (env);
#   3. runs bench/bench_train.py on configs/seed_convnext_xl.py: bf16 and fp16
#      at batch 4 (up to 50 timed iterations after 10 warm-up) and at the
#      largest batch that fits (found in bf16, capped at 64), and bf16 batch 4
#      with channels_last if time is left;
#   4. evaluates and predicts a few synthetic 512x512 faces on the GPU with
#      the seed's 5 TTA scales and the face-aware flip (configs/runs/seed_improved.yaml's
#      TTA; configs/runs/seed.yaml's is the same without the flip), from the checkpoint
#      the bf16 batch-4 run saved, with the hub offline (no pretrained download);
#   5. runs bench/bench_loader.py: the seed's training pipeline per worker and
#      the workers that the measured training rates (batch 4, largest batch)
#      need on this machine;
# (FACEPARSE_CHECK_SECONDS raises the budget on a slower node)
# and writes OUT_DIR/gpu_check.json (every step's status, seconds and results)
# and OUT_DIR/gpu_check.log. A failed or timed-out step is recorded and the
# next one runs; steps that no longer fit the time budget are skipped. Exit
# status 0 only when every step succeeded.
#
# CPU mode runs the same steps with the .venv's Python, the demo config and
# tiny counts (fp32 instead of bf16/fp16, which need a GPU); with WHEELS_DIR
# it also checks and installs the carried wheels and unpacks the sdist, but
# uses the .venv's compiled mmcv. tests/test_gpu_check.py runs it.
set -uo pipefail

MODE=gpu
if [ "${1:-}" = --cpu ]; then MODE=cpu; shift; fi
OUT=${1:?usage: tools/gpu_check.sh [--cpu] OUT_DIR [WHEELS_DIR]}
WHEELS=${2:-}
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUDGET=${FACEPARSE_CHECK_SECONDS:-480}
RESERVE=10  # kept for writing the JSON
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu_check.log
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")  # scratch: site-packages, checkpoint, step JSONs
RES=$WORK/results
mkdir -p "$RES"
: >"$LOG"
: >"$WORK/steps.tsv"
trap 'rm -rf "$WORK"' EXIT

if [ "$MODE" = gpu ]; then
  PY=${PYTHON:-python3}
  CONFIG=configs/seed_convnext_xl.py
  DEVICE=cuda:0
  [ -n "$WHEELS" ] || { echo "gpu_check: GPU mode needs WHEELS_DIR (tools/prepare_gpu_wheels.sh DIR)" >&2; exit 2; }
  TRAIN_COMMON=(--iters 50 --warmup 10 --max-seconds 25)
  MAX_BATCH=(--batch-size 8 --max-batch-cap 64 --iters 20 --warmup 3 --max-seconds 25)
  SMALL_BATCH=4
  FAST=(bf16 fp16)
  INFER=(--images 4 --scales 0.5 0.75 1.0 1.25 1.5 --batch-size 2)
  LOADER=(--n 32 --passes 1 --workers 4 8)
else
  PY=${PYTHON:-$REPO/.venv/bin/python}
  CONFIG=configs/demo_tiny.py
  DEVICE=cpu
  TRAIN_COMMON=(--iters 3 --warmup 1 --threads 2 --crop 128 128)
  MAX_BATCH=(--batch-size 2 --max-batch-cap 4 --iters 2 --warmup 1 --threads 2 --crop 128 128)
  SMALL_BATCH=2
  FAST=(fp32)
  INFER=(--images 2 --scales 0.75 1.0 --batch-size 2)
  LOADER=(--n 4 --passes 1 --workers 1)
fi
[ -n "$WHEELS" ] && WHEELS=$(cd "$WHEELS" && pwd)
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
cd "$REPO" || exit 2

say() { echo "gpu_check: $*" | tee -a "$LOG" >&2; }

# step NAME MAX_SECONDS MIN_SECONDS CMD...: run CMD (output to the log) within
# MAX_SECONDS and what is left of the budget; skip it when under MIN_SECONDS is left.
step() {
  local name=$1 max=$2 min=$3; shift 3
  local left=$((BUDGET - RESERVE - SECONDS))
  if [ "$left" -lt "$min" ]; then
    say "$name: skipped, ${left}s of the budget left (needs ${min}s)"
    printf '%s\tskipped\t0\t-\n' "$name" >>"$WORK/steps.tsv"
    return 1
  fi
  local limit=$((max < left ? max : left)) t0=$SECONDS rc status
  echo "===== $name (limit ${limit}s): $*" >>"$LOG"
  # timeout runs programs, not functions: hand bash this script's state and functions
  # (timeout signals its whole process group, so the Python children stop too).
  timeout -k 10 "$limit" bash -c "$(declare -p "${STATE[@]}"); $(declare -f "${FUNCS[@]}"); \"\$@\"" \
    "$name" "$@" >>"$LOG" 2>&1
  rc=$?
  case $rc in 0) status=ok ;; 124|137) status=timeout ;; *) status=failed ;; esac
  say "$name: $status after $((SECONDS - t0))s (rc $rc)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t0))" "$rc" >>"$WORK/steps.tsv"
  [ "$rc" = 0 ]
}

env_info() {
  "$PY" - "$RES/env.json" "$MODE" <<'EOF'
import importlib, json, os, platform, sys
out, mode = sys.argv[1:]
info = {"mode": mode, "python": platform.python_version(), "executable": sys.executable,
        "cpu_cores": os.cpu_count(), "machine": platform.machine(), "packages": {}}
for name in ("torch", "torchvision", "timm", "numpy", "cv2", "mmcv", "mmengine", "mmseg"):
    try:
        info["packages"][name] = importlib.import_module(name).__version__
    except Exception as exc:
        info["packages"][name] = f"not importable: {type(exc).__name__}"
import torch
info["cuda_available"] = torch.cuda.is_available()
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info["gpu"] = {"name": p.name, "memory_gb": p.total_memory / 2**30, "capability": f"{p.major}.{p.minor}",
                   "count": torch.cuda.device_count(), "cuda": torch.version.cuda,
                   "bf16_supported": torch.cuda.is_bf16_supported()}
json.dump(info, open(out, "w"), indent=2)
print(json.dumps(info))
EOF
}

# The carried wheels into $WORK/site; mmcv compiled from the patched sdist (GPU mode).
install() {
  local site=$WORK/site src
  (cd "$WHEELS" && sha256sum -c --quiet SHA256SUMS) || { echo "install: $WHEELS/SHA256SUMS does not match"; return 1; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$WHEELS"/*.whl || return 1
  tar xzf "$WHEELS"/mmcv-*-patched.tar.gz -C "$WORK" || return 1
  src=$(ls -d "$WORK"/mmcv-*/)
  grep -q 'importlib.metadata import PackageNotFoundError' "$src/setup.py" \
    || { echo "install: $src/setup.py is not patched (made by tools/prepare_gpu_wheels.sh?)"; return 1; }
  if [ "$MODE" = cpu ]; then
    echo "install: CPU mode keeps the .venv's compiled mmcv (the sdist is unpacked and checked only)"
  else
    local include
    include=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    [ -f "$include/Python.h" ] || { echo "install: no Python.h in $include: the Python headers (python3-dev) are needed to compile mmcv"; return 1; }
    (cd "$src" && env MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" CUDA_VISIBLE_DEVICES= FORCE_CUDA=0 \
        PATH="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')"):$PATH" PYTHONPATH="$site" \
        "$PY" -m pip wheel -q --no-build-isolation --no-deps --no-index -w "$WORK/dist" .) || return 1
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$WORK"/dist/mmcv-*.whl || return 1
  fi
  PYTHONPATH="$site:$PYTHONPATH" "$PY" -c "import mmcv.ops, mmengine, mmseg, faceparse.mm; print('mmcv', mmcv.__version__, 'mmengine', mmengine.__version__, 'mmseg', mmseg.__version__)"
}

train() {  # train NAME ARGS...: bench_train on $CONFIG, results in $RES/train_NAME.json
  local name=$1; shift
  "$PY" bench/bench_train.py "$CONFIG" --device "$DEVICE" --out "$RES/train_$name.json" "$@"
}

max_batch_of() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["batch_size"])' "$1"; }

infer() {  # evaluate + predict with TTA on synthetic faces, from the checkpoint of the first run
  "$PY" - "$CONFIG" "$WORK/seed.pth" "$WORK/infer" "$RES/infer.json" "$DEVICE" "${INFER[@]}" <<'EOF'
import argparse, json, sys, time
from pathlib import Path
from PIL import Image
from faceparse.data.synthetic import generate_face
from faceparse.predict.models import Member
from faceparse.predict.steps import evaluate, predict

ap = argparse.ArgumentParser()
for a in ("config", "checkpoint", "work", "out", "device"):
    ap.add_argument(a)
ap.add_argument("--images", type=int)
ap.add_argument("--scales", type=float, nargs="+")
ap.add_argument("--batch-size", type=int)
args = ap.parse_args()
work = Path(args.work)
splits = {}
for split, masks in (("val", True), ("test", False)):
    images = work / split / "images"
    images.mkdir(parents=True)
    if masks:
        (work / split / "masks").mkdir()
    names = []
    for i in range(args.images):
        jpeg, mask = generate_face(512, 0, split, i)
        names.append(f"{split}_{i:03d}")
        (images / f"{names[-1]}.jpg").write_bytes(jpeg)
        if masks:
            Image.fromarray(mask, mode="L").save(work / split / "masks" / f"{names[-1]}.png")
    splits[split] = {"image_dir": str(images), "mask_dir": str(work / split / "masks") if masks else None,
                     "image_suffix": ".jpg", "names": names, "images": len(names), "size": [512, 512]}
index = work / "validation.json"
index.write_text(json.dumps({"root": str(work), "layout": "mini", "splits": splits}))
common = dict(scales=args.scales, flip=True, batch_size=args.batch_size, device=args.device,
              threads=4 if args.device.startswith("cuda") else 2)
t0 = time.perf_counter()
members = [Member("model", args.config, args.checkpoint)]
metrics = evaluate(members, index, pred_dir=work / "val_pred",
                   metrics_json=work / "val_metrics.json", **common)
t1 = time.perf_counter()
summary = predict(members, index, pred_dir=work / "test_pred", **common)
t2 = time.perf_counter()
written = sorted(p.name for p in (work / "test_pred").iterdir())
assert written == [f"{n}.png" for n in splits["test"]["names"]], written
result = {"config": args.config, "device": metrics["device"], "images_per_split": args.images,
          "tta": metrics["tta_config"], "batch_size": args.batch_size,
          "evaluate": {"seconds": t1 - t0, "loop_seconds": metrics["seconds"],
                       "mIoU_no_tta": metrics["no_tta"]["mIoU"], "mIoU_tta": metrics["tta"]["mIoU"]},
          "predict": {"seconds": t2 - t1, "loop_seconds": summary["seconds"], "images": summary["images"],
                      "tta_images_per_s": summary["images"] / summary["seconds"]}}
Path(args.out).write_text(json.dumps(result, indent=2))
print(json.dumps(result))
EOF
}

loader() {  # the rates to feed: the config's batch and the largest batch, as measured
  local rates=("$RES"/train_"${FAST[0]}"_b*.json "$RES/train_${FAST[0]}_max.json") found=() f
  for f in "${rates[@]}"; do [ -f "$f" ] && found+=("$f"); done
  [ "${#found[@]}" -gt 0 ] && found=(--train-json "${found[@]}")
  "$PY" bench/bench_loader.py --config "$CONFIG" --out "$RES/loader.json" --cores "$(nproc)" "${found[@]}" "${LOADER[@]}"
}

combine() {
  "$PY" - "$WORK/steps.tsv" "$RES" "$OUT/gpu_check.json" "$MODE" "$BUDGET" "$SECONDS" <<'EOF'
import json, sys
from pathlib import Path
steps_tsv, res, out, mode, budget, seconds = sys.argv[1:]
steps = []
for line in Path(steps_tsv).read_text().splitlines():
    name, status, secs, rc = line.split("\t")
    steps.append({"step": name, "status": status, "seconds": int(secs), "rc": None if rc == "-" else int(rc)})
def load(name):
    p = Path(res) / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None
result = {"mode": mode, "ok": all(s["status"] == "ok" for s in steps), "seconds": int(seconds),
          "budget_seconds": int(budget), "steps": steps, "env": load("env"),
          "train": {p.stem[len("train_"):]: json.loads(p.read_text()) for p in sorted(Path(res).glob("train_*.json"))},
          "infer": load("infer"), "loader": load("loader")}
Path(out).write_text(json.dumps(result, indent=2) + "\n")
for name, r in result["train"].items():
    mfu = f", MFU {100 * r['mfu']:.1f}%" if r.get("mfu") else ""
    print(f"gpu_check: train {name}: batch {r['batch_size']}, {r['seconds_per_iter']['mean']:.4f} s/iter, "
          f"{r['images_per_s']:.1f} images/s, peak {r['peak_memory_gb']:.2f} GB{mfu}")
print(f"gpu_check: {'all steps ok' if result['ok'] else 'SOME STEPS FAILED'}; {out}")
EOF
}

STATE=(MODE PY CONFIG DEVICE REPO WORK RES WHEELS INFER LOADER FAST)
FUNCS=(env_info install train infer loader)
say "$MODE mode, config $CONFIG, budget ${BUDGET}s, log $LOG"
if [ -n "$WHEELS" ]; then
  step install 330 60 install && export PYTHONPATH="$WORK/site:$PYTHONPATH"
fi
step env 60 5 env_info
F=${FAST[0]}
step "train_${F}_b${SMALL_BATCH}" 120 40 train "${F}_b${SMALL_BATCH}" --precision "$F" --batch-size "$SMALL_BATCH" \
  "${TRAIN_COMMON[@]}" --save-checkpoint "$WORK/seed.pth"
FLOPS=()
[ -f "$RES/train_${F}_b${SMALL_BATCH}.json" ] && FLOPS=(--flops-from "$RES/train_${F}_b${SMALL_BATCH}.json")
if [ "${#FAST[@]}" -gt 1 ]; then
  step "train_${FAST[1]}_b${SMALL_BATCH}" 90 40 train "${FAST[1]}_b${SMALL_BATCH}" --precision "${FAST[1]}" \
    --batch-size "$SMALL_BATCH" "${TRAIN_COMMON[@]}" "${FLOPS[@]}"
fi
step "train_${F}_max" 150 60 train "${F}_max" --precision "$F" --max-batch "${MAX_BATCH[@]}" "${FLOPS[@]}"
if [ -f "$WORK/seed.pth" ]; then
  step infer 120 30 infer
else
  say "infer: skipped, no checkpoint (the first training run failed)"
  printf 'infer\tskipped\t0\t-\n' >>"$WORK/steps.tsv"
fi
step loader 60 15 loader
if [ "${#FAST[@]}" -gt 1 ] && [ -f "$RES/train_${F}_max.json" ]; then
  B=$(max_batch_of "$RES/train_${F}_max.json")
  step "train_${FAST[1]}_max" 90 40 train "${FAST[1]}_max" --precision "${FAST[1]}" --batch-size "$B" \
    "${MAX_BATCH[@]:2}" "${FLOPS[@]}"
fi
step "train_${F}_b${SMALL_BATCH}_channels_last" 90 40 train "${F}_b${SMALL_BATCH}_channels_last" --precision "$F" \
  --batch-size "$SMALL_BATCH" --channels-last "${TRAIN_COMMON[@]}" "${FLOPS[@]}"
combine 2>&1 | tee -a "$LOG"
"$PY" -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["ok"] else 1)' "$OUT/gpu_check.json"
