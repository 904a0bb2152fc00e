package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"

	"github.com/gorlhf/gorlhf/internal/hub"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// Save writes m as a Hugging Face folder: config.json and model.safetensors
// (F32 or BF16). archConfigJSON is the model's config.json (Loaded.Config);
// Save updates torch_dtype, tie_word_embeddings (whether m lists no
// separate "lm_head.weight") and, for a head.ScoreModel, OpenRLHF's
// normalize_reward/mean/std, keeps every other key, and checks that the
// config describes m exactly (their model.Spec), so that what it writes
// always loads back. Tied weights are written once, as HF does.
func Save(dir string, m model.CausalLM, archConfigJSON []byte, dtype safetensors.DType) error {
	return SaveWith(dir, m, archConfigJSON, dtype, nil)
}

// SaveWith is Save plus files written verbatim with the model (the
// tokenizer's), as one unit.
//
// The write never leaves a folder that looks complete but is not, and
// never loses the model a folder already holds until the new one is whole
// on disk:
//   - a new folder is filled under a temporary name beside it and renamed
//     into place;
//   - in a folder that already holds a model (config.json), everything is
//     first written and synced into a temporary folder inside it (a full
//     disk or a crash stops there, the old model untouched and loadable);
//     then the files are renamed over the old ones, config.json — the file
//     that marks a model folder — last, and an old sharded index and its
//     shards are removed. Other files (logs, metrics) stay;
//   - in an existing folder without a model, the files are written in
//     place (an old sharded index and its shards removed first),
//     config.json last.
func SaveWith(dir string, m model.CausalLM, archConfigJSON []byte, dtype safetensors.DType, files map[string][]byte) error {
	if dtype != safetensors.F32 && dtype != safetensors.BF16 {
		return fmt.Errorf("save %s: dtype %s not supported (want F32 or BF16)", dir, dtype)
	}
	cfg, err := savedConfig(m, archConfigJSON, dtype)
	if err != nil {
		return fmt.Errorf("save %s: %w", dir, err)
	}
	ps := m.Params()
	if err := ps.Validate(); err != nil {
		return fmt.Errorf("save %s: %w", dir, err)
	}
	for name := range files {
		if name != filepath.Base(name) || name == hub.ConfigName || name == safetensors.SingleName || name == safetensors.IndexName {
			return fmt.Errorf("save %s: cannot write extra file %q", dir, name)
		}
	}
	ts := make([]safetensors.Tensor, len(ps))
	for i, p := range ps {
		ts[i] = safetensors.Tensor{Name: p.Name, Shape: p.Tensor.Shape, Data: p.Tensor.Data}
	}
	meta := map[string]string{"format": "pt"} // what transformers expects
	write := func(d string) error {
		if err := safetensors.Write(filepath.Join(d, safetensors.SingleName), ts, dtype, meta); err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(files)) {
			if err := writeFileAtomic(filepath.Join(d, name), files[name]); err != nil {
				return err
			}
		}
		return writeFileAtomic(filepath.Join(d, hub.ConfigName), cfg)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = saveNew(dir, write)
	case err != nil:
	case !st.IsDir():
		err = fmt.Errorf("%s exists and is not a folder", dir)
	default:
		err = saveOver(dir, write)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", dir, err)
	}
	return nil
}

