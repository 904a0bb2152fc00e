package zero

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

func saveTo(dir string) func(ctx context.Context, e *Engine) error {
	return func(ctx context.Context, e *Engine) error { return e.Save(ctx, dir) }
}

func loadFrom(dir string) func(ctx context.Context, e *Engine) error {
	return func(ctx context.Context, e *Engine) error { return e.Load(ctx, dir) }
}

// TestCheckpointReshard saves after 3 of 5 steps at 2 ranks, stage 2, and
// resumes at other rank counts and stages: the last 2 steps equal the
// uninterrupted run at the new shape within 1e-6 relative, and bit for
// bit when the rank count is the same (stages are bit-identical).
func TestCheckpointReshard(t *testing.T) {
	base := tinyLlama(t)
	dir := filepath.Join(t.TempDir(), "ckpt")
	saved := train(t, base, run{stage: 2, ranks: 2, micro: 4, steps: 3, rows: 2, tokens: 8, maxNorm: 0.76}, hooks{save: saveTo(dir)})
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 3 { // zero.json and 2 shards
		t.Fatalf("checkpoint files %v", files)
	}
	for _, tc := range []struct{ ranks, stage int }{{4, 3}, {1, 0}, {2, 0}, {2, 3}, {4, 1}} {
		rn := run{stage: tc.stage, ranks: tc.ranks, micro: 8 / tc.ranks, steps: 5, rows: 2, tokens: 8, maxNorm: 0.76}
		want := train(t, base, rn, hooks{})
		// Loading with no step to run gives back the saved weights.
		rn.skipStep = 6
		sameBits(t, fmt.Sprintf("N=%d stage %d: loaded weights", tc.ranks, tc.stage), train(t, base, rn, hooks{load: loadFrom(dir)})[0].weights, saved[0].weights)
		rn.skipStep = 4
		got := train(t, base, rn, hooks{load: loadFrom(dir)})
		for r := range got {
			sameBits(t, "rank vs rank 0", got[r].weights, got[0].weights)
		}
		if tc.ranks == 2 {
			sameBits(t, fmt.Sprintf("resumed at N=2 stage %d", tc.stage), got[0].weights, want[0].weights)
			continue
		}
		rel, abs := closeTo(t, fmt.Sprintf("resumed at N=%d stage %d", tc.ranks, tc.stage), got[0].weights, want[0].weights, 1e-6)
		t.Logf("saved at N=2 stage 2, resumed at N=%d stage %d: worst tensor %.2g relative, max element diff %.2g vs the uninterrupted run", tc.ranks, tc.stage, rel, abs)
	}
}

// TestCheckpointStage0 writes one shard from rank 0 (the state is
// replicated) and resumes from it at stage 3 with 4 ranks.
func TestCheckpointStage0(t *testing.T) {
	base := tinyLlama(t)
	dir := filepath.Join(t.TempDir(), "ckpt")
	train(t, base, run{stage: 0, ranks: 2, micro: 2, steps: 2, rows: 2, tokens: 8}, hooks{save: saveTo(dir)})
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if want := []string{ShardFile(0, 1), MetaFile}; !slices.Equal(names(files), want) {
		t.Fatalf("stage 0 checkpoint holds %v, want %v", names(files), want)
	}
	want := train(t, base, run{stage: 0, ranks: 2, micro: 2, steps: 3, rows: 2, tokens: 8}, hooks{})
	got := train(t, base, run{stage: 3, ranks: 4, micro: 1, steps: 3, skipStep: 3, rows: 2, tokens: 8}, hooks{load: loadFrom(dir)})
	closeTo(t, "stage 0 at 2 ranks resumed at stage 3 at 4 ranks", got[0].weights, want[0].weights, 1e-6)
}

func names(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Base(p))
	}
	slices.Sort(out)
	return out
}

