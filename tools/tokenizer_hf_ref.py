#!/usr/bin/env python3
"""Independent reference for gorlhf's byte-level BPE tokenizers.

It re-implements, in a few dozen lines of Python, the parts of Hugging Face
tokenizers that GPT-2 and Qwen2/Qwen3 tokenizer.json files use: added-token
splitting (leftmost-longest), the NFC normalizer, the Split / ByteLevel
pre-tokenizer regexes (run with the `regex` module, a backtracking engine
with lookahead and \\p{..} classes, like Oniguruma which HF uses), GPT-2's
byte-to-unicode table and BPE merging by rank (lowest rank first, leftmost
first on ties). The Go tokenizer must produce the same ids; the Go tests
read the file this script writes.

Usage (from the repository root):
    python3 tools/tokenizer_hf_ref.py /work/shared/assets \\
        > internal/tokenizer/testdata/hf_ref.json

Needs the `regex` module. Texts: GSM8K questions and answers, hh-rlhf
transcripts, UCI sentiment sentences (all from the assets folder), special
token cases, and seeded random strings over a tricky alphabet.
"""
import gzip
import json
import random
import sys
import unicodedata

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHARS = bytes_to_unicode()


class RefTokenizer:
    def __init__(self, path):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            d = json.load(f)
        m = d["model"]
        self.vocab = m["vocab"]
        self.ranks = {}
        for i, mg in enumerate(m["merges"]):
            a, b = mg.split(" ") if isinstance(mg, str) else mg
            self.ranks.setdefault((a, b), i)
        self.added = [(t["content"], t["id"], t["special"]) for t in d["added_tokens"]]
        self.nfc = (d.get("normalizer") or {}).get("type") == "NFC"
        pre = d["pre_tokenizer"]
        if pre["type"] == "ByteLevel":
            self.pattern = regex.compile(GPT2_PATTERN)
        else:
            split = [p for p in pre["pretokenizers"] if p["type"] == "Split"][0]
            self.pattern = regex.compile(split["pattern"]["Regex"])

    def split_added(self, text, parse_special):
        """Leftmost-longest added-token matching; a special token that is
        not parsed still consumes its span."""
        out, done, i = [], 0, 0
        while i < len(text):
            best = None
            for content, tid, special in self.added:
                if text.startswith(content, i) and (best is None or len(content) > len(best[0])):
                    best = (content, tid, special)
            if best is None:
                i += 1
                continue
            start, i = i, i + len(best[0])
            if best[2] and not parse_special:
                continue
            if start > done:
                out.append(text[done:start])
            out.append(best[1])
            done = i
        if done < len(text):
            out.append(text[done:])
        return out

    def bpe(self, word):
        syms = list(word)
        while len(syms) > 1:
            best, pos = None, -1
            for i in range(len(syms) - 1):
                r = self.ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, pos = r, i
            if best is None:
                break
            syms[pos:pos + 2] = [syms[pos] + syms[pos + 1]]
        return [self.vocab[s] for s in syms]

    def encode(self, text, parse_special=False):
        ids = []
        for part in self.split_added(text, parse_special):
            if isinstance(part, int):
                ids.append(part)
                continue
            if self.nfc:
                part = unicodedata.normalize("NFC", part)
            for piece in self.pattern.findall(part):
                word = "".join(BYTE_CHARS[b] for b in piece.encode("utf-8"))
                ids.extend(self.bpe(word))
        return ids


ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(" " * 12 + "\n" * 4 + "\t\r\u00a0\u3000\u2028\u000b")
    + list("'''.,;:!?-_()[]{}<>|/\\\"#$%&*+=@^`~")
    + ["'s", "'T", "'re", "'LL", "'\u017f", "\u00bd", "\u00b2", "\u0663", "\u2167"]
    + ["\u00e9", "e\u0301", "\u00df", "\u0130", "\u0394", "\u0436", "\u05d0", "\u0627", "\u0915\u093f"]
    + ["\u6f22", "\u5b57", "\u3042", "\ud55c", "\u0e01", "\u1780\u17b6"]
    + ["\U0001F600", "\U0001F680", "\U0001F469\u200d\U0001F4BB", "\u2705", "\ufe0f", "\u200b", "\ufffd"]
)


def random_strings(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(0, 40)
        out.append("".join(rng.choice(ALPHABET) for _ in range(k)))
    return out


def corpus(assets):
    texts = []
    with open(f"{assets}/gsm8k/train.jsonl", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 12:
                break
            r = json.loads(line)
            texts += [r["question"], r["answer"]]
    with gzip.open(f"{assets}/hh-rlhf/harmless-base-test.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 4:
                break
            texts.append(json.loads(line)["chosen"][:1500])
    with open(f"{assets}/sentiment-uci/imdb_labelled.txt", encoding="utf-8") as f:
        texts += [line.rstrip("\n") for _, line in zip(range(15), f)]
    texts += [
        "   leading and trailing   ",
        "tabs\tand\r\nCRLF\r\n\r\n  lines",
        "numbers 1234567 and 3.14159 and 1,000,000",
        "Don't I'M you'RE they'LL we'VE he'D it's",
        "caf\u00e9 vs cafe\u0301 (NFC vs NFD)",
        "<|im_start|>user\nhi<|im_end|>",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nOK<|im_end|>",
        "<|endoftext|>text<|endoftext|>",
        "<|im_start|<|im_end|>>",
    ]
    return texts + random_strings(60, seed=20240601)


def main():
    assets = sys.argv[1]
    texts = corpus(assets)
    out = {"generator": "tools/tokenizer_hf_ref.py", "texts": texts, "ids": {}}
    for key, path in [("gpt2", "tokenizers/gpt2/tokenizer.json"), ("qwen3", "tokenizers/qwen3/tokenizer.json")]:
        tok = RefTokenizer(f"{assets}/{path}")
        out["ids"][key] = {
            "plain": [tok.encode(t, False) for t in texts],
            "special": [tok.encode(t, True) for t in texts],
        }
    json.dump(out, sys.stdout, ensure_ascii=False, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
