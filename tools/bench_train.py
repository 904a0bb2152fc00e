#!/usr/bin/env python3
"""PyTorch twin of `gorlhf bench train`: the same bench GPT (GPT-2 architecture:
learned positions, LayerNorm, GELU-tanh, biases, tied embeddings), the same
step (forward, cross-entropy on random tokens, backward, AdamW), timed the same
way (median over --steps after --warmup), so the two can run side by side.

Run: /usr/bin/python3 tools/bench_train.py --threads 2 [--json] [--openblas-coretype auto|none|NAME]

Debian's torch runs its matmuls through OpenBLAS, and OpenBLAS 0.3.21 takes some
AVX-512 CPUs for "Prescott" (SSE3) and runs 5-7x slower. With the default
--openblas-coretype auto this script sets OPENBLAS_CORETYPE the way gorlhf does
(SkylakeX / Haswell) before importing torch, so PyTorch gets its best kernels.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time


def _coretype_from_argv():
    choice = "auto"
    for i, a in enumerate(sys.argv):
        if a == "--openblas-coretype" and i + 1 < len(sys.argv):
            choice = sys.argv[i + 1]
        elif a.startswith("--openblas-coretype="):
            choice = a.split("=", 1)[1]
    if choice == "none" or "OPENBLAS_CORETYPE" in os.environ:
        return
    if choice == "auto":
        flags = set()
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
        choice = "SkylakeX" if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags else (
            "Haswell" if {"avx2", "fma"} <= flags else "")
    if choice:
        os.environ["OPENBLAS_CORETYPE"] = choice


_coretype_from_argv()
import torch  # noqa: E402 (after OPENBLAS_CORETYPE is set)
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.H)
        att = torch.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
        x = x + self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, P, C, L, H):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(P, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        self.register_buffer("mask", torch.tril(torch.ones(P, P, dtype=torch.bool)))

    def forward(self, ids):
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x, self.mask[:T, :T])
        return self.ln_f(x) @ self.wte.weight.t()


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(layers=4, dim=256, heads=4, vocab=512, seq=128, batch=8, steps=10, warmup=2, threads=2).items():
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--openblas-coretype", default="auto", help="auto, none, or an OpenBLAS core name")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    m = GPT(a.vocab, a.seq, a.dim, a.layers, a.heads)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq))
    tg = torch.randint(0, a.vocab, (a.batch, a.seq))
    step_ms, fwd_ms = [], []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        with torch.no_grad():
            m(ids)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(ids).view(-1, a.vocab), tg.view(-1))
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if s >= a.warmup:
            fwd_ms.append((t1 - t0) * 1e3)
            step_ms.append((t2 - t1) * 1e3)
    n = a.batch * a.seq
    res = {"engine": "pytorch-" + torch.__version__, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""), "threads": torch.get_num_threads(),
           "params": sum(p.numel() for p in m.parameters()), "layers": a.layers, "dim": a.dim, "heads": a.heads,
           "vocab": a.vocab, "seq": a.seq, "batch": a.batch, "steps": a.steps,
           "step_ms_median": statistics.median(step_ms), "step_ms": step_ms,
           "fwd_ms_median": statistics.median(fwd_ms),
           "tokens_per_sec": n / (statistics.median(step_ms) / 1e3),
           "fwd_tokens_per_sec": n / (statistics.median(fwd_ms) / 1e3),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "final_loss": float(loss)}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"pytorch {torch.__version__}, {res['threads']} threads: step median {res['step_ms_median']:.1f} ms "
              f"({res['tokens_per_sec']:.0f} tok/s), forward {res['fwd_ms_median']:.1f} ms, peak RSS {res['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
