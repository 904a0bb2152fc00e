package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/hub"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// samplingFlags bind the per-request sampling knobs.
type samplingFlags struct {
	p     generate.SamplingParams
	stops stringList
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (f *samplingFlags) register(fs *flag.FlagSet) {
	f.p = generate.SamplingParams{N: 1, MaxNewTokens: generate.DefaultMaxNewTokens, Temperature: 1}
	fs.IntVar(&f.p.N, "n", f.p.N, "completions per prompt")
	fs.IntVar(&f.p.MaxNewTokens, "max-new-tokens", f.p.MaxNewTokens, "most tokens generated per completion")
	fs.Func("temperature", "sampling temperature; 0 is greedy (default 1)", func(s string) error { return parseF32(s, &f.p.Temperature) })
	fs.Func("top-p", "nucleus sampling: keep the smallest set of tokens with this mass (default 1: off)", func(s string) error { return parseF32(s, &f.p.TopP) })
	fs.IntVar(&f.p.TopK, "top-k", 0, "keep the k most likely tokens (0: off)")
	fs.Func("min-p", "drop tokens below min-p × the top probability (default 0: off)", func(s string) error { return parseF32(s, &f.p.MinP) })
	fs.Func("seed", "random seed; prompt i uses seed+i, so every prompt has its own reproducible stream (default 0)", func(s string) error {
		_, err := fmt.Sscan(s, &f.p.Seed)
		return err
	})
	fs.Var(&f.stops, "stop", "stop string (repeatable); the text is cut before it")
	fs.BoolVar(&f.p.IgnoreEOS, "ignore-eos", false, "keep generating past the model's end-of-sequence token")
}

func parseF32(s string, dst *float32) error {
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return err
	}
	*dst = float32(v)
	return nil
}

// promptRecord is one prompt: what the user gave (echoed in the output)
// and its token ids.
type promptRecord struct {
	value json.RawMessage
	ids   []int32
}

// generateRecord is one line of --output: a prompt and its completions.
type generateRecord struct {
	Index        int                `json:"index"`
	Prompt       json.RawMessage    `json:"prompt"`
	PromptTokens int                `json:"prompt_tokens"`
	Completions  []completionRecord `json:"completions"`
}

type completionRecord struct {
	Text          string    `json:"text"`
	Tokens        []int32   `json:"tokens"`
	LogProbs      []float32 `json:"logprobs"`
	RawLogProbs   []float32 `json:"raw_logprobs"`
	FinishReason  string    `json:"finish_reason"`
	WeightVersion int64     `json:"weight_version"`
}

// runGenerate samples completions for a prompt given on the command line
// or for every prompt of a JSONL file, all batched by one engine.
func runGenerate(ctx context.Context, args []string) error {
	fs := newFlagSet("generate", "generate [--model M] (--prompt TEXT | --input prompts.jsonl [--input-key prompt]) "+
		"[--n --max-new-tokens --temperature --top-p --top-k --min-p --seed --stop S --apply-chat-template] [--output out.jsonl]")
	var ef engineFlags
	ef.register(fs)
	var rf rolloutFlags
	rf.register(fs)
	var sf samplingFlags
	sf.register(fs)
	prompt := fs.String("prompt", "", "one prompt (text)")
	input := fs.String("input", "", "JSONL file of prompts: one object per line")
	key := fs.String("input-key", "prompt", "field of each --input object holding the prompt: a string, or a list of {role, content} messages")
	output := fs.String("output", "", "write one JSON line per prompt (completions, token ids, log-probs) here; default: text to stdout for --prompt, JSONL to stdout for --input")
	chat := fs.Bool("apply-chat-template", false, "wrap text prompts as a user message and render them with the model's chat template")
	system := fs.String("system", "", "system message put before each prompt (with --apply-chat-template)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("generate: unexpected arguments %q (quote the prompt and pass it with --prompt)", fs.Args())
	case (*prompt == "") == (*input == ""):
		return errors.New("generate: give exactly one of --prompt and --input")
	case *system != "" && !*chat:
		return errors.New("generate: --system needs --apply-chat-template")
	}
	sf.p.StopStrings = sf.stops
	if err := sf.p.Validate(); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if err := rf.engine.Validate(); err != nil {
		return err
	}
	if err := ef.apply(); err != nil {
		return err
	}
	rm, err := loadRolloutModel(&rf)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, rm.loaded.Summary)
	enc := promptEncoder{rm: rm, chat: *chat, system: *system}
	var prompts []promptRecord
	if *prompt != "" {
		rec, err := enc.encode(mustJSON(*prompt))
		if err != nil {
			return fmt.Errorf("generate: --prompt: %w", err)
		}
		prompts = []promptRecord{rec}
	} else if prompts, err = enc.readFile(*input, *key); err != nil {
		return err
	}
	eng, err := rm.newEngine(rf.engine)
	if err != nil {
		return err
	}
	defer eng.Close()
	reqs := make([]generate.Request, len(prompts))
	for i, p := range prompts {
		sp := sf.p
		sp.Seed += uint64(i)
		reqs[i] = generate.Request{ID: fmt.Sprint(i), Prompt: p.ids, Params: sp}
		if err := eng.Validate(reqs[i]); err != nil {
			return fmt.Errorf("generate: prompt %d: %w", i, err)
		}
	}
	var progress io.Writer
	if *input != "" {
		progress = os.Stderr
	}
	results, err := generateAll(ctx, eng, reqs, progress)
	if err != nil {
		return err
	}
	if *prompt != "" && *output == "" {
		return printTexts(os.Stdout, results[0])
	}
	return writeRecords(*output, prompts, results)
}

