package generate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// TestEngine_LoadWeights checks the documented update semantics: a request
// in flight finishes on the old weights (and says so), the call waits for
// it, a request queued during the wait runs on the new weights, and the
// weights are copied, not aliased.
func TestEngine_LoadWeights(t *testing.T) {
	oldM, newM := tinyGPT2(t, 10), tinyGPT2(t, 11)
	engineM := tinyGPT2(t, 10) // the engine's own copy, starting as oldM
	long := Request{Prompt: randomPrompt(1, 5, 64), Params: SamplingParams{N: 2, Temperature: 1, Seed: 5, MaxNewTokens: 80, IgnoreEOS: true}}
	short := Request{Prompt: randomPrompt(2, 4, 64), Params: SamplingParams{Temperature: 1, Seed: 6, MaxNewTokens: 10}}
	wantOld := naiveResults(t, oldM, nil, nil, []Request{long})
	wantNew := naiveResults(t, newM, nil, nil, []Request{short})

	e := newEngine(t, engineM, nil, Config{})
	ctx := context.Background()
	events, err := e.Stream(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	<-events // the long request is admitted and running

	loaded := make(chan error, 1)
	go func() { loaded <- e.LoadWeights(ctx, Weights{Params: newM.Params()}) }()
	// Let the update reach the scheduler before the next request. Should
	// the long request finish first on a fast machine, the update applies
	// at once and the queued request still runs on version 1; 200 ms (not
	// 20) keeps a loaded machine from submitting it before the update.
	time.Sleep(200 * time.Millisecond)
	queued := make(chan []Result, 1)
	go func() { // submitted while the update waits
		res, err := e.Generate(ctx, []Request{short})
		if err != nil {
			t.Error(err)
		}
		queued <- res
	}()

	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	// Had the weights changed mid-request, the rest of its tokens would
	// come from the new model and differ from the old model's twin.
	var done []*Completion
	for ev := range events {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if ev.Done {
			done = append(done, ev.Completion)
		}
	}
	if len(done) != 2 {
		t.Fatalf("%d samples finished, want 2", len(done))
	}
	for _, c := range done {
		if c.WeightVersion != 0 {
			t.Fatalf("in-flight sample %d reports version %d, want 0", c.Index, c.WeightVersion)
		}
		sameCompletion(t, "in-flight on old weights", *c, wantOld[0].Completions[c.Index], 1e-5)
	}
	q := <-queued
	if v := q[0].Completions[0].WeightVersion; v != 1 {
		t.Fatalf("queued request ran on version %d, want 1", v)
	}
	sameResults(t, "queued on new weights", q, wantNew, 1e-5)
	if e.Stats().WeightVersion != 1 {
		t.Fatalf("Stats version %d, want 1", e.Stats().WeightVersion)
	}
	// Copied, not aliased: changing the trainer's tensor later must not
	// change the engine.
	newM.WTE.Data[0] += 1
	if engineM.WTE.Data[0] == newM.WTE.Data[0] {
		t.Fatal("the engine shares the trainer's tensors")
	}
	// An explicit version tags later completions.
	if err := e.LoadWeights(ctx, Weights{Params: oldM.Params(), Version: 42}); err != nil {
		t.Fatal(err)
	}
	if v := generate(t, e, short)[0].Completions[0].WeightVersion; v != 42 {
		t.Fatalf("version %d, want 42", v)
	}
}

// TestEngine_LoadWeights_Errors rejects parameter lists that do not match
// the engine's model.
func TestEngine_LoadWeights_Errors(t *testing.T) {
	m := tinyGPT2(t, 1)
	e := newEngine(t, m, nil, Config{})
	good := tinyGPT2(t, 2).Params()
	cases := map[string]struct {
		ps   nn.Params
		want string
	}{
		"missing":     {good[1:], "missing"},
		"wrong_shape": {append(nn.Params{{Name: good[0].Name, Tensor: tensor.New(3, 3)}}, good[1:]...), "shape"},
		"extra":       {append(append(nn.Params(nil), good...), nn.Param{Name: "lm_head.weight", Tensor: tensor.New(1)}), "not in the engine's model"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := e.LoadWeights(context.Background(), Weights{Params: c.ps})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
	t.Run("canceled_context_drops_update", func(t *testing.T) {
		events, err := e.Stream(context.Background(), Request{Prompt: []int32{1}, Params: SamplingParams{N: 4, MaxNewTokens: 90}})
		if err != nil {
			t.Fatal(err)
		}
		<-events
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := e.LoadWeights(ctx, Weights{Params: good}); !errors.Is(err, context.Canceled) {
			t.Fatalf("LoadWeights with a canceled context: %v", err)
		}
		for range events {
		}
		if v := e.Stats().WeightVersion; v != 0 {
			t.Fatalf("a dropped update was applied: version %d", v)
		}
	})
}
