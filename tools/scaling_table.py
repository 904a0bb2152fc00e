#!/usr/bin/env python3
"""Projection tables of docs/SCALING.md: memory per rank and bytes moved per
step per rank for each ZeRO stage, from the formulas of docs/ZERO.md, and the
time those bytes take on a 25 Gb/s and a 200 Gb/s network (ring collectives
move (N-1)/N of a buffer per rank; a link is assumed to run at its line rate).

Run: /usr/bin/python3 tools/scaling_table.py  (standard library only)."""

GB = 1e9


def memory(stage, psi, n, elem=4):
    """Bytes of training state per rank (fp32: gorlhf; no scratch)."""
    s = psi / n
    return {0: 16 * psi + 4 * s, 1: 8 * psi + 12 * s, 2: 4 * psi + 12 * s, 3: 16 * s}[stage]


def moved(stage, psi, n, a=1, elem=4):
    """Bytes one rank sends per optimizer step with a micro-batches.
    Stages 0-2: a reduce-scatters + 1 all-gather; stage 3: per micro-batch
    two parameter all-gathers (forward, backward) + one reduce-scatter."""
    ring = (n - 1) / n * elem * psi
    return (a + 1) * ring if stage < 3 else 3 * a * ring


def fmt_gb(x):
    return f"{x / GB:,.1f}"


def main():
    nets = {"25 Gb/s": 25e9 / 8, "200 Gb/s": 200e9 / 8}
    print("| model | ranks | stage | state per rank (GB) | sent per rank per step (GB) | " +
          " | ".join(f"comm. time at {k} (s)" for k in nets) + " |")
    print("|---|---|---|---|---|" + "---|" * len(nets))
    for name, psi in (("1B", 1e9), ("7B", 7e9)):
        for n in (8, 64):
            for stage in range(4):
                m, b = memory(stage, psi, n), moved(stage, psi, n)
                times = " | ".join(f"{b / bw:.1f}" for bw in nets.values())
                print(f"| {name} | {n} | {stage} | {fmt_gb(m)} | {fmt_gb(b)} | {times} |")
    print()
    # OpenRLHF's published setups (paper v4): ZeRO-3, bf16 weights and
    # gradients, fp32 master weights and Adam moments (2+2+12 = 16 bytes a
    # parameter, sharded), Adam offloaded to the CPU (12 bytes a parameter
    # leave the GPU); collectives in bf16 (2 bytes an element).
    print("| setup | model | GPUs per trained model | DeepSpeed ZeRO-3 on GPU (GB) | with Adam offload (GB) | gorlhf ZeRO-3 fp32 (GB) | DeepSpeed sent per step (GB) | gorlhf sent per step (GB) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, psi, n in (("OpenRLHF 7B PPO (actor 4, critic 4)", 7e9, 4), ("OpenRLHF 70B PPO (actor 4, critic 4)", 70e9, 4)):
        ds = 16 * psi / n
        off = 4 * psi / n
        g = memory(3, psi, n)
        print(f"| {name} | {psi / 1e9:.0f}B | {n} | {fmt_gb(ds)} | {fmt_gb(off)} | {fmt_gb(g)} | "
              f"{fmt_gb(moved(3, psi, n, elem=2))} | {fmt_gb(moved(3, psi, n))} |")


if __name__ == "__main__":
    main()
