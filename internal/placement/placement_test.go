package placement

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/cluster"
	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
	"github.com/gorlhf/gorlhf/internal/rl"
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

// ragged returns n random stories260K sequences: a BOS then up to 7
// prompt tokens, and 1–20 response tokens.
func ragged(seed uint64, n int) role.Sequences {
	r := rand.New(rand.NewPCG(seed, 1))
	var s role.Sequences
	for range n {
		p, a := 1+r.IntN(8), 1+r.IntN(20)
		toks := []int32{1}
		for len(toks) < p+a {
			toks = append(toks, int32(3+r.IntN(500)))
		}
		s.Tokens, s.PromptLens = append(s.Tokens, toks), append(s.PromptLens, p)
	}
	return s
}

// rows returns random per-token values shaped like s's responses.
func rows(seed uint64, s role.Sequences) role.PerToken {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make(role.PerToken, s.Len())
	for i := range out {
		out[i] = make([]float32, s.ResponseLen(i))
		for j := range out[i] {
			out[i][j] = float32(r.NormFloat64())
		}
	}
	return out
}

// sameRows fails unless got and want hold the same bits.
func sameRows(t *testing.T, what string, got, want role.PerToken) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: row %d has %d values, want %d", what, i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
				t.Fatalf("%s: row %d value %d = %v, want %v", what, i, j, got[i][j], want[i][j])
			}
		}
	}
}

// must(f())(t) is f's value, or t fails with f's error.
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// generateRequest samples, greedily and at random, with stop tokens.
func generateRequest() role.GenerateRequest {
	return role.GenerateRequest{Prompts: []role.Prompt{
		{ID: "a", Tokens: []int32{1, 403, 29}, Params: role.SamplingParams{N: 2, MaxNewTokens: 12, Temperature: 0.9, TopK: 40, Seed: 7}},
		{ID: "b", Tokens: []int32{1, 88}, Params: role.SamplingParams{MaxNewTokens: 8}},
		{ID: "c", Tokens: []int32{1, 403}, Params: role.SamplingParams{N: 2, MaxNewTokens: 10, Temperature: 1, TopP: 0.9, StopTokenIDs: []int32{13}}},
	}}
}

// sameGenerate runs req on both engines: equal results, every completion
// from weight version v.
func sameGenerate(t *testing.T, got, want role.Rollout, v int64) role.GenerateResult {
	t.Helper()
	ctx := context.Background()
	req := generateRequest()
	w := must(want.Generate(ctx, req))(t)
	g := must(got.Generate(ctx, req))(t)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("generate:\n got %+v\nwant %+v", g, w)
	}
	if len(w.Results) != len(req.Prompts) {
		t.Fatalf("%d generations for %d prompts", len(w.Results), len(req.Prompts))
	}
	for _, r := range w.Results {
		for _, c := range r.Completions {
			if c.WeightVersion != v || len(c.Tokens) == 0 {
				t.Fatalf("a completion of %d tokens from weight version %d, want version %d", len(c.Tokens), c.WeightVersion, v)
			}
		}
	}
	return w
}

