package collective

import "testing"

// TestPlan_Invariants checks what the TCP ring relies on, for many
// shapes: rank r sends exactly what rank r+1 expects, step by step; in
// the ring collectives every wait points at a smaller step of the other
// list (no deadlock, whatever the sockets buffer); and every value of the
// buffer is received or kept as the algorithm says.
func TestPlan_Invariants(t *testing.T) {
	for size := 2; size <= 6; size++ {
		for _, n := range []int{0, 1, size - 1, size, size + 1, 37, 64*size + 3} {
			for _, c := range []int{1, 3, 16, 1 << 20} {
				ring := map[string]func(r int) plan{
					"all-reduce":     func(r int) plan { return planAllReduce(n, size, r, c) },
					"reduce-scatter": func(r int) plan { return planReduceScatter(n, size, r, c) },
					"all-gather":     func(r int) plan { return planAllGather(n, size, r, c) },
				}
				for name, mk := range ring {
					for r := range size {
						p, q := mk(r), mk(mod(r+1, size))
						checkMatch(t, name, size, n, c, r, p, q)
						if len(p.sends) != len(p.recvs) {
							t.Fatalf("%s size %d n %d c %d rank %d: %d sends, %d receives", name, size, n, c, r, len(p.sends), len(p.recvs))
						}
						for i, s := range p.sends {
							if s.wait > i {
								t.Fatalf("%s size %d n %d c %d rank %d: send %d waits for %d receives", name, size, n, c, r, i, s.wait)
							}
						}
						for i, s := range p.recvs {
							if s.wait > i {
								t.Fatalf("%s size %d n %d c %d rank %d: receive %d waits for %d sends", name, size, n, c, r, i, s.wait)
							}
						}
						checkCoverage(t, name, size, n, c, r, p)
					}
				}
				for root := range size {
					for r := range size {
						p, q := planBroadcast(n, size, r, root, c), planBroadcast(n, size, mod(r+1, size), root, c)
						if mod(r+1, size) == root {
							if len(p.sends) != 0 || len(q.recvs) != 0 {
								t.Fatalf("broadcast size %d root %d: rank %d sends to the root", size, root, r)
							}
							continue
						}
						checkMatch(t, "broadcast", size, n, c, r, p, q)
					}
				}
			}
		}
	}
}

// checkMatch: p's sends (rank r) have the lengths of q's receives (rank r+1).
func checkMatch(t *testing.T, name string, size, n, c, r int, p, q plan) {
	t.Helper()
	if len(p.sends) != len(q.recvs) {
		t.Fatalf("%s size %d n %d c %d: rank %d sends %d steps, rank %d receives %d", name, size, n, c, r, len(p.sends), mod(r+1, size), len(q.recvs))
	}
	for i := range p.sends {
		if p.sends[i].src.n != q.recvs[i].dst.n {
			t.Fatalf("%s size %d n %d c %d step %d: rank %d sends %d values, rank %d receives %d", name, size, n, c, i, r, p.sends[i].src.n, mod(r+1, size), q.recvs[i].dst.n)
		}
	}
}

// checkCoverage: an all-reduce receives every value of the buffer but
// this rank's shard once into the buffer in its all-gather, and its own
// shard once complete; a reduce-scatter writes each value of the output
// shard once.
func checkCoverage(t *testing.T, name string, size, n, c, r int, p plan) {
	t.Helper()
	own := Partition(n, size)[r]
	buf := make([]int, n)
	out := make([]int, own.Len())
	for _, s := range p.recvs {
		for i := s.dst.off; i < s.dst.off+s.dst.n; i++ {
			switch s.dst.at {
			case inBuf:
				buf[i]++
			case inOut:
				out[i]++
			}
		}
	}
	for i, k := range buf {
		want := 0
		switch name {
		case "all-reduce":
			want = 1 // own shard: the last reduce-scatter step; the rest: the all-gather
		case "all-gather":
			if i < own.Lo || i >= own.Hi {
				want = 1
			}
		}
		if k != want {
			t.Fatalf("%s size %d n %d c %d rank %d: value %d received %d times, want %d", name, size, n, c, r, i, k, want)
		}
	}
	for i, k := range out {
		if name == "reduce-scatter" && k != 1 {
			t.Fatalf("%s size %d n %d c %d rank %d: output value %d written %d times", name, size, n, c, r, i, k)
		}
	}
}
