#!/usr/bin/env python3
"""Golden values for gorlhf's actor and critic optimizer steps, from PyTorch 1.13.

OpenRLHF computes PPO losses on a batch laid out its own way: prompts
left-padded, responses right-padded, position ids = cumsum(attention_mask)−1,
action log-probs = log_softmax(logits[:, :-1])[sequences[:, 1:]] over the last
num_actions columns, and the critic's values = value_head(hidden)[:, :-1] over
the same columns. gorlhf's in-process roles (internal/dist/inproc) instead
right-pad whole sequences and gather each response token's prediction. This
script computes one actor step and one critic step the OpenRLHF way on a tiny
random Llama (the model code is tools/golden_engine.py's), so the Go test can
check that both layouts give the same losses, gradient norms and updated
weights:

  actor "ppo":  clipped surrogate with clip-higher (0.2, 0.28) and dual clip 3,
                log-ratio clamp ±20, k3 KL loss (β 0.1, clamped ±10), entropy
                bonus 0.01, token-mean aggregation;
  actor "gspo": sequence-level ratio (geometric mean over the response),
                ε (3e-4, 4e-4), seq-mean-token-mean aggregation;
  critic:       0.5·max((V_clip − R)², (V − R)²), value clip 0.5, token mean;

each followed by global grad-norm clipping to 1.0 and one torch.optim.AdamW
step (lr 1e-2, betas (0.9, 0.95), eps 1e-8, no weight decay).

Writes internal/dist/inproc/testdata/ppo_golden.json.
Run: /usr/bin/python3 tools/ppo_golden.py   (needs Debian python3-torch)
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_engine as ge  # noqa: E402  (the PyTorch Llama of the engine goldens)

OUT = "internal/dist/inproc/testdata/ppo_golden.json"
CONFIG = {"vocab_size": 32, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
          "rope_theta": 10000.0, "tie_word_embeddings": True}
LR, BETAS, EPS, MAX_NORM = 1e-2, (0.9, 0.95), 1e-8, 1.0


def flat(t):
    """float32 values, written with the 9 significant digits that round-trip."""
    return [float(f"{v:.9g}") for v in t.detach().reshape(-1).tolist()]


def layout(prompts, responses):
    """OpenRLHF's batch: left-padded prompts, right-padded responses."""
    P = max(len(p) for p in prompts)
    A = max(len(r) for r in responses)
    B = len(prompts)
    seq = torch.zeros(B, P + A, dtype=torch.long)
    att = torch.zeros(B, P + A, dtype=torch.bool)
    act = torch.zeros(B, A)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        seq[i, P - len(p):P] = torch.tensor(p)
        seq[i, P:P + len(r)] = torch.tensor(r)
        att[i, P - len(p):P + len(r)] = True
        act[i, :len(r)] = 1
    pos = att.long().cumsum(-1) - 1
    pos.masked_fill_(~att, 1)
    return seq, att, pos, act, A


def hidden_and_logits(P, seq, att, pos):
    """golden_engine.llama_forward with a per-row padding mask: a position
    attends to earlier real tokens of its row (and pads to themselves, so
    that no softmax row is empty)."""
    B, T = seq.shape
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    mask = causal[None] & att[:, None, :]
    mask = mask | torch.eye(T, dtype=torch.bool)[None]
    saved = ge.causal_mask
    ge.causal_mask = lambda T_, seg: mask[:, None]  # [B, 1, T, T] broadcasts over heads
    try:
        captured = {}
        orig_rms = ge.rms_norm

        def rms(x, w, eps):  # the last call is the final norm: keep its output
            y = orig_rms(x, w, eps)
            captured["h"] = y
            return y
        ge.rms_norm = rms
        logits = ge.llama_forward(CONFIG, P, seq, pos)
    finally:
        ge.causal_mask, ge.rms_norm = saved, orig_rms
    return captured["h"], logits


def action_log_probs(logits, seq, A):
    lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, seq[:, 1:, None]).squeeze(-1)
    return lp[:, -A:]


def action_entropy(logits, A):
    lsm = torch.log_softmax(logits[:, :-1], dim=-1)
    return -(lsm.exp() * lsm).sum(-1)[:, -A:]


def token_mean(x, mask):
    return (x * mask).sum() / mask.sum()


def seq_mean_token_mean(x, mask):
    return ((x * mask).sum(-1) / mask.sum(-1)).mean()


def ppo_objective(lp, old, adv, mask, lo, hi, dual):
    ratio = torch.exp(torch.clamp(lp - old, -20, 20))
    s1, s2 = ratio * adv, torch.clamp(ratio, 1 - lo, 1 + hi) * adv
    obj = torch.min(s1, s2)
    if dual:
        obj = torch.where(adv < 0, torch.max(obj, dual * adv), obj)
    return -obj


