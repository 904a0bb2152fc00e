#!/usr/bin/python3
"""Conditional SFT end to end, with gorlhf commands only (standard library
Python drives them): the numbers in docs/ALGORITHMS.md come from it.

1. score every review of internal/data/testdata/kto/train.jsonl (its
   prompt names the source, its output is the review) with a sentiment
   reward model, served by `gorlhf serve rm`; write {input, output, reward};
2. `gorlhf train sft` with --data.reward_template (OpenRLHF's default
   "{input} <rm_score>: {reward} ") and --data.normalize_reward, from the
   base stories260K;
3. sample N completions per source prompt conditioned on a high and on a
   low reward and levels between (the training rewards are z-scores:
   +2.00, +1.00, 0.00, -1.00, -2.00), with `gorlhf generate` (fixed
   seeds);
4. score the completions with the same reward model and print the mean
   reward per condition, its standard error, and the high - low gap;
5. the likelihood check: score the 600 held-out reviews of
   internal/data/testdata/kto/eval.jsonl with the reward model, and
   measure the trained model's held-out NLL (`train sft` evaluation at
   step 0 with --adam.lr 0) with each prompt conditioned on the review's own
   reward, and on the negated reward: a model that reads the condition
   predicts the reviews better under their own rewards.

The reward model is a folder from `gorlhf train rm` on
internal/data/testdata/sentiment (docs/TRAINING.md). Every server this
script starts is stopped by its PID; ports are on 127.0.0.1.

Usage (repository root):
  /usr/bin/python3 tools/csft_run.py GORLHF RM_DIR WORK_DIR [--n 32] [--port 5077] [--epochs 2] [--skip-train]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request

SOURCES = ["An IMDb movie review:", "A Yelp restaurant review:", "An Amazon phone review:"]


class RewardServer:
    def __init__(self, gorlhf, rm, port):
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([gorlhf, "serve", "rm", "--model", rm, "--addr", f"127.0.0.1:{port}",
                                      "--max-len", "128", "--threads", "2"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):  # at most 60 s
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("gorlhf serve rm exited")
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("gorlhf serve rm did not come up")

    def score(self, texts, chunk=64):
        out = []
        for i in range(0, len(texts), chunk):
            body = json.dumps({"query": texts[i:i + chunk]}).encode()
            req = urllib.request.Request(self.url + "/get_reward", data=body, headers={"Content-Type": "application/json"})
            out += json.loads(urllib.request.urlopen(req, timeout=600).read())["rewards"]
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def mean_se(xs):
    m = sum(xs) / len(xs)
    v = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return m, math.sqrt(v / len(xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gorlhf")
    ap.add_argument("rm")
    ap.add_argument("work")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--port", type=int, default=5077)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--temperature", default="1")
    ap.add_argument("--from-model", default="stories260K", help="model to start the SFT from")
    ap.add_argument("--lr", default="1e-3")
    ap.add_argument("--out", default="csft", help="folder of the trained model, in WORK_DIR")
    ap.add_argument("--skip-train", action="store_true", help="reuse WORK_DIR/csft (steps 3-5 only)")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    data = os.path.join(a.work, "csft_train.jsonl")

    model = os.path.join(a.work, a.out)
    if not a.skip_train:
        train(a, data, model)
    evaluate(a, model)
    likelihood(a, model)


def train(a, data, model):
    # 1) score the training reviews (once per WORK_DIR)
    if not os.path.exists(data):
        score_data(a, data)
    # 2) conditional SFT
    t0 = time.time()
    subprocess.run([a.gorlhf, "train", "sft", "--model.model_name_or_path", a.from_model,
                    "--data.dataset", data, "--data.input_key", "input",
                    "--data.output_key", "output", "--data.input_template", "",
                    "--data.reward_template", "{input} <rm_score>: {reward} ", "--data.normalize_reward",
                    "--data.max_len", "128", "--train.micro_batch_size", "16", "--train.batch_size", "32",
                    "--train.max_epochs", str(a.epochs), "--adam.lr", a.lr, "--lr_warmup_ratio", "0.05",
                    "--sft.samples", "0", "--ckpt.output_dir", model, "--ckpt.overwrite", "--threads", "2", "--quiet"],
                   check=True)
    print(f"conditional SFT: {time.time() - t0:.0f} s")


def score_data(a, data):
    rows = [json.loads(l) for l in open("internal/data/testdata/kto/train.jsonl", encoding="utf-8")]
    srv = RewardServer(a.gorlhf, a.rm, a.port)
    try:
        rewards = srv.score([r["output"].strip() for r in rows])
    finally:
        srv.stop()
    with open(data, "w", encoding="utf-8") as f:
        for r, s in zip(rows, rewards):
            f.write(json.dumps({"input": r["input"], "output": r["output"].strip(), "reward": s}, ensure_ascii=False) + "\n")
    pos = [s for r, s in zip(rows, rewards) if r["label"]]
    neg = [s for r, s in zip(rows, rewards) if not r["label"]]
    print(f"scored {len(rows)} reviews: positive mean {sum(pos)/len(pos):.3f}, negative mean {sum(neg)/len(neg):.3f}")


def evaluate(a, model):
    # 3) generate under each condition: the reward written into the prompt
    # (the template's trailing space is left out: in training it merges into
    # the response's first token, "▁Great", so a prompt ending in a lone
    # space token would be one the model never saw)
    conds = {f"{r:+.2f}": "{} <rm_score>: " + f"{r:.2f}" for r in (2, 1, 0, -1, -2)}
    prompts = os.path.join(a.work, "prompts.jsonl")
    keys = []
    with open(prompts, "w", encoding="utf-8") as f:
        for c, tmpl in conds.items():
            for s in SOURCES:
                f.write(json.dumps({"prompt": tmpl.format(s)}) + "\n")
                keys.append(c)
    gen = os.path.join(a.work, "generated.jsonl")
    subprocess.run([a.gorlhf, "generate", "--model", model, "--input", prompts, "--n", str(a.n), "--seed", "7",
                    "--temperature", a.temperature, "--max-new-tokens", "48", "--output", gen, "--threads", "2"],
                   check=True, stdout=subprocess.DEVNULL)
    texts, conds_of = [], []
    for line, c in zip(open(gen, encoding="utf-8"), keys):
        for comp in json.loads(line)["completions"]:
            texts.append(comp["text"].strip())
            conds_of.append(c)

    # 4) score them
    srv = RewardServer(a.gorlhf, a.rm, a.port)
    try:
        scores = srv.score(texts)
    finally:
        srv.stop()
    res = {}
    for c in conds:
        m, se = mean_se([s for s, k in zip(scores, conds_of) if k == c])
        res[c] = m
        print(f"reward {c} in the prompt: mean RM score {m:+.3f} ± {se:.3f} (n = {conds_of.count(c)})")
    print(f"high - low (+2.00 vs -2.00): {res['+2.00'] - res['-2.00']:+.3f}")
    with open(os.path.join(a.work, "samples.txt"), "w", encoding="utf-8") as f:
        for t, c, s in list(zip(texts, conds_of, scores))[:: max(1, a.n // 4)]:
            f.write(f"[{c}] {s:+.2f} {t}\n")


def likelihood(a, model):
    rows = [json.loads(l) for l in open("internal/data/testdata/kto/eval.jsonl", encoding="utf-8")]
    srv = RewardServer(a.gorlhf, a.rm, a.port)
    try:
        rewards = srv.score([r["output"].strip() for r in rows])
    finally:
        srv.stop()
    res = {}
    for name, sign in [("own", 1), ("negated", -1)]:
        path = os.path.join(a.work, f"eval_{name}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for r, s in zip(rows, rewards):
                f.write(json.dumps({"input": r["input"], "output": r["output"].strip(), "reward": sign * s}) + "\n")
        out = os.path.join(a.work, f"nll_{name}")
        subprocess.run([a.gorlhf, "train", "sft", "--model.model_name_or_path", model,
                        "--data.dataset", path, "--eval.dataset", path, "--data.input_key", "input",
                        "--data.output_key", "output", "--data.input_template", "",
                        "--data.reward_template", "{input} <rm_score>: {reward} ", "--data.normalize_reward",
                        "--data.max_len", "128", "--train.micro_batch_size", "16", "--train.batch_size", "32",
                        "--train.max_steps", "1", "--adam.lr", "0", "--sft.samples", "0",
                        "--ckpt.output_dir", out, "--ckpt.overwrite", "--threads", "2", "--quiet"], check=True)
        rows_m = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
        res[name] = [m for m in rows_m if m.get("split") == "eval" and m["step"] == 0][0]["loss"]
        print(f"held-out NLL with the {name} reward in the prompt: {res[name]:.4f} nats/token")
    print(f"negated - own: {res['negated'] - res['own']:+.4f} nats/token")


if __name__ == "__main__":
    sys.exit(main())
