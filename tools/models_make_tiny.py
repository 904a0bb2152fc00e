#!/usr/bin/python3
"""Tiny random Hugging Face model folders for internal/model/load tests.

For each supported architecture this writes, under
internal/model/load/testdata/tiny/<name>/ (or the folder given as argv[1]):

  config.json            as transformers would write it for that class
  model.safetensors      the weights under their HF names, written by hand
                         (the safetensors package is not used), F32; the
                         mistral folder is sharded (two files + index) and
                         llama_bf16 is stored as BF16
  expected.json          inputs: ids [B][T], targets [B][T] (-1 = none),
                         and the loss value
  expected.safetensors   F32 expected outputs: "logits" [B,T,V] (causal
                         LMs) or "values" [B,T] (score models), and
                         "grad.<param name>" for every parameter

The loss is the mean target log-prob over valid positions (causal LMs;
the mean of TokenLogProbs where target >= 0), or the mean reward read at
each row's last non-pad token (score models). Expected outputs are stored
as float32 binary rather than JSON text so the folders stay small and the
values exact.

transformers is not installed: the models are written from the HF
formulas, reusing tools/golden_engine.py (already checked against the Go
models) and adding the pieces it lacks (hidden states for score heads,
Qwen2 biases without the attention_bias key, Qwen3 q/k norms, GPT-2's
unprefixed names and attn.bias buffers).

Run from the repository root:  /usr/bin/python3 tools/models_make_tiny.py
"""
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_engine as ge  # noqa: E402

torch.set_num_threads(1)

B, T = 2, 7
DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16"}


# ---- safetensors, by hand ------------------------------------------------------

def raw_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype("<f4").tobytes()


def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    chunks, off = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        data = raw_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def write_sharded(folder, tensors):
    names = sorted(tensors)
    half = len(names) // 2
    parts = [names[:half], names[half:]]
    weight_map, total = {}, 0
    for i, part in enumerate(parts):
        fname = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        write_safetensors(os.path.join(folder, fname), {n: tensors[n] for n in part}, {"format": "pt"})
        for n in part:
            weight_map[n] = fname
            total += tensors[n].numel() * tensors[n].element_size()
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)


# ---- models ------------------------------------------------------------------------

