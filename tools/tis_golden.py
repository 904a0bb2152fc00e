#!/usr/bin/env python3
"""Golden values for gorlhf's off-policy correction (internal/rl/offpolicy.go).

Writes internal/rl/testdata/tis_golden.json: the importance weights between
the trainer's log pi_old and the rollout engine's log-probs, their stats,
the log-prob mismatch metrics, and the corrected PPO policy loss with its
gradient, for every correction type gorlhf accepts.

Two independent transcriptions are used and checked against each other:

* OpenRLHF's three types (openrlhf/models/loss.py, PolicyLoss, as of
  2026-08): with rollout_log_ratio = old - rollout,
    tis          w = exp(r).clamp(lo, hi)
    icepop       w = exp(r) * [lo <= exp(r) <= hi]
    seq-mask-tis w = [lo <= exp(masked_mean_t r) <= hi] * exp(r)
  w is detached and multiplies the per-token PPO loss (after dual clip)
  before the usual aggregation; the action mask (the loss normaliser) is
  unchanged. vllm_kl = masked_mean(rollout - old) over all tokens.
* the level x mode grid (verl / slime rollout correction, with OpenRLHF's
  conventions above): level token (rho_t), seq (exp sum_t r), geo
  (exp mean_t r); mode clip clamp(rho_L, lo, hi), trunc min(rho_L, hi),
  mask rho_t * [lo <= rho_L <= hi].

For GSPO OpenRLHF applies no weight and takes the sequence ratio against
the rollout log-probs; one case covers that.

Inputs are float32 (Go reads the same values); everything is computed in
float64. The script refuses inputs where a bound decision (IS threshold or
PPO clip) is within 1e-4 of its threshold.

Run: /usr/bin/python3 tools/tis_golden.py   (needs Debian python3-torch)
"""
import json
import os

import torch

torch.manual_seed(20261206)
torch.set_num_threads(1)
D = torch.float64

B, A = 12, 7
LENGTHS = [7, 5, 3, 1, 6, 7, 2, 4, 7, 6, 5, 3]
TIE = 1e-4


def f32(t):
    return t.float().double()


def make_inputs():
    mask = torch.zeros(B, A, dtype=D)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
    mask[3] = 0  # one sequence with no valid token
    old = f32(-0.1 - 2.9 * torch.rand(B, A))
    noise = torch.randn(B, A) * 0.3
    # whole sequences shifted, so geo and seq levels see ratios on both sides
    noise[2] += 0.45
    noise[7] -= 0.4
    noise[9] += 0.9
    # single tokens far off: rho = e^2.2 ~ 9 (> 5) and e^-1.1 ~ 0.33 (< 0.5)
    for (b, t, d) in [(0, 2, 2.2), (5, 4, -1.1), (8, 0, 2.5), (10, 1, -1.3), (11, 2, 1.9)]:
        noise[b, t] = d
    rollout = f32(old - noise)
    lp = f32(old + (torch.rand(B, A) - 0.5) * 0.6)
    adv = f32(torch.randn(B, A))
    return dict(mask=mask, old_log_probs=old, rollout_log_probs=rollout, log_probs=lp, advantages=adv)


# ── OpenRLHF's three types ───────────────────────────────────────────────────

def openrlhf_weights(kind, old, rollout, mask, lo, hi):
    r = old - rollout
    if kind == "icepop":
        rho = r.exp()
        return rho * ((rho >= lo) & (rho <= hi))
    if kind == "seq-mask-tis":
        seq = ((r * mask).sum(-1) / mask.sum(-1)).exp()
        keep = (seq >= lo) & (seq <= hi)
        return keep.unsqueeze(-1) * r.exp()
    assert kind == "tis"
    return r.exp().clamp(min=lo, max=hi)


# ── the level x mode grid ────────────────────────────────────────────────────

PRESETS = {"tis": ("token", "clip"), "icepop": ("token", "mask"), "seq-mask-tis": ("geo", "mask")}


def spec(kind):
    if kind in PRESETS:
        return PRESETS[kind]
    level, mode = kind.split("-")
    return level, mode


def level_ratio(level, r, mask):
    if level == "token":
        return r.exp()
    s = (r * mask).sum(-1, keepdim=True)
    n = mask.sum(-1, keepdim=True)
    if level == "seq":
        return s.exp().expand_as(r)
    return (s / n.clamp(min=1)).exp().expand_as(r)


def grid_weights(kind, old, rollout, mask, lo, hi):
    level, mode = spec(kind)
    r = (old - rollout) * mask
    rl = level_ratio(level, r, mask)
    valid = mask > 0
    gap = torch.cat([((rl - lo) / lo)[valid], ((rl - hi) / hi)[valid]]) if lo > 0 else ((rl - hi) / hi)[valid]
    assert gap.abs().min() > TIE, f"{kind}: a ratio lies on a threshold"
    if mode == "clip":
        w, hit = rl.clamp(min=lo, max=hi), (rl < lo) | (rl > hi)
        masked = torch.zeros_like(hit)
    elif mode == "trunc":
        w, hit = rl.clamp(max=hi), rl > hi
        masked = torch.zeros_like(hit)
    else:
        keep = (rl >= lo) & (rl <= hi)
        w, hit, masked = r.exp() * keep, torch.zeros_like(keep), ~keep
    w = w * mask
    ntok = mask.sum()
    rows = mask.sum(-1) > 0
    stats = {
        "weight_mean": float((w * mask).sum() / ntok),
        "masked_frac": float((masked & valid).sum() / ntok),
        "masked_seq_frac": float(((masked & valid).any(-1) & rows).sum() / rows.sum()),
        "clipped_frac": float((hit & valid).sum() / ntok),
        "clipped_seq_frac": float(((hit & valid).any(-1) & rows).sum() / rows.sum()),
    }
    return w, stats


