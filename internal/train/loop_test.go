package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestRun_Order records what Run calls, in which order, on a fresh run
// that evaluates every second step and stops with an error at step 3.
func TestRun_Order(t *testing.T) {
	var calls []string
	step := 0
	stop := errors.New("stop")
	l := Loop{
		Fresh:   true,
		Done:    func() bool { return step >= 5 },
		Step:    func(context.Context) error { step++; calls = append(calls, fmt.Sprint("step", step)); return nil },
		Eval:    func(context.Context) error { calls = append(calls, fmt.Sprint("eval", step)); return nil },
		EvalDue: func() bool { return step%2 == 0 },
		End: func(context.Context) error {
			calls = append(calls, fmt.Sprint("end", step))
			if step == 3 {
				return stop
			}
			return nil
		},
		Finish: func(context.Context) error { calls = append(calls, "finish"); return nil },
		Close:  func() error { calls = append(calls, "close"); return nil },
	}
	if err := Run(context.Background(), l); err != stop {
		t.Fatalf("Run: %v, want the End error as it is", err)
	}
	want := []string{"eval0", "step1", "end1", "step2", "eval2", "end2", "step3", "end3", "close"}
	if !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}

	// Resumed (not fresh), without evaluation, to the end.
	calls, step = nil, 3
	l.Fresh, l.Eval, l.End = false, nil, func(context.Context) error { return nil }
	if err := Run(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if want := []string{"step4", "step5", "finish"}; !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
}

func TestCheckpointRule_After(t *testing.T) {
	var saved []int
	step := 0
	save := func() error { saved = append(saved, step); return nil }
	rule := CheckpointRule{SaveSteps: 3, StopAtStep: 7, Dir: "/ck", Trainer: "ppo", Unit: "iteration"}
	ctx := context.Background()
	var err error
	for step = 1; step <= 7 && err == nil; step++ {
		err = rule.After(ctx, step, save)
	}
	if !errors.Is(err, ErrStopped) || step != 8 || err.Error() != "ppo: iteration 7: stopped at the requested step (checkpoint saved in /ck)" {
		t.Fatalf("after step %d: %v", step-1, err)
	}
	if !slices.Equal(saved, []int{3, 6, 7}) {
		t.Fatalf("saved at %v, want 3, 6 and the stop at 7", saved)
	}

	saved = nil
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	rule = CheckpointRule{SaveSteps: -1, Trainer: "train", Unit: "step"}
	step = 2
	err = rule.After(cctx, step, save)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "train: interrupted after step 2 (checkpoint saved)") {
		t.Fatalf("cancelled: %v", err)
	}
	if !slices.Equal(saved, []int{2}) {
		t.Fatalf("a cancelled run saved at %v, want at 2", saved)
	}
	if err := rule.After(ctx, 4, save); err != nil || len(saved) != 1 {
		t.Fatalf("save_steps −1 saved at %v (%v)", saved, err)
	}

	bad := errors.New("disk full")
	rule.StopAtStep = 1
	if err := rule.After(ctx, 1, func() error { return bad }); err != bad {
		t.Fatalf("save error: %v, want it as it is", err)
	}
}

