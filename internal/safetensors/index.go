package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Standard file names Hugging Face uses for single and sharded checkpoints.
const (
	SingleName = "model.safetensors"
	IndexName  = "model.safetensors.index.json"
)

// isIndexName reports whether path names a shard index.
func isIndexName(path string) bool {
	return strings.HasSuffix(filepath.Base(path), ".safetensors.index.json")
}

// OpenDir opens the checkpoint in a model folder: the shards listed by
// model.safetensors.index.json when it exists, else model.safetensors.
func OpenDir(dir string) (*File, error) {
	index := filepath.Join(dir, IndexName)
	if _, err := os.Stat(index); err == nil {
		return openIndex(index)
	}
	single := filepath.Join(dir, SingleName)
	if _, err := os.Stat(single); err != nil {
		return nil, fmt.Errorf("safetensors: folder %s has neither %s nor %s", dir, IndexName, SingleName)
	}
	s, err := openShard(single)
	if err != nil {
		return nil, err
	}
	return newFile([]*shard{s}, nil)
}

// indexFile is the JSON layout of model.safetensors.index.json. Its
// "metadata" (e.g. total_size, a number) is informational and ignored.
type indexFile struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// openIndex opens every shard named in an index file.
func openIndex(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var idx indexFile
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: weight_map is missing or empty", path)
	}
	dir := filepath.Dir(path)
	weightMap := make(map[string]string, len(idx.WeightMap))
	var files []string
	for name, file := range idx.WeightMap {
		if err := checkShardName(file); err != nil {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", path, name, err)
		}
		full := filepath.Join(dir, file)
		weightMap[name] = full
		if !slices.Contains(files, full) {
			files = append(files, full)
		}
	}
	slices.Sort(files)
	shards, err := openShards(files)
	if err != nil {
		return nil, fmt.Errorf("%w (listed in %s)", err, path)
	}
	return newFile(shards, weightMap)
}

// checkShardName keeps shard references inside the model folder: an index
// downloaded from the network must not make us open arbitrary files.
func checkShardName(file string) error {
	if file == "" || file != filepath.Base(file) || file == "." || file == ".." ||
		strings.ContainsAny(file, `/\`) {
		return fmt.Errorf("shard name %q is not a plain file name", file)
	}
	return nil
}

// openShards opens files in order, closing those already open on failure.
func openShards(files []string) ([]*shard, error) {
	shards := make([]*shard, 0, len(files))
	for _, file := range files {
		s, err := openShard(file)
		if err != nil {
			for _, o := range shards {
				_ = o.unmap()
			}
			return nil, err
		}
		shards = append(shards, s)
	}
	return shards, nil
}

// errClosed is returned for reads after Close.
var errClosed = errors.New("file is closed")
