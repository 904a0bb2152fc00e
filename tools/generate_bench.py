#!/usr/bin/env python3
"""PyTorch twin of `gorlhf bench generate`: batched sampling with a static
KV cache on the same bench GPT (GPT-2 architecture: learned positions,
LayerNorm, GELU-tanh, biases, tied embeddings; random weights) and the same
workload: --prompts random prompts of --prompt-len tokens, --n samples each,
exactly --gen-len sampled tokens per sample (temperature 1, the raw
log-prob of each token kept, as RL needs).

The cache is preallocated per layer as [B·n, H, prompt+gen, D]; each decode
step writes one position and attends over the filled prefix. By default the
prompts are expanded n times before the prefill, as Hugging Face's
generate(num_return_sequences=n) does; --share-prefill prefills each prompt
once and copies its cache n times instead (a fairer match for gorlhf's
prefix sharing).

Run: /usr/bin/python3 tools/generate_bench.py --threads 2 [--json]
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x, kc, vc, start):
        """x [B, T, C] at positions start..start+T-1; kc, vc [B, H, Tmax, D]."""
        B, T, C = x.shape
        D = C // self.H
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.H, D).transpose(1, 2) for t in (q, k, v))
        kc[:, :, start:start + T] = k
        vc[:, :, start:start + T] = v
        keys, vals = kc[:, :, :start + T], vc[:, :, :start + T]
        att = (q @ keys.transpose(-2, -1)) / math.sqrt(D)
        if T > 1:  # prefill: causal mask inside the chunk
            mask = torch.ones(T, start + T, dtype=torch.bool).tril(diagonal=start)
            att = att.masked_fill(~mask, float("-inf"))
        y = (torch.softmax(att, dim=-1) @ vals).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, P, C, L, H):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(P, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.H, self.P = H, P
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def new_cache(self, B):
        C = self.wte.weight.shape[1]
        shape = (B, self.H, self.P, C // self.H)
        return [(torch.empty(shape), torch.empty(shape)) for _ in self.h]

    def forward(self, ids, cache, start):
        """ids [B, T] at positions start..; returns last-position logits [B, V]."""
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(start, start + T))
        for b, (kc, vc) in zip(self.h, cache):
            x = b(x, kc, vc, start)
        return self.ln_f(x[:, -1]) @ self.wte.weight.t()


def sample(logits, gen):
    """Temperature-1 multinomial draw plus the token's raw log-prob."""
    logp = torch.log_softmax(logits, dim=-1)
    tok = torch.multinomial(logp.exp(), 1, generator=gen)
    return tok, logp.gather(1, tok)


def run(a, m, prompts):
    gen = torch.Generator().manual_seed(a.seed)
    B = a.prompts * a.n
    t0 = time.perf_counter()
    if a.share_prefill:
        small = m.new_cache(a.prompts)
        logits = m(prompts, small, 0).repeat_interleave(a.n, dim=0)
        cache = [(k.repeat_interleave(a.n, dim=0), v.repeat_interleave(a.n, dim=0)) for k, v in small]
    else:
        cache = m.new_cache(B)
        logits = m(prompts.repeat_interleave(a.n, dim=0), cache, 0)
    tok, lp = sample(logits, gen)
    ttft = time.perf_counter() - t0
    toks, lps = [tok], [lp]
    for i in range(1, a.gen_len):
        tok, lp = sample(m(tok, cache, a.prompt_len + i - 1), gen)
        toks.append(tok)
        lps.append(lp)
    wall = time.perf_counter() - t0
    assert torch.cat(toks, 1).shape == (B, a.gen_len)
    return wall, ttft


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(layers=4, dim=256, heads=4, vocab=512, prompts=64, n=8, prompt_len=64, gen_len=64,
                     threads=2, seed=1, runs=1).items():
        ap.add_argument("--" + k.replace("_", "-"), dest=k, type=int, default=v)
    ap.add_argument("--share-prefill", action="store_true", help="prefill each prompt once, then copy its cache n times")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    m = GPT(a.vocab, a.prompt_len + a.gen_len, a.dim, a.layers, a.heads).eval()
    prompts = torch.randint(0, a.vocab, (a.prompts, a.prompt_len), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        warm = argparse.Namespace(**{**vars(a), "prompts": 1, "n": 2, "gen_len": 4})
        run(warm, m, prompts[:1])
        walls, ttfts = zip(*(run(a, m, prompts) for _ in range(a.runs)))
    wall, ttft = statistics.median(walls), statistics.median(ttfts)
    tokens = a.prompts * a.n * a.gen_len
    res = {"engine": "pytorch-" + torch.__version__, "threads": torch.get_num_threads(),
           "mode": "torch-share-prefill" if a.share_prefill else "torch",
           "params": sum(p.numel() for p in m.parameters()) - m.wpe.weight.numel() + m.wpe.weight.numel(),
           "layers": a.layers, "dim": a.dim, "heads": a.heads, "vocab": a.vocab, "prompts": a.prompts, "n": a.n,
           "prompt_len": a.prompt_len, "gen_len": a.gen_len, "generated_tokens": tokens, "wall_s": wall,
           "tokens_per_sec": tokens / wall, "ttft_ms_median": ttft * 1e3, "ttft_ms_p90": ttft * 1e3,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{res['mode']} {torch.__version__}, {res['threads']} threads: {a.prompts} prompts × n={a.n}, "
              f"prompt {a.prompt_len}, generate {a.gen_len}: {tokens} tokens in {wall:.2f} s → "
              f"{res['tokens_per_sec']:.0f} tokens/s; first token {ttft * 1e3:.0f} ms; peak RSS {res['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