// promptEncoder turns --prompt text or --input values into token ids.
type promptEncoder struct {
	rm     *rolloutModel
	chat   bool
	system string
}

// encode handles a JSON string (plain text, or one user message with
// --apply-chat-template) or a JSON list of messages (always templated).
func (e promptEncoder) encode(v json.RawMessage) (promptRecord, error) {
	var text string
	if err := json.Unmarshal(v, &text); err == nil {
		if !e.chat {
			ids := e.rm.encodeText(text)
			if len(ids) == 0 {
				return promptRecord{}, errors.New("prompt is empty")
			}
			return promptRecord{value: v, ids: ids}, nil
		}
		return e.messages(v, []chattmpl.Message{{Role: "user", Content: text}})
	}
	var msgs []chattmpl.Message
	if err := json.Unmarshal(v, &msgs); err != nil || len(msgs) == 0 {
		return promptRecord{}, errors.New("the prompt must be a string or a non-empty list of {role, content} messages")
	}
	return e.messages(v, msgs)
}

func (e promptEncoder) messages(v json.RawMessage, msgs []chattmpl.Message) (promptRecord, error) {
	if e.system != "" {
		msgs = append([]chattmpl.Message{{Role: "system", Content: e.system}}, msgs...)
	}
	ids, err := e.rm.encodeChat(msgs)
	if err != nil {
		return promptRecord{}, err
	}
	return promptRecord{value: v, ids: ids}, nil
}

// readFile reads the prompts of a JSONL file; errors name the line.
func (e promptEncoder) readFile(path, key string) ([]promptRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	defer f.Close()
	var out []promptRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			return nil, fmt.Errorf("generate: %s:%d: not a JSON object: %w", path, line, err)
		}
		v, ok := obj[key]
		if !ok {
			return nil, fmt.Errorf("generate: %s:%d: no %q field (set --input-key)", path, line, key)
		}
		rec, err := e.encode(v)
		if err != nil {
			return nil, fmt.Errorf("generate: %s:%d: %w", path, line, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("generate: read %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("generate: %s holds no prompts", path)
	}
	return out, nil
}

// generateAll submits every request at once (the engine batches them)
// and draws a progress bar on progress (nil: none).
func generateAll(ctx context.Context, eng *generate.Engine, reqs []generate.Request, progress io.Writer) ([]generate.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]generate.Result, len(reqs))
	var done atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := eng.Generate(ctx, reqs[i:i+1])
			if err != nil {
				once.Do(func() { firstErr = err; cancel() })
				return
			}
			results[i] = res[0]
			done.Add(1)
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	start, tok0 := time.Now(), eng.Stats().GeneratedTokens
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			drawProgress(progress, int(done.Load()), len(reqs), eng.Stats().GeneratedTokens-tok0, time.Since(start))
			if progress != nil {
				fmt.Fprintln(progress)
			}
			if firstErr != nil {
				return nil, fmt.Errorf("generate: %w", firstErr)
			}
			return results, nil
		case <-tick.C:
			drawProgress(progress, int(done.Load()), len(reqs), eng.Stats().GeneratedTokens-tok0, time.Since(start))
		}
	}
}

// drawProgress redraws "[#####.....] 12/64 prompts, 3051 tok/s, 4.2s".
func drawProgress(w io.Writer, done, total, tokens int, elapsed time.Duration) {
	if w == nil {
		return
	}
	const width = 30
	fill := width * done / max(total, 1)
	rate := float64(tokens) / max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "\rgenerate [%s%s] %d/%d prompts, %.0f tok/s, %.1fs ", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		done, total, rate, elapsed.Seconds())
}

