#!/usr/bin/env python3
"""A random Llama folder for the LoRA measurements (docs/LORA.md): the
embedded stories260K's shape scaled up (hidden 512, 8 layers, ~26M
parameters), with stories260K's tokenizer files copied from a converted
folder, so `gorlhf train sft|dpo` run on it with the same data.

    gorlhf convert --model stories260K --out /tmp/stories
    /usr/bin/python3 tools/lora_bench_model.py /tmp/stories /tmp/llama26m
"""
import json
import os
import shutil
import struct
import sys

import torch


def main():
    src, out = sys.argv[1:3]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(src, "config.json")) as f:
        c = json.load(f)
    c.update({"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 8,
              "num_attention_heads": 8, "num_key_value_heads": 8, "head_dim": 64})
    torch.manual_seed(0)
    C, I, V, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
    shapes = {"model.embed_tokens.weight": (V, C)}
    for i in range(L):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (C,), p + "self_attn.q_proj.weight": (C, C),
                       p + "self_attn.k_proj.weight": (C, C), p + "self_attn.v_proj.weight": (C, C),
                       p + "self_attn.o_proj.weight": (C, C), p + "post_attention_layernorm.weight": (C,),
                       p + "mlp.gate_proj.weight": (I, C), p + "mlp.up_proj.weight": (I, C),
                       p + "mlp.down_proj.weight": (C, I)})
    shapes["model.norm.weight"] = (C,)
    header, blobs, off = {}, [], 0
    for name, shape in shapes.items():
        t = torch.ones(shape) if name.endswith("norm.weight") else 0.02 * torch.randn(shape)
        b = t.float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(src, name), os.path.join(out, name))
    print(f"wrote {out}: {sum(torch.Size(s).numel() for s in shapes.values()) / 1e6:.1f}M parameters")


if __name__ == "__main__":
    main()
