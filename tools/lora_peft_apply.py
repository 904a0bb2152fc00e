#!/usr/bin/env python3
"""Apply a PEFT LoRA adapter folder to its base model by PEFT's rules and
write the logits, as an independent check of the adapters gorlhf saves.

    /usr/bin/python3 tools/lora_peft_apply.py BASE_DIR ADAPTER_DIR INPUTS_JSON OUT_JSON

BASE_DIR is a Hugging Face folder (config.json + model.safetensors, F32) of
a Llama-family or GPT-2 model; ADAPTER_DIR holds adapter_config.json and
adapter_model.safetensors as PEFT's save_pretrained writes them. peft and
transformers are not installed, so this script implements what PEFT
documents for merging a LoRA adapter (LoraLayer.get_delta_weight):

    key of lora_A / lora_B:  base_model.model.<module>.lora_A.weight  [r, in]
                             base_model.model.<module>.lora_B.weight  [out, r]
    scaling = lora_alpha / r           (lora_alpha / sqrt(r) with use_rslora)
    delta   = scaling * (lora_B @ lora_A)          [out, in]
    W      += delta.T if fan_in_fan_out else delta (GPT-2 Conv1D stores [in, out])

and modules_to_save tensors (base_model.model.<name>) replace the base's.
The merged weights go through the model formulas of tools/golden_engine.py.
INPUTS_JSON is {"ids": [[...], ...]}; OUT_JSON gets {"logits": [...]}.
"""
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import golden_engine as ge  # noqa: E402

PREFIX = "base_model.model."


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {info['dtype']}, this script reads F32")
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def merge(P, adapter_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    assert cfg["peft_type"] == "LORA" and not cfg.get("use_dora")
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    fan = cfg.get("fan_in_fan_out", False)
    T = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    merged = 0
    for name, t in T.items():
        assert name.startswith(PREFIX), name
        rest = name[len(PREFIX):]
        if rest.endswith(".lora_A.weight"):
            mod = rest[: -len(".lora_A.weight")]
            A, B = t, T[PREFIX + mod + ".lora_B.weight"]
            delta = scaling * (B @ A)
            w = P[mod + ".weight"]
            P[mod + ".weight"] = w + (delta.t() if fan else delta)
            merged += 1
        elif rest.endswith(".lora_B.weight"):
            continue
        else:
            P[rest] = t
    return merged


def main():
    base, adapter, inputs, out = sys.argv[1:5]
    with open(os.path.join(base, "config.json")) as f:
        c = json.load(f)
    P = read_safetensors(os.path.join(base, "model.safetensors"))
    n = merge(P, adapter)
    with open(inputs) as f:
        ids = json.load(f)["ids"]
    ids_t = torch.tensor(ids)
    with torch.no_grad():
        if c["model_type"] == "gpt2":
            c.setdefault("layer_norm_epsilon", 1e-5)
            logits = ge.gpt2_forward(c, P, ids_t)
        else:
            c.setdefault("num_key_value_heads", c["num_attention_heads"])
            c.setdefault("rope_theta", 10000.0)
            c.setdefault("tie_word_embeddings", False)
            pos = torch.arange(ids_t.shape[1]).repeat(ids_t.shape[0], 1)
            logits = ge.llama_forward(c, P, ids_t, pos)
    with open(out, "w") as f:
        json.dump({"merged_adapters": n, "torch_version": torch.__version__, "logits": ge.flat(logits)}, f)
    print(f"merged {n} adapters into {base}; wrote {out}")


if __name__ == "__main__":
    main()
