#!/usr/bin/env bash
# Every GPU check of issue 26 in one go, for a CUDA machine (about 5-6 minutes on one H200), from
# the repo root:   bash benchmarks/gpu.sh        (or some sections: bash benchmarks/gpu.sh 1 3)
# 1. the CUDA tests; 2. step times eager vs graphed, engine vs minimal loop, runs sharing the GPU,
# the first 2 epochs of the reference sweep (extrapolated to 20); 3. 8 stacked seeds vs one;
# 4. the quickstart on CUDA; 5. where a batch-1 step's time goes (profiler).
# A .whl/ folder of wheels (packages the machine lacks: pydantic, textual, plotext...) and a
# .gpudata/ folder (BSLAB_DATA: FashionMNIST/raw/*.gz) are used if present. With $OUT set, the log
# is also written to $OUT/gpu.log.
set -u
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
[ -d .gpudata ] && export BSLAB_DATA="$PWD/.gpudata"
log=${OUT:-/tmp}/gpu.log
exec > >(tee -a "$log") 2>&1
section() { printf '\n===== %s (%s)\n' "$1" "$(date +%T)"; }
sections="$*"
want() { [ -z "$sections" ] || [[ " $sections " == *" $1 "* ]]; }

section "machine"
nvidia-smi -L; nproc
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
if want 1; then
  section "1. CUDA tests (skipped on CPU machines) and stacked-equals-separate"
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_stacked.py \
    tests/test_train_steps.py tests/test_engine.py -k "cuda or stack or graph" 2>&1 | tail -12
fi
if want 2; then
  section "2. step times, runs sharing the GPU, reference sweep (2 epochs)"
  timeout 240 python3 benchmarks/gpu_throughput.py
fi
if want 3; then
  section "3. 8 seeds stacked vs separate"
  timeout 90 python3 benchmarks/seeds.py --device cuda --batches 1 4 16 64 256 1024 --steps 200
fi
if want 4; then
  section "4. quickstart on cuda"
  start=$SECONDS
  timeout 60 python3 -m tui_lab --headless presets/quickstart.json --device cuda \
    --out /tmp/quick 2>&1 | tail -16
  echo "quickstart wall: $((SECONDS - start)) s"
fi
if want 5; then
  section "5. where a batch-1 step's time goes"
  timeout 45 python3 benchmarks/step_profile.py --device cuda --batch 1 --steps 200 2>&1 \
    | grep -v -E "^(USDT|ERROR|WARNING):"
fi
section "done"
