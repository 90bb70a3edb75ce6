#!/usr/bin/env bash
# Every GPU check in one go, for a CUDA machine (about 6 minutes on one H200), from the repo root:
#   bash benchmarks/gpu.sh
# Issue 12: stacked seeds against separate runs (and the stacked-equals-separate test on CUDA);
# issue 14: the noise-scale probe's cost; the quickstart on CUDA. A .whl/ folder of wheels (packages
# the machine lacks) and a .gpudata/ folder (BSLAB_DATA: FashionMNIST/*.gz) are used if present.
set -u
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
[ -d .gpudata ] && export BSLAB_DATA="$PWD/.gpudata"
section() { printf '\n===== %s (%s)\n' "$1" "$(date +%T)"; }

section "machine"
nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
section "CUDA tests (skipped on CPU machines)"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_stacked.py -k cuda 2>&1 | tail -8
section "issue 12: 8 seeds stacked vs separate"
timeout 100 python3 benchmarks/seeds.py --device cuda --batches 1 4 16 64 256 1024 --steps 200
section "issue 14: noise-scale probe cost"
timeout 60 python3 benchmarks/noise_scale_cost.py --device cuda --epochs 4 --repeats 1
section "quickstart on cuda"
start=$SECONDS
timeout 150 python3 -m tui_lab --headless presets/quickstart.json --device cuda --out /tmp/quick \
  2>&1 | tail -14
echo "quickstart wall: $((SECONDS - start)) s"
section "done"
