#!/usr/bin/python3
"""Golden values of the KTO and knowledge-distillation losses (PyTorch 1.13),
and of conditional SFT's prompt rewriting.

Each loss is written here the way OpenRLHF v0.8.11 writes it
(openrlhf/models/loss.py KTOLoss and KDLoss, trainer/kto_trainer.py,
trainer/kd_trainer.py), evaluated in float64 on fixed float32-representable
inputs and differentiated by autograd. The Go tests (TestLoss_Golden in
internal/trainer/kto and internal/trainer/kd) read the inputs from the JSON
files, run the Go loss on them and compare the loss and every gradient.

One deliberate difference, for KD: OpenRLHF's KDLoss masks the
distillation term with the unshifted labels (the logits at position t are
counted when token t is a response token, although they predict token
t+1). Here, as in gorlhf, the term covers the positions that predict the
response tokens: the positions the SFT loss covers.

Run from the repository root:  /usr/bin/python3 tools/kto_kd_golden.py
"""
import json
import os

import torch
import torch.nn.functional as F

IGNORE = -100


def f32(t):
    """Round to float32 so Go and PyTorch start from identical inputs."""
    return t.float().double()


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    print("wrote", path)


def token_logps(logits, targets):
    """log softmax(logits)[target] per position; 0 where target is IGNORE."""
    logp = F.log_softmax(logits, dim=-1)
    safe = targets.clamp(min=0)
    lp = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return lp * (targets != IGNORE)


def targets_for(g, n, t, v, prompt_lens, lengths):
    targets = torch.randint(0, v, (n, t), generator=g)
    for i in range(n):
        targets[i, : prompt_lens[i]] = IGNORE
        targets[i, lengths[i] - 1:] = IGNORE  # the last token predicts nothing; then padding
    return targets


def kto_loss(beta, wd, wu, pc, pr, pkl, rc, rr, rkl):
    """OpenRLHF v0.8.11 KTOLoss.forward with world_size 1."""
    kl = (pkl - rkl).mean().detach()
    kl = kl.clamp(min=0)
    parts = []
    if pc.shape[0] != 0:
        parts.append(wd * (1 - torch.sigmoid(beta * ((pc - rc) - kl))))
    if pr.shape[0] != 0:
        parts.append(wu * (1 - torch.sigmoid(beta * (kl - (pr - rr)))))
    return torch.cat(parts, 0).mean(), kl


def kto_cases(g):
    n, t, v = 6, 7, 9
    prompt_lens = [2, 3, 1, 2, 1, 3]
    lengths = [7, 5, 6, 6, 7, 4]
    logits = f32(torch.randn(n, t, v, generator=g) * 2)
    targets = targets_for(g, n, t, v, prompt_lens, lengths)
    kl_logits = f32(torch.randn(n, t, v, generator=g) * 2)
    kl_targets = targets_for(g, n, t, v, prompt_lens, [6, 7, 5, 7, 4, 6])
    ref = f32(torch.randn(n, generator=g) * 3 - 10)
    pkl = token_logps(kl_logits, kl_targets).sum(-1)
    cases = []
    configs = [
        # name, labels, beta, wd, wu, KL offset of the reference (+: KL > 0)
        ("Balanced", [1, 0, 1, 1, 0, 0], 0.1, 1.0, 1.0, 0.8),
        ("KLClamped", [1, 0, 0, 1, 0, 1], 0.1, 1.0, 1.0, -1.5),
        ("Weighted", [0, 0, 1, 0, 1, 0], 0.5, 1.33, 0.8, 0.3),
        ("DesirableOnly", [1, 1, 1, 1, 1, 1], 0.01, 1.0, 1.0, 2.0),
    ]
    for name, labels, beta, wd, wu, off in configs:
        # reference log-probs of the mismatched sequences: the policy's minus
        # an offset plus noise, so the KL estimate's sign is set by off
        ref_kl = f32(pkl - off + torch.randn(n, generator=g) * 0.2)
        x = logits.clone().requires_grad_(True)
        sums = token_logps(x, targets).sum(-1)
        lab = torch.tensor(labels)
        loss, kl = kto_loss(beta, wd, wu, sums[lab == 1], sums[lab == 0], pkl, ref[lab == 1], ref[lab == 0], ref_kl)
        loss.backward()
        cases.append({"name": name, "shape": [n, t, v], "logits": flat(logits), "targets": targets.reshape(-1).tolist(),
                      "lengths": lengths, "kl_logits": flat(kl_logits), "kl_targets": kl_targets.reshape(-1).tolist(),
                      "kl_lengths": [6, 7, 5, 7, 4, 6], "ref": flat(ref), "ref_kl": flat(ref_kl), "labels": labels,
                      "beta": beta, "desirable_weight": wd, "undesirable_weight": wu,
                      "loss": float(loss), "kl": float(kl), "grad_logits": flat(x.grad),
                      "chosen_reward": flat(beta * (sums[lab == 1] - ref[lab == 1])),
                      "rejected_reward": flat(beta * (sums[lab == 0] - ref[lab == 0]))})
    return {"cases": cases}