// TestStartServe_MatchesInProcess places a run over a Slurm-style plan
// with one worker goroutine per role and compares every call with the
// same call on roles built in this process, bit for bit.
func TestStartServe_MatchesInProcess(t *testing.T) {
	ctx := context.Background()
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{Critic: true, Reference: true})
	if plan.WorldSize != 5 {
		t.Fatalf("plan of %d processes, want 5 (driver, actor, ref, critic, rollout):\n%s", plan.WorldSize, plan)
	}
	s, workers := startRun(t, plan)
	placed := s.placed
	local := must(inproc.Build(testSpec(), train.Setup{Bundle: must(load.Open(load.DefaultModel, load.OpenOptions{}))(t)}, nil))(t)
	t.Cleanup(func() { local.Close() })

	if !placed.Overlap || placed.Sync == nil || placed.MaxPositions != 0 {
		t.Fatalf("placed: Overlap %v, Sync set %v, MaxPositions %d; want true, true, 0", placed.Overlap, placed.Sync != nil, placed.MaxPositions)
	}
	set := placed.Set
	if set.Actor == nil || set.Reference == nil || set.Critic == nil || set.Rollout == nil || set.Reward == nil {
		t.Fatalf("placed set has a nil role: %+v", set)
	}
	for name, r := range map[string]any{"actor": set.Actor, "ref": set.Reference, "critic": set.Critic, "rollout": set.Rollout} {
		if strings.Contains(fmt.Sprintf("%T", r), "inproc") {
			t.Fatalf("the %s is in the driver's process (%T), not a worker's", name, r)
		}
	}
	if _, ok := set.Reward.(*inproc.Reward); !ok {
		t.Fatalf("the rule reward is %T, want the driver's own *inproc.Reward", set.Reward)
	}

	seqs := ragged(1, 6)
	t.Run("LogProbs", func(t *testing.T) {
		req := role.LogProbsRequest{Seqs: seqs}
		sameRows(t, "actor", must(set.Actor.LogProbs(ctx, req))(t).LogProbs, must(local.Actor.LogProbs(ctx, req))(t).LogProbs)
		sameRows(t, "reference", must(set.Reference.LogProbs(ctx, req))(t).LogProbs, must(local.Reference.LogProbs(ctx, req))(t).LogProbs)
	})
	t.Run("Values", func(t *testing.T) {
		req := role.ValuesRequest{Seqs: seqs}
		sameRows(t, "values", must(set.Critic.Values(ctx, req))(t).Values, must(local.Critic.Values(ctx, req))(t).Values)
	})
	t.Run("Score", func(t *testing.T) {
		req := role.ScoreRequest{Samples: []grade.Sample{{Prompt: "Once", Response: " upon a time there was a dog"}, {Prompt: "Tom", Response: " ran"}}}
		got, want := must(set.Reward.Score(ctx, req))(t), must(local.Reward.Score(ctx, req))(t)
		if !reflect.DeepEqual(got, want) || len(got.Results) != 2 || got.Results[0].Reward == got.Results[1].Reward {
			t.Fatalf("score:\n got %+v\nwant %+v", got, want)
		}
	})
	var before role.GenerateResult
	t.Run("Generate", func(t *testing.T) { before = sameGenerate(t, set.Rollout, local.Rollout, 0) })
	t.Run("TrainStep", func(t *testing.T) { trainSteps(t, set, local.Set, seqs) })
	t.Run("WeightsThroughDriver", func(t *testing.T) {
		got, want := must(set.Actor.Weights(ctx))(t), must(local.Actor.Weights(ctx))(t)
		sameParamsByName(t, "actor weights", got.Params, want.Params)
	})
	t.Run("Sync", func(t *testing.T) {
		w := must(local.Actor.Weights(ctx))(t)
		w.Version = 1
		if err := local.Rollout.LoadWeights(ctx, w); err != nil {
			t.Fatal(err)
		}
		if err := placed.Sync(ctx, set.Actor, set.Rollout, 1); err != nil {
			t.Fatal(err)
		}
		after := sameGenerate(t, set.Rollout, local.Rollout, 1)
		if before.Results != nil && reflect.DeepEqual(after.Results[0].Completions[0].RawLogProbs, before.Results[0].Completions[0].RawLogProbs) {
			t.Fatal("the trained weights generate what the initial ones did: the sync moved nothing")
		}
	})

	// Close says "bye" on every watch: each worker's Serve returns nil.
	start := time.Now()
	if err := placed.Close(); err != nil {
		t.Fatal(err)
	}
	for rank, w := range workers {
		if err := w.wait(t, 15*time.Second); err != nil {
			t.Errorf("worker rank %d: Serve returned %v after the driver closed the run, want nil", rank, err)
		}
	}
	t.Logf("Close and every worker's exit: %v", time.Since(start))
	if context.Cause(s.ctx) == nil || !errors.Is(context.Cause(s.ctx), context.Canceled) {
		t.Fatalf("after Close the run's context has cause %v, want context.Canceled", context.Cause(s.ctx))
	}
}

