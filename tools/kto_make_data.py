#!/usr/bin/python3
"""Builds the unpaired KTO sets of internal/data/testdata/kto from the
sentiment preference pairs of internal/data/testdata/sentiment.

Each pair gives two unpaired samples with a prompt naming its source
("A yelp review:"): the chosen (positive) sentence labelled desirable
(true), the rejected (negative) one undesirable (false). The samples are
shuffled with a fixed seed, so a micro-batch mixes classes and sources and
KTO's mismatched pairs (prompt i, response i+1) really are mismatched.
Held-out pairs stay held out (eval.jsonl comes from sentiment/eval.jsonl);
eval_pairs.jsonl holds the same held-out pairs with the same prompts as
preference pairs, to measure the held-out preference accuracy of a policy's
implicit reward (docs/ALGORITHMS.md).

Run from the repository root:  /usr/bin/python3 tools/kto_make_data.py
"""
import json
import os
import random

SRC = "internal/data/testdata/sentiment"
OUT = "internal/data/testdata/kto"
NAMES = {"imdb": "An IMDb movie review:", "yelp": "A Yelp restaurant review:", "amazon_cells": "An Amazon phone review:"}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in ["train", "eval"]:
        rows = []
        with open(f"{SRC}/{name}.jsonl", encoding="utf-8") as f:
            for line in f:
                p = json.loads(line)
                prompt = NAMES[p["source"]]
                rows.append({"input": prompt, "output": " " + p["chosen"], "label": True})
                rows.append({"input": prompt, "output": " " + p["rejected"], "label": False})
        if name == "eval":
            with open(f"{SRC}/{name}.jsonl", encoding="utf-8") as f, \
                    open(f"{OUT}/eval_pairs.jsonl", "w", encoding="utf-8") as out:
                for line in f:
                    p = json.loads(line)
                    out.write(json.dumps({"prompt": NAMES[p["source"]], "chosen": " " + p["chosen"],
                                          "rejected": " " + p["rejected"]}, ensure_ascii=False) + "\n")
        random.Random(f"gorlhf-kto-{name}").shuffle(rows)
        with open(f"{OUT}/{name}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"kto/{name}.jsonl: {len(rows)} samples")


if __name__ == "__main__":
    main()
