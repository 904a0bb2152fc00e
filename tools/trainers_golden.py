#!/usr/bin/python3
"""Golden values of the offline trainers' losses and gradients (PyTorch 1.13).

Each loss is written here the way OpenRLHF writes it (models/loss.py,
trainer/dpo_trainer.py), evaluated in float64 on fixed float32-representable
inputs, and differentiated by autograd. The Go tests (TestLoss_Golden in
internal/trainer/{sft,rm,dpo}) read the inputs from the JSON files, run the
Go loss on them and compare the loss and every gradient.

Run from the repository root:  /usr/bin/python3 tools/trainers_golden.py
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


def sft_cases(g):
    b, t, v = 3, 6, 11
    logits = f32(torch.randn(b, t, v, generator=g) * 2)
    targets = torch.randint(0, v, (b, t), generator=g)
    targets[0, :2] = IGNORE  # a prompt
    targets[1, 4:] = IGNORE  # padding
    targets[2, 0] = IGNORE
    n = int((targets != IGNORE).sum())
    cases = []
    for name, norm in [("MeanOverBatch", n), ("StepNormalised", n + 7)]:
        x = logits.clone().requires_grad_(True)
        # GPTLMLoss/SFTLoss with batch_num_tokens: sum of −log p / global token count.
        loss = F.cross_entropy(x.reshape(-1, v), targets.reshape(-1), ignore_index=IGNORE, reduction="sum") / norm
        loss.backward()
        cases.append({"name": name, "shape": [b, t, v], "logits": flat(logits), "targets": targets.reshape(-1).tolist(),
                      "norm": norm, "loss": float(loss), "grad_logits": flat(x.grad)})
    return {"cases": cases}


def rm_cases(g):
    p = 7
    chosen = f32(torch.randn(p, generator=g) * 1.5)
    rejected = f32(torch.randn(p, generator=g) * 1.5)
    margin = f32(torch.rand(p, generator=g))
    cases = []
    for name, kind, m, norm in [("Sigmoid", "sigmoid", None, p), ("SigmoidMargin", "sigmoid", margin, p),
                                ("LogExp", "logexp", None, p), ("SigmoidStepNormalised", "sigmoid", margin, 2 * p)]:
        c = chosen.clone().requires_grad_(True)
        r = rejected.clone().requires_grad_(True)
        if kind == "sigmoid":
            # PairWiseLoss
            losses = -F.logsigmoid(c - r - m) if m is not None else -F.logsigmoid(c - r)
        else:
            # LogExpLoss
            losses = torch.log(1 + torch.exp(r - c))
        loss = losses.sum() / norm  # .mean() when norm == P
        loss.backward()
        cases.append({"name": name, "kind": kind, "chosen": flat(chosen), "rejected": flat(rejected),
                      "margin": flat(m) if m is not None else None, "norm": norm, "loss": float(loss),
                      "grad_chosen": flat(c.grad), "grad_rejected": flat(r.grad)})
    return {"cases": cases}


def dpo_cases(g):
    p, t, v = 3, 7, 9  # P pairs: rows 0..P-1 chosen, P..2P-1 rejected (OpenRLHF's concatenated_forward)
    logits = f32(torch.randn(2 * p, t, v, generator=g) * 2)
    targets = torch.randint(0, v, (2 * p, t), generator=g)
    prompt_lens = [2, 3, 1]
    lengths = [7, 5, 6, 6, 7, 4]
    for i in range(2 * p):
        targets[i, : prompt_lens[i % p]] = IGNORE
        targets[i, lengths[i] - 1:] = IGNORE  # the last token predicts nothing; then padding
    ref = f32(torch.randn(2 * p, generator=g) * 3 - 10)
    cases = []
    configs = [("DPO", dict(beta=0.1, ipo=False, ls=0.0, nll=0.0)),
               ("IPO", dict(beta=0.1, ipo=True, ls=0.0, nll=0.0)),
               ("CDPO", dict(beta=0.5, ipo=False, ls=0.2, nll=0.0)),
               ("DPOWithNLL", dict(beta=0.1, ipo=False, ls=0.0, nll=0.7))]
    for name, c in configs:
        x = logits.clone().requires_grad_(True)
        lp = token_logps(x, targets)
        mask = (targets != IGNORE).double()
        sums = lp.sum(-1)
        means = sums / mask.sum(-1)
        pc, pr = sums[:p], sums[p:]
        rc, rr = ref[:p], ref[p:]
        logits_h = (pc - pr) - (rc - rr)
        beta = c["beta"]
        if c["ipo"]:
            losses = (logits_h - 1 / (2 * beta)) ** 2
        else:
            losses = -F.logsigmoid(beta * logits_h) * (1 - c["ls"]) - F.logsigmoid(-beta * logits_h) * c["ls"]
        loss = losses.mean()
        if c["nll"]:
            loss = loss + c["nll"] * (-means[:p].mean())
        loss.backward()
        cases.append({"name": name, "shape": [2 * p, t, v], "logits": flat(logits), "targets": targets.reshape(-1).tolist(),
                      "lengths": lengths, "ref": flat(ref), "beta": beta, "ipo": c["ipo"], "label_smoothing": c["ls"],
                      "nll_coef": c["nll"], "loss": float(loss), "grad_logits": flat(x.grad),
                      "chosen_reward": flat(beta * (pc - rc)), "rejected_reward": flat(beta * (pr - rr))})
    return {"cases": cases}


def main():
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(20240601)
    meta = {"generator": "tools/trainers_golden.py", "torch": torch.__version__}
    for pkg, fn in [("sft", sft_cases), ("rm", rm_cases), ("dpo", dpo_cases)]:
        obj = fn(g)
        obj["meta"] = meta
        write(f"internal/trainer/{pkg}/testdata/loss_golden.json", obj)


if __name__ == "__main__":
    main()