// trainSteps runs two actor steps (with a KL and an entropy term) and two
// critic steps on both sets: equal results, then equal log-probs and
// values.
func trainSteps(t *testing.T, got, want role.Set, seqs role.Sequences) {
	ctx := context.Background()
	old := must(want.Actor.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t).LogProbs
	ref := must(want.Reference.LogProbs(ctx, role.LogProbsRequest{Seqs: seqs}))(t).LogProbs
	vals := must(want.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t).Values
	adv, ret := rows(3, seqs), rows(4, seqs)
	as := role.ActorStep{Loss: rl.ActorLossConfig{Policy: rl.DefaultPolicyLossConfig(), KLCoef: 0.05, KLEstimator: rl.K3, EntropyCoef: 0.01},
		LR: 1e-3, MaxNorm: 1}
	cs := role.CriticStep{Loss: rl.DefaultValueLossConfig(), LR: 1e-3, MaxNorm: 1}
	for _, idx := range [][]int{{0, 1, 2}, {3, 4, 5}} {
		as.MicroBatches = append(as.MicroBatches, role.ActorMicroBatch{Seqs: seqs.Select(idx), OldLogProbs: old.Select(idx),
			Advantages: adv.Select(idx), RefLogProbs: ref.Select(idx)})
		cs.MicroBatches = append(cs.MicroBatches, role.CriticMicroBatch{Seqs: seqs.Select(idx), OldValues: vals.Select(idx), Returns: ret.Select(idx)})
	}
	for i := range 2 {
		g, w := must(got.Actor.TrainStep(ctx, as))(t), must(want.Actor.TrainStep(ctx, as))(t)
		if g != w || w.Skipped || w.Tokens == 0 {
			t.Fatalf("actor step %d:\n got %+v\nwant %+v", i, g, w)
		}
		gc, wc := must(got.Critic.TrainStep(ctx, cs))(t), must(want.Critic.TrainStep(ctx, cs))(t)
		if gc != wc || wc.Skipped || wc.Tokens == 0 {
			t.Fatalf("critic step %d:\n got %+v\nwant %+v", i, gc, wc)
		}
	}
	req := role.LogProbsRequest{Seqs: seqs}
	after := must(want.Actor.LogProbs(ctx, req))(t).LogProbs
	sameRows(t, "actor after training", must(got.Actor.LogProbs(ctx, req))(t).LogProbs, after)
	if reflect.DeepEqual(after, old) {
		t.Fatal("two actor steps changed no log-prob")
	}
	sameRows(t, "values after training", must(got.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t).Values,
		must(want.Critic.Values(ctx, role.ValuesRequest{Seqs: seqs}))(t).Values)
	// The reference stays frozen on both sides.
	sameRows(t, "reference after training", must(got.Reference.LogProbs(ctx, req))(t).LogProbs, ref)
}

// TestStart_RefusesWorkers: a worker started with another config digest,
// or with another secret, is refused at registration (its Serve returns
// cluster.ErrRefused at once), and the driver gives up after its join
// timeout naming the ranks that never registered.
func TestStart_RefusesWorkers(t *testing.T) {
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	if plan.WorldSize != 3 {
		t.Fatalf("plan of %d processes, want 3:\n%s", plan.WorldSize, plan)
	}
	o := driverOptions(plan)
	o.JoinTimeout = 3 * time.Second
	port, done := startDriver(t, o)

	digest := workerOptions(plan, 1, port)
	digest.Digest = "run:other"
	secret := workerOptions(plan, 2, port)
	secret.Secret = "a-wrong-secret-0123456789"
	for _, c := range []struct {
		name string
		o    WorkerOptions
		want string
	}{{"digest", digest, "config digest mismatch"}, {"secret", secret, "wrong run secret"}} {
		err := serve(t, c.o).wait(t, 30*time.Second)
		if !errors.Is(err, cluster.ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("worker with another %s: Serve returned %v, want %v naming %q", c.name, err, cluster.ErrRefused, c.want)
		}
	}
	s := awaitStart(t, done)
	if s.err == nil || !strings.Contains(s.err.Error(), "ranks 1, 2 never registered") {
		t.Fatalf("Start with refused workers: %v, want ranks 1, 2 never registered", s.err)
	}
}

