package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/hub"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Bundle is a model with everything needed to run or train it: its
// tokenizer (and the tokenizer files to save with every checkpoint), its
// chat template, the ids that end a sample and whether prompts start with
// BOS. Open assembles it once, with one set of rules, for generate,
// serve, every trainer, the demos and the reward-model loader.
type Bundle struct {
	*Loaded
	Tok tokenizer.Tokenizer
	// TokenizerFiles are written verbatim next to every saved model so
	// that a checkpoint or the final folder loads with its tokenizer.
	TokenizerFiles map[string][]byte
	// TokenizerDir is the folder of the tokenizer files ("" for the
	// embedded tok512): where the chat template and tokenizer_config.json
	// are read.
	TokenizerDir string
	// Template renders conversations; nil when there is none (see
	// NeedTemplate for why).
	Template    *chattmpl.Template
	templateErr error
	// StopIDs end a sample: the tokenizer's EOS, then generation_config.json's
	// eos_token_id (a number or a list), without repeats.
	StopIDs []int32
	// StopAtBOS is set for llama2.c models: BOS separates their stories and
	// run.c stops there. GenerationStops adds it for generate and serve;
	// RL rollouts stop at StopIDs only, as they always have.
	StopAtBOS bool
	// AddBOS says whether prompts start with the tokenizer's BOS (see
	// BOSMode for the rule).
	AddBOS bool
	// Name is the model's short name: its folder or file name, or
	// stories260K for the embedded model.
	Name string
}

// BOSMode says whether prompts start with BOS.
type BOSMode string

// The BOS modes. BOSAuto follows tokenizer_config.json's add_bos_token;
// without it, a tokenizer.json whose post-processor adds BOS (what Hugging
// Face's add_special_tokens=True does), llama2.c models and llama2.c
// tokenizers (as run.c) get BOS, other models not.
const (
	BOSAuto BOSMode = "auto"
	BOSOn   BOSMode = "on"
	BOSOff  BOSMode = "off"
)

// OpenOptions controls Open.
type OpenOptions struct {
	// Load is passed to Load (Hub cache, logger, head prefix).
	Load Options
	// Tokenizer is a tokenizer file or folder; "" means the model folder's,
	// tokenizer.bin next to a llama2.c file, or tok512 for the embedded
	// model.
	Tokenizer string
	// ChatTemplate overrides the model's chat template: a .jinja file, a
	// tokenizer folder or config, or the template text itself; "" keeps
	// the model's own.
	ChatTemplate string
	// BOS decides Bundle.AddBOS; "" means BOSAuto.
	BOS BOSMode
}

// Open loads the model ref names (Load) and its tokenizer, chat template,
// stop ids and BOS rule.
func Open(ref string, o OpenOptions) (*Bundle, error) {
	l, err := Load(ref, o.Load)
	if err != nil {
		return nil, err
	}
	b, err := bundle(l, o)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", ref, err)
	}
	return b, nil
}

// bundle completes a loaded model into a Bundle.
func bundle(l *Loaded, o OpenOptions) (*Bundle, error) {
	b := &Bundle{Loaded: l, Name: filepath.Base(strings.TrimSuffix(l.Path, "/"))}
	llama2c := l.Location.Kind == hub.Llama2CFile
	if l.Path == EmbeddedPath {
		b.Name = DefaultModel
	}
	var err error
	if err = b.openTokenizer(o.Tokenizer, llama2c); err != nil {
		return nil, err
	}
	if b.Template, b.templateErr = chatTemplate(o.ChatTemplate, b.TokenizerDir); o.ChatTemplate != "" && b.templateErr != nil {
		return nil, b.templateErr
	}
	if b.StopIDs, err = stopIDs(b.Tok, l.modelDir()); err != nil {
		return nil, err
	}
	b.StopAtBOS = llama2c && b.Tok.Specials().BOS >= 0
	if b.AddBOS, err = addBOS(o.BOS, b.Tok, b.TokenizerDir, llama2c); err != nil {
		return nil, err
	}
	return b, nil
}

// modelDir is the folder holding the model's files: the HF folder, the
// folder of a llama2.c file, or "" for the embedded model.
func (l *Loaded) modelDir() string {
	switch {
	case l.Path == EmbeddedPath:
		return ""
	case l.Location.Kind == hub.Llama2CFile:
		return filepath.Dir(l.Path)
	}
	return l.Path
}

