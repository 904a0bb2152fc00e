package transfer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// testConfig returns defaults with a fresh token, the shortcut off and
// short timeouts.
func testConfig(t *testing.T) Config {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Token = Secret(hex.EncodeToString(b[:]))
	cfg.ShmDir = ""
	cfg.Timeout = 20 * time.Second
	cfg.HeaderTimeout = 10 * time.Second
	return cfg
}

// serve runs h on a fresh 127.0.0.1 port until the test ends and returns
// its base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return Addr(ln)
}

// startPublisher returns a served publisher and its base URL.
func startPublisher(t *testing.T, cfg Config) (*Publisher, string) {
	t.Helper()
	p, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p, serve(t, p)
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

var (
	storiesOnce   sync.Once
	storiesParams nn.Params
	storiesErr    error
)

// stories returns a private copy of stories260K's parameters.
func stories(t *testing.T) nn.Params {
	t.Helper()
	storiesOnce.Do(func() {
		l, err := load.Load("stories260K", load.Options{})
		if err != nil {
			storiesErr = err
			return
		}
		storiesParams = l.Params()
	})
	if storiesErr != nil {
		t.Fatal(storiesErr)
	}
	return cloneParams(storiesParams)
}

// oddShapes are shapes a weight loader can get wrong: a scalar, empty
// tensors, size-1 dimensions, a prime length past one conversion chunk.
var oddShapes = [][]int{{}, {1}, {7, 3}, {3, 0}, {5, 1, 9}, {16411}, {0}, {2, 3, 5, 7}}

// randomParams returns tensors of oddShapes filled from seed, with a NaN,
// infinities, a negative zero and a subnormal among them.
func randomParams(seed uint64) nn.Params {
	rng := mrand.New(mrand.NewPCG(seed, 17))
	ps := make(nn.Params, len(oddShapes))
	for i, shape := range oddShapes {
		t := tensor.New(shape...)
		for j := range t.Data {
			t.Data[j] = float32(rng.NormFloat64())
		}
		ps[i] = nn.Param{Name: "layers." + string(rune('a'+i)) + ".weight", Tensor: t}
	}
	special := ps[5].Tensor.Data
	special[0] = float32(math.NaN())
	special[1] = float32(math.Inf(1))
	special[2] = float32(math.Inf(-1))
	special[3] = float32(math.Copysign(0, -1))
	special[4] = math.Float32frombits(1) // smallest subnormal
	return ps
}

// zeroLike returns tensors with ps's names and shapes, all zero.
func zeroLike(ps nn.Params) nn.Params {
	out := make(nn.Params, len(ps))
	for i, p := range ps {
		out[i] = nn.Param{Name: p.Name, Tensor: tensor.New(p.Tensor.Shape...)}
	}
	return out
}

func cloneParams(ps nn.Params) nn.Params {
	out := zeroLike(ps)
	for i, p := range ps {
		copy(out[i].Tensor.Data, p.Tensor.Data)
	}
	return out
}

// sameBits fails unless a and b hold the same names, shapes and bits
// (order may differ).
func sameBits(t *testing.T, got, want nn.Params) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for _, w := range want {
		g := got.Find(w.Name)
		if g == nil {
			t.Fatalf("tensor %s missing", w.Name)
		}
		if len(g.Shape) != len(w.Tensor.Shape) || len(g.Data) != len(w.Tensor.Data) {
			t.Fatalf("tensor %s: shape %v, want %v", w.Name, g.Shape, w.Tensor.Shape)
		}
		for i := range g.Shape {
			if g.Shape[i] != w.Tensor.Shape[i] {
				t.Fatalf("tensor %s: shape %v, want %v", w.Name, g.Shape, w.Tensor.Shape)
			}
		}
		for i := range g.Data {
			if math.Float32bits(g.Data[i]) != math.Float32bits(w.Tensor.Data[i]) {
				t.Fatalf("tensor %s[%d] = %v, want %v (bits differ)", w.Name, i, g.Data[i], w.Tensor.Data[i])
			}
		}
	}
}

func benchStories(b *testing.B) nn.Params {
	l, err := load.Load("stories260K", load.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return l.Params()
}

func serveB(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go Serve(ctx, ln, h)
	return Addr(ln)
}
