package collective

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSecret = "test-run-secret"

// tcpGroup connects size goroutine ranks over loopback (rank 0 on a
// listener at 127.0.0.1:0); mod adjusts each rank's config.
func tcpGroup(t testing.TB, size int, mod func(rank int, c *Config)) []Comm {
	t.Helper()
	comms, errs := connectAll(t, size, mod)
	for r, err := range errs {
		if err != nil {
			t.Fatalf("connect rank %d: %v", r, err)
		}
	}
	return comms
}

// connectAll runs Connect on every rank and returns what each got; the
// Comms are closed when the test ends.
func connectAll(t testing.TB, size int, mod func(rank int, c *Config)) ([]Comm, []error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	comms := make([]Comm, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r := range size {
		cfg := Config{Rank: r, Size: size, Addr: ln.Addr().String(), Secret: testSecret, Timeout: 10 * time.Second, OpTimeout: 10 * time.Second}
		if r == 0 {
			cfg.Listener = ln
		}
		if mod != nil {
			mod(r, &cfg)
		}
		wg.Go(func() { comms[r], errs[r] = Connect(context.Background(), cfg) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range comms {
			if c != nil {
				c.Close()
			}
		}
	})
	return comms, errs
}

// results is what every rank ends with after the sequence of runOps.
type results struct {
	ar, rs, ag, rsIn [][]float32 // per rank; rsIn: buf after reduce-scatter
	bc               [][][]float32
	f64              [][]float64
}

// runOps runs every collective once on comms with the given inputs
// (each rank's own copy): all-reduce, reduce-scatter, all-gather of the
// reduce-scatter's shards, a broadcast from every root, all-reduce-f64
// and a barrier.
func runOps(t *testing.T, comms []Comm, in [][]float32) results {
	t.Helper()
	ctx := context.Background()
	size, n := len(comms), len(in[0])
	res := results{ar: make([][]float32, size), rs: make([][]float32, size), ag: make([][]float32, size), rsIn: make([][]float32, size),
		bc: make([][][]float32, size), f64: make([][]float64, size)}
	onRanks(t, comms, func(c Comm) error {
		k := c.Rank()
		res.ar[k] = append([]float32(nil), in[k]...)
		if err := c.AllReduce(ctx, res.ar[k]); err != nil {
			return err
		}
		res.rsIn[k] = append([]float32(nil), in[k]...)
		res.rs[k] = make([]float32, Partition(n, size)[k].Len())
		if err := c.ReduceScatter(ctx, res.rsIn[k], res.rs[k]); err != nil {
			return err
		}
		res.ag[k] = make([]float32, n)
		if err := c.AllGather(ctx, res.rs[k], res.ag[k]); err != nil {
			return err
		}
		for root := range size {
			b := make([]float32, n)
			copy(b, in[k])
			for i := range b {
				b[i] += float32(root) // a different buffer per root
			}
			if err := c.Broadcast(ctx, b, root); err != nil {
				return err
			}
			res.bc[k] = append(res.bc[k], b)
		}
		res.f64[k] = make([]float64, n)
		for i, v := range in[k] {
			res.f64[k][i] = float64(v) * (1 + 1e-9*float64(i))
		}
		if err := c.AllReduceF64(ctx, res.f64[k]); err != nil {
			return err
		}
		return c.Barrier(ctx)
	})
	return res
}

func sameBits32(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

func sameBits64(a, b []float64) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return i
		}
	}
	return -1
}

// compare fails unless got equals want bit for bit.
func (got results) compare(t *testing.T, want results, what string) {
	t.Helper()
	for k := range got.ar {
		for _, c := range []struct {
			name string
			g, w []float32
		}{{"all-reduce", got.ar[k], want.ar[k]}, {"reduce-scatter", got.rs[k], want.rs[k]}, {"all-gather", got.ag[k], want.ag[k]}, {"reduce-scatter input", got.rsIn[k], want.rsIn[k]}} {
			if i := sameBits32(c.g, c.w); i >= 0 {
				t.Fatalf("%s: rank %d %s differs at %d (len %d vs %d)", what, k, c.name, i, len(c.g), len(c.w))
			}
		}
		for root := range got.bc[k] {
			if i := sameBits32(got.bc[k][root], want.bc[k][root]); i >= 0 {
				t.Fatalf("%s: rank %d broadcast from %d differs at %d", what, k, root, i)
			}
		}
		if i := sameBits64(got.f64[k], want.f64[k]); i >= 0 {
			t.Fatalf("%s: rank %d all-reduce-f64 differs at %d", what, k, i)
		}
	}
}