// openTokenizer finds the tokenizer and the files to save with the model:
// path when given, else tok512 for the embedded model, tokenizer.bin next
// to a llama2.c file, or the model folder's.
func (b *Bundle) openTokenizer(path string, llama2c bool) error {
	var err error
	switch {
	case path != "":
		if b.Tok, err = tokenizer.Load(path); err != nil {
			return err
		}
		b.TokenizerDir = path
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			b.TokenizerDir = filepath.Dir(path)
			if _, bin := b.Tok.(*tokenizer.Llama2C); bin {
				return b.readBin(path)
			}
		}
	case b.Path == EmbeddedPath:
		b.Tok, err = tokenizer.ParseLlama2C(assets.Tok512())
		b.TokenizerFiles = map[string][]byte{"tokenizer.bin": assets.Tok512()}
		return err
	case llama2c:
		p := filepath.Join(filepath.Dir(b.Path), "tokenizer.bin")
		if b.Tok, err = tokenizer.Load(p); err != nil {
			return fmt.Errorf("llama2.c model %s needs its tokenizer at %s (or pass one): %w", b.Path, p, err)
		}
		b.TokenizerDir = filepath.Dir(p)
		return b.readBin(p)
	default:
		if b.Tok, err = tokenizer.Load(b.Path); err != nil {
			return err
		}
		b.TokenizerDir = b.Path
	}
	b.TokenizerFiles, err = tokenizer.ReadFiles(b.TokenizerDir, tokenizer.FolderFiles)
	return err
}

// readBin keeps a llama2.c tokenizer file as the tokenizer to save.
func (b *Bundle) readBin(path string) error {
	data, err := os.ReadFile(path)
	b.TokenizerFiles = map[string][]byte{"tokenizer.bin": data}
	return err
}

// NeedTemplate returns the chat template, or an error saying why the
// model has none.
func (b *Bundle) NeedTemplate() (*chattmpl.Template, error) {
	if b.Template == nil {
		return nil, b.templateErr
	}
	return b.Template, nil
}

// GenerationStops are the ids that end a sample in generate and serve:
// StopIDs, and BOS for llama2.c models (StopAtBOS).
func (b *Bundle) GenerationStops() []int32 {
	ids := slices.Clone(b.StopIDs)
	if bos := int32(b.Tok.Specials().BOS); b.StopAtBOS && !slices.Contains(ids, bos) {
		ids = append(ids, bos)
	}
	return ids
}

// BOS is the id prompts start with, or −1 when they start without one.
func (b *Bundle) BOS() int32 {
	if !b.AddBOS {
		return -1
	}
	return int32(b.Tok.Specials().BOS)
}

// chatTemplate returns the override (a file or folder, or the template
// text itself) or the template in dir.
func chatTemplate(override, dir string) (*chattmpl.Template, error) {
	if override != "" {
		if _, err := os.Stat(override); err == nil {
			return chattmpl.Load(override)
		}
		return chattmpl.Parse(override, chattmpl.Specials{})
	}
	if dir == "" {
		return nil, fmt.Errorf("the model has %w", chattmpl.ErrNoTemplate)
	}
	return chattmpl.Load(dir)
}

// stopIDs are the tokenizer's EOS plus generation_config.json's
// eos_token_id in dir (a number or a list).
func stopIDs(tok tokenizer.Tokenizer, dir string) ([]int32, error) {
	var ids []int32
	add := func(id int) {
		if id >= 0 && !slices.Contains(ids, int32(id)) {
			ids = append(ids, int32(id))
		}
	}
	add(tok.Specials().EOS)
	if dir == "" {
		return ids, nil
	}
	path := filepath.Join(dir, "generation_config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ids, nil
	}
	if err != nil {
		return nil, err
	}
	var gc struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := json.Unmarshal(data, &gc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var one int
	var many []int
	switch {
	case len(gc.EOS) == 0 || string(gc.EOS) == "null":
	case json.Unmarshal(gc.EOS, &one) == nil:
		add(one)
	case json.Unmarshal(gc.EOS, &many) == nil:
		for _, id := range many {
			add(id)
		}
	default:
		return nil, fmt.Errorf("%s: eos_token_id %s is neither a number nor a list", path, gc.EOS)
	}
	return ids, nil
}

// addBOS applies mode (see BOSMode).
func addBOS(mode BOSMode, tok tokenizer.Tokenizer, dir string, llama2c bool) (bool, error) {
	hasBOS := tok.Specials().BOS >= 0
	switch mode {
	case BOSOn:
		if !hasBOS {
			return false, errors.New("BOS on: the tokenizer defines no BOS token")
		}
		return true, nil
	case BOSOff:
		return false, nil
	case BOSAuto, "":
	default:
		return false, fmt.Errorf("BOS mode must be auto, on or off, got %q", mode)
	}
	_, bin := tok.(*tokenizer.Llama2C)
	on := llama2c || bin
	if hf, ok := tok.(*tokenizer.HF); ok && hf.PostProcessorBOS() {
		on = true
	}
	if dir != "" {
		var cfg struct {
			AddBOS *bool `json:"add_bos_token"`
		}
		data, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
		switch {
		case err == nil && json.Unmarshal(data, &cfg) == nil && cfg.AddBOS != nil:
			on = *cfg.AddBOS
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return false, err
		}
	}
	return on && hasBOS, nil
}
