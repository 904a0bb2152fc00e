package chattmpl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File names HF uses inside a model or tokenizer folder.
const (
	ConfigFile       = "tokenizer_config.json"
	TemplateFile     = "chat_template.jinja"       // transformers >= 4.47 writes the default template here
	NamedTemplateDir = "additional_chat_templates" // <name>.jinja for named templates
)

// ErrNoTemplate is wrapped by the errors of Load and LoadNamed when the
// files hold no (such) chat template, as opposed to one that does not
// parse or files that cannot be read.
var ErrNoTemplate = errors.New("no chat template")

// DefaultName is the name of the template used when none is asked for.
const DefaultName = "default"

// Load reads the default chat template of a HF tokenizer. path is a folder,
// its tokenizer_config.json, or a .jinja template file. As in transformers, a
// chat_template.jinja next to the config takes precedence over the config's
// chat_template field. bos/eos/pad/unk tokens come from the config when it
// exists.
func Load(path string) (*Template, error) {
	return LoadNamed(path, "")
}

// LoadNamed is Load for a named template, for configs whose chat_template is
// a list of {"name", "template"} objects (e.g. "tool_use") or folders with
// additional_chat_templates/<name>.jinja. An empty name means "default".
// Unlike apply_chat_template, no name is chosen automatically when tools are
// passed; ask for "tool_use" explicitly if the model has one.
func LoadNamed(path, name string) (*Template, error) {
	if name == "" {
		name = DefaultName
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("chattmpl: load: %w", err)
	}
	dir, cfgPath, jinjaPath := path, filepath.Join(path, ConfigFile), ""
	if !st.IsDir() {
		dir = filepath.Dir(path)
		cfgPath = path
		if strings.HasSuffix(path, ".jinja") {
			cfgPath, jinjaPath = filepath.Join(dir, ConfigFile), path
		}
	}

	cfg, err := readConfig(cfgPath)
	haveCfg := err == nil
	mayLackConfig := st.IsDir() || jinjaPath != "" // a template file can stand alone
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && mayLackConfig) {
		return nil, err
	}

	src, err := selectTemplate(dir, jinjaPath, name, cfg, cfgPath, haveCfg)
	if err != nil {
		return nil, err
	}
	t, err := Parse(src.text, cfg.specials)
	if err != nil {
		return nil, fmt.Errorf("chattmpl: load %s: %w", src.origin, err)
	}
	return t, nil
}

// sourceText is a template text and where it came from (for errors).
type sourceText struct {
	text, origin string
}

// selectTemplate picks the template text by HF's precedence: an explicit
// .jinja path, then the folder's .jinja files, then the config field.
func selectTemplate(dir, jinjaPath, name string, cfg config, cfgPath string, haveCfg bool) (sourceText, error) {
	if jinjaPath != "" {
		return readTemplateFile(jinjaPath)
	}
	side := filepath.Join(dir, TemplateFile)
	if name != DefaultName {
		side = filepath.Join(dir, NamedTemplateDir, name+".jinja")
	}
	s, err := readTemplateFile(side)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if !haveCfg {
		return sourceText{}, fmt.Errorf("chattmpl: load: %w: neither %s nor %s exists", ErrNoTemplate, cfgPath, side)
	}
	text, ok := cfg.templates[name]
	if !ok {
		return sourceText{}, fmt.Errorf("chattmpl: load %s: %w named %q (have %s)", cfgPath, ErrNoTemplate, name, cfg.names())
	}
	return sourceText{text: text, origin: cfgPath + " field chat_template"}, nil
}

func readTemplateFile(path string) (sourceText, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return sourceText{}, fmt.Errorf("chattmpl: load: %w", err)
	}
	return sourceText{text: string(b), origin: path}, nil
}

// config is the part of tokenizer_config.json a chat template needs.
type config struct {
	templates map[string]string // by name; a plain string is "default"
	specials  Specials
}

func (c config) names() string {
	if len(c.templates) == 0 {
		return "no chat_template field"
	}
	var ns []string
	for n := range c.templates {
		ns = append(ns, fmt.Sprintf("%q", n))
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

// readConfig parses tokenizer_config.json. A missing file returns an error
// wrapping fs.ErrNotExist.
func readConfig(path string) (config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return config{}, fmt.Errorf("chattmpl: load: %w", err)
	}
	var raw struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
		PAD          json.RawMessage `json:"pad_token"`
		UNK          json.RawMessage `json:"unk_token"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return config{}, fmt.Errorf("chattmpl: load %s: %w", path, err)
	}
	var c config
	if c.templates, err = parseChatTemplateField(raw.ChatTemplate); err != nil {
		return config{}, fmt.Errorf("chattmpl: load %s: field chat_template: %w", path, err)
	}
	fields := []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{
		{"bos_token", raw.BOS, &c.specials.BOS},
		{"eos_token", raw.EOS, &c.specials.EOS},
		{"pad_token", raw.PAD, &c.specials.PAD},
		{"unk_token", raw.UNK, &c.specials.UNK},
	}
	for _, f := range fields {
		if *f.dst, err = parseToken(f.raw); err != nil {
			return config{}, fmt.Errorf("chattmpl: load %s: field %s: %w", path, f.name, err)
		}
	}
	return c, nil
}

// parseChatTemplateField accepts a string or a list of {"name","template"}.
func parseChatTemplateField(raw json.RawMessage) (map[string]string, error) {
	out := map[string]string{}
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		out[DefaultName] = s
		return out, nil
	}
	var list []struct {
		Name     *string `json:"name"`
		Template *string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("want a string or a list of {\"name\", \"template\"} objects: %w", err)
	}
	for i, e := range list {
		if e.Name == nil || e.Template == nil {
			return nil, fmt.Errorf("entry %d lacks \"name\" or \"template\"", i)
		}
		out[*e.Name] = *e.Template
	}
	return out, nil
}

// parseToken reads a special token: null, a string, or an AddedToken object
// {"content": "...", ...}.
func parseToken(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return "", fmt.Errorf("want a string or an object with \"content\", got %.60s", string(raw))
	}
	return *obj.Content, nil
}