def llama_hidden(c, P, ids):
    """HF LlamaModel/Qwen2Model/Qwen3Model/MistralModel last_hidden_state."""
    Bn, Tn = ids.shape
    C, H, Hkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    D = c["head_dim"]
    eps = c["rms_norm_eps"]
    pos = torch.arange(Tn)[None, :].expand(Bn, Tn)
    freqs = pos.float()[:, :, None] * ge.inv_freq(c, D)[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    mask = ge.causal_mask(Tn)
    x = P["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = ge.rms_norm(x, P[p + "input_layernorm.weight"], eps)

        def proj(n, heads):
            y = h @ P[p + f"self_attn.{n}_proj.weight"].t()
            if c["bias"]:
                y = y + P[p + f"self_attn.{n}_proj.bias"]
            return y.view(Bn, Tn, heads, D)
        q, k, v = proj("q", H), proj("k", Hkv), proj("v", Hkv)
        if c["qk_norm"]:
            q = ge.rms_norm(q, P[p + "self_attn.q_norm.weight"], eps)
            k = ge.rms_norm(k, P[p + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * cos + ge.rotate_half(q) * sin
        k = k * cos + ge.rotate_half(k) * sin
        a = ge.attention(q, k, v, mask).transpose(1, 2).reshape(Bn, Tn, H * D)
        x = x + a @ P[p + "self_attn.o_proj.weight"].t()
        h = ge.rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = F.silu(h @ P[p + "mlp.gate_proj.weight"].t()) * (h @ P[p + "mlp.up_proj.weight"].t())
        x = x + g @ P[p + "mlp.down_proj.weight"].t()
    return ge.rms_norm(x, P["model.norm.weight"], eps)


def llama_shapes(c, causal):
    s = ge.llama_shapes({**c, "attention_bias": c["bias"], "tie_word_embeddings": c["tie"] or not causal})
    return s


def gpt2_hidden(c, P, ids):
    """GPT2Model last_hidden_state (ln_f applied)."""
    Bn, Tn = ids.shape
    C, H = c["n_embd"], c["n_head"]
    D = C // H
    eps = c["layer_norm_epsilon"]
    x = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][torch.arange(Tn)]
    mask = ge.causal_mask(Tn)
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        h = F.layer_norm(x, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], eps)
        qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
        q, k, v = (t.view(Bn, Tn, H, D).transpose(1, 2) for t in qkv.split(C, dim=-1))
        a = ge.attention(q, k, v, mask).transpose(1, 2).reshape(Bn, Tn, C)
        x = x + a @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], eps)
        h = ge.gelu_new(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"])
        x = x + h @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
    return F.layer_norm(x, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)


def mean_target_logprob(logits, targets):
    lp = torch.log_softmax(logits, dim=-1)
    valid = targets >= 0
    picked = lp.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    return (picked * valid).sum() / valid.sum()


def round_bf16(P):
    with torch.no_grad():
        for t in P.values():
            t.copy_(t.to(torch.bfloat16).float())


# ---- cases -------------------------------------------------------------------------

LLAMA_BASE = {"vocab_size": 32, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
              "num_attention_heads": 4, "max_position_embeddings": 64, "hidden_act": "silu",
              "initializer_range": 0.02, "use_cache": True, "bos_token_id": 1, "eos_token_id": 2,
              "torch_dtype": "float32", "transformers_version": "4.46.0"}


def hf_llama_config(arch, model_type, extra):
    c = {"architectures": [arch], "model_type": model_type, **LLAMA_BASE, **extra}
    return c


def cases():
    """(name, hf config, internal config, kind, storage) for every folder."""
    out = []
    # Llama 3 style: GQA, untied, llama3 RoPE scaling.
    cfg = hf_llama_config("LlamaForCausalLM", "llama", {
        "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False,
        "attention_bias": False, "mlp_bias": False, "pretraining_tp": 1,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8}})
    out.append(("llama", cfg, {"head_dim": 4, "bias": False, "qk_norm": False, "tie": False}, "causal", "f32"))
    # Qwen2: q/k/v biases with no attention_bias key, tied.
    cfg = hf_llama_config("Qwen2ForCausalLM", "qwen2", {
        "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True,
        "use_sliding_window": False, "sliding_window": 32, "max_window_layers": 2})
    out.append(("qwen2", cfg, {"head_dim": 4, "bias": True, "qk_norm": False, "tie": True}, "causal", "f32"))
    # Qwen3: q/k norms, head_dim 8 != 16/4, tie_word_embeddings absent (False).
    cfg = hf_llama_config("Qwen3ForCausalLM", "qwen3", {
        "num_key_value_heads": 2, "head_dim": 8, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "attention_bias": False, "use_sliding_window": False, "sliding_window": None})
    out.append(("qwen3", cfg, {"head_dim": 8, "bias": False, "qk_norm": True, "tie": False}, "causal", "f32"))
    # Mistral: sliding window set (ignored with a warning), sharded weights.
    cfg = hf_llama_config("MistralForCausalLM", "mistral", {
        "num_key_value_heads": 1, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "sliding_window": 4096})
    out.append(("mistral", cfg, {"head_dim": 4, "bias": False, "qk_norm": False, "tie": False}, "causal", "sharded"))
    # GPT-2 as openai-community/gpt2 stores it: no "transformer." prefix,
    # attn.bias / attn.masked_bias buffers, tie_word_embeddings absent (True).
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 32, "n_positions": 16,
           "n_ctx": 16, "n_embd": 16, "n_layer": 2, "n_head": 4, "n_inner": None, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
           "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32"}
    out.append(("gpt2", cfg, {}, "causal", "gpt2-legacy"))
    # Llama reward model with OpenRLHF's normalisation fields.
    cfg = hf_llama_config("LlamaForSequenceClassification", "llama", {
        "num_key_value_heads": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "pad_token_id": 0, "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0},
        "normalize_reward": True, "mean": 0.5, "std": 2.0})
    out.append(("llama_seqcls", cfg, {"head_dim": 4, "bias": False, "qk_norm": False, "tie": True}, "score", "f32"))
    # The Llama case again, stored as bfloat16.
    cfg = dict(out[0][1], torch_dtype="bfloat16")
    out.append(("llama_bf16", cfg, out[0][2], "causal", "bf16"))
    return out


