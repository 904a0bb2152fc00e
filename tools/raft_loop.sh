#!/usr/bin/env bash
# RAFT / rejection-sampling fine-tuning on the demo's sentiment task, with
# gorlhf's commands only (OpenRLHF's train_rejection_sampling_llama.sh):
# each round samples N stories per training prompt from the current
# policy (batch_inference --eval_task generate), scores them with the
# demo's reward model and keeps the best per prompt (--eval_task rm
# --post_processor rs), and fine-tunes the policy on those (train sft).
# Before the first round and after each, the policy samples 4 stories per
# held-out opening (children's names never seen in training, same seed
# every time) and the reward model's mean normalised score is printed:
# the measured gain.
#
#   tools/raft_loop.sh [OUT]          (default ./raft)
#
# Environment: GORLHF (binary, default gorlhf), DEMO (a `gorlhf demo`
# output folder with reward_model/ and data/; default: one is made with
# `gorlhf demo --iterations 1` in OUT/demo), ROUNDS (2), N (samples per
# prompt, 8), PER (training prompts per round, 96), THREADS (0 = all).
set -euo pipefail
G=${GORLHF:-gorlhf}
OUT=${1:-raft}
ROUNDS=${ROUNDS:-2}
N=${N:-8}
PER=${PER:-96}
T=${THREADS:-0}
mkdir -p "$OUT"
DEMO=${DEMO:-$OUT/demo}
if [ ! -d "$DEMO/reward_model" ]; then
  "$G" demo --iterations 1 --output_dir "$DEMO" --quiet --threads "$T"
fi
RM=$DEMO/reward_model
PROMPTS=$DEMO/data/story_prompts.jsonl
HELDOUT=$DEMO/data/story_prompts_eval.jsonl

# heldout MODEL DIR: mean reward of 4 samples per held-out opening
heldout() {
  "$G" batch_inference --eval_task generate --pretrain "$1" --dataset "$HELDOUT" --best_of_n 4 \
    --max_new_tokens 48 --temperature 1 --seed 7 --output_path "$2/heldout_gen.jsonl" --threads "$T" >/dev/null 2>&1
  "$G" batch_inference --eval_task rm --pretrain "$RM" --dataset "$2/heldout_gen.jsonl" \
    --output_path "$2/heldout_rm.jsonl" --threads "$T" 2>/dev/null | grep "Reward mean"
}

POLICY=stories260K
mkdir -p "$OUT/round0"
echo "round 0 (stories260K) held-out: $(heldout $POLICY "$OUT/round0")"
for ((r = 1; r <= ROUNDS; r++)); do
  D=$OUT/round$r
  mkdir -p "$D"
  "$G" batch_inference --eval_task generate --pretrain "$POLICY" --dataset "$PROMPTS" \
    --iter $((r - 1)) --rollout_batch_size "$PER" --best_of_n "$N" --max_new_tokens 48 --temperature 1 \
    --seed $((1000 * r)) --output_path "$D/generate.jsonl" --threads "$T" 2>/dev/null
  "$G" batch_inference --eval_task rm --pretrain "$RM" --dataset "$D/generate.jsonl" --post_processor rs \
    --output_path "$D/rs.jsonl" --threads "$T" 2>/dev/null
  "$G" train sft --quiet --model.model_name_or_path "$POLICY" --data.dataset "$D/rs.jsonl" \
    --data.input_key input --data.output_key output --data.input_template "" --data.max_len 160 \
    --train.batch_size 16 --train.micro_batch_size 16 --train.max_epochs 2 --adam.lr 3e-4 \
    --lr_scheduler constant --lr_warmup_ratio 0 --sft.samples 0 --train.seed 42 \
    --ckpt.output_dir "$D/policy" --ckpt.overwrite --threads "$T"
  POLICY=$D/policy
  echo "round $r held-out: $(heldout "$POLICY" "$D")"
done
