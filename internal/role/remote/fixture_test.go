package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/role/remote/wire"
	"github.com/gorlhf/gorlhf/internal/train"
)

const (
	testSecret  = "test-secret-0123456789abcdef"
	testVersion = "v0.0.0-test"
	testDigest  = "digest-1"
)

// serverConfig is a loopback server's configuration for tests.
func serverConfig(plane WeightsPlane, log *slog.Logger) ServerConfig {
	return ServerConfig{Addr: "127.0.0.1:0", Secret: testSecret, Version: testVersion, ConfigDigest: testDigest,
		Rank: 3, Host: "testhost", Weights: plane, Logger: log}
}

// startServer serves hosted on a free loopback port until the test ends.
func startServer(t testing.TB, cfg ServerConfig, hosted Hosted) *Server {
	t.Helper()
	s, err := NewServer(cfg, hosted)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

// clientConfig dials addr with short timeouts.
func clientConfig(addr string, plane WeightsPlane, roles ...Role) Config {
	c := DefaultConfig()
	c.Addr, c.Roles = addr, roles
	c.Secret, c.Version, c.ConfigDigest = testSecret, testVersion, testDigest
	c.DialTimeout, c.DialBackoff, c.MaxDialBackoff = 2*time.Second, 10*time.Millisecond, 100*time.Millisecond
	c.Weights = plane
	c.Logger = quietLogger()
	return c
}

func dial(t testing.TB, cfg Config) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// quietLogger drops everything (the tests check behaviour, not logs).
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// --- the real roles, from the embedded stories260K

var stories = sync.OnceValues(func() (*load.Bundle, error) { return load.Open(load.DefaultModel, load.OpenOptions{}) })

// buildRoles makes all five in-process roles over stories260K: inproc.Build
// makes the actor, critic (a fresh value head drawn from the spec's seed),
// reference and rollout; the reward is a mix of two test sources. Two calls
// give roles in identical states (same weights, same value head, same
// optimizer settings), so one set can be called directly and the other
// through a server. The references of both share the loaded weights (they
// only read them); everything else has its own copy.
func buildRoles(t testing.TB) Hosted {
	t.Helper()
	b, err := stories()
	if err != nil {
		t.Fatal(err)
	}
	adam := role.Adam(optim.DefaultConfig())
	spec := role.Spec{ForwardBatch: 2, Seed: 5, Actor: role.ActorSpec{Adam: adam}, Reference: true,
		Critic: &role.CriticSpec{Adam: adam}, Rollout: role.RolloutSpec{KVCacheMB: 8}}
	r, err := inproc.Build(spec, train.Setup{Bundle: b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if r.Reward != nil {
		t.Fatalf("inproc.Build made a reward role for a spec without one: %T", r.Reward)
	}
	mix, err := reward.NewMix("",
		reward.Part{Name: "len", Weight: 1, Source: reward.Func(func(_ context.Context, s grade.Sample) (float64, error) {
			return float64(len(s.Response)) / 10, nil
		})},
		reward.Part{Name: "label", Weight: 0.5, Source: reward.Func(func(_ context.Context, s grade.Sample) (float64, error) {
			if strings.Contains(s.Response, s.Label) {
				return 1, nil
			}
			return 0, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	return Hosted{
		Actor:     r.Actor,
		Critic:    r.Critic,
		Reference: r.Reference,
		Reward:    inproc.NewReward(mix),
		Rollout:   r.Rollout,
	}
}

// --- loopbackPlane: a test-only WeightsPlane

// loopbackPlane is a WeightsPlane for tests only (the workers use
// internal/transfer): each Publish is kept in memory and served over
// HTTP on 127.0.0.1; Fetch checks size, SHA-256 and version. It counts
// its publishes and fetches, so tests can see which side moved bytes.
type loopbackPlane struct {
	srv                *httptest.Server
	mu                 sync.Mutex // guards blob
	blob               []byte     // the latest publication
	seq                int
	publishes, fetches atomic.Int64
}

// planeBlob is the plane's encoding of a role.Weights.
type planeBlob struct {
	Version int64
	Names   []string
	Shapes  [][]int
	Data    [][]float32
}

func newLoopbackPlane(t testing.TB) *loopbackPlane {
	p := &loopbackPlane{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		b := p.blob
		p.mu.Unlock()
		w.Write(b)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *loopbackPlane) Publish(ctx context.Context, w role.Weights) (WeightsRef, error) {
	blob := planeBlob{Version: w.Version}
	for _, prm := range w.Params {
		blob.Names = append(blob.Names, prm.Name)
		blob.Shapes = append(blob.Shapes, prm.Shape)
		blob.Data = append(blob.Data, prm.Data)
	}
	b, err := wire.Marshal(blob)
	if err != nil {
		return WeightsRef{}, err
	}
	sum := sha256.Sum256(b)
	p.mu.Lock()
	p.blob, p.seq = b, p.seq+1
	seq := p.seq
	p.mu.Unlock()
	p.publishes.Add(1)
	return WeightsRef{URL: fmt.Sprintf("%s/weights/%d", p.srv.URL, seq), Version: w.Version, Size: int64(len(b)),
		Checksum: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

func (p *loopbackPlane) Fetch(ctx context.Context, ref WeightsRef) (role.Weights, error) {
	p.fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref.URL, nil)
	if err != nil {
		return role.Weights{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return role.Weights{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return role.Weights{}, err
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != ref.Size || "sha256:"+hex.EncodeToString(sum[:]) != ref.Checksum {
		return role.Weights{}, fmt.Errorf("plane: %d bytes with checksum %x, want %d, %s", len(b), sum, ref.Size, ref.Checksum)
	}
	var blob planeBlob
	if err := wire.Unmarshal(b, &blob); err != nil {
		return role.Weights{}, err
	}
	if blob.Version != ref.Version {
		return role.Weights{}, fmt.Errorf("plane: version %d, want %d", blob.Version, ref.Version)
	}
	w := role.Weights{Version: blob.Version}
	for i, name := range blob.Names { // freshly decoded: the caller owns them
		w.Params = append(w.Params, role.Param{Name: name, Shape: blob.Shapes[i], Data: blob.Data[i]})
	}
	return w, nil
}

var _ WeightsPlane = (*loopbackPlane)(nil)

// sameParams fails unless a and b hold the same names, shapes and bits.
func sameParams(t testing.TB, what string, a, b []role.Param) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d parameters", what, len(a), len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name || fmt.Sprint(a[i].Shape) != fmt.Sprint(b[i].Shape) {
			t.Fatalf("%s: parameter %d is %s %v vs %s %v", what, i, a[i].Name, a[i].Shape, b[i].Name, b[i].Shape)
		}
		if !bytes.Equal(f32bytes(a[i].Data), f32bytes(b[i].Data)) {
			t.Fatalf("%s: %s differs", what, a[i].Name)
		}
	}
}

// f32bytes is the raw encoding of xs (for bit-exact comparisons, NaN
// included).
func f32bytes(xs []float32) []byte {
	b, _ := wire.Marshal(xs)
	return b
}