// TestCheckpointErrors: a checkpoint of another shape, a damaged shard or
// a missing folder fails Load on every rank with an error naming the
// tensor or the file, and leaves the engine as it was.
func TestCheckpointErrors(t *testing.T) {
	base := tinyLlama(t)
	root := t.TempDir()
	good := filepath.Join(root, "good")
	train(t, base, run{stage: 1, ranks: 2, micro: 1, steps: 1, rows: 1, tokens: 8}, hooks{save: saveTo(good)})
	wider, err := llama.New(llama.Config{VocabSize: 53, Hidden: 24, Intermediate: 48, Layers: 3, Heads: 4, KVHeads: 2, RMSNormEps: 1e-5, AttentionBias: true})
	if err != nil {
		t.Fatal(err)
	}
	wider.Init(tensor.NewRand(5))
	other := filepath.Join(root, "other")
	train(t, wider, run{stage: 3, ranks: 2, micro: 1, steps: 1, rows: 1, tokens: 8}, hooks{save: saveTo(other)})
	short, err := llama.New(llama.Config{VocabSize: 53, Hidden: 24, Intermediate: 40, Layers: 2, Heads: 4, KVHeads: 2, RMSNormEps: 1e-5, AttentionBias: true})
	if err != nil {
		t.Fatal(err)
	}
	shallow := filepath.Join(root, "shallow")
	train(t, short, run{stage: 0, ranks: 1, micro: 1, steps: 1, rows: 1, tokens: 8}, hooks{save: saveTo(shallow)})
	damaged := filepath.Join(root, "damaged")
	if err := os.CopyFS(damaged, os.DirFS(good)); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(damaged, ShardFile(1, 2))
	fi, err := os.Stat(shard)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(shard, fi.Size()-100); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir   string
		stage int
		want  string
	}{
		{other, 3, "tensor model.layers.0.mlp.gate_proj.weight has shape [48 24] in the checkpoint, [40 24] in the model"},
		{other, 0, "tensor model.layers.0.mlp.down_proj.weight has shape [24 48] in the checkpoint, [24 40] in the model"},
		{shallow, 2, "the model's tensor model.layers.2.input_layernorm.weight [24] is not in the checkpoint"},
		{damaged, 3, ShardFile(1, 2)},
		{damaged, 1, ShardFile(1, 2)},
		{filepath.Join(root, "missing"), 2, MetaFile},
	} {
		for _, ranks := range []int{1, 2} {
			_, errs := trainErrs(t, base, run{stage: tc.stage, ranks: ranks, steps: 0}, hooks{load: func(ctx context.Context, e *Engine) error {
				release, err := e.Gather(ctx)
				if err != nil {
					return err
				}
				w := weights(e.Params())
				release()
				lerr := e.Load(ctx, tc.dir)
				if release, err = e.Gather(ctx); err != nil {
					return err
				}
				if !mapsEqualBits(w, weights(e.Params())) {
					lerr = errors.Join(lerr, errors.New("a failed load changed the weights"))
				}
				release()
				return lerr
			}})
			for r, err := range errs {
				// A rank that reads none of a damaged file names the rank that did.
				if err != nil && tc.dir == damaged && strings.Contains(err.Error(), "failed on rank(s) [1]") {
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "changed the weights") {
					t.Errorf("load %s at stage %d, %d ranks: rank %d: %v; want an error naming %q", filepath.Base(tc.dir), tc.stage, ranks, r, err, tc.want)
				}
			}
			if ranks == 2 {
				t.Logf("load %s at stage %d: %v", filepath.Base(tc.dir), tc.stage, errs[0])
			}
		}
	}
}

func mapsEqualBits(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slicesEqualBits(v, b[k]) {
			return false
		}
	}
	return true
}

// TestSaveFailure: the group failing while a checkpoint is written
// (after the shard files, before the rename) fails Save on every rank and leaves the
// checkpoint already in the folder whole and loadable; no temporary
// folder is left behind.
func TestSaveFailure(t *testing.T) {
	base := tinyLlama(t)
	root := t.TempDir()
	dir := filepath.Join(root, "ckpt")
	first := train(t, base, run{stage: 3, ranks: 2, micro: 1, steps: 1, rows: 1, tokens: 8}, hooks{save: saveTo(dir)})
	_, errs := trainErrs(t, base, run{stage: 3, ranks: 2, micro: 1, steps: 2, rows: 1, tokens: 8}, hooks{
		wrap: func(c collective.Comm) collective.Comm {
			return &faulty{Comm: c, op: "AllReduceF64", n: 2} // Save's second agreement: every shard written
		},
		save: func(ctx context.Context, e *Engine) error {
			if f, ok := e.comm.(*faulty); ok {
				f.armed = true
			}
			return e.Save(ctx, dir)
		},
	})
	for r, err := range errs {
		if err == nil || !errors.Is(err, collective.ErrClosed) || !strings.Contains(err.Error(), "save") {
			t.Errorf("rank %d: %v, want a failed save", r, err)
		}
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 || entries[0].Name() != "ckpt" {
		t.Fatalf("after the failed save the folder holds %v", entries)
	}
	got := train(t, base, run{stage: 1, ranks: 2, steps: 0}, hooks{load: loadFrom(dir)})
	sameBits(t, "the checkpoint after a failed save", got[0].weights, first[0].weights)
}

var _ model.CausalLM = plain{}
