package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// stories loads a fresh embedded stories260K.
func stories(t *testing.T) *load.Loaded {
	t.Helper()
	m, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testConfig(t *testing.T) Config {
	c := DefaultConfig()
	out := t.TempDir()
	c.MicroBatchSize, c.BatchSize, c.MaxEpochs = 2, 4, 1
	c.MaxNonFinite = 3
	c.Optim.WarmupRatio, c.Optim.LR = 0, 1e-3
	c.Ckpt.OutputDir, c.Ckpt.Path = out, filepath.Join(out, "ckpt")
	return c
}

func newSession(t *testing.T, c Config, m *load.Loaded, n int) *Session {
	t.Helper()
	s, err := NewSession(c, Options{Name: "test", Params: m.Params(), NumSamples: n,
		Model: Model{Module: m.Module(), Config: m.Config}, TrainerConfig: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// setGrads gives every parameter the gradient v.
func setGrads(ps nn.Params, v float32) {
	for _, p := range ps {
		p.Tensor.Grad = make([]float32, p.Tensor.Numel())
		for i := range p.Tensor.Grad {
			p.Tensor.Grad[i] = v
		}
	}
}

func snapshot(ps nn.Params) [][]float32 {
	var out [][]float32
	for _, p := range ps {
		out = append(out, slices.Clone(p.Tensor.Data))
	}
	return out
}

func TestSession_Update_NonFinite(t *testing.T) {
	m := stories(t)
	ps := m.Params()
	c := testConfig(t)
	c.MaxSteps = 10
	s := newSession(t, c, m, 8)
	cases := []struct {
		loss    float64
		grad    float32
		skipped bool
		run     int
	}{
		{1, 0.01, false, 0},
		{math.NaN(), 0.01, true, 1},
		{1, float32(math.Inf(1)), true, 2},
		{1, 0.01, false, 0}, // a good step resets the run
		{math.Inf(-1), 0.01, true, 1},
	}
	for i, cs := range cases {
		before := snapshot(ps)
		setGrads(ps, cs.grad)
		u, err := s.Update(context.Background(), cs.loss)
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		run, _ := s.NonFinite()
		changed := !slices.Equal(before[1], ps[1].Tensor.Data)
		if u.Skipped != cs.skipped || run != cs.run || changed == cs.skipped {
			t.Fatalf("step %d: skipped %v (want %v), run %d (want %d), weights changed %v", i+1, u.Skipped, cs.skipped, run, cs.run, changed)
		}
		if ps[1].Tensor.Grad[0] != 0 {
			t.Fatalf("step %d: gradients not zeroed", i+1)
		}
	}
	if _, total := s.NonFinite(); total != 3 || s.opt.Steps() != 2 || s.Step() != 5 {
		t.Fatalf("total %d non-finite, %d AdamW steps, step %d", total, s.opt.Steps(), s.Step())
	}
	for i := 0; i < 2; i++ {
		setGrads(ps, 0.01)
		if _, err := s.Update(context.Background(), math.NaN()); i == 1 && !errors.Is(err, ErrNonFinite) {
			t.Fatalf("third non-finite step in a row: %v", err)
		}
	}
}

func TestSession_NextBatch(t *testing.T) {
	c := testConfig(t)
	c.MicroBatchSize, c.BatchSize = 2, 6
	s := newSession(t, c, stories(t), 13)
	if s.StepsPerEpoch() != 2 || s.Total() != 2 {
		t.Fatalf("steps per epoch %d, total %d", s.StepsPerEpoch(), s.Total())
	}
	micro := s.NextBatch()
	if len(micro) != 3 || len(micro[0]) != 2 {
		t.Fatalf("micro-batches %v", micro)
	}
	c.BatchSize = 20
	if _, err := NewSession(c, Options{Params: stories(t).Params(), NumSamples: 13}); err == nil {
		t.Fatal("a dataset smaller than one batch was accepted")
	}
}

func TestCheckpoint_SaveLoad(t *testing.T) {
	m := stories(t)
	ps := m.Params()
	c := testConfig(t)
	c.MaxSteps, c.Ckpt.MaxNum = 10, 2
	s := newSession(t, c, m, 8)
	for step := 1; step <= 3; step++ {
		setGrads(ps, 0.01*float32(step))
		if _, err := s.Update(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		s.sampler.Next(4)
		if err := s.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(c.Ckpt.Path, "global_step*"))
	slices.Sort(dirs)
	if len(dirs) != 2 || filepath.Base(dirs[0]) != "global_step2" {
		t.Fatalf("kept %v, want global_step2 and global_step3", dirs)
	}
	latest, err := LatestCheckpoint(c.Ckpt.Path)
	if err != nil || filepath.Base(latest) != "global_step3" {
		t.Fatalf("latest %q, %v", latest, err)
	}
	for _, f := range []string{"config.json", safetensors.SingleName, OptimizerFile, StateFile} {
		if _, err := os.Stat(filepath.Join(latest, f)); err != nil {
			t.Errorf("checkpoint file %s: %v", f, err)
		}
	}
	// The weights folder loads as a model on its own.
	if _, err := load.Load(latest, load.Options{}); err != nil {
		t.Fatalf("checkpoint is not a loadable HF folder: %v", err)
	}

	t.Run("Resume", func(t *testing.T) {
		m2 := stories(t)
		c2 := c
		c2.Ckpt.LoadEnable = true
		s.Close() // one run at a time in a folder (its lock)
		s2 := newSession(t, c2, m2, 8)
		if s2.Step() != 3 || s2.sampler.Cursor() != s.sampler.Cursor() || s2.opt.Steps() != 3 {
			t.Fatalf("resumed at step %d cursor %+v (AdamW %d), want 3 %+v", s2.Step(), s2.sampler.Cursor(), s2.opt.Steps(), s.sampler.Cursor())
		}
		for i, p := range m2.Params() {
			if !slices.Equal(p.Tensor.Data, ps[i].Tensor.Data) {
				t.Fatalf("%s not restored", p.Name)
			}
		}
		a, b := s.opt.State(), s2.opt.State()
		for i := range a.M {
			if !slices.Equal(a.M[i], b.M[i]) || !slices.Equal(a.V[i], b.V[i]) {
				t.Fatalf("optimizer moments of %s not restored", a.Names[i])
			}
		}
		if x, y := s.Rand().Uint64(), s2.Rand().Uint64(); x != y {
			t.Fatalf("rng not restored: %d vs %d", x, y)
		}
	})

	t.Run("CrashMidSave", func(t *testing.T) {
		// A save killed before its rename leaves a temporary folder behind
		// (here: a half-written copy of step 4); loading ignores it.
		half := filepath.Join(c.Ckpt.Path, ".global_step4.tmp-123")
		if err := os.MkdirAll(half, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(half, "config.json"), []byte("{"), 0o644)
		// A save killed after the rename but before "latest" moved.
		full := filepath.Join(c.Ckpt.Path, "global_step5")
		os.MkdirAll(full, 0o755)
		if got, _ := LatestCheckpoint(c.Ckpt.Path); filepath.Base(got) != "global_step3" {
			t.Fatalf("latest %q, want global_step3", got)
		}
		// Without "latest", the highest complete step wins.
		os.Remove(filepath.Join(c.Ckpt.Path, LatestFile))
		if got, _ := LatestCheckpoint(c.Ckpt.Path); filepath.Base(got) != "global_step3" {
			t.Fatalf("latest without the pointer %q, want global_step3", got)
		}
		// The next save clears the leftovers.
		setGrads(ps, 0.01)
		s.Update(context.Background(), 1)
		if err := s.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(half); !os.IsNotExist(err) {
			t.Fatalf("temporary folder of an interrupted save survived: %v", err)
		}
	})
}

func TestSession_EndStep(t *testing.T) {
	c := testConfig(t)
	c.MaxSteps, c.StopAtStep = 5, 2
	s := newSession(t, c, stories(t), 8)
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		s.Update(context.Background(), 1)
		err := s.EndStep(ctx)
		if i == 1 && err != nil || i == 2 && !errors.Is(err, ErrStopped) {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if got, _ := LatestCheckpoint(c.Ckpt.Path); filepath.Base(got) != "global_step2" {
		t.Fatalf("stop did not checkpoint: %q", got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	s.Update(context.Background(), 1)
	if err := s.EndStep(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if got, _ := LatestCheckpoint(c.Ckpt.Path); filepath.Base(got) != "global_step3" {
		t.Fatalf("interrupt did not checkpoint: %q", got)
	}
}

func TestMetrics_ResumeTruncates(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenMetrics(dir, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 5; step++ {
		m.Log(Row{Step: step, Split: "train", Values: map[string]float64{"loss": float64(10 - step), "bad": math.NaN()}})
	}
	m.Log(Row{Step: 4, Split: "eval", Values: map[string]float64{"loss": 3}})
	m.Close()
	m, err = OpenMetrics(dir, filepath.Join(dir, "tb"), 3)
	if err != nil {
		t.Fatal(err)
	}
	m.Log(Row{Step: 4, Split: "train", Values: map[string]float64{"loss": 42}})
	m.Close()
	rows, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var steps []int
	for _, r := range rows {
		steps = append(steps, r.Step)
	}
	if !slices.Equal(steps, []int{1, 2, 3, 4}) || rows[3].Values["loss"] != 42 || !math.IsNaN(rows[0].Values["bad"]) {
		t.Fatalf("rows after resume at 3: %+v", rows)
	}
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, true, 10, 0)
	now := p.start
	p.now = func() time.Time { now = now.Add(time.Second); return now }
	p.Update(1, 1000, "loss 2.5")
	p.Write([]byte("a log line\n"))
	p.Update(2, 1000, "loss 2.4")
	p.Finish()
	out := buf.String()
	for _, want := range []string{" 1/10 [##", "loss 2.5", "1.0k tok/s", "ETA 9s", "a log line\n", " 2/10"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%q", want, out)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.BatchSize = 7 },
		func(c *Config) { c.MaxEpochs, c.MaxSteps = 0, 0 },
		func(c *Config) { c.Optim.Scheduler = "linear" },
		func(c *Config) { c.Eval.Steps = 0 },
		func(c *Config) { c.Ckpt.SaveSteps = 0 },
		func(c *Config) { c.MaxNonFinite = 0 },
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if c.Validate() == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}
