#!/bin/sh
# LoRA vs full fine-tuning, side by side (docs/LORA.md, docs/BENCHMARKS.md):
# peak RSS (/usr/bin/time -v), wall time and final loss of `train sft` on
# the demo's sentiment sentences (pretrain mode), alternating full and
# LoRA runs. Usage: tools/lora_bench.sh GORLHF MODEL DATA STEPS ROUNDS OUT
set -eu
bin=$1 model=$2 data=$3 steps=$4 rounds=$5 out=$6
mkdir -p "$out"
run() { # name extra-flags...
	name=$1
	shift
	dir="$out/$name-$r"
	/usr/bin/time -v "$bin" train sft --quiet --model.model_name_or_path "$model" --model.pretrain_mode_enable \
		--data.dataset "$data" --data.input_key chosen --data.max_len 64 --train.micro_batch_size 8 \
		--train.batch_size 8 --train.max_steps "$steps" --train.seed 1 --sft.samples 0 --threads 2 \
		--ckpt.output_dir "$dir" --ckpt.overwrite "$@" 2>"$dir.time" >/dev/null
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir.time")
	wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir.time")
	loss=$(tail -n 1 "$dir/metrics.jsonl" | sed -n 's/.*"loss":\([0-9.e+-]*\).*/\1/p')
	echo "$name round=$r max_rss_kb=$rss wall=$wall last_loss=$loss"
}
r=1
while [ "$r" -le "$rounds" ]; do
	run full --adam.lr 1e-3
	run lora --adam.lr 1e-2 --ds.lora.rank 8 --ds.lora.alpha 16
	r=$((r + 1))
done
