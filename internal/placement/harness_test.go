package placement

// The harness the package tests share: a small role spec built from
// stories260K, a driver started on a Slurm-style plan, worker goroutines,
// and a transport spy that says when a worker's watch stream is open.

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/train"
)

const (
	testSecret  = "placement-test-secret-0123456789"
	testVersion = "v0.0.0-test"
	testDigest  = "run:test"
)

// testSpec is a small run: actor, reference, critic (fresh value head),
// a length rule as the reward, and the rollout engine.
func testSpec() role.Spec {
	adam := role.Adam(optim.DefaultConfig())
	return role.Spec{ForwardBatch: 2, Seed: 5, Actor: role.ActorSpec{Adam: adam}, Reference: true,
		Critic: &role.CriticSpec{Adam: adam},
		Reward: &role.RewardSpec{Rule: grade.RuleConfig{Kind: grade.RuleLength,
			Length: grade.LengthConfig{Target: 20, Unit: grade.UnitChars}}},
		Rollout: role.RolloutSpec{KVCacheMB: 8}}
}

// build is the Builder of every process of the tests. Each call loads
// its own stories260K bundle, as a worker process would: an actor built
// without its reference trains the bundle's model in place, which must
// not change the roles of another "process".
func build(want inproc.Want) (*inproc.Roles, error) {
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		return nil, err
	}
	return inproc.BuildSome(testSpec(), train.Setup{Bundle: b}, nil, want)
}

// quiet drops every record.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// addrHandler is a slog handler that reports the rendezvous address the
// driver logs while it waits for its workers (Start blocks until they
// have joined, so the test learns the port from there).
type addrHandler struct{ addr chan string }

func (h addrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h addrHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h addrHandler) WithGroup(string) slog.Handler            { return h }
func (h addrHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "rendezvous" {
			select {
			case h.addr <- a.Value.String():
			default:
			}
			return false
		}
		return true
	})
	return nil
}

// watches sees every worker's watch request (cluster.Watch uses
// http.DefaultClient): a test learns when a worker's watch stream is open,
// for the driver notices a dead worker only once it is (Start returns when
// every worker registered, which comes first).
var watches = &watchSpy{open: map[string]chan struct{}{}}

func TestMain(m *testing.M) {
	// Every worker goroutine shares this transport, where worker processes
	// would each have their own: without keep-alives no pooled connection
	// that never carried a request holds the driver's graceful shutdown
	// for 5 s.
	watches.next, http.DefaultTransport = &http.Transport{DisableKeepAlives: true}, watches
	os.Exit(m.Run())
}

// watchSpy is an http.RoundTripper that reports watch streams the driver
// answered.
type watchSpy struct {
	next http.RoundTripper
	mu   sync.Mutex
	open map[string]chan struct{} // by driver host:port and rank
}

func (s *watchSpy) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK && req.URL.Path == "/v1/watch" {
		close(s.opened(req.URL.Host, req.URL.Query().Get("rank")))
	}
	return resp, err
}

// opened is closed when rank's watch on driver is open.
func (s *watchSpy) opened(driver, rank string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := driver + "/" + rank
	if s.open[k] == nil {
		s.open[k] = make(chan struct{})
	}
	return s.open[k]
}

// wait returns once rank's watch on the driver at port is open.
func (s *watchSpy) wait(t *testing.T, port, rank int) {
	t.Helper()
	select {
	case <-s.opened(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), strconv.Itoa(rank)):
	case <-time.After(30 * time.Second):
		t.Fatalf("worker rank %d never opened its watch stream", rank)
	}
}

// slurmPlan is the plan of a Slurm launch with cfg's layouts.
func slurmPlan(t *testing.T, cfg launch.Config, needs launch.Needs) launch.Plan {
	t.Helper()
	cfg.Launcher = launch.Slurm
	plan, err := launch.NewPlan(cfg, needs)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// driverOptions places plan's roles with the test's secret, version and
// digest, listening on a free loopback port.
func driverOptions(plan launch.Plan) Options {
	return Options{Plan: plan, Build: build, Secret: testSecret, Version: testVersion, Digest: testDigest,
		Listen: "127.0.0.1:0", JoinTimeout: time.Minute}
}

// started is what Start returned.
type started struct {
	placed *Placed
	ctx    context.Context
	err    error
}

// startDriver runs Start in the background and returns the rendezvous
// port as soon as the driver listens, and where Start's result will come.
func startDriver(t *testing.T, o Options) (int, <-chan started) {
	t.Helper()
	h := addrHandler{addr: make(chan string, 1)}
	o.Logger = slog.New(h)
	done := make(chan started, 1)
	go func() {
		p, ctx, err := Start(context.Background(), o)
		done <- started{p, ctx, err}
	}()
	select {
	case addr := <-h.addr:
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("rendezvous address %q: %v", addr, err)
		}
		n, _ := strconv.Atoi(port)
		return n, done
	case s := <-done:
		t.Fatalf("Start returned before listening: %v", s.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the driver never logged its rendezvous address")
	}
	return 0, nil
}

// awaitStart waits for Start's result; the Placed is closed at the end
// of the test (tests that Close it themselves close it twice: harmless).
func awaitStart(t *testing.T, done <-chan started) started {
	t.Helper()
	select {
	case s := <-done:
		if s.err == nil {
			t.Cleanup(func() { s.placed.Close() })
		}
		return s
	case <-time.After(60 * time.Second):
		t.Fatal("Start did not return in 60 s")
	}
	return started{}
}

// worker is one worker goroutine: placement.Serve under its own context.
type worker struct {
	cancel context.CancelFunc
	done   chan error
}

// wait returns Serve's error, failing the test after d.
func (w worker) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-w.done:
		w.done <- err // a later wait sees it too
		return err
	case <-time.After(d):
		t.Fatalf("the worker's Serve did not return in %v", d)
	}
	return nil
}

// serve runs Serve for o in a goroutine; the test's end cancels it and
// waits for it.
func serve(t *testing.T, o WorkerOptions) worker {
	ctx, cancel := context.WithCancel(context.Background())
	w := worker{cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- Serve(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(20 * time.Second):
			t.Error("a worker's Serve outlived its cancelled context by 20 s")
		}
	})
	return w
}

// workerOptions is rank's side of plan, joining the driver on port.
func workerOptions(plan launch.Plan, rank, port int) WorkerOptions {
	return WorkerOptions{Identity: launch.Identity{Rank: rank, WorldSize: plan.WorldSize, DriverHost: "127.0.0.1", DriverPort: port},
		Plan: plan, Build: build, Secret: testSecret, Version: testVersion, Digest: testDigest,
		JoinTimeout: 30 * time.Second, Logger: quiet()}
}

// startRun starts a driver for plan and one worker goroutine per worker
// rank, and waits until the driver placed every role.
func startRun(t *testing.T, plan launch.Plan) (started, map[int]worker) {
	t.Helper()
	port, done := startDriver(t, driverOptions(plan))
	workers := map[int]worker{}
	for _, g := range plan.Groups[1:] {
		for _, r := range g.Ranks {
			workers[r.Global] = serve(t, workerOptions(plan, r.Global, port))
		}
	}
	s := awaitStart(t, done)
	if s.err != nil {
		t.Fatal(s.err)
	}
	for rank := range workers {
		watches.wait(t, port, rank)
	}
	return s, workers
}
