#!/bin/sh
# Held-out accuracy of the demo's preference step with LoRA next to full
# fine-tuning (docs/LORA.md): `train rm` as the demo trains its reward
# model (1200 labelled sentence pairs, 300 held out, stories260K backbone,
# batch 32, one epoch, lr 3e-3), and `train dpo` on the same pairs
# (implicit-reward accuracy; the first 320 training pairs and 100 held-out
# ones, to fit a shared 2-core machine). LoRA: rank 8, alpha 16,
# all-linear. Usage: tools/lora_demo_acc.sh GORLHF OUT
set -eu
bin=$1 out=$2
data=internal/trainer/ppo/demo/data
mkdir -p "$out"
head -n 100 "$data/sentiment_eval.jsonl" >"$out/eval100.jsonl"
acc() { tail -n 1 "$1/metrics.jsonl" | sed -n 's/.*"acc":\([0-9.e+-]*\).*/\1/p'; }
for trainer in rm dpo; do
	for mode in full lora; do
		dir="$out/$trainer-$mode"
		lr=3e-3 eval="$data/sentiment_eval.jsonl" extra=""
		if [ "$trainer" = dpo ]; then
			lr=1e-3 eval="$out/eval100.jsonl" extra="--data.max_samples 320"
		fi
		if [ "$mode" = lora ]; then
			extra="$extra --ds.lora.rank 8 --ds.lora.alpha 16"
			[ "$trainer" = dpo ] && lr=1e-2
		fi
		start=$(date +%s)
		# shellcheck disable=SC2086
		"$bin" train "$trainer" --quiet --data.dataset "$data/sentiment_train.jsonl" --eval.dataset "$eval" \
			--train.micro_batch_size 32 --train.batch_size 32 --train.max_epochs 1 --train.seed 42 --adam.lr $lr \
			--data.max_len 512 --threads 2 --ckpt.output_dir "$dir" --ckpt.overwrite $extra >/dev/null 2>&1
		echo "$trainer $mode lr=$lr held_out_acc=$(acc "$dir") wall_s=$(($(date +%s) - start))"
	done
done
