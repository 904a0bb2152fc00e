#!/usr/bin/env python3
"""Golden values for gorlhf's LoRA tests, from PyTorch 1.13 (CPU, float32).

Writes testdata/golden_lora.json: for a tiny Llama-family model (GQA, q/k/v
biases) with adapters on every linear map of its blocks, and a tiny GPT-2
with adapters on its Conv1D maps (c_attn, c_proj, c_fc: PEFT's
fan_in_fan_out), the frozen base weights, the adapters (PEFT's lora_A
[r, in] and lora_B [out, r]), the inputs, the logits, the cross-entropy
loss and the gradient of every adapter weight (the base gets none).

PEFT's LoRA rule (peft.tuners.lora.Linear.forward) is
    y = base(x) + scaling * lora_B(lora_A(dropout(x))),  scaling = lora_alpha / r
which equals x @ (W + scaling * B @ A).T (+ bias); for a Conv1D weight
W [in, out] the delta is transposed (fan_in_fan_out). The forward below
feeds that effective weight, built from A and B with autograd, to the
plain model formulas of tools/golden_engine.py, so the gradients of A and
B are exact. Dropout is 0 (the test's forward is deterministic).

Run: /usr/bin/python3 tools/lora_golden.py   (needs Debian python3-torch)
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import golden_engine as ge  # noqa: E402

torch.manual_seed(15)
torch.set_num_threads(1)

LLAMA_TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
GPT2_TARGETS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


def adapters(P, modules, r, fan_in_fan_out):
    """lora_A [r, in] (Kaiming-uniform bound 1/sqrt(in)) and a non-zero
    lora_B [out, r] for every module, as leaves that require grad."""
    L = {}
    for m in modules:
        w = P[m + ".weight"]
        inp, out = (w.shape[0], w.shape[1]) if fan_in_fan_out else (w.shape[1], w.shape[0])
        a = (torch.rand(r, inp) * 2 - 1) / inp ** 0.5
        b = 0.3 * torch.randn(out, r)
        L[m + ".lora_A.weight"] = a.requires_grad_(True)
        L[m + ".lora_B.weight"] = b.requires_grad_(True)
    return L


def effective(P, L, modules, scaling, fan_in_fan_out):
    E = dict(P)
    for m in modules:
        d = scaling * (L[m + ".lora_B.weight"] @ L[m + ".lora_A.weight"])  # [out, in]
        E[m + ".weight"] = P[m + ".weight"] + (d.t() if fan_in_fan_out else d)
    return E


def run(kind, c, ids, targets, r, alpha, pos=None):
    shapes = ge.gpt2_shapes(c) if kind == "gpt2" else ge.llama_shapes(c)
    P = {n: t.detach() for n, t in ge.rand_params(shapes).items()}  # frozen base
    fan = kind == "gpt2"
    if fan:
        modules = [f"transformer.h.{i}.{m}" for i in range(c["n_layer"]) for m in GPT2_TARGETS]
    else:
        modules = [f"model.layers.{i}.{m}" for i in range(c["num_hidden_layers"]) for m in LLAMA_TARGETS]
    L = adapters(P, modules, r, fan)
    E = effective(P, L, modules, alpha / r, fan)
    ids_t = torch.tensor(ids)
    if fan:
        logits = ge.gpt2_forward(c, E, ids_t)
    else:
        logits = ge.llama_forward(c, E, ids_t, torch.tensor(pos))
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, V), torch.tensor(targets).reshape(-1), ignore_index=-100)
    loss.backward()
    return {
        "kind": kind, "config": c, "r": r, "alpha": alpha, "ids": ids, "targets": targets, "pos": pos,
        "params": {n: {"shape": list(t.shape), "data": ge.flat(t)} for n, t in P.items()},
        "adapters": {n: {"shape": list(t.shape), "data": ge.flat(t)} for n, t in L.items()},
        "logits": ge.flat(logits), "loss": float(loss),
        "grads": {n: ge.flat(t.grad) for n, t in L.items()},
    }


def main():
    qwen = {"vocab_size": 41, "hidden_size": 32, "intermediate_size": 44, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0, "tie_word_embeddings": False, "attention_bias": True}
    ids = torch.randint(0, 41, (2, 7)).tolist()
    pos = [list(range(7)), list(range(7))]
    targets = torch.randint(0, 41, (2, 7))
    targets[1, 5:] = -100
    out = {"llama_lora": run("llama", qwen, ids, targets.tolist(), r=4, alpha=8, pos=pos)}

    gpt2 = {"vocab_size": 37, "n_positions": 16, "n_embd": 24, "n_layer": 2, "n_head": 3, "layer_norm_epsilon": 1e-5}
    ids = torch.randint(0, 37, (2, 9)).tolist()
    targets = torch.randint(0, 37, (2, 9))
    targets[0, :2] = -100
    out["gpt2_lora"] = run("gpt2", gpt2, ids, targets.tolist(), r=2, alpha=5)

    out["torch_version"] = torch.__version__
    path = os.path.join(os.path.dirname(__file__), "..", "testdata", "golden_lora.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
