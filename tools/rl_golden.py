#!/usr/bin/env python3
"""Golden values for gorlhf's RL math (internal/rl), from PyTorch 1.13 (CPU).

Writes internal/rl/testdata/rl_golden.json. The formulas below are a
transcription of OpenRLHF v0.11's semantics (models/loss.py: PolicyLoss,
ValueLoss, aggregate_loss; models/utils.py: compute_approx_kl,
compute_reward; trainer/ppo_utils/experience_maker.py:
compute_advantages_and_returns, get_advantages_and_returns,
get_cumulative_returns; kl_controller.py; length_penalty.py;
samples_generator.py dynamic filtering), written here from the formulas.

Inputs are drawn in float32 (so Go reads exactly the same values) and every
output is computed in float64 from them, so the reference carries no float32
rounding of its own. Masks have right padding of several lengths and, for
the losses, one fully masked row; the rollout has 3 prompts x G=4 samples,
one group with equal rewards. The script refuses inputs where a clip or
clamp decision is within 1e-4 of its threshold, so float32 and float64
cannot disagree about which branch applies.

gorlhf zeroes advantages, returns and shaped rewards at masked positions
(OpenRLHF leaves carried values there that no loss reads); the golden
values are therefore multiplied by the mask, and "return" sums the masked
shaped rewards.

Run: /usr/bin/python3 tools/rl_golden.py   (needs Debian python3-torch)
"""
import json
import os

import torch

torch.manual_seed(20240611)
torch.set_num_threads(1)
D = torch.float64

P, G, A = 3, 4, 7
B = P * G
LENGTHS = [7, 5, 3, 1, 6, 7, 2, 4, 7, 6, 5, 3]
TIE = 1e-4


def f32(t):
    """Round to float32 (the values Go will read), then work in float64."""
    return t.float().double()


def make_inputs():
    mask = torch.zeros(B, A, dtype=D)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
    loss_mask = mask.clone()
    loss_mask[3] = 0  # one sequence with no valid token
    rewards = f32(torch.randn(B) * 1.5)
    rewards[8:12] = 1.0  # a group whose rewards are all equal
    old_lp = f32(-0.1 - 2.9 * torch.rand(B, A))
    new_lp = f32(old_lp + (torch.rand(B, A) - 0.5) * 0.8)
    adv = f32(torch.randn(B, A))
    # a few large ratios (e^1.5 ≈ 4.5 > c = 3), on both signs of advantage, so dual clip acts
    for (b, t, s) in [(0, 1, -1), (1, 2, -1), (4, 0, 1), (9, 3, 1), (5, 6, -1)]:
        new_lp[b, t] = f32(old_lp[b, t] + 1.5)
        adv[b, t] = s * abs(adv[b, t]) + 0.1 * s
    ref_lp = f32(new_lp + torch.randn(B, A) * 0.3)
    # KL clamp cases: k1 beyond ±10, k2 beyond 10 (|x| > 4.48), k3 beyond 10 (x < −2.4)
    for (b, t, d) in [(0, 0, 12.0), (2, 1, -11.0), (5, 2, 5.0), (7, 0, -3.0), (10, 4, -2.8)]:
        ref_lp[b, t] = f32(new_lp[b, t] - d)
    values = f32(torch.randn(B, A) * 0.5)
    new_values = f32(values + torch.randn(B, A) * 0.4)
    returns = f32(torch.randn(B, A))
    token_rewards = f32(torch.randn(B, A))
    entropy = f32(torch.rand(B, A) * 3)
    return dict(mask=mask, loss_mask=loss_mask, rewards=rewards, old_log_probs=old_lp, log_probs=new_lp,
                ref_log_probs=ref_lp, advantages=adv, values=values, new_values=new_values, returns=returns,
                token_rewards=token_rewards, entropy=entropy)


# ── OpenRLHF formulas ────────────────────────────────────────────────────────

def approx_kl(lp, ref, est, clamp=True):
    x = lp - ref
    if est == "k2":
        x = x ** 2 / 2.0
    elif est == "k3":
        x = (-x).exp() - 1 + x
    return x.clamp(min=-10, max=10) if clamp else x


def shaped_reward(r, kl_coef, kl, mask, clip):
    kl_coef = max(kl_coef, 0.0)
    if clip is not None:
        r = r.clamp(min=clip[0], max=clip[1])
    eos = mask.size(1) - 1 - mask.long().fliplr().argmax(dim=1, keepdim=True)
    last = torch.zeros_like(kl).scatter_(dim=1, index=eos, src=r.unsqueeze(1).to(kl.dtype))
    return last + (-kl_coef * kl)