def make(folder, name, cfg, inner, kind, storage, seed):
    torch.manual_seed(seed)
    is_gpt2 = cfg["model_type"] == "gpt2"
    if is_gpt2:
        shapes = ge.gpt2_shapes(cfg)
    else:
        c = {**cfg, **inner}
        shapes = llama_shapes(c, kind == "causal")
    if kind == "score":
        shapes["score.weight"] = (1, cfg["hidden_size"])
    P = ge.rand_params(shapes)
    if storage == "bf16":
        round_bf16(P)

    V = cfg["vocab_size"]
    ids = torch.randint(3, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    targets[0, :2] = -1
    targets[1, -1] = -1
    expected = {}
    if kind == "score":
        pad = cfg["pad_token_id"]
        ids[1, 5:] = pad  # right padding
        hidden = llama_hidden(c, P, ids)
        values = (hidden @ P["score.weight"].t())[..., 0]
        last = torch.tensor([max(j for j in range(T) if ids[b, j] != pad) for b in range(B)])
        loss = values.gather(1, last[:, None])[:, 0].mean()
        expected["values"] = values
        targets = torch.full((B, T), -1)
    else:
        if is_gpt2:
            logits = ge.gpt2_forward(cfg, P, ids)
        else:
            hidden = llama_hidden(c, P, ids)
            head = P["model.embed_tokens.weight"] if inner["tie"] else P["lm_head.weight"]
            logits = hidden @ head.t()
        loss = mean_target_logprob(logits, targets)
        expected["logits"] = logits
    loss.backward()
    for n, t in P.items():
        expected["grad." + n] = t.grad

    d = os.path.join(folder, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    weights = {n: t.detach() for n, t in P.items()}
    if storage == "bf16":
        write_safetensors(os.path.join(d, "model.safetensors"),
                          {n: t.to(torch.bfloat16) for n, t in weights.items()}, {"format": "pt"})
    elif storage == "sharded":
        write_sharded(d, weights)
    elif storage == "gpt2-legacy":
        legacy = {n[len("transformer."):]: t for n, t in weights.items()}
        P_ = cfg["n_positions"]
        for i in range(cfg["n_layer"]):
            legacy[f"h.{i}.attn.bias"] = torch.tril(torch.ones(P_, P_)).view(1, 1, P_, P_)
            legacy[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
        write_safetensors(os.path.join(d, "model.safetensors"), legacy, {"format": "pt"})
    else:
        write_safetensors(os.path.join(d, "model.safetensors"), weights, {"format": "pt"})
    write_safetensors(os.path.join(d, "expected.safetensors"),
                      {n: t.detach().float().contiguous() for n, t in expected.items()})
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"kind": kind, "ids": ids.tolist(), "targets": targets.tolist(), "loss": float(loss),
                   "torch_version": torch.__version__}, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"wrote {d} ({size} bytes)")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "internal", "model", "load", "testdata", "tiny")
    folder = os.path.normpath(folder)
    for i, (name, cfg, inner, kind, storage) in enumerate(cases()):
        make(folder, name, cfg, inner, kind, storage, seed=100 + i)


if __name__ == "__main__":
    main()
