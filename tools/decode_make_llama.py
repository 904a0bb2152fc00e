#!/usr/bin/python3
"""A random Llama in llama2.c's checkpoint format, for the decode benchmark
(docs/BENCHMARKS.md, "Single-stream decode"): the issue's 26M workload by
default (dim 512, 8 layers, 8 heads, hidden 1376, vocab 512, seq_len 512,
shared classifier), weights N(0, 0.02²) and unit norms, seed 0.

Run: /usr/bin/python3 tools/decode_make_llama.py OUT.bin [dim layers heads hidden vocab seq_len]
"""
import struct
import sys

import torch


def main():
    out = sys.argv[1]
    dim, layers, heads, hidden, vocab, seq = (int(a) for a in (sys.argv[2:8] or [512, 8, 8, 1376, 512, 512]))
    g = torch.Generator().manual_seed(0)
    hd = dim // heads

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    parts = [rnd(vocab, dim), torch.ones(layers, dim), rnd(layers, dim, dim), rnd(layers, dim, dim),
             rnd(layers, dim, dim), rnd(layers, dim, dim), torch.ones(layers, dim),
             rnd(layers, hidden, dim), rnd(layers, dim, hidden), rnd(layers, hidden, dim),
             torch.ones(dim), torch.zeros(2, seq, hd // 2)]
    with open(out, "wb") as f:
        f.write(struct.pack("7i", dim, hidden, layers, heads, heads, vocab, seq))
        for p in parts:
            f.write(p.to(torch.float32).contiguous().numpy().tobytes())
    n = sum(p.numel() for p in parts[:-1])
    print(f"{out}: {n / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main()
