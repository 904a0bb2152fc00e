package tokenizer

import (
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// Test tokenizers are loaded once per test binary: the Qwen3 file takes a
// few hundred milliseconds to parse.
var (
	loadOnce  sync.Map // path -> *loaded
	goldenRaw struct {
		once sync.Once
		data map[string]json.RawMessage
		err  error
	}
)

type loaded struct {
	once sync.Once
	tok  Tokenizer
	err  error
}

func mustLoad(t testing.TB, path string) Tokenizer {
	t.Helper()
	v, _ := loadOnce.LoadOrStore(path, &loaded{})
	l := v.(*loaded)
	l.once.Do(func() { l.tok, l.err = Load(path) })
	if l.err != nil {
		t.Fatalf("Load(%s): %v", path, l.err)
	}
	return l.tok
}

const (
	gpt2Path   = "testdata/gpt2/tokenizer.json.gz"
	qwen3Dir   = "testdata/qwen3"
	tok512Path = "testdata/tok512.bin"
)

func gpt2(t testing.TB) *HF        { return mustLoad(t, gpt2Path).(*HF) }
func qwen3(t testing.TB) *HF       { return mustLoad(t, qwen3Dir).(*HF) }
func tok512(t testing.TB) *Llama2C { return mustLoad(t, tok512Path).(*Llama2C) }

// goldenCase is one string of tokenizer_golden_llamacpp.json.
type goldenCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func golden(t testing.TB, key string) []goldenCase {
	t.Helper()
	goldenRaw.once.Do(func() {
		b, err := os.ReadFile("testdata/tokenizer_golden_llamacpp.json")
		if err != nil {
			goldenRaw.err = err
			return
		}
		goldenRaw.err = json.Unmarshal(b, &goldenRaw.data)
	})
	if goldenRaw.err != nil {
		t.Fatal(goldenRaw.err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(goldenRaw.data[key], &cases); err != nil {
		t.Fatalf("golden key %q: %v", key, err)
	}
	if len(cases) == 0 {
		t.Fatalf("golden key %q: no cases", key)
	}
	return cases
}
