package zero

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// Files of a checkpoint folder (docs/ZERO.md).
const (
	// MetaFile describes the checkpoint: stage, ranks, step counts and
	// the bucket layout (parameter names, shapes and offsets). It is
	// written last.
	MetaFile = "zero.json"
	// metaFormat is MetaFile's layout version.
	metaFormat = 1
	// maxListed is how many tensor differences a layout error lists.
	maxListed = 4
)

// ShardFile is the name of shard s of n: the slices
// Partition(len, n)[s] of every bucket's parameters ("<bucket>/param")
// and AdamW moments ("<bucket>/exp_avg", "<bucket>/exp_avg_sq").
func ShardFile(s, n int) string { return fmt.Sprintf("zero-shard-%05d-of-%05d.safetensors", s, n) }

// meta is MetaFile's content.
type meta struct {
	Format int `json:"format"`
	Stage  int `json:"stage"`  // the stage that saved it (any stage loads it)
	Ranks  int `json:"ranks"`  // the ranks that saved it
	Shards int `json:"shards"` // shard files: Ranks, or 1 for stage 0 (rank 0 writes the whole state)
	// AdamSteps is AdamW's update count t; Steps counts Step calls,
	// skipped steps included.
	AdamSteps int          `json:"adam_steps"`
	Steps     int          `json:"steps"`
	Buckets   []bucketMeta `json:"buckets"`
}

type bucketMeta struct {
	Name   string      `json:"name"`
	Len    int         `json:"len"`
	Params []paramMeta `json:"params"`
}

type paramMeta struct {
	Name   string `json:"name"`
	Shape  []int  `json:"shape"`
	Offset int    `json:"offset"`
}

// Save writes this rank's share of the training state into the folder
// dir, which every rank must name alike on a file system they all reach;
// every rank calls it, between steps. Stages 1–3 write one shard file per
// rank (its slice of every bucket's parameters and moments), stage 0 one
// file from rank 0 (the state is replicated). The files are written into
// a temporary folder beside dir, renamed to dir by rank 0 once every rank
// has written its file, and only then is an older dir removed: a save
// that fails on any rank leaves what dir held untouched, and every rank
// returns an error.
func (e *Engine) Save(ctx context.Context, dir string) error {
	switch {
	case e.err != nil:
		return e.err
	case e.inMicro:
		return e.errorf("save: a micro-batch is open")
	}
	tmp := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".zero-tmp")
	renamed := false
	if e.rank == 0 {
		defer func() {
			if !renamed {
				_ = os.RemoveAll(tmp)
			}
		}()
	}
	var err error
	if e.rank == 0 {
		err = freshDir(tmp)
	}
	if err := e.agree(ctx, "save: create "+tmp, err); err != nil {
		return err
	}
	m := e.meta()
	if e.rank < m.Shards {
		err = e.writeShard(filepath.Join(tmp, ShardFile(e.rank, m.Shards)), m.Shards)
	}
	if err := e.agree(ctx, "save: write "+ShardFile(e.rank, m.Shards), err); err != nil {
		return err
	}
	if e.rank == 0 {
		err = finish(tmp, dir, m)
		renamed = err == nil
	}
	return e.agree(ctx, "save: rename into "+dir, err)
}

// meta describes the state this engine saves.
func (e *Engine) meta() meta {
	m := meta{Format: metaFormat, Stage: e.cfg.Stage, Ranks: e.size, Shards: e.size, AdamSteps: e.adamStep, Steps: e.steps}
	if e.cfg.Stage == 0 {
		m.Shards = 1
	}
	for _, b := range e.buckets {
		bm := bucketMeta{Name: b.name, Len: b.n}
		for _, s := range b.slots {
			bm.Params = append(bm.Params, paramMeta{Name: s.name, Shape: s.shape, Offset: s.off})
		}
		m.Buckets = append(m.Buckets, bm)
	}
	return m
}

