package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
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
	fs.IntVar(&f.p.MaxNewTokens, "max-new-tokens", f.p.MaxNewTokens, "most tokens generated per completion; it must fit in the model's context after the prompt (unset: lowered to what fits)")
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

// check refuses what the engine would quietly turn into a default (n 0
// means 1, max new tokens 0 means 256 to generate.SamplingParams): as the
// server answers n 0 and max_tokens 0 with a 400, the command says so.
func (f *samplingFlags) check() error {
	switch {
	case f.p.N < 1:
		return fmt.Errorf("--n must be ≥ 1, got %d", f.p.N)
	case f.p.MaxNewTokens < 1:
		return fmt.Errorf("--max-new-tokens must be ≥ 1, got %d", f.p.MaxNewTokens)
	}
	return nil
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
	prompt := fs.String("prompt", "", `one prompt (text); "" generates unconditionally, from BOS`)
	input := fs.String("input", "", "JSONL file of prompts: one object per line")
	key := fs.String("input-key", "prompt", "field of each --input object holding the prompt: a string, or a list of {role, content} messages")
	output := fs.String("output", "", "write one JSON line per prompt (completions, token ids, log-probs) here; default: text to stdout for --prompt, JSONL to stdout for --input")
	chat := fs.Bool("apply-chat-template", false, "wrap text prompts as a user message and render them with the model's chat template")
	system := fs.String("system", "", "system message put before each prompt (with --apply-chat-template)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	promptSet := set["prompt"]
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("generate: unexpected arguments %q (quote the prompt and pass it with --prompt)", fs.Args())
	case promptSet == (*input != ""):
		return errors.New("generate: give exactly one of --prompt and --input")
	case *system != "" && !*chat:
		return errors.New("generate: --system needs --apply-chat-template")
	}
	sf.p.StopStrings = sf.stops
	if err := sf.check(); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if err := sf.p.Validate(); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if err := rf.engine.Validate(); err != nil {
		return err
	}
	if err := ef.apply(); err != nil {
		return err
	}
	rm, err := rf.open()
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, rm.Summary)
	enc := data.PromptEncoder{Tok: rm.Tok, Template: rm.Template, ChatText: *chat, System: *system, BOS: rm.BOS()}
	if _, err := rm.NeedTemplate(); *chat && err != nil {
		return fmt.Errorf("generate: --apply-chat-template: model %s: %w", rm.Name, err)
	}
	var prompts []promptRecord
	if promptSet {
		p, err := enc.Text(*prompt)
		if err != nil {
			return fmt.Errorf("generate: --prompt: %w", err)
		}
		prompts = []promptRecord{{value: mustJSON(*prompt), ids: p.IDs}}
	} else if prompts, err = readPrompts(&enc, *input, *key); err != nil {
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
		if err := fitLength(eng, &reqs[i], set["max-new-tokens"]); err != nil {
			return fmt.Errorf("generate: prompt %d: %w", i, err)
		}
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
	if promptSet && *output == "" {
		return printTexts(os.Stdout, results[0])
	}
	return writeRecords(*output, prompts, results)
}

// fitLength holds a request to the model's context as serve does: a
// --max-new-tokens given must fit after the prompt, the default is lowered
// to what fits (generate.Engine.FitLength).
func fitLength(eng *generate.Engine, r *generate.Request, given bool) error {
	err := eng.FitLength(r, given)
	if le := (*generate.LengthError)(nil); errors.As(err, &le) && le.Completion > 0 {
		return fmt.Errorf("%w (--max-new-tokens: at most %d fit after this prompt)", err, eng.Room(le.Prompt))
	}
	return err
}

// readPrompts reads and encodes the prompts of a JSONL file (each line's
// key field: a string or a list of messages); errors name the line.
func readPrompts(enc *data.PromptEncoder, path, key string) ([]promptRecord, error) {
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
		p, err := enc.Value(v)
		if err != nil {
			return nil, fmt.Errorf("generate: %s:%d: %w", path, line, err)
		}
		out = append(out, promptRecord{value: v, ids: p.IDs})
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
				if st := eng.Stats(); eng.Config().PrefixCaching {
					fmt.Fprintf(progress, "prefix cache: %d of %d prompt tokens found cached (hit rate %.1f %%)\n",
						st.PrefixHitTokens, st.PrefixQueryTokens, 100*st.PrefixHitRate())
				}
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

// rolloutFlags are the model flags generate and serve share.
type rolloutFlags struct {
	model, tokenizer, bos string
	engine                generate.Config
}

func (f *rolloutFlags) register(fs *flag.FlagSet) {
	d := generate.DefaultConfig()
	fs.StringVar(&f.model, "model", load.DefaultModel, "model: HF folder, llama2.c file, Hub id in the local HF cache, or "+load.DefaultModel+" (embedded)")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer file or folder (default: the model folder's, tokenizer.bin next to a llama2.c file, tok512 for "+load.DefaultModel+")")
	fs.StringVar(&f.bos, "bos", string(load.BOSAuto), "start prompts with BOS: auto (tokenizer_config.json's add_bos_token; without it, on when the tokenizer adds BOS itself or for llama2.c models), on or off")
	fs.IntVar(&f.engine.KVCacheMB, "kv-cache-mb", d.KVCacheMB, "KV-cache budget in MiB (pages are used only as blocks fill)")
	fs.IntVar(&f.engine.BlockSize, "block-size", d.BlockSize, "tokens per KV-cache block")
	fs.IntVar(&f.engine.MaxSeqs, "max-seqs", d.MaxSeqs, "most sequences decoded together")
	fs.IntVar(&f.engine.MaxBatchTokens, "max-batch-tokens", d.MaxBatchTokens, "most new tokens per model step (prompts are fed in chunks)")
	fs.IntVar(&f.engine.MaxPrefillChunk, "max-prefill-chunk", 0, "most prompt tokens one request feeds per step before the other prompts waiting have had theirs, so a long prompt does not hold them back (0: max-batch-tokens/4)")
	fs.BoolVar(&f.engine.NoPrefixSharing, "no-prefix-sharing", false, "prefill the prompt once per sample instead of sharing its KV blocks")
	registerDType(fs, &f.engine.DType)
	fs.BoolVar(&f.engine.PrefixCaching, "enable-prefix-caching", false, "keep full KV blocks after a request and reuse them for later prompts with the same prefix (vLLM's automatic prefix caching; evicted least-recently-used, dropped on new weights)")
}

// rolloutModel is an opened causal LM that decodes incrementally.
type rolloutModel struct {
	*load.Bundle
	dec model.Decoder
}

// open opens the model bundle (load.Open) for generation.
func (f *rolloutFlags) open() (*rolloutModel, error) {
	b, err := load.Open(f.model, load.OpenOptions{Load: loadOptions(), Tokenizer: f.tokenizer, BOS: load.BOSMode(f.bos)})
	if err != nil {
		return nil, err
	}
	if b.Score != nil {
		return nil, fmt.Errorf("%s is a score model (%s), not a causal LM", f.model, b.Arch)
	}
	dec, ok := b.Model.(model.Decoder)
	if !ok {
		return nil, fmt.Errorf("%s: %T cannot decode incrementally", f.model, b.Model)
	}
	return &rolloutModel{Bundle: b, dec: dec}, nil
}

// newEngine starts the engine with the model's stop ids (for llama2.c
// models BOS too, as run.c).
func (rm *rolloutModel) newEngine(cfg generate.Config) (*generate.Engine, error) {
	cfg.EOS = rm.GenerationStops()
	return generate.New(rm.dec, rm.Tok, cfg)
}