// saveNew fills a temporary sibling folder and renames it to dir.
func saveNew(dir string, write func(string) error) error {
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := write(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	syncDir(parent)
	return nil
}

// saveOver writes into an existing folder: staged inside it and moved
// into place when it holds a model, else in place (config.json last).
func saveOver(dir string, write func(string) error) error {
	if _, err := os.Stat(filepath.Join(dir, hub.ConfigName)); errors.Is(err, fs.ErrNotExist) {
		if err := removeIndex(dir); err != nil { // no model: an old index would shadow the new file
			return err
		}
		return write(dir)
	}
	stage, err := os.MkdirTemp(dir, ".model.tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := write(stage); err != nil {
		return err
	}
	syncDir(stage)
	return commitStaged(stage, dir)
}

// commitStaged moves a complete model from stage into dir: every file but
// config.json, then (an old sharded index out of the way) config.json,
// then the old index's shards are removed.
func commitStaged(stage, dir string) error {
	shards, err := indexShards(dir)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == hub.ConfigName {
			continue
		}
		if err := os.Rename(filepath.Join(stage, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	if err := removeIfExists(filepath.Join(dir, safetensors.IndexName)); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(stage, hub.ConfigName), filepath.Join(dir, hub.ConfigName)); err != nil {
		return err
	}
	for _, shard := range shards {
		if err := removeIfExists(filepath.Join(dir, shard)); err != nil {
			return err
		}
	}
	syncDir(dir)
	return nil
}

// removeIndex removes a sharded index in dir and the shards it names.
func removeIndex(dir string) error {
	shards, err := indexShards(dir)
	if err != nil {
		return err
	}
	if err := removeIfExists(filepath.Join(dir, safetensors.IndexName)); err != nil {
		return err
	}
	for _, shard := range shards {
		if err := removeIfExists(filepath.Join(dir, shard)); err != nil {
			return err
		}
	}
	return nil
}

// indexShards lists the shard files a sharded index in dir names (none
// without an index), never a path out of dir nor the single-file name.
func indexShards(dir string) ([]string, error) {
	index := filepath.Join(dir, safetensors.IndexName)
	raw, err := os.ReadFile(index)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", index, err)
	}
	var out []string
	for _, shard := range idx.WeightMap {
		if shard == filepath.Base(shard) && shard != safetensors.SingleName && !slices.Contains(out, shard) {
			out = append(out, shard)
		}
	}
	return out, nil
}

// syncDir flushes a folder's entries (best effort: not every OS can).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it
// and renames it over path.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// torchDType is config.json's name for a stored dtype.
func torchDType(d safetensors.DType) string {
	if d == safetensors.BF16 {
		return "bfloat16"
	}
	return "float32"
}

// savedConfig returns the config.json to write for m and checks that it
// describes m.
func savedConfig(m model.CausalLM, cfg []byte, dtype safetensors.DType) ([]byte, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &keys); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	set := func(k string, v any) {
		b, _ := json.Marshal(v) // plain values: cannot fail
		keys[k] = b
	}
	set("torch_dtype", torchDType(dtype))
	if _, ok := keys["dtype"]; ok { // transformers v5 spelling
		set("dtype", torchDType(dtype))
	}
	if s, ok := m.(*head.ScoreModel); ok {
		set("normalize_reward", s.Norm.Normalize)
		set("mean", s.Norm.Mean)
		set("std", s.Norm.Std)
	} else if _, ok := keys["tie_word_embeddings"]; ok || m.Params().Find(lmHeadName) == nil {
		set("tie_word_embeddings", m.Params().Find(lmHeadName) == nil)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(keys); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	out := buf.Bytes()
	sp, err := parseConfig(out)
	if err != nil {
		return nil, err
	}
	if err := matches(sp, m); err != nil {
		return nil, err
	}
	return out, nil
}

// lmHeadName is the separate LM head of an untied causal LM.
const lmHeadName = "lm_head.weight"

// matches checks that the model sp describes is m: a score model or not,
// and the same backbone spec (from which the parameter list follows).
func matches(sp *spec, m model.CausalLM) error {
	got := m.Spec()
	hs, isScore := got.(head.Spec)
	if isScore != sp.Score {
		return fmt.Errorf("config.json says %s but the model is a %T", sp.Arch, m)
	}
	if isScore {
		got = hs.Backbone
	}
	if !reflect.DeepEqual(sp.Backbone, got) {
		return fmt.Errorf("config.json (%s) does not describe the model: config %+v, model %+v", sp.Arch, sp.Backbone, got)
	}
	return nil
}
