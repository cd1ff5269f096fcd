#!/usr/bin/env bash
# Install the peers that benchmarks/vs_clip_benchmark.py and vs_lmms_eval.py run against,
# each in its own venv, with mmbench (editable, this checkout) in the same venv so both
# sides of a comparison run on one interpreter, one torch and one transformers.
#
# Why torch from PyPI here: the peers need torchvision, and PyPI's torchvision wheels are
# CUDA builds whose _C.so links libc10_cuda.so, which the CPU torch wheel lacks
# ("operator torchvision::nms does not exist" at import). The PyPI torch 2.13.0 (a CUDA
# build, ~530 MB + the nvidia-* wheels, ~4 GB per venv) runs on the CPU and imports
# torchvision 0.28.0. The machine's pip config adds --find-links /opt/wheels, where
# torch-2.13.0+cpu lies and would win the resolution, so each venv gets a pip.conf that
# clears find-links and PIP_FIND_LINKS is unset.
#
# clip-benchmark 1.6.2 imports requests (datasets/imagenetv2.py) without declaring it, and
# lmms-eval 0.7.3's llava_hf imports decord (its optional "video-legacy" extra) at the top: both
# are installed here.  lmms-eval 0.7.3 also imports filelock._api, which filelock 4 removed:
# filelock<4.
#
# Usage: bash benchmarks/install_peers.sh [clip-benchmark|lmms-eval ...]   (default: both)
# VENVS (default /work/venvs) and PYTHON (default python3) may be set.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENVS="${VENVS:-/work/venvs}"
PYTHON="${PYTHON:-python3}"
TORCH="torch==2.13.0 torchvision==0.28.0"
TRANSFORMERS="transformers==5.24.0"   # the version mmbench is developed against here

make_venv() {  # $1 = venv name
  local v="$VENVS/$1"
  [ -x "$v/bin/python" ] || "$PYTHON" -m venv "$v"
  printf '[global]\nfind-links =\n' > "$v/pip.conf"
}

pipv() {  # $1 = venv name, rest = pip install arguments
  local v="$VENVS/$1"; shift
  env -u PIP_FIND_LINKS "$v/bin/pip" install "$@"
}

for peer in "${@:-clip-benchmark lmms-eval}"; do
  for p in $peer; do
    case "$p" in
      clip-benchmark)
        make_venv clip-benchmark
        pipv clip-benchmark $TORCH $TRANSFORMERS clip-benchmark==1.6.2 open-clip-torch==3.3.0 requests pytest
        pipv clip-benchmark -e "$REPO"
        ;;
      lmms-eval)
        make_venv lmms-eval
        pipv lmms-eval $TORCH $TRANSFORMERS lmms-eval==0.7.3 decord "filelock<4"
        pipv lmms-eval -e "$REPO"
        ;;
      *) echo "unknown peer: $p (clip-benchmark or lmms-eval)" >&2; exit 2 ;;
    esac
    "$VENVS/$p/bin/python" -c "import torch, torchvision, transformers, mmbench; print('$p ok: torch', torch.__version__, 'torchvision', torchvision.__version__, 'transformers', transformers.__version__)"
  done
done
