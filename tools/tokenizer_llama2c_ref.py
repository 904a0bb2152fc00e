#!/usr/bin/env python3
"""Reference encoder for llama2.c tokenizer files (tok512.bin), written from
the algorithm of llama2.c run.c `encode` so that the Go tokenizer can be
checked against an independent implementation.

Usage:
    python3 tools/tokenizer_llama2c_ref.py TOKENIZER_BIN > internal/tokenizer/testdata/tok512_ref.json

It prints JSON: {"tokenizer": ..., "cases": [{"text": ..., "ids": [...]}]},
ids without BOS/EOS, with the dummy " " prefix token run.c adds before
non-empty text. The algorithm is quadratic on purpose: it mirrors run.c
step by step rather than being fast.
"""
import json
import struct
import sys

CASES = [
    "",
    "a",
    " ",
    "hello",
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park.",
    "Tom said, \"I can't find my ball!\"\nHe was sad.",
    "caf\u00e9 \u2014 na\u00efve \u201cquotes\u201d",
    "line one\n\nline two\ttab",
    "\u6f22\u5b57 and emoji \U0001F600!",
    "  two leading spaces",
    "trailing space ",
    "<s> is not special here </s>",
    "12345 + 678 = 13023",
]


def load(path):
    """Read max_len, then (float32 score, int32 len, bytes) until EOF."""
    data = open(path, "rb").read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off = 4
    pieces, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n])
        off += n
        scores.append(score)
    return max_len, pieces, scores


def encode(text, pieces, scores):
    """Port of run.c encode(): dummy prefix, per-UTF-8-char lookup with
    byte fallback (+3), then repeatedly merge the best-scoring pair
    (first one wins on ties)."""
    lookup = {p: i for i, p in enumerate(pieces)}
    raw = text.encode("utf-8")
    tokens = []
    if raw:
        tokens.append(lookup[b" "])
    buf = b""
    for i, c in enumerate(raw):
        if c & 0xC0 != 0x80:
            buf = b""
        buf += bytes([c])
        nxt = raw[i + 1] if i + 1 < len(raw) else 0
        if nxt & 0xC0 == 0x80 and len(buf) < 4:
            continue
        if buf in lookup:
            tokens.append(lookup[buf])
        else:
            tokens.extend(b + 3 for b in buf)
        buf = b""
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            cand = pieces[tokens[i]] + pieces[tokens[i + 1]]
            j = lookup.get(cand, -1)
            if j != -1 and scores[j] > best_score:
                best_score, best_id, best_idx = scores[j], j, i
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    return tokens


def main():
    path = sys.argv[1]
    _, pieces, scores = load(path)
    out = {
        "tokenizer": path.split("/")[-1],
        "generator": "tools/tokenizer_llama2c_ref.py",
        "cases": [{"text": t, "ids": encode(t, pieces, scores)} for t in CASES],
    }
    # One case per line keeps the committed file easy to diff.
    lines = [json.dumps(c, ensure_ascii=False) for c in out.pop("cases")]
    head = json.dumps(out, ensure_ascii=False)[:-1]
    sys.stdout.write(head + ', "cases": [\n ' + ",\n ".join(lines) + "\n]}\n")


if __name__ == "__main__":
    main()
