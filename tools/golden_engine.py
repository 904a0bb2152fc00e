#!/usr/bin/env python3
"""Golden values for gorlhf's engine tests, from PyTorch 1.13 (CPU, float32).

Writes testdata/golden_engine.json with, for a tiny GPT-2 and two tiny
Llama-family models (one with GQA + Qwen2 q/k/v biases + Qwen3 q/k norms +
Llama-3 RoPE scaling, one packed with per-sample masks), the weights under
Hugging Face names, the inputs, the logits, the cross-entropy loss and the
gradient of every parameter; and a few AdamW steps of torch.optim.AdamW.

The models are written here from the Hugging Face formulas (transformers is
not installed); the Go tests load the weights by name and compare.

Run: /usr/bin/python3 tools/golden_engine.py   (needs Debian python3-torch)
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)


def rand_params(shapes, std=0.2):
    ps = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight") or name.split(".")[-2] in ("ln_1", "ln_2", "ln_f") and name.endswith("weight"):
            t = 1.0 + 0.1 * torch.randn(shape)
        elif name.endswith("bias"):
            t = 0.1 * torch.randn(shape)
        else:
            t = std * torch.randn(shape)
        ps[name] = t.float().requires_grad_(True)
    return ps


def causal_mask(T, seg=None):
    m = torch.tril(torch.ones(T, T, dtype=torch.bool))
    if seg is not None:
        s = torch.tensor(seg)
        m = m & (s[:, None] == s[None, :])
    return m


def attention(q, k, v, mask):
    # q [B,H,T,D], k/v [B,Hkv,T,D]
    H, Hkv = q.shape[1], k.shape[1]
    k = k.repeat_interleave(H // Hkv, dim=1)
    v = v.repeat_interleave(H // Hkv, dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


# ---- GPT-2 ----------------------------------------------------------------

def gpt2_shapes(c):
    C, V, P = c["n_embd"], c["vocab_size"], c["n_positions"]
    s = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (P, C)}
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        s.update({p + "ln_1.weight": (C,), p + "ln_1.bias": (C,),
                  p + "attn.c_attn.weight": (C, 3 * C), p + "attn.c_attn.bias": (3 * C,),
                  p + "attn.c_proj.weight": (C, C), p + "attn.c_proj.bias": (C,),
                  p + "ln_2.weight": (C,), p + "ln_2.bias": (C,),
                  p + "mlp.c_fc.weight": (C, 4 * C), p + "mlp.c_fc.bias": (4 * C,),
                  p + "mlp.c_proj.weight": (4 * C, C), p + "mlp.c_proj.bias": (C,)})
    s.update({"transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,)})
    return s


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(c, P, ids):
    B, T = ids.shape
    C, H = c["n_embd"], c["n_head"]
    D = C // H
    eps = c["layer_norm_epsilon"]
    x = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][torch.arange(T)]
    mask = causal_mask(T)
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        h = F.layer_norm(x, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], eps)
        qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        a = attention(q, k, v, mask).transpose(1, 2).reshape(B, T, C)
        x = x + a @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], eps)
        h = gelu_new(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"])
        x = x + h @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
    return x @ P["transformer.wte.weight"].t()


# ---- Llama family -----------------------------------------------------------

def llama_shapes(c):
    C, V, I = c["hidden_size"], c["vocab_size"], c["intermediate_size"]
    H, Hkv = c["num_attention_heads"], c["num_key_value_heads"]
    D = c.get("head_dim", C // H)
    s = {"model.embed_tokens.weight": (V, C)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s.update({p + "input_layernorm.weight": (C,),
                  p + "self_attn.q_proj.weight": (H * D, C), p + "self_attn.k_proj.weight": (Hkv * D, C),
                  p + "self_attn.v_proj.weight": (Hkv * D, C), p + "self_attn.o_proj.weight": (C, H * D),
                  p + "post_attention_layernorm.weight": (C,),
                  p + "mlp.gate_proj.weight": (I, C), p + "mlp.up_proj.weight": (I, C),
                  p + "mlp.down_proj.weight": (C, I)})
        if c.get("attention_bias"):
            for n, o in (("q", H * D), ("k", Hkv * D), ("v", Hkv * D)):
                s[p + f"self_attn.{n}_proj.bias"] = (o,)
        if c.get("qk_norm"):
            s[p + "self_attn.q_norm.weight"] = (D,)
            s[p + "self_attn.k_norm.weight"] = (D,)
    s["model.norm.weight"] = (C,)
    if not c["tie_word_embeddings"]:
        s["lm_head.weight"] = (V, C)
    return s


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def inv_freq(c, D):
    base = c["rope_theta"]
    inv = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    rs = c.get("rope_scaling")
    if rs and rs.get("rope_type") == "llama3":
        factor, lf, hf, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        low_wave, high_wave = old / lf, old / hf
        wave = 2 * math.pi / inv
        scaled = torch.where(wave > low_wave, inv / factor, inv)
        smooth = (old / wave - lf) / (hf - lf)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wave < high_wave) * ~(wave > low_wave)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def llama_forward(c, P, ids, pos, seg=None):
    B, T = ids.shape
    C, H, Hkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    D = c.get("head_dim", C // H)
    eps = c["rms_norm_eps"]
    freqs = pos.float()[:, :, None] * inv_freq(c, D)[None, None, :]  # [B,T,D/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    mask = causal_mask(T, seg)
    x = P["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, P[p + "input_layernorm.weight"], eps)

        def proj(n, heads):
            y = h @ P[p + f"self_attn.{n}_proj.weight"].t()
            if c.get("attention_bias"):
                y = y + P[p + f"self_attn.{n}_proj.bias"]
            return y.view(B, T, heads, D)
        q, k, v = proj("q", H), proj("k", Hkv), proj("v", Hkv)
        if c.get("qk_norm"):
            q = rms_norm(q, P[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, P[p + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        a = attention(q, k, v, mask).transpose(1, 2).reshape(B, T, H * D)
        x = x + a @ P[p + "self_attn.o_proj.weight"].t()
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = F.silu(h @ P[p + "mlp.gate_proj.weight"].t()) * (h @ P[p + "mlp.up_proj.weight"].t())
        x = x + g @ P[p + "mlp.down_proj.weight"].t()
    x = rms_norm(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if c["tie_word_embeddings"] else P["lm_head.weight"]
    return x @ head.t()


# ---- runs -------------------------------------------------------------------

def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def run(kind, c, ids, targets, pos=None, seg=None):
    shapes = gpt2_shapes(c) if kind == "gpt2" else llama_shapes(c)
    P = rand_params(shapes)
    ids_t = torch.tensor(ids)
    if kind == "gpt2":
        logits = gpt2_forward(c, P, ids_t)
    else:
        logits = llama_forward(c, P, ids_t, torch.tensor(pos), seg)
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, V), torch.tensor(targets).reshape(-1), ignore_index=-100)
    loss.backward()
    return {
        "kind": kind, "config": c, "ids": ids, "targets": targets, "pos": pos, "seg": seg,
        "params": {n: {"shape": list(t.shape), "data": flat(t)} for n, t in P.items()},
        "logits": flat(logits), "loss": float(loss),
        "grads": {n: flat(t.grad) for n, t in P.items()},
    }


def adamw_golden():
    torch.manual_seed(1)
    a = torch.randn(5, 7, requires_grad=True)
    b = torch.randn(7, requires_grad=True)
    init = {"a.weight": flat(a), "b.bias": flat(b)}
    opt = torch.optim.AdamW([{"params": [a], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    steps = []
    for step, lr in enumerate([1e-2, 5e-3, 2e-2, 1e-3]):
        for g in opt.param_groups:
            g["lr"] = lr
        ga, gb = torch.randn(5, 7), torch.randn(7) * 1e-3
        a.grad, b.grad = ga.clone(), gb.clone()
        opt.step()
        steps.append({"lr": lr, "grads": {"a.weight": flat(ga), "b.bias": flat(gb)},
                      "after": {"a.weight": flat(a), "b.bias": flat(b)}})
    return {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "init": init, "steps": steps}


def main():
    gpt2 = {"vocab_size": 37, "n_positions": 16, "n_embd": 24, "n_layer": 2, "n_head": 3, "layer_norm_epsilon": 1e-5}
    ids = torch.randint(0, 37, (2, 9)).tolist()
    targets = torch.randint(0, 37, (2, 9))
    targets[0, :2] = -100
    out = {"gpt2": run("gpt2", gpt2, ids, targets.tolist())}

    qwen = {"vocab_size": 41, "hidden_size": 32, "intermediate_size": 44, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "tie_word_embeddings": False, "attention_bias": True, "qk_norm": True,
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 8}}
    ids = torch.randint(0, 41, (2, 7)).tolist()
    pos = [list(range(3, 10)), list(range(7))]
    targets = torch.randint(0, 41, (2, 7))
    targets[1, 5:] = -100
    out["llama_gqa"] = run("llama", qwen, ids, targets.tolist(), pos=pos)

    llama = {"vocab_size": 29, "hidden_size": 16, "intermediate_size": 40, "num_hidden_layers": 2,
             "num_attention_heads": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
             "rope_theta": 10000.0, "tie_word_embeddings": True}
    seg = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    pos = [[0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3]]
    ids = torch.randint(0, 29, (1, 11)).tolist()
    targets = torch.randint(0, 29, (1, 11))
    targets[0, 3] = targets[0, 6] = -100  # no target across a sample boundary
    out["llama_packed"] = run("llama", llama, ids, targets.tolist(), pos=pos, seg=seg)

    out["adamw"] = adamw_golden()
    out["torch_version"] = torch.__version__
    path = os.path.join(os.path.dirname(__file__), "..", "testdata", "golden_engine.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