def gae(values, rewards, mask, gamma, lambd):
    values, rewards = mask * values, mask * rewards
    last, out = 0, []
    for t in reversed(range(rewards.size(1))):
        nxt = values[:, t + 1] if t < rewards.size(1) - 1 else 0.0
        delta = rewards[:, t] + gamma * nxt - values[:, t]
        last = delta + gamma * lambd * last
        out.append(last)
    adv = torch.stack(out[::-1], dim=1)
    return adv, adv + values


def cumulative_returns(rewards, mask, gamma):
    rewards = mask * rewards
    ret = torch.zeros_like(rewards)
    g = torch.zeros(rewards.size(0), dtype=rewards.dtype)
    for t in reversed(range(rewards.size(1))):
        g = rewards[:, t] + gamma * g
        ret[:, t] = g
    return ret


def group_baseline(est, r, n):
    r = r.reshape(-1, n)
    if est == "rloo":
        r = r - (r.sum(-1, keepdim=True) - r) / (n - 1)
    elif est in ("reinforce_baseline", "dr_grpo"):
        r = r - r.mean(-1, keepdim=True)
    elif est == "group_norm":
        r = (r - r.mean(-1, keepdim=True)) / (r.std(-1, keepdim=True) + 1e-9)
    return r.reshape(-1)


def whiten(adv, mask, no_std):
    n = mask.sum()
    mean = (adv * mask).sum() / n
    rstd = 1
    if not no_std:
        var = ((adv - mean).pow(2) * mask).sum() / n
        rstd = var.clamp(min=1e-8).rsqrt()
    return (adv - mean) * rstd


def pipeline(inp, est, gamma, lambd, no_std, kl_coef, clip):
    mask, kl = inp["mask"], approx_kl(inp["log_probs"], inp["ref_log_probs"], "k1")
    r = group_baseline(est, inp["rewards"], G)
    reward = shaped_reward(r, kl_coef, kl, mask, clip)
    if est == "gae":
        adv, ret = gae(inp["values"], reward, mask, gamma, lambd)
    else:
        ret = cumulative_returns(reward, mask, gamma)
        adv = ret.clone()
    if est in ("gae", "reinforce", "reinforce_baseline"):
        adv = whiten(adv, mask, no_std)
    return dict(advantages=adv * mask, returns=ret * mask, token_rewards=reward * mask,
                ret=(reward * mask).sum(-1), group_reward_std=inp["rewards"].reshape(-1, G).std(-1, keepdim=True)
                .repeat(1, G).reshape(-1))


def aggregate(loss, mask, token_level, num_tokens=None, num_seqs=None):
    if token_level:
        if num_tokens is None:
            return (loss * mask).sum() / mask.sum()
        return (loss * mask).sum() / num_tokens
    counts = mask.sum(-1)
    seq_loss = (loss * mask).sum(-1) / (counts + 1e-8)
    seq_mask = (counts > 0).to(loss.dtype)
    if num_seqs is None:
        return (seq_loss * seq_mask).sum() / seq_mask.sum()
    return (seq_loss * seq_mask).sum() / num_seqs


def policy_loss(lp, old, adv, mask, kind, lo, hi, dual, token_level, num_tokens=None, num_seqs=None):
    raw = lp - old
    if kind == "ppo":
        ratio = raw.clamp(min=-20.0, max=20.0).exp()
    else:  # gspo: one ratio per sequence, sequence-level aggregation
        ratio = ((raw * mask).sum(-1) / mask.sum(-1).clamp(min=1)).exp().unsqueeze(-1) * mask
        token_level = False
    s1 = ratio * adv
    s2 = ratio.clamp(1 - lo, 1 + hi) * adv
    clip1 = torch.min(s1, s2)
    if dual is None:
        loss = -clip1
    else:
        loss = -torch.where(adv < 0, torch.max(clip1, dual * adv), clip1)
        dual_gap = (torch.min(s1, s2) - dual * adv)[(adv < 0) & (mask > 0)]
        assert dual_gap.abs().min() > TIE, "dual-clip bound too close to the objective"
    bounds = torch.cat([(ratio - (1 - lo))[mask > 0], (ratio - (1 + hi))[mask > 0]])
    assert bounds.abs().min() > TIE, f"{kind}: a ratio lies on a clip bound"
    loss = aggregate(loss, mask, token_level, num_tokens, num_seqs)
    clip_ratio = ((s2 < s1).to(D) * mask).sum() / mask.sum()
    ppo_kl = (-raw.detach() * mask).sum() / mask.sum()
    return loss, clip_ratio, ppo_kl


