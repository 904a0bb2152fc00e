#!/usr/bin/python3
"""Golden values of the process-reward-model loss and its gradients (PyTorch 1.13).

The loss is written here the way OpenRLHF v0.8.11 computes PRMLoss
(models/loss.py, datasets/process_reward_dataset.py): labels sit at the
placeholder (step tag) positions of the input, -100 elsewhere; the logits
at those positions (not shifted) are restricted to the reward tokens'
columns; hard labels are reward-token ids mapped to their index, soft
labels are the positive token's probability p, stacked as [p, 1 - p];
nn.CrossEntropyLoss (mean over the tags) gives the loss, argmax the
accuracy. It is evaluated in float64 on float32-representable inputs and
differentiated by autograd. internal/trainer/prm's TestLoss_Golden reads
the JSON, runs TagLogits, Targets, Loss and Correct on the same inputs and
compares the loss, the accuracy and the gradient of every logit.

Run from the repository root:  /usr/bin/python3 tools/prm_golden.py
"""
import json
import os

import torch

IGNORE = -100
B, T, V = 3, 7, 11
PLACEHOLDER = 9
REWARD = [4, 2]  # positive, negative


def f32(t):
    return t.float().double()


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def prm_loss(inputs, logits, labels, reward_ids, soft):
    """OpenRLHF's PRMLoss.forward with return_acc=True, in float64."""
    mask = inputs == PLACEHOLDER
    z = logits[mask]
    lab = labels[mask]
    if soft:
        z = z[..., reward_ids]
        pos = lab.to(z.dtype)
        lab = torch.stack([pos, 1 - pos], dim=-1)
    elif reward_ids is not None:
        z = z[..., reward_ids]
        for i, tok in enumerate(reward_ids):
            lab = torch.where(lab == tok, torch.full_like(lab, i), lab)
    loss = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)(z, lab)
    want = lab.argmax(dim=-1) if soft else lab
    acc = (z.argmax(dim=-1) == want).double().mean()
    return loss, acc


def case(name, gen, reward_ids, soft):
    inputs = torch.randint(0, V - 2, (B, T), generator=gen)
    # step tags: every sample has at least one, at varying places
    tags = [[1, 4, 6], [2, 5], [0, 3, 6]]
    for b, ts in enumerate(tags):
        for t in ts:
            inputs[b, t] = PLACEHOLDER
    logits = f32(torch.randn(B, T, V, generator=gen) * 2).requires_grad_(True)
    labels = torch.full((B, T), IGNORE, dtype=torch.long)
    label_values = []
    for b, ts in enumerate(tags):
        row = []
        for t in ts:
            if soft:
                row.append(float(torch.rand(1, generator=gen).float()))
            else:
                pool = reward_ids if reward_ids is not None else list(range(V))
                row.append(pool[int(torch.randint(0, len(pool), (1,), generator=gen))])
        label_values.append(row)
    if soft:
        labels = labels.double()
    for b, ts in enumerate(tags):
        for j, t in enumerate(ts):
            labels[b, t] = label_values[b][j]
    loss, acc = prm_loss(inputs, logits, labels, reward_ids, soft)
    loss.backward()
    return {
        "name": name, "b": B, "t": T, "v": V, "placeholder": PLACEHOLDER,
        "reward": reward_ids, "soft": soft,
        "inputs": [int(x) for x in inputs.reshape(-1).tolist()],
        "labels": label_values,
        "logits": flat(logits),
        "loss": float(loss), "acc": float(acc),
        "grad_logits": flat(logits.grad),
    }


def main():
    gen = torch.Generator().manual_seed(15)
    cases = [
        case("hard_reward_tokens", gen, REWARD, False),
        case("soft", gen, REWARD, True),
        case("hard_whole_vocab", gen, None, False),
    ]
    path = "internal/trainer/prm/testdata/loss_golden.json"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"cases": cases}, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