// printTexts writes the completions of one prompt as plain text.
func printTexts(w io.Writer, r generate.Result) error {
	for i, c := range r.Completions {
		if len(r.Completions) > 1 {
			if _, err := fmt.Fprintf(w, "--- sample %d (%s, %d tokens) ---\n", i, c.FinishReason, len(c.Tokens)); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintln(w, c.Text); err != nil {
			return err
		}
	}
	return nil
}

// writeRecords writes one JSON line per prompt to path ("" = stdout).
func writeRecords(path string, prompts []promptRecord, results []generate.Result) (err error) {
	w := io.Writer(os.Stdout)
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("generate: write %s: %w", path, cerr)
			}
		}()
		w = f
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i, r := range results {
		rec := generateRecord{Index: i, Prompt: prompts[i].value, PromptTokens: r.PromptTokens}
		for _, c := range r.Completions {
			rec.Completions = append(rec.Completions, completionRecord{Text: c.Text, Tokens: c.Tokens, LogProbs: c.LogProbs,
				RawLogProbs: c.RawLogProbs, FinishReason: string(c.FinishReason), WeightVersion: c.WeightVersion})
		}
		if err := enc.Encode(rec); err != nil {
			return fmt.Errorf("generate: write %s: %w", path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("generate: write %s: %w", path, err)
	}
	return nil
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// ---------------------------------------------------------------------------
// The model behind generate and serve.

// rolloutModel is what generate and serve need from --model: the model,
// its tokenizer, its chat template (nil if none), the ids that end a
// sample and whether prompts start with BOS.
type rolloutModel struct {
	loaded *load.Loaded
	dec    model.Decoder
	tok    tokenizer.Tokenizer
	tmpl   *chattmpl.Template
	eos    []int32
	bos    int // prepended to plain-text prompts; −1: none
	name   string
	dir    string // folder with the tokenizer files ("" for the embedded model)
}

// rolloutFlags are the model flags generate and serve share.
type rolloutFlags struct {
	model, tokenizer, bos string
	engine                generate.Config
}

func (f *rolloutFlags) register(fs *flag.FlagSet) {
	d := generate.DefaultConfig()
	fs.StringVar(&f.model, "model", load.DefaultModel, "model: HF folder, llama2.c file, Hub id in the local HF cache, or "+load.DefaultModel+" (embedded)")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer file or folder (default: the model folder's, tokenizer.bin next to a llama2.c file, tok512 for "+load.DefaultModel+")")
	fs.StringVar(&f.bos, "bos", "auto", "prepend BOS to text prompts: auto (tokenizer_config.json's add_bos_token; on for llama2.c models), on or off")
	fs.IntVar(&f.engine.KVCacheMB, "kv-cache-mb", d.KVCacheMB, "KV-cache budget in MiB (pages are used only as blocks fill)")
	fs.IntVar(&f.engine.BlockSize, "block-size", d.BlockSize, "tokens per KV-cache block")
	fs.IntVar(&f.engine.MaxSeqs, "max-seqs", d.MaxSeqs, "most sequences decoded together")
	fs.IntVar(&f.engine.MaxBatchTokens, "max-batch-tokens", d.MaxBatchTokens, "most new tokens per model step (prompts are fed in chunks)")
	fs.BoolVar(&f.engine.NoPrefixSharing, "no-prefix-sharing", false, "prefill the prompt once per sample instead of sharing its KV blocks")
}

// loadRolloutModel loads the model, tokenizer, template and stop ids.
func loadRolloutModel(f *rolloutFlags) (*rolloutModel, error) {
	l, err := load.Load(f.model, load.Options{Hub: hubOptions(), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return nil, err
	}
	if l.Score != nil {
		return nil, fmt.Errorf("%s is a score model (%s), not a causal LM", f.model, l.Arch)
	}
	dec, ok := l.Model.(model.Decoder)
	if !ok {
		return nil, fmt.Errorf("%s: %T cannot decode incrementally", f.model, l.Model)
	}
	rm := &rolloutModel{loaded: l, dec: dec, name: filepath.Base(strings.TrimSuffix(l.Path, "/"))}
	llama2c := l.Location.Kind == hub.Llama2CFile || l.Path == load.EmbeddedPath
	if l.Path == load.EmbeddedPath {
		rm.name = load.DefaultModel
	}
	if rm.tok, rm.dir, err = rolloutTokenizer(f.tokenizer, l, llama2c); err != nil {
		return nil, err
	}
	if rm.dir != "" {
		if t, err := chattmpl.Load(rm.dir); err == nil {
			rm.tmpl = t
		}
	}
	rm.eos = stopIDs(rm.tok, rm.dir, llama2c)
	if rm.bos, err = bosID(f.bos, rm.tok, rm.dir, llama2c); err != nil {
		return nil, err
	}
	return rm, nil
}

// rolloutTokenizer finds the tokenizer; it also returns the folder holding
// the tokenizer files ("" when there is none).
func rolloutTokenizer(path string, l *load.Loaded, llama2c bool) (tokenizer.Tokenizer, string, error) {
	switch {
	case path != "":
		tok, err := tokenizer.Load(path)
		dir := path
		if st, e := os.Stat(path); e == nil && !st.IsDir() {
			dir = filepath.Dir(path)
		}
		return tok, dir, err
	case l.Path == load.EmbeddedPath:
		tok, err := tokenizer.ParseLlama2C(assets.Tok512())
		return tok, "", err
	case llama2c:
		p := filepath.Join(filepath.Dir(l.Path), "tokenizer.bin")
		tok, err := tokenizer.Load(p)
		if err != nil {
			return nil, "", fmt.Errorf("llama2.c model %s needs --tokenizer (no %s): %w", l.Path, p, err)
		}
		return tok, filepath.Dir(l.Path), nil
	}
	tok, err := tokenizer.Load(l.Path)
	return tok, l.Path, err
}

// stopIDs are the tokenizer's EOS plus generation_config.json's
// eos_token_id (a number or a list); llama2.c models also stop at BOS, as
// run.c does (BOS separates stories).
func stopIDs(tok tokenizer.Tokenizer, dir string, llama2c bool) []int32 {
	var ids []int32
	add := func(id int) {
		if id >= 0 && !slices.Contains(ids, int32(id)) {
			ids = append(ids, int32(id))
		}
	}
	sp := tok.Specials()
	add(sp.EOS)
	if llama2c {
		add(sp.BOS)
	}
	if dir != "" {
		var gc struct {
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if b, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil && json.Unmarshal(b, &gc) == nil {
			var one int
			var many []int
			if json.Unmarshal(gc.EOS, &one) == nil {
				add(one)
			} else if json.Unmarshal(gc.EOS, &many) == nil {
				for _, id := range many {
					add(id)
				}
			}
		}
	}
	return ids
}

// bosID decides whether text prompts start with BOS.
func bosID(mode string, tok tokenizer.Tokenizer, dir string, llama2c bool) (int, error) {
	bos := tok.Specials().BOS
	on := false
	switch mode {
	case "on":
		if bos < 0 {
			return -1, errors.New("--bos on: the tokenizer defines no BOS token")
		}
		on = true
	case "off":
	case "auto":
		on = llama2c
		var cfg struct {
			AddBOS *bool `json:"add_bos_token"`
		}
		if b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json")); dir != "" && err == nil && json.Unmarshal(b, &cfg) == nil && cfg.AddBOS != nil {
			on = *cfg.AddBOS
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) && dir != "" {
			return -1, err
		}
	default:
		return -1, fmt.Errorf("--bos must be auto, on or off, got %q", mode)
	}
	if !on || bos < 0 {
		return -1, nil
	}
	return bos, nil
}

// newRolloutEngine starts the engine with the model's stop ids.
func (rm *rolloutModel) newEngine(cfg generate.Config) (*generate.Engine, error) {
	cfg.EOS = rm.eos
	return generate.New(rm.dec, rm.tok, cfg)
}

// encodeText tokenizes a plain-text prompt (BOS first when the model wants it).
func (rm *rolloutModel) encodeText(text string) []int32 {
	var ids []int32
	if rm.bos >= 0 {
		ids = append(ids, int32(rm.bos))
	}
	for _, id := range rm.tok.Encode(text) {
		ids = append(ids, int32(id))
	}
	return ids
}

// encodeChat renders messages with the chat template and tokenizes the
// result (special tokens written by the template become their ids).
func (rm *rolloutModel) encodeChat(msgs []chattmpl.Message) ([]int32, error) {
	if rm.tmpl == nil {
		return nil, fmt.Errorf("model %s has no chat template", rm.name)
	}
	text, err := rm.tmpl.Render(msgs, chattmpl.RenderOptions{AddGenerationPrompt: true})
	if err != nil {
		return nil, err
	}
	var ids []int32
	for _, id := range rm.tok.EncodeWith(text, tokenizer.EncodeOptions{ParseSpecial: true}) {
		ids = append(ids, int32(id))
	}
	return ids, nil
}
