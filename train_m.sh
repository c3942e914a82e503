#!/usr/bin/env bash
# Train MTNet with torchrun, one process per GPU, on one node or several: pre-train, then
# main-train from the pre-train best model (DESIGN.md §7). Arguments are passed to both
# stages, e.g.
#   ./train_m.sh --root ../data --resume
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 ./train_m.sh   # on node0, and NODE_RANK=1 on node1
# Environment (defaults in brackets):
#   NPROC_PER_NODE [GPUs visible, or 1]: processes per node for pre_train (paper: 8)
#   MAIN_NPROC_PER_NODE [NPROC_PER_NODE]: processes per node for main_train (paper: 4)
#   NNODES [1]  NODE_RANK [0]  MASTER_ADDR [127.0.0.1]  MASTER_PORT [29500]
#   TORCHRUN [torchrun] (e.g. "python -m torch.distributed.run")  EXP [exp]  MODEL_NAME [MTNet]
#   ENCODER_WEIGHTS [saves/convnext_tiny_1k_224_ema.pth]: ImageNet ConvNeXt weights for
#     pre_train, used when the file exists
#   PRE_TRAIN_ARGS, MAIN_TRAIN_ARGS: extra flags for one stage only (split on spaces)
# Several nodes need a shared folder for EXP: rank 0 writes the checkpoints and models, and
# every rank reads the pre-train best model and, with --resume, the newest checkpoint.
set -euo pipefail
cd "$(dirname "$0")"

gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
NPROC_PER_NODE=${NPROC_PER_NODE:-$((gpus > 0 ? gpus : 1))}
MAIN_NPROC_PER_NODE=${MAIN_NPROC_PER_NODE:-$NPROC_PER_NODE}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
read -r -a torchrun <<<"${TORCHRUN:-torchrun}"
source ./train_common.sh

launch() {  # launch NPROC train.py-flags...
  local nproc=$1
  shift
  "${torchrun[@]}" --nproc_per_node "$nproc" --nnodes "$NNODES" --node_rank "$NODE_RANK" \
    --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" train.py "$@"
}
launch_pre() { launch "$NPROC_PER_NODE" "$@"; }
launch_main() { launch "$MAIN_NPROC_PER_NODE" "$@"; }

run_stages launch_pre launch_main "$@"