def gspo_objective(lp, old, adv, mask, lo, hi):
    lr = ((lp - old) * mask).sum(-1) / mask.sum(-1)
    ratio = torch.exp(lr)[:, None] * mask
    s1, s2 = ratio * adv, torch.clamp(ratio, 1 - lo, 1 + hi) * adv
    return -torch.min(s1, s2)


def step(params, loss):
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), MAX_NORM)
    opt = torch.optim.AdamW(list(params.values()), lr=LR, betas=BETAS, eps=EPS, weight_decay=0.0)
    opt.step()
    return float(norm)


def fresh(init):
    """The shared initial weights as new leaf tensors."""
    return {n: t.clone().requires_grad_(True) for n, t in init.items()}


def actor_case(kind, init, prompts, responses, seed):
    torch.manual_seed(seed)
    P = fresh(init)
    seq, att, pos, mask, A = layout(prompts, responses)
    _, logits = hidden_and_logits(P, seq, att, pos)
    lp = action_log_probs(logits, seq, A)
    old = (lp.detach() + 0.3 * torch.randn_like(lp)) * mask
    ref = (lp.detach() + 0.2 * torch.randn_like(lp)) * mask
    adv = torch.randn_like(lp) * mask
    out = {"kind": kind}
    if kind == "ppo":
        pl = token_mean(ppo_objective(lp, old, adv, mask, 0.2, 0.28, 3.0), mask)
        x = lp - ref
        kl = token_mean(torch.clamp(torch.exp(-x) - 1 + x, -10, 10), mask)
        ent = token_mean(action_entropy(logits, A), mask)
        loss = pl + 0.1 * kl - 0.01 * ent
        out.update(kl_loss=float(kl), entropy=float(ent))
    else:
        pl = seq_mean_token_mean(gspo_objective(lp, old, adv, mask, 3e-4, 4e-4), mask)
        loss = pl
    out.update(policy_loss=float(pl), loss=float(loss))
    out["grad_norm"] = step(P, loss)
    out["after"] = {n: flat(t) for n, t in P.items()}
    rows = lambda t: [flat(t[i, :len(r)]) for i, r in enumerate(responses)]  # noqa: E731
    out.update(old_log_probs=rows(old), ref_log_probs=rows(ref), advantages=rows(adv))
    return out


def critic_case(init, score, prompts, responses, seed):
    torch.manual_seed(seed)
    P = fresh(init)
    P["score.weight"] = score.clone().requires_grad_(True)
    seq, att, pos, mask, A = layout(prompts, responses)
    h, _ = hidden_and_logits(P, seq, att, pos)
    values = (h @ P["score.weight"].t()).squeeze(-1)[:, :-1][:, -A:]
    old = (values.detach() + 0.3 * torch.randn_like(values)) * mask
    ret = torch.randn_like(values) * mask
    vclip = old + torch.clamp(values - old, -0.5, 0.5)
    loss = 0.5 * token_mean(torch.max((vclip - ret) ** 2, (values - ret) ** 2), mask)
    out = {"kind": "critic", "loss": float(loss)}
    out["grad_norm"] = step(P, loss)
    out["after"] = {n: flat(t) for n, t in P.items()}
    rows = lambda t: [flat(t[i, :len(r)]) for i, r in enumerate(responses)]  # noqa: E731
    out.update(old_values=rows(old), returns=rows(ret))
    # lm head is tied (no lm_head.weight), so every parameter above is the score model's
    return out


def main():
    g = torch.Generator().manual_seed(5)
    V = CONFIG["vocab_size"]
    plen, rlen = [3, 1, 5, 2, 4, 2], [4, 6, 1, 3, 2, 5]
    prompts = [torch.randint(0, V, (n,), generator=g).tolist() for n in plen]
    responses = [torch.randint(0, V, (n,), generator=g).tolist() for n in rlen]
    torch.manual_seed(10)
    init = {n: t.detach() for n, t in ge.rand_params(ge.llama_shapes(CONFIG)).items()}
    C = CONFIG["hidden_size"]
    score = torch.randn(1, C) / (C + 1)
    # Round the initial weights to what the JSON holds, so both sides start equal.
    init = {n: torch.tensor(flat(t)).reshape(t.shape) for n, t in init.items()}
    score = torch.tensor(flat(score)).reshape(score.shape)
    params = {n: flat(t) for n, t in init.items()}
    params["score.weight"] = flat(score)
    out = {"config": CONFIG, "lr": LR, "betas": list(BETAS), "eps": EPS, "max_norm": MAX_NORM,
           "prompts": prompts, "responses": responses, "params": params,
           "cases": [actor_case("ppo", init, prompts, responses, 11), actor_case("gspo", init, prompts, responses, 12),
                     critic_case(init, score, prompts, responses, 13)]}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
