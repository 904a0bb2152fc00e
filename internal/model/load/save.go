package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"

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
//
// The write never leaves a folder that looks complete but is not: a new
// folder is filled under a temporary name and renamed into place; in an
// existing folder (other files, such as the tokenizer, are kept) the old
// config.json and any sharded index are removed first, the weights are
// written, and config.json — the file that marks a model folder — last,
// each file through a temporary name and a rename.
func Save(dir string, m model.CausalLM, archConfigJSON []byte, dtype safetensors.DType) error {
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
	ts := make([]safetensors.Tensor, len(ps))
	for i, p := range ps {
		ts[i] = safetensors.Tensor{Name: p.Name, Shape: p.Tensor.Shape, Data: p.Tensor.Data}
	}
	meta := map[string]string{"format": "pt"} // what transformers expects
	write := func(d string) error {
		if err := safetensors.Write(filepath.Join(d, safetensors.SingleName), ts, dtype, meta); err != nil {
			return err
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
		if err = clearModelFiles(dir); err == nil {
			err = write(dir)
		}
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
	return nil
}

// clearModelFiles removes what would make dir look like a complete (old)
// model while the new one is written: config.json, a sharded index and the
// shards it lists.
func clearModelFiles(dir string) error {
	if err := removeIfExists(filepath.Join(dir, hub.ConfigName)); err != nil {
		return err
	}
	index := filepath.Join(dir, safetensors.IndexName)
	raw, err := os.ReadFile(index)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("%s: %w", index, err)
	}
	if err := removeIfExists(index); err != nil {
		return err
	}
	for _, shard := range idx.WeightMap {
		if shard != filepath.Base(shard) || shard == safetensors.SingleName {
			continue // never follow a path out of dir
		}
		if err := removeIfExists(filepath.Join(dir, shard)); err != nil {
			return err
		}
	}
	return nil
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