// writeShard writes this rank's shard file of a checkpoint of n shards.
func (e *Engine) writeShard(path string, n int) error {
	var ts []safetensors.Tensor
	for _, b := range e.buckets {
		r := collective.Partition(b.n, n)[e.rank]
		if r.Len() == 0 {
			continue
		}
		w := b.wShard
		if w == nil {
			w = b.w[r.Lo:r.Hi]
		}
		for _, x := range []struct {
			kind string
			data []float32
		}{{"param", w}, {"exp_avg", b.m}, {"exp_avg_sq", b.v}} {
			ts = append(ts, safetensors.Tensor{Name: b.name + "/" + x.kind, Shape: []int{r.Len()}, Data: x.data})
		}
	}
	md := map[string]string{"format": strconv.Itoa(metaFormat), "shard": strconv.Itoa(e.rank), "shards": strconv.Itoa(n)}
	return safetensors.Write(path, ts, safetensors.F32, md)
}

// freshDir makes dir empty (removing a leftover of a failed save).
func freshDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// finish writes the metadata into the complete temporary folder, syncs
// it and puts it in dir's place.
func finish(tmp, dir string, m meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSync(filepath.Join(tmp, MetaFile), b); err != nil {
		return err
	}
	syncDir(tmp)
	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		_ = os.RemoveAll(old)
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return err
	}
	syncDir(filepath.Dir(dir))
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// writeSync writes a file, syncs and closes it.
func writeSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir flushes a folder's entries (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// agree tells every rank whether any rank failed a phase: it returns this
// rank's err (wrapped with what), an error naming the failed ranks when
// another rank failed, or the collective's own failure.
func (e *Engine) agree(ctx context.Context, what string, err error) error {
	failed, cerr := collective.Agree(ctx, e.comm, err)
	switch {
	case cerr != nil:
		return e.wrap(fmt.Errorf("%s: %w", what, errors.Join(err, cerr)))
	case err != nil:
		return e.wrap(fmt.Errorf("%s: %w", what, err))
	case len(failed) > 0:
		return e.wrap(fmt.Errorf("%s: failed on rank(s) %v", what, failed))
	}
	return nil
}

// Load restores the training state saved in dir by Save, at any number of
// ranks and any stage: each rank reads, from the shard files that overlap
// them, the slices its stage keeps (its shards, or whole buckets for what
// is replicated). The checkpoint's parameters must have the model's names
// and shapes; a difference is an error naming the tensor and both shapes.
// Every rank calls it, between steps. It reads everything before it
// changes anything, and changes nothing unless every rank read its part:
// after an error the engine is as it was (a resume can try an older
// checkpoint).
func (e *Engine) Load(ctx context.Context, dir string) error {
	switch {
	case e.err != nil:
		return e.err
	case e.inMicro || e.gathered != nil:
		return e.errorf("load: a micro-batch is open or the parameters are gathered")
	}
	m, staged, err := e.load(dir)
	if err := e.agree(ctx, "load "+dir, err); err != nil {
		return err
	}
	for i, b := range e.buckets {
		copy(b.params(e.cfg.Stage), staged[i][0])
		copy(b.m, staged[i][1])
		copy(b.v, staged[i][2])
		clear(b.acc)
	}
	e.adamStep, e.steps = m.AdamSteps, m.Steps
	return nil
}

// params is the parameter buffer this rank keeps of bucket b: the whole
// bucket at stages 0–2, its shard at stage 3.
func (b *bucket) params(stage int) []float32 {
	if stage == 3 {
		return b.wShard
	}
	return b.w
}

// load reads dir into new buffers shaped as each bucket's parameters and
// moments on this rank.
func (e *Engine) load(dir string) (meta, [][3][]float32, error) {
	var m meta
	raw, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return m, nil, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, nil, fmt.Errorf("%s: %w", MetaFile, err)
	}
	if m.Format != metaFormat {
		return m, nil, fmt.Errorf("%s: format %d, this build reads %d", MetaFile, m.Format, metaFormat)
	}
	if m.Shards < 1 {
		return m, nil, fmt.Errorf("%s: %d shards", MetaFile, m.Shards)
	}
	if err := e.checkLayout(m); err != nil {
		return m, nil, err
	}
	r := &shardReader{dir: dir, n: m.Shards, files: make([]*safetensors.File, m.Shards)}
	defer r.close()
	staged := make([][3][]float32, len(e.buckets))
	for i, b := range e.buckets {
		if staged[i], err = e.loadBucket(r, b); err != nil {
			return m, nil, err
		}
	}
	return m, staged, nil
}

