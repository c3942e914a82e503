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
EXP=${EXP:-exp}
MODEL_NAME=${MODEL_NAME:-MTNet}
ENCODER_WEIGHTS=${ENCODER_WEIGHTS:-saves/convnext_tiny_1k_224_ema.pth}
read -r -a pre_extra <<<"${PRE_TRAIN_ARGS:-}"
read -r -a main_extra <<<"${MAIN_TRAIN_ARGS:-}"

if [[ -f "$ENCODER_WEIGHTS" ]]; then
  pre_extra+=(--encoder_weights "$ENCODER_WEIGHTS")
else
  echo "train_s.sh: $ENCODER_WEIGHTS not found; the encoder starts from random weights" >&2
fi

"$PYTHON" train.py --stage pre_train --exp "$EXP" --model_name "$MODEL_NAME" \
  "${pre_extra[@]}" "$@"
"$PYTHON" train.py --stage main_train --exp "$EXP" --model_name "$MODEL_NAME" \
  --pretrain_model_path "$EXP/$MODEL_NAME/pre_train/best.pth" "${main_extra[@]}" "$@"