func TestOutputs(t *testing.T) {
	dir := t.TempDir()
	var console bytes.Buffer
	o, err := OpenOutputs(claim(t, Claim{Dir: dir}), "unit", &console, false)
	if err != nil {
		t.Fatal(err)
	}
	o.Log.Info("before the bar")
	if err := o.Start("", false, 0, 2); err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 2; step++ {
		o.Progress(step, 10, "loss 1")
		if err := o.LogTrain(step, map[string]float64{"loss": 3 - float64(step)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.LogEval(2, map[string]float64{"loss": 1.5}); err != nil {
		t.Fatal(err)
	}
	var gotRows int
	var gotPlots []string
	err = o.Finish([]string{"loss"}, func(rows []Row, plots []string) error {
		gotRows, gotPlots = len(rows), plots
		return os.WriteFile(filepath.Join(dir, "report.txt"), []byte("ok"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if gotRows != 3 || !slices.Equal(gotPlots, []string{"loss.png"}) || len(o.Rows()) != 3 {
		t.Fatalf("report hook saw %d rows and plots %v; %d rows after close", gotRows, gotPlots, len(o.Rows()))
	}
	for _, name := range []string{"train.log", MetricsFile, "loss.png", "report.txt", "tensorboard"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	if out := console.String(); !strings.Contains(out, "before the bar") || !strings.Contains(out, "trainer=unit") || !strings.Contains(out, "2/2") {
		t.Errorf("console:\n%s", out)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the lock outlived Close: %v", err)
	}

	// Resuming at step 1 keeps the rows up to it.
	o, err = OpenOutputs(claim(t, Claim{Dir: dir, Resume: true}), "unit", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Start(filepath.Join(dir, "tb2"), true, 1, 2); err != nil {
		t.Fatal(err)
	}
	if rows := o.Rows(); len(rows) != 1 || rows[0].Step != 1 || !Logged(rows, "loss") || Logged(rows, "acc") {
		t.Fatalf("rows after resuming at 1: %+v", rows)
	}
}

// sessionStep is a trainer step whose gradients come from the session's
// checkpointed generator, so a resumed run must repeat a straight one.
func sessionStep(s *Session) func(context.Context) error {
	return func(context.Context) error {
		s.NextBatch()
		r := s.Rand()
		for _, p := range s.opts.Params {
			p.Tensor.Grad = make([]float32, p.Tensor.Numel())
			for i := range p.Tensor.Grad {
				p.Tensor.Grad[i] = float32(r.NormFloat64() * 0.01)
			}
		}
		up, err := s.Update(context.Background(), 1)
		if err != nil {
			return err
		}
		return s.LogTrain(map[string]float64{"loss": 1, "lr": up.LR}, 1, "loss 1")
	}
}

// TestSessionRun_StopAndResume: a run stopped at StopAtStep checkpoints;
// resumed, it ends bit for bit where an uninterrupted run ends, with one
// metrics log.
func TestSessionRun_StopAndResume(t *testing.T) {
	run := func(c Config, evals *int) (*Session, error) {
		m := stories(t)
		s := newSession(t, c, m, 8)
		eval := func() map[string]float64 { *evals++; return map[string]float64{"loss": 1} }
		return s, Run(context.Background(), s.Loop(sessionStep(s), eval))
	}
	c := testConfig(t)
	c.MaxSteps, c.Eval.Steps = 6, 2
	var straightEvals int
	straight, err := run(c, &straightEvals)
	if err != nil {
		t.Fatal(err)
	}

	c = testConfig(t)
	c.MaxSteps, c.Eval.Steps, c.StopAtStep = 6, 2, 3
	var evals int
	stopped, err := run(c, &evals)
	if !errors.Is(err, ErrStopped) || stopped.Step() != 3 {
		t.Fatalf("stopped run: %v at step %d", err, stopped.Step())
	}
	if got, _ := LatestCheckpoint(c.Ckpt.Path); filepath.Base(got) != "global_step3" {
		t.Fatalf("stop checkpoint %q", got)
	}
	if evals != 2 { // before step 1 and after step 2
		t.Fatalf("%d evaluations before the stop, want 2", evals)
	}
	c.StopAtStep, c.Ckpt.LoadEnable = 0, true
	resumed, err := run(c, &evals)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Step() != 6 || evals != straightEvals {
		t.Fatalf("resumed run ended at step %d after %d evaluations; straight: %d", resumed.Step(), evals, straightEvals)
	}
	if !reflect.DeepEqual(snapshot(resumed.opts.Params), snapshot(straight.opts.Params)) ||
		!reflect.DeepEqual(resumed.opt.State(), straight.opt.State()) {
		t.Fatal("the resumed run's weights or optimizer differ from the straight run's")
	}
	key := func(rows []Row) []string {
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprint(r.Split, r.Step, r.Values["lr"]))
		}
		return out
	}
	if a, b := key(resumed.Metrics()), key(straight.Metrics()); !slices.Equal(a, b) {
		t.Fatalf("metrics rows\n resumed  %v\n straight %v", a, b)
	}
}