// TestStart_RefusesPlans: a group on several ranks (data-parallel
// training) is refused with its name before anything listens; a plan
// whose world size differs from the worker's identity is refused by the
// worker; the driver's rank is no worker.
func TestStart_RefusesPlans(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(*launch.Config)
		group string
	}{
		{"actor", func(c *launch.Config) { c.Actor.NumWorkersPerNode = 2 }, "group actor has 2 processes"},
		{"critic", func(c *launch.Config) { c.Critic.NumNodes = 3 }, "group critic has 3 processes"},
		{"rollout", func(c *launch.Config) { c.RolloutEngines = 2 }, "group rollout has 2 processes"},
		{"actor-ref", func(c *launch.Config) {
			c.Colocate.ActorRef, c.Actor.NumWorkersPerNode, c.Ref.NumWorkersPerNode = true, 2, 2
		}, "group actor-ref has 2 processes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := launch.DefaultConfig()
			c.edit(&cfg)
			plan := slurmPlan(t, cfg, launch.Needs{Critic: true, Reference: true})
			if err := checkPlan(plan); err == nil || !strings.Contains(err.Error(), c.group) {
				t.Fatalf("checkPlan: %v, want %q", err, c.group)
			}
			o := driverOptions(plan)
			o.Listen = "127.0.0.1:1" // never reached: the plan is refused first
			p, ctx, err := Start(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.group) || p != nil || ctx != nil {
				t.Fatalf("Start: %v, want %q and nothing placed", err, c.group)
			}
		})
	}
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	if err := checkPlan(plan); err != nil {
		t.Fatal(err)
	}
	o := workerOptions(plan, 1, 1)
	o.Identity.WorldSize = 4
	if err := Serve(context.Background(), o); err == nil || !strings.Contains(err.Error(), "needs 3") {
		t.Fatalf("Serve with world size 4 for a plan of 3: %v", err)
	}
	if err := Serve(context.Background(), workerOptions(plan, 0, 1)); err == nil || !strings.Contains(err.Error(), "is the driver") {
		t.Fatalf("Serve as rank 0: %v", err)
	}
	if _, _, err := Start(context.Background(), Options{Plan: plan}); err == nil {
		t.Fatal("Start without a builder")
	}
}