def value_loss(v, old, ret, mask, clip, token_level, num_tokens=None):
    if clip is not None:
        gap = ((v - old).abs() - clip)[mask > 0]
        assert gap.abs().min() > TIE, "a value lies on the clip bound"
        vc = old + (v - old).clamp(-clip, clip)
        loss = torch.max((vc - ret) ** 2, (v - ret) ** 2)
    else:
        loss = (v - ret) ** 2
    return 0.5 * aggregate(loss, mask, token_level, num_tokens)


class AdaptiveKL:
    def __init__(self, init, target, horizon):
        self.value, self.target, self.horizon = init, target, horizon

    def update(self, current, n_steps):
        e = min(max(current / self.target - 1, -0.2), 0.2)
        self.value *= 1 + e * n_steps / self.horizon


def overlong(length, max_new, buf, factor):
    exceed = min(length - (max_new - buf), buf)
    return -exceed / buf * factor if exceed > 0 else 0.0


# ── golden cases ─────────────────────────────────────────────────────────────

def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def main():
    inp = make_inputs()
    mask, lmask = inp["mask"], inp["loss_mask"]
    out = {"B": B, "A": A, "G": G, "inputs": {k: flat(v) for k, v in inp.items()}}

    # primitives
    adv, ret = gae(inp["values"], inp["token_rewards"], mask, 0.9, 0.8)
    out["gae"] = {"gamma": 0.9, "lambda": 0.8, "advantages": flat(adv * mask), "returns": flat(ret * mask)}
    out["discounted_returns"] = {"gamma": 0.9, "returns": flat(cumulative_returns(inp["token_rewards"], mask, 0.9) * mask)}
    out["group_baseline"] = {e: flat(group_baseline(e, inp["rewards"], G))
                             for e in ("rloo", "reinforce_baseline", "group_norm", "dr_grpo")}
    out["whiten"] = {str(ns).lower(): flat(whiten(inp["advantages"], mask, ns) * mask) for ns in (False, True)}
    kl1 = approx_kl(inp["log_probs"], inp["ref_log_probs"], "k1")
    for est in ("k1", "k2", "k3"):
        x = approx_kl(inp["log_probs"], inp["ref_log_probs"], est, clamp=False)[mask > 0]
        assert (x.abs() - 10).abs().min() > TIE, "a KL value lies on the clamp"
    out["shape_rewards"] = {"kl_coef": 0.05, "clip": [-2, 2],
                            "rewards": flat(shaped_reward(inp["rewards"], 0.05, kl1, mask, (-2, 2)) * mask)}

    # KL estimators, as values and as a token-mean loss with its gradient
    out["kl"] = []
    for est in ("k1", "k2", "k3"):
        lp = inp["log_probs"].clone().requires_grad_(True)
        kl = approx_kl(lp, inp["ref_log_probs"], est)
        loss = aggregate(kl, lmask, True)
        loss.backward()
        out["kl"].append({"estimator": est, "kl": flat(kl), "loss": float(loss), "grad": flat(lp.grad)})

    # advantage pipeline, one case per estimator and option
    cases = [
        ("gae_gamma_lambda", "gae", 0.9, 0.8, False, 0.05, (-2, 2)),
        ("gae_default", "gae", 1.0, 1.0, False, 0.01, (-10, 10)),
        ("gae_no_std", "gae", 0.95, 0.9, True, 0.05, (-2, 2)),
        ("reinforce", "reinforce", 0.95, 1.0, False, 0.05, (-2, 2)),
        ("reinforce_baseline", "reinforce_baseline", 1.0, 1.0, False, 0.05, (-2, 2)),
        ("reinforce_baseline_no_std", "reinforce_baseline", 1.0, 1.0, True, 0.05, (-2, 2)),
        ("rloo", "rloo", 1.0, 1.0, False, 0.05, (-2, 2)),
        ("group_norm", "group_norm", 1.0, 1.0, False, 0.05, (-1, 1)),
        ("group_norm_no_kl", "group_norm", 1.0, 1.0, False, 0.0, None),
        ("dr_grpo", "dr_grpo", 1.0, 1.0, False, 0.05, (-2, 2)),
    ]
    out["advantages"] = []
    for name, est, gamma, lambd, no_std, kl_coef, clip in cases:
        res = pipeline(inp, est, gamma, lambd, no_std, kl_coef, clip)
        out["advantages"].append({"name": name, "estimator": est, "gamma": gamma, "lambda": lambd, "no_std": no_std,
                                  "kl_coef": kl_coef, "clip": list(clip) if clip else None,
                                  **{k: flat(v) for k, v in res.items()}})

    # policy losses: loss, metrics, and ∂loss/∂log π
    n_tok, n_seq = float(lmask.sum()) + 13, 20.0
    pcases = [
        ("ppo_token", "ppo", 0.2, 0.2, None, True, None, None),
        ("ppo_clip_higher", "ppo", 0.2, 0.28, None, True, None, None),
        ("ppo_dual_clip", "ppo", 0.2, 0.2, 3.0, True, None, None),
        ("ppo_seq_mean_token_mean", "ppo", 0.2, 0.2, None, False, None, None),
        ("ppo_clip_higher_dual_seq", "ppo", 0.2, 0.28, 3.0, False, None, None),
        ("ppo_token_step_norm", "ppo", 0.2, 0.2, None, True, n_tok, None),
        ("ppo_seq_step_norm", "ppo", 0.2, 0.2, None, False, None, n_seq),
        ("gspo", "gspo", 0.05, 0.08, None, False, None, None),
    ]
    out["policy_loss"] = []
    for name, kind, lo, hi, dual, token_level, nt, ns in pcases:
        lp = inp["log_probs"].clone().requires_grad_(True)
        loss, clip_ratio, ppo_kl = policy_loss(lp, inp["old_log_probs"], inp["advantages"], lmask, kind, lo, hi, dual,
                                               token_level, nt, ns)
        loss.backward()
        out["policy_loss"].append({"name": name, "type": kind, "clip_low": lo, "clip_high": hi, "dual_clip": dual or 0,
                                   "aggregation": "token_mean" if token_level else "seq_mean_token_mean",
                                   "norm_tokens": nt or 0, "norm_sequences": ns or 0, "loss": float(loss),
                                   "clip_ratio": float(clip_ratio), "ppo_kl": float(ppo_kl), "grad": flat(lp.grad)})

    vcases = [
        ("value_clip_token", 0.2, True, None),
        ("value_no_clip", None, True, None),
        ("value_clip_seq", 0.2, False, None),
        ("value_clip_step_norm", 0.2, True, n_tok),
    ]
    out["value_loss"] = []
    for name, clip, token_level, nt in vcases:
        v = inp["new_values"].clone().requires_grad_(True)
        loss = value_loss(v, inp["values"], inp["returns"], lmask, clip, token_level, nt)
        loss.backward()
        out["value_loss"].append({"name": name, "clip": clip or 0,
                                  "aggregation": "token_mean" if token_level else "seq_mean_token_mean",
                                  "norm_tokens": nt or 0, "loss": float(loss), "grad": flat(v.grad)})

    out["entropy_bonus"] = []
    for token_level in (True, False):
        h = inp["entropy"].clone().requires_grad_(True)
        term = -0.01 * aggregate(h, lmask, token_level)
        term.backward()
        out["entropy_bonus"].append({"coef": 0.01, "aggregation": "token_mean" if token_level else "seq_mean_token_mean",
                                     "loss": float(term), "grad": flat(h.grad)})

    ctl, seq = AdaptiveKL(0.1, 6.0, 10000), []
    kls = [10.0, 3.0, 6.5, 0.5, 100.0, 6.0]
    for kl in kls:
        ctl.update(kl, 512)
        seq.append(ctl.value)
    out["kl_controller"] = {"init": 0.1, "target": 6.0, "horizon": 10000, "n_steps": 512, "kl": kls, "coef": seq}

    lengths, trunc = [5, 12, 13, 16, 20, 20], [False, False, False, False, True, False]
    base = [1.0, 0.5, -0.25, 1.0, 1.0, 0.0]
    out["length_penalty"] = {"max_new_tokens": 20, "buffer_len": 8.0, "factor": 0.7, "lengths": lengths,
                             "truncated": trunc, "rewards": base, "cases": []}
    for coef in (None, 0.5, -0.5):
        r = [x + overlong(n, 20, 8.0, 0.7) for x, n in zip(base, lengths)]
        if coef is not None:
            r = [(coef if coef < 0 else x * coef) if t else x for x, t in zip(r, trunc)]
        out["length_penalty"]["cases"].append({"stop_properly_coef": coef, "rewards": r})

    groups = [[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [0.5, 0.5, 0.5, 0.5], [1, 1, 0.9, 1]]
    keep = [0 < sum(g) / len(g) < 1 for g in groups]
    out["dynamic_filter"] = {"low": 0.0, "high": 1.0, "groups": groups, "keep_openrlhf": keep}

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "internal", "rl", "testdata", "rl_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
