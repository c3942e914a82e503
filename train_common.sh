# Sourced by train_s.sh and train_m.sh (from the repository root): the rule both follow.
# Pre-train, then main-train from the pre-train best model (DESIGN.md §7); the ImageNet
# encoder weights go to pre_train when the file exists. Reads EXP, MODEL_NAME,
# ENCODER_WEIGHTS, PRE_TRAIN_ARGS and MAIN_TRAIN_ARGS (see the scripts' headers).

EXP=${EXP:-exp}
MODEL_NAME=${MODEL_NAME:-MTNet}
ENCODER_WEIGHTS=${ENCODER_WEIGHTS:-saves/convnext_tiny_1k_224_ema.pth}
read -r -a pre_extra <<<"${PRE_TRAIN_ARGS:-}"
read -r -a main_extra <<<"${MAIN_TRAIN_ARGS:-}"

if [[ -f "$ENCODER_WEIGHTS" ]]; then
  pre_extra+=(--encoder_weights "$ENCODER_WEIGHTS")
else
  echo "${0##*/}: $ENCODER_WEIGHTS not found; the encoder starts from random weights" >&2
fi

run_stages() {  # run_stages PRE_LAUNCHER MAIN_LAUNCHER train.py-flags...
  # each launcher is a command that runs train.py with the flags it is given
  local pre=$1 main=$2
  shift 2
  "$pre" --stage pre_train --exp "$EXP" --model_name "$MODEL_NAME" "${pre_extra[@]}" "$@"
  "$main" --stage main_train --exp "$EXP" --model_name "$MODEL_NAME" \
    --pretrain_model_path "$EXP/$MODEL_NAME/pre_train/best.pth" "${main_extra[@]}" "$@"
}