// checkLayout compares the checkpoint's parameters and buckets with the
// engine's.
func (e *Engine) checkLayout(m meta) error {
	saved := map[string][]int{}
	for _, b := range m.Buckets {
		for _, p := range b.Params {
			saved[p.Name] = p.Shape
		}
	}
	var errs []error
	for _, b := range e.buckets {
		for _, s := range b.slots {
			shape, ok := saved[s.name]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("the model's tensor %s %v is not in the checkpoint", s.name, s.shape))
			case !slices.Equal(shape, s.shape):
				errs = append(errs, fmt.Errorf("tensor %s has shape %v in the checkpoint, %v in the model", s.name, shape, s.shape))
			}
			delete(saved, s.name)
		}
	}
	for name, shape := range saved {
		errs = append(errs, fmt.Errorf("the checkpoint's tensor %s %v is not in the model", name, shape))
	}
	if len(errs) > maxListed {
		errs = append(errs[:maxListed], fmt.Errorf("and %d more differences", len(errs)-maxListed))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if !slices.EqualFunc(m.Buckets, e.meta().Buckets, func(a, b bucketMeta) bool {
		return a.Name == b.Name && a.Len == b.Len && slices.EqualFunc(a.Params, b.Params, func(x, y paramMeta) bool {
			return x.Name == y.Name && x.Offset == y.Offset
		})
	}) {
		return fmt.Errorf("the checkpoint groups the parameters into other buckets than the model (%d buckets, the model %d)", len(m.Buckets), len(e.buckets))
	}
	return nil
}

// loadBucket reads bucket b's parameters and moments: the slices this
// rank keeps at its stage.
func (e *Engine) loadBucket(r *shardReader, b *bucket) ([3][]float32, error) {
	var out [3][]float32
	wAt, mAt := 0, b.shard.Lo // stages 0–2 keep whole parameters, stages 1–3 moment shards
	if e.cfg.Stage == 3 {
		wAt = b.shard.Lo
	}
	if e.cfg.Stage == 0 {
		mAt = 0
	}
	for i, x := range []struct {
		kind string
		n    int
		at   int
	}{{"param", len(b.params(e.cfg.Stage)), wAt}, {"exp_avg", len(b.m), mAt}, {"exp_avg_sq", len(b.v), mAt}} {
		out[i] = make([]float32, x.n)
		if err := r.read(b, x.kind, out[i], x.at); err != nil {
			return out, err
		}
	}
	return out, nil
}

// shardReader reads slices of buckets from the shard files, opening each
// file once.
type shardReader struct {
	dir   string
	n     int
	files []*safetensors.File
}

// read fills dst with bucket b's elements [at, at+len(dst)) of kind from
// every shard file that holds part of them.
func (r *shardReader) read(b *bucket, kind string, dst []float32, at int) error {
	want := collective.Range{Lo: at, Hi: at + len(dst)}
	name := b.name + "/" + kind
	for s, part := range collective.Partition(b.n, r.n) {
		lo, hi := max(part.Lo, want.Lo), min(part.Hi, want.Hi)
		if lo >= hi {
			continue
		}
		f, err := r.open(s)
		if err != nil {
			return err
		}
		vals, shape, err := f.Float32(name)
		if err != nil {
			return fmt.Errorf("%s: %w", ShardFile(s, r.n), err)
		}
		if len(vals) != part.Len() {
			return fmt.Errorf("%s: %s has shape %v, the checkpoint's layout gives it [%d]", ShardFile(s, r.n), name, shape, part.Len())
		}
		copy(dst[lo-at:hi-at], vals[lo-part.Lo:hi-part.Lo])
	}
	return nil
}

func (r *shardReader) open(s int) (*safetensors.File, error) {
	if r.files[s] == nil {
		f, err := safetensors.Open(filepath.Join(r.dir, ShardFile(s, r.n)))
		if err != nil {
			return nil, err
		}
		r.files[s] = f
	}
	return r.files[s], nil
}

func (r *shardReader) close() {
	for _, f := range r.files {
		if f != nil {
			_ = f.Close()
		}
	}
}