def kd_cases(g):
    b, t, v = 3, 6, 11
    logits = f32(torch.randn(b, t, v, generator=g) * 2)
    teacher = f32(torch.randn(b, t, v, generator=g) * 3)
    targets = torch.randint(0, v, (b, t), generator=g)
    targets[0, :2] = IGNORE  # a prompt
    targets[1, 4:] = IGNORE  # padding
    targets[2, 0] = IGNORE
    mask = (targets != IGNORE).double()
    n = int(mask.sum())
    cases = []
    for name, coef, norm in [("KDOnly", 1.0, n), ("Mixed", 0.4, n), ("StepNormalised", 0.4, n + 5)]:
        x = logits.clone().requires_grad_(True)
        # GPTLMLoss (token mean; gorlhf divides by the step's tokens)
        gpt = F.cross_entropy(x.reshape(-1, v), targets.reshape(-1), ignore_index=IGNORE, reduction="sum") / norm
        # KDLoss on the positions whose targets are response tokens
        tp = F.softmax(teacher, dim=-1)
        lp = F.log_softmax(x, dim=-1)
        per = (tp * lp).sum(-1)
        distil = -(per * mask).sum() / norm
        loss = gpt * (1 - coef) + distil * coef
        loss.backward()
        cases.append({"name": name, "shape": [b, t, v], "logits": flat(logits), "teacher_logits": flat(teacher),
                      "targets": targets.reshape(-1).tolist(), "kd_coef": coef, "norm": norm,
                      "loss": float(loss), "gpt_loss": float(gpt), "distil_loss": float(distil),
                      "grad_logits": flat(x.grad)})
    return {"cases": cases}


def csft_cases():
    """OpenRLHF v0.8.11 conditional_sft_processor (utils/processor.py) on
    fixed records: reward_normalization with torch.std, then the template."""
    template = "{input} <rm_score>: {reward} "
    inputs = ["A Yelp restaurant review:", "An IMDb movie review:", "x {reward} y", "An Amazon phone review:", "Hi"]
    rewards = [3.25, -1.5, 0.004999, 7.0, -0.125]
    cases = []
    for name, normalize in [("Raw", False), ("Normalized", True)]:
        r = torch.tensor(rewards, dtype=torch.float64)
        if normalize:
            r = (r - r.mean()) / r.std()
        want = [template.replace("{reward}", "{:.2f}".format(float(v))).replace("{input}", i) for i, v in zip(inputs, r.tolist())]
        cases.append({"name": name, "template": template, "normalize": normalize, "inputs": inputs,
                      "rewards": rewards, "want": want})
    return {"cases": cases}


def main():
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(20261206)
    meta = {"generator": "tools/kto_kd_golden.py", "torch": torch.__version__}
    for pkg, fn in [("kto", kto_cases), ("kd", kd_cases)]:
        obj = fn(g)
        obj["meta"] = meta
        write(f"internal/trainer/{pkg}/testdata/loss_golden.json", obj)
    obj = csft_cases()
    obj["meta"] = meta
    write("internal/data/testdata/csft_golden.json", obj)


if __name__ == "__main__":
    main()
