#!/usr/bin/python3
"""Check that a Llama-family HF folder written by `gorlhf convert` means what
transformers would make of it.

Reads config.json and model.safetensors (F32 or BF16) by hand, runs the
Hugging Face Llama formulas of tools/golden_engine.py (rotate-half RoPE: the
llama2.c q/k rows must have been permuted), decodes greedily from BOS=1 by
full recompute, and compares with the embedded reference
(internal/assets/stories260K/reference_greedy.json) when the folder is
stories260K.

Usage:  /usr/bin/python3 tools/models_check_hf.py DIR [N_TOKENS]
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_engine as ge  # noqa: E402

torch.set_num_threads(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = bytearray(data[a:b])
        if info["dtype"] == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32)
        elif info["dtype"] == "BF16":
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16).float()
        else:
            raise SystemExit(f"{name}: dtype {info['dtype']} not handled here")
        out[name] = t.reshape(info["shape"]).clone()
    return out


def main():
    folder = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    if cfg["model_type"] not in ("llama", "mistral", "qwen2", "qwen3"):
        raise SystemExit(f"model_type {cfg['model_type']} not handled here")
    c = dict(cfg)
    c.setdefault("num_key_value_heads", c["num_attention_heads"])
    c.setdefault("rope_theta", 10000.0)
    c.setdefault("tie_word_embeddings", False)
    c["attention_bias"] = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    c["qk_norm"] = cfg["model_type"] == "qwen3"
    P = read_safetensors(os.path.join(folder, "model.safetensors"))
    want = set(ge.llama_shapes(c))
    if set(P) != want:
        raise SystemExit(f"tensor names differ from HF's: extra {sorted(set(P) - want)}, missing {sorted(want - set(P))}")
    ids = [1]
    with torch.no_grad():
        for _ in range(steps):
            t = torch.tensor([ids])
            logits = ge.llama_forward(c, P, t, torch.arange(len(ids))[None, :])
            ids.append(int(logits[0, -1].argmax()))
    got = ids[1:]
    print(json.dumps(got))
    ref_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "internal", "assets", "stories260K",
                            "reference_greedy.json")
    if cfg.get("vocab_size") == 512 and cfg.get("hidden_size") == 64 and os.path.exists(ref_path):
        with open(ref_path) as f:
            ref = json.load(f)["greedy_ids"][:steps]
        same = sum(a == b for a, b in zip(got, ref))
        print(f"matches the llama2.c reference on {same}/{len(ref)} tokens")
        if same != len(ref):
            sys.exit(1)


if __name__ == "__main__":
    main()