# ── the policy loss (OpenRLHF's PolicyLoss with the correction) ──────────────

def aggregate(loss, mask, token_level, num_tokens=None, num_seqs=None):
    if token_level:
        return (loss * mask).sum() / (num_tokens if num_tokens is not None else mask.sum())
    counts = mask.sum(-1)
    seq_loss = (loss * mask).sum(-1) / (counts + 1e-8)
    seq_mask = (counts > 0).to(loss.dtype)
    return (seq_loss * seq_mask).sum() / (num_seqs if num_seqs is not None else seq_mask.sum())


def policy_loss(lp, old, adv, mask, w, kind, lo, hi, dual, token_level, num_tokens=None, num_seqs=None):
    raw = lp - old
    if kind == "ppo":
        ratio = raw.clamp(min=-20.0, max=20.0).exp()
    else:
        ratio = ((raw * mask).sum(-1) / mask.sum(-1).clamp(min=1)).exp().unsqueeze(-1) * mask
        token_level = False
    s1 = ratio * adv
    s2 = ratio.clamp(1 - lo, 1 + hi) * adv
    clip1 = torch.min(s1, s2)
    if dual is None:
        loss = -clip1
    else:
        loss = -torch.where(adv < 0, torch.max(clip1, dual * adv), clip1)
        gap = (clip1 - dual * adv)[(adv < 0) & (mask > 0)]
        assert gap.abs().min() > TIE, "dual-clip bound too close to the objective"
    bounds = torch.cat([(ratio - (1 - lo))[mask > 0], (ratio - (1 + hi))[mask > 0]])
    assert bounds.abs().min() > TIE, f"{kind}: a PPO ratio lies on a clip bound"
    if w is not None:
        loss = w.detach() * loss
    loss = aggregate(loss, mask, token_level, num_tokens, num_seqs)
    clip_ratio = ((s2 < s1).to(D) * mask).sum() / mask.sum()
    return loss, clip_ratio


def mismatch(old, rollout, mask):
    r = old - rollout
    n = mask.sum()
    rho = r.exp()
    valid = mask > 0
    return {"kl": float(((-r) * mask).sum() / n), "k3_kl": float(((rho - 1 - r) * mask).sum() / n),
            "abs_diff": float((r.abs() * mask).sum() / n), "ratio_mean": float((rho * mask).sum() / n),
            "ratio_min": float(rho[valid].min()), "ratio_max": float(rho[valid].max()), "tokens": float(n)}


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def main():
    inp = make_inputs()
    mask, old, roll = inp["mask"], inp["old_log_probs"], inp["rollout_log_probs"]
    out = {"B": B, "A": A, "inputs": {k: flat(v) for k, v in inp.items()}, "mismatch": mismatch(old, roll, mask)}

    kinds = list(PRESETS) + [f"{l}-{m}" for l in ("token", "seq", "geo") for m in ("mask", "clip", "trunc")]
    cases = [dict(name=k, type=k) for k in kinds]
    cases += [
        dict(name="tis_dual_seqmean", type="tis", dual=3.0, token_level=False),
        dict(name="icepop_norm", type="icepop", num_tokens=40.0),
        dict(name="token-trunc_seqmean_norm", type="token-trunc", token_level=False, num_seqs=15.0),
        dict(name="seq-clip_wide", type="seq-clip", threshold=(0.2, 20.0)),
    ]
    out["cases"] = []
    for c in cases:
        kind = c["type"]
        level, _ = spec(kind)
        lo_t, hi_t = c.get("threshold", (0.8, 1.25) if level == "geo" else (0.5, 5.0))
        w, stats = grid_weights(kind, old, roll, mask, lo_t, hi_t)
        if kind in PRESETS:
            ref = openrlhf_weights(kind, old, roll, mask, lo_t, hi_t) * mask
            assert torch.allclose(ref, w, rtol=0, atol=1e-12), f"{kind}: OpenRLHF and the grid disagree"
        lp = inp["log_probs"].clone().requires_grad_(True)
        token_level = c.get("token_level", True)
        loss, clip_ratio = policy_loss(lp, old, inp["advantages"], mask, w, "ppo", 0.2, 0.28, c.get("dual"),
                                       token_level, c.get("num_tokens"), c.get("num_seqs"))
        loss.backward()
        out["cases"].append({"name": c["name"], "type": kind, "threshold": [lo_t, hi_t], "dual_clip": c.get("dual") or 0,
                             "aggregation": "token_mean" if token_level else "seq_mean_token_mean",
                             "norm_tokens": c.get("num_tokens") or 0, "norm_sequences": c.get("num_seqs") or 0,
                             "weights": flat(w), "stats": stats, "loss": float(loss), "clip_ratio": float(clip_ratio),
                             "grad": flat(lp.grad)})

    # GSPO: no weight, the sequence ratio against the rollout log-probs
    lp = inp["log_probs"].clone().requires_grad_(True)
    loss, clip_ratio = policy_loss(lp, roll, inp["advantages"], mask, None, "gspo", 0.5, 0.6, None, False)
    loss.backward()
    out["gspo"] = {"clip_low": 0.5, "clip_high": 0.6, "loss": float(loss), "grad": flat(lp.grad)}

    path = os.path.join(os.path.dirname(__file__), "..", "internal", "rl", "testdata", "tis_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path), len(out["cases"]), "cases")


if __name__ == "__main__":
    main()
