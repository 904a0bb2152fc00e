// Package hub turns a model reference given on the command line into files
// on disk: a local Hugging Face model folder, a local llama2.c checkpoint,
// or a Hugging Face Hub repo id already present in the local HF cache.
//
// gorlhf never downloads. Fetching models is left to huggingface-cli (or
// any tool that fills the standard cache), so runs are reproducible and work
// offline; when a model is missing the error says where we looked and which
// command fetches it. The package reads no environment variables itself:
// the caller (the command) reads them and passes them in Options, which keeps
// resolution testable and explicit.
package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Kind says what a Location holds.
type Kind int

const (
	// HFFolder is a folder with a Hugging Face config.json (and usually
	// safetensors weights and tokenizer files).
	HFFolder Kind = iota + 1
	// Llama2CFile is a single llama2.c checkpoint file.
	Llama2CFile
)

func (k Kind) String() string {
	switch k {
	case HFFolder:
		return "HF folder"
	case Llama2CFile:
		return "llama2.c file"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ConfigName is the file that marks a Hugging Face model folder.
const ConfigName = "config.json"

// Location is a resolved model reference.
type Location struct {
	Kind Kind
	// Path is the model folder (HFFolder) or the checkpoint file
	// (Llama2CFile).
	Path string
	// Repo, Revision and Commit are set when the model came from the hub
	// cache: the repo id, the revision asked for ("main" by default) and
	// the snapshot's commit hash.
	Repo, Revision, Commit string
}

// File returns the path of a file inside an HFFolder location.
func (l Location) File(name string) string { return filepath.Join(l.Path, name) }

// Resolve finds the model named by ref. A ref that exists on disk is used
// as is: a folder must hold config.json, a file is taken as a llama2.c
// checkpoint (a config.json file stands for its folder). Otherwise ref must
// be a Hub repo id, "org/name" or "name", optionally followed by
// "@revision" (a branch, tag or commit hash), and is looked up in the local
// HF cache chosen by o.
func Resolve(ref string, o Options) (Location, error) {
	if ref == "" {
		return Location{}, errors.New("hub: empty model reference")
	}
	st, err := os.Stat(ref)
	switch {
	case err == nil:
		return resolveLocal(ref, st)
	case errors.Is(err, fs.ErrPermission):
		return Location{}, fmt.Errorf("hub: %w", err)
	}
	repo, rev, err := ParseRepoID(ref)
	if err != nil {
		return Location{}, fmt.Errorf("hub: %q is neither an existing file or folder nor a Hugging Face repo id: %w", ref, err)
	}
	return resolveCache(ref, repo, rev, o)
}

// resolveLocal classifies an existing path.
func resolveLocal(path string, st os.FileInfo) (Location, error) {
	if st.IsDir() {
		if err := checkConfig(path); err != nil {
			return Location{}, fmt.Errorf("hub: folder %s is not a Hugging Face model: %w", path, err)
		}
		return Location{Kind: HFFolder, Path: filepath.Clean(path)}, nil
	}
	switch base := filepath.Base(path); {
	case base == ConfigName:
		return Location{Kind: HFFolder, Path: filepath.Dir(path)}, nil
	case strings.HasSuffix(base, ".safetensors") || strings.HasSuffix(base, ".json"):
		return Location{}, fmt.Errorf("hub: %s: pass the model folder (the one holding %s), not a single file", path, ConfigName)
	case !st.Mode().IsRegular():
		return Location{}, fmt.Errorf("hub: %s is not a regular file", path)
	}
	return Location{Kind: Llama2CFile, Path: path}, nil
}

// checkConfig requires dir/config.json to be a readable file. In the hub
// cache it is a symlink into blobs/, which is dangling when a download was
// interrupted, hence the distinct message.
func checkConfig(dir string) error {
	p := filepath.Join(dir, ConfigName)
	st, err := os.Stat(p)
	if err == nil && st.Mode().IsRegular() {
		return nil
	}
	if _, lerr := os.Lstat(p); lerr == nil && err != nil {
		return fmt.Errorf("%s is a broken link (incomplete download?)", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "adapter_config.json")); err == nil {
		return fmt.Errorf("no %s in %s: it holds a LoRA adapter (adapter_config.json); merge it into its base with `gorlhf convert --model BASE --merge-lora %s --out MERGED`", ConfigName, dir, dir)
	}
	return fmt.Errorf("no %s in %s", ConfigName, dir)
}