// TestStart_Inproc: the inproc launcher builds every role in this process
// and opens nothing.
func TestStart_Inproc(t *testing.T) {
	plan, err := launch.NewPlan(launch.DefaultConfig(), launch.Needs{Critic: true, Reference: true})
	if err != nil {
		t.Fatal(err)
	}
	p, ctx, err := Start(context.Background(), Options{Plan: plan, Build: build})
	if err != nil {
		t.Fatal(err)
	}
	r := must(build(inproc.AllRoles()))(t)
	r.Close()
	if p.Overlap || p.Sync != nil || p.MaxPositions != r.MaxPositions() || ctx.Err() != nil {
		t.Fatalf("inproc: Overlap %v, Sync set %v, MaxPositions %d (want %d), ctx %v", p.Overlap, p.Sync != nil, p.MaxPositions, r.MaxPositions(), ctx.Err())
	}
	if _, ok := p.Set.Actor.(*inproc.Actor); !ok || p.Set.Reference == nil || p.Set.Critic == nil || p.Set.Reward == nil || p.Set.Rollout == nil {
		t.Fatalf("inproc set: %+v", p.Set)
	}
	boom := errors.New("boom")
	if got := p.Explain(boom); got != boom {
		t.Fatalf("Explain in process: %v", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Fatal("Close left the run's context alive")
	}
}

// TestStart_WorkerLost cancels one worker's Serve (its death, as the
// driver sees it: the watch stream breaks): the driver's run context is
// cancelled with a cluster.Lost naming the rank, Explain returns that
// cause for the training's own error, and Close still ends the other
// worker with nil.
func TestStart_WorkerLost(t *testing.T) {
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	s, workers := startRun(t, plan)
	if s.ctx.Err() != nil {
		t.Fatalf("the run is over before it began: %v", context.Cause(s.ctx))
	}
	dead := plan.Groups[2].Ranks[0].Global // the rollout engine
	workers[dead].cancel()
	if err := workers[dead].wait(t, 15*time.Second); err != nil {
		t.Errorf("cancelled worker: Serve returned %v, want nil", err)
	}
	select {
	case <-s.ctx.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the driver's run context outlived a dead worker by 15 s")
	}
	cause := context.Cause(s.ctx)
	var lost cluster.Lost
	if !errors.As(cause, &lost) || lost.Member.Rank != dead || !strings.Contains(cause.Error(), fmt.Sprintf("worker rank %d", dead)) {
		t.Fatalf("run cancelled with %v, want cluster.Lost for rank %d", cause, dead)
	}
	broken := errors.New("remote: rollout: Generate: connection refused")
	for range 2 { // Explain can be asked again
		if got := s.placed.Explain(broken); got != cause {
			t.Fatalf("Explain: %v, want %v", got, cause)
		}
	}
	if got := s.placed.Explain(nil); got != nil {
		t.Fatalf("Explain(nil) = %v", got)
	}
	if err := s.placed.Close(); err != nil {
		t.Fatal(err)
	}
	if context.Cause(s.ctx) != cause {
		t.Fatalf("Close replaced the failure %v with %v", cause, context.Cause(s.ctx))
	}
	for rank, w := range workers {
		if rank == dead {
			continue
		}
		if err := w.wait(t, 15*time.Second); err != nil {
			t.Errorf("worker rank %d: Serve returned %v after Close, want nil", rank, err)
		}
	}
}

// TestStart_WorkerLostWhileJoining: a worker that registers and then
// dies while another has not joined yet fails Start at once with its
// cluster.Lost, not after the join timeout.
func TestStart_WorkerLostWhileJoining(t *testing.T) {
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	o := driverOptions(plan)
	o.JoinTimeout = 40 * time.Second
	port, done := startDriver(t, o)
	driver := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Rank 1 registers and opens its watch stream, as Serve does; rank 2
	// never comes.
	jc := cluster.JoinConfig{Driver: driver, Secret: testSecret, Timeout: 10 * time.Second}
	me := cluster.Member{Rank: 1, Host: "testhost", Addr: "127.0.0.1:1", PID: 4242, Version: testVersion, Digest: testDigest}
	if _, err := cluster.Join(context.Background(), jc, me); err != nil {
		t.Fatal(err)
	}
	body := openWatch(t, driver, 1)
	start := time.Now()
	body.Close() // the worker dies
	s := awaitStart(t, done)
	var lost cluster.Lost
	if !errors.As(s.err, &lost) || lost.Member.Rank != 1 || lost.Member.PID != 4242 {
		t.Fatalf("Start after rank 1 died: %v, want its cluster.Lost", s.err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("Start took %v to report the dead worker", d)
	}
}

// openWatch opens rank's watch stream on the driver's rendezvous and
// returns it once the driver has answered its first line.
func openWatch(t *testing.T, driver string, rank int) io.ReadCloser {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v1/watch?rank=%d", driver, rank), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != http.StatusOK || err != nil || line != "ok\n" {
		resp.Body.Close()
		t.Fatalf("watch: %s, first line %q, %v", resp.Status, line, err)
	}
	return resp.Body
}

// TestServe_DriverGone drops the driver's rendezvous server without its
// "bye" (the driver died): every worker's Serve returns an error wrapping
// cluster.ErrDriverGone instead of serving on.
func TestServe_DriverGone(t *testing.T) {
	plan := slurmPlan(t, launch.DefaultConfig(), launch.Needs{})
	s, workers := startRun(t, plan)
	s.placed.server.Close() // no graceful shutdown: the watches break
	for rank, w := range workers {
		if err := w.wait(t, 15*time.Second); !errors.Is(err, cluster.ErrDriverGone) {
			t.Errorf("worker rank %d after the driver vanished: %v, want %v", rank, err, cluster.ErrDriverGone)
		}
	}
}
