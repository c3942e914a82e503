#!/usr/bin/env bash
# Train MTNet in one process (one GPU, or the CPU): pre-train, then main-train from the
# pre-train best model (DESIGN.md §7). Arguments are passed to both stages, e.g.
#   ./train_s.sh --root ../data --resume
# Environment (defaults in brackets):
#   PYTHON [python]  EXP [exp]  MODEL_NAME [MTNet]
#   ENCODER_WEIGHTS [saves/convnext_tiny_1k_224_ema.pth]: ImageNet ConvNeXt weights for
#     pre_train, used when the file exists
#   PRE_TRAIN_ARGS, MAIN_TRAIN_ARGS: extra flags for one stage only (split on spaces)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python}
source ./train_common.sh

train() {  # train train.py-flags...
  "$PYTHON" train.py "$@"
}

run_stages train train "$@"