// spread returns inputs whose sums depend on the order of the adds:
// normals scaled by powers of two from 2^-20 to 2^20.
func spread(size, n int, seed uint64) [][]float32 {
	in := randBufs(size, n, seed)
	r := rand.New(rand.NewPCG(seed, 2))
	for k := range in {
		for i := range in[k] {
			in[k][i] *= float32(math.Ldexp(1, r.IntN(41)-20))
		}
	}
	return in
}

// TestTCP_EqualsLocal: every collective over TCP equals the reference
// twin NewLocal bit for bit, for 1 to 4 ranks, empty, tiny, odd and
// multi-chunk buffers (64-byte chunks make every buffer many chunks; the
// default chunk meets a 4 MB buffer), twice in a row (run to run), and
// an all-reduce equals a reduce-scatter then an all-gather.
func TestTCP_EqualsLocal(t *testing.T) {
	for _, size := range []int{1, 2, 3, 4} {
		for _, chunk := range []int{64, 0} {
			lengths := []int{0, 1, size - 1, size + 1, 7, 16*size*3 + 5, 1000}
			if chunk == 0 {
				lengths = []int{3, 1_000_003}
			}
			comms := tcpGroup(t, size, func(_ int, c *Config) { c.ChunkBytes = chunk })
			for _, n := range lengths {
				what := fmt.Sprintf("size %d chunk %d n %d", size, chunk, n)
				in := spread(size, n, uint64(1000*size+n))
				want := runOps(t, NewLocal(size), in)
				got := runOps(t, comms, in)
				got.compare(t, want, what)
				runOps(t, comms, in).compare(t, got, what+" (second run)")
				for k := range size {
					if i := sameBits32(got.ag[k], got.ar[k]); i >= 0 {
						t.Fatalf("%s: rank %d reduce-scatter + all-gather differs from all-reduce at %d", what, k, i)
					}
				}
			}
		}
	}
}

// TestTCP_OrderMatters makes sure the inputs of TestTCP_EqualsLocal
// would catch a transport that adds in another order than RingOrder.
func TestTCP_OrderMatters(t *testing.T) {
	for _, size := range []int{3, 4} {
		in := spread(size, 1000, 7)
		parts := Partition(1000, size)
		ring := make([]float32, 1000)
		for s, r := range parts {
			RingSum(ring, in, s, r)
		}
		differ := 0
		for i := range ring {
			var byRank float32
			for k := range size {
				byRank += in[k][i]
			}
			if byRank != ring[i] {
				differ++
			}
		}
		if differ == 0 {
			t.Fatalf("size %d: rank-order sums equal ring-order sums everywhere; the inputs test nothing", size)
		}
	}
}

// TestTCP_Large: a 3-rank all-reduce of 64 MiB finishes in bounded time
// and adds exactly (integer values).
func TestTCP_Large(t *testing.T) {
	const n = 16 << 20 // 64 MiB of float32
	comms := tcpGroup(t, 3, nil)
	bufs := make([][]float32, 3)
	for k := range bufs {
		bufs[k] = make([]float32, n)
		for i := range bufs[k] {
			bufs[k][i] = float32((i + k) % 1000)
		}
	}
	start := time.Now()
	onRanks(t, comms, func(c Comm) error { return c.AllReduce(context.Background(), bufs[c.Rank()]) })
	d := time.Since(start)
	t.Logf("3-rank all-reduce of 64 MiB: %v (busbw %.2f GB/s)", d, 64<<20/d.Seconds()*4/3/1e9)
	if d > 15*time.Second {
		t.Fatalf("3-rank all-reduce of 64 MiB took %v", d)
	}
	for k := range bufs {
		for i, v := range bufs[k] {
			if want := float32(i%1000 + (i+1)%1000 + (i+2)%1000); v != want {
				t.Fatalf("rank %d [%d] = %v, want %v", k, i, v, want)
			}
		}
	}
}

// TestTCP_PeerClosed: a rank that closes its Comm fails the collective
// the others are in, promptly (well inside the op timeout), with an
// error naming it; later collectives fail at once the same way.
func TestTCP_PeerClosed(t *testing.T) {
	comms := tcpGroup(t, 3, func(_ int, c *Config) { c.OpTimeout = 20 * time.Second })
	ctx := context.Background()
	errs := make([]error, 3)
	var wg sync.WaitGroup
	start := time.Now()
	for _, k := range []int{0, 2} {
		wg.Go(func() { errs[k] = comms[k].AllReduce(ctx, make([]float32, 1<<20)) })
	}
	time.Sleep(100 * time.Millisecond)
	comms[1].Close()
	wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("errors after %v", d)
	}
	for _, k := range []int{0, 2} {
		if errs[k] == nil || !strings.Contains(errs[k].Error(), "rank 1 (") || !strings.Contains(errs[k].Error(), "all-reduce") {
			t.Fatalf("rank %d: %v, want an all-reduce error naming rank 1", k, errs[k])
		}
		t.Logf("rank %d: %v", k, errs[k])
		err := comms[k].Barrier(ctx)
		if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "rank 1 (") {
			t.Fatalf("rank %d: barrier after the loss: %v", k, err)
		}
	}
	if err := comms[1].Barrier(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed rank: %v, want ErrClosed", err)
	}
}

