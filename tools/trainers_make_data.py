#!/usr/bin/python3
"""Builds the real-data sets of internal/data/testdata from /work/shared/assets.

- sentiment/{train,eval}.jsonl: preference pairs from the UCI "Sentiment
  Labelled Sentences" (Kotzias et al., KDD 2015): within each source (imdb,
  yelp, amazon_cells) the 500 positive and 500 negative sentences are
  shuffled with a fixed seed and paired in order, positive = chosen,
  negative = rejected; 20 % of each source's pairs are held out for eval.
- gsm8k/{train,test}_slice.jsonl: the first records of GSM8K's train and
  test files (openai/grade-school-math), unchanged.

Run from the repository root:  /usr/bin/python3 tools/trainers_make_data.py
"""
import json
import os
import random

ASSETS = "/work/shared/assets"
OUT = "internal/data/testdata"
SOURCES = ["imdb", "yelp", "amazon_cells"]
GSM8K_TRAIN, GSM8K_TEST = 500, 50


def sentiment():
    train, held = [], []
    for src in SOURCES:
        pos, neg = [], []
        with open(f"{ASSETS}/sentiment-uci/{src}_labelled.txt", encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                text, label = line.rsplit("\t", 1)
                (pos if label.strip() == "1" else neg).append(text.strip())
        rng = random.Random(f"gorlhf-{src}")
        rng.shuffle(pos)
        rng.shuffle(neg)
        pairs = [{"chosen": p, "rejected": n, "source": src} for p, n in zip(pos, neg)]
        cut = len(pairs) * 4 // 5
        train += pairs[:cut]
        held += pairs[cut:]
    random.Random("gorlhf-sentiment").shuffle(train)
    os.makedirs(f"{OUT}/sentiment", exist_ok=True)
    for name, rows in [("train", train), ("eval", held)]:
        with open(f"{OUT}/sentiment/{name}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"sentiment/{name}.jsonl: {len(rows)} pairs")


def gsm8k():
    os.makedirs(f"{OUT}/gsm8k", exist_ok=True)
    for name, n in [("train", GSM8K_TRAIN), ("test", GSM8K_TEST)]:
        with open(f"{ASSETS}/gsm8k/{name}.jsonl", encoding="utf-8") as f:
            lines = [next(f) for _ in range(n)]
        with open(f"{OUT}/gsm8k/{name}_slice.jsonl", "w", encoding="utf-8") as f:
            f.writelines(lines)
        print(f"gsm8k/{name}_slice.jsonl: {n} records")


if __name__ == "__main__":
    sentiment()
    gsm8k()