// TestTCP_OpTimeout: a rank that never enters a collective fails the
// others' after the op timeout, naming the rank they wait for; the
// late rank then finds the group broken.
func TestTCP_OpTimeout(t *testing.T) {
	comms := tcpGroup(t, 2, func(_ int, c *Config) { c.OpTimeout = 300 * time.Millisecond })
	start := time.Now()
	err := comms[0].AllReduce(context.Background(), make([]float32, 100))
	d := time.Since(start)
	var op *OpError
	if !errors.As(err, &op) || op.Peer != 1 || !op.Recv || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("err = %v, want a timeout naming rank 1", err)
	}
	if d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("timed out after %v", d)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		err = comms[1].AllReduce(context.Background(), make([]float32, 100))
		if errors.Is(err, ErrAborted) && strings.Contains(err.Error(), "rank 0 ← rank 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late rank: %v, want the group's abort", err)
		}
	}
}

// TestTCP_Cancel: cancelling the caller's context fails the collective
// and the group.
func TestTCP_Cancel(t *testing.T) {
	comms := tcpGroup(t, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := comms[0].AllReduce(ctx, make([]float32, 100))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if err := comms[1].Barrier(context.Background()); !errors.Is(err, ErrAborted) {
		t.Fatalf("other rank: %v", err)
	}
}

// TestTCP_OutOfStep: ranks in different collectives, or with different
// lengths, fail at once with both sides named.
func TestTCP_OutOfStep(t *testing.T) {
	comms := tcpGroup(t, 2, nil)
	ctx := context.Background()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = comms[0].AllReduce(ctx, make([]float32, 10)) })
	wg.Go(func() { errs[1] = comms[1].AllReduce(ctx, make([]float32, 12)) })
	wg.Wait()
	for k, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "all-reduce of 1") {
			t.Fatalf("rank %d: %v", k, err)
		}
		t.Logf("rank %d: %v", k, err)
	}
	comms = tcpGroup(t, 2, nil)
	wg.Go(func() { errs[0] = comms[0].Broadcast(ctx, make([]float32, 10), 0) })
	wg.Go(func() { errs[1] = comms[1].AllGather(ctx, make([]float32, 5), make([]float32, 10)) })
	wg.Wait()
	if errs[0] == nil || errs[1] == nil || !strings.Contains(errs[1].Error(), "broadcast") {
		t.Fatalf("broadcast vs all-gather: %v / %v", errs[0], errs[1])
	}
}

// TestTCP_BadArguments: a wrong shard length fails the call and, since
// the others are already in the collective, the group.
func TestTCP_BadArguments(t *testing.T) {
	comms := tcpGroup(t, 2, nil)
	ctx := context.Background()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = comms[0].ReduceScatter(ctx, make([]float32, 10), make([]float32, 4)) })
	wg.Go(func() { errs[1] = comms[1].ReduceScatter(ctx, make([]float32, 10), make([]float32, 5)) })
	wg.Wait()
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "shard has 4 values") {
		t.Fatalf("rank 0: %v", errs[0])
	}
	if !errors.Is(errs[1], ErrAborted) || !strings.Contains(errs[1].Error(), "shard has 4 values") {
		t.Fatalf("rank 1: %v", errs[1])
	}
	if err := comms[0].Broadcast(ctx, nil, 5); err == nil {
		t.Fatal("broadcast from rank 5 of 2 accepted")
	}
}

// BenchmarkTCP_AllReduce: goroutine ranks over loopback, 1–16 MiB (for
// profiling; `gorlhf bench collective` measures processes).
func BenchmarkTCP_AllReduce(b *testing.B) {
	for _, c := range []struct{ size, n int }{{2, 256 << 10}, {2, 1 << 20}, {2, 4 << 20}, {3, 4 << 20}} {
		size, n := c.size, c.n
		b.Run(fmt.Sprintf("ranks=%d/MiB=%d", size, 4*n>>20), func(b *testing.B) {
			comms := tcpGroup(b, size, nil)
			bufs := make([][]float32, size)
			for k := range bufs {
				bufs[k] = make([]float32, n)
			}
			b.SetBytes(int64(4 * n))
			b.ResetTimer()
			for range b.N {
				var wg sync.WaitGroup
				for k := range size {
					wg.Go(func() {
						if err := comms[k].AllReduce(context.Background(), bufs[k]); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
		})
	}
}
