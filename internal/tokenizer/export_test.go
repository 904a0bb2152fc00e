package tokenizer

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// gsm8kQuestions returns the questions of testdata/gsm8k_sample.jsonl.
func gsm8kQuestions(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("testdata/gsm8k_sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct{ Question, Answer string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Question, r.Answer)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLlama2C_HFJSON checks that the exported tokenizer.json, loaded back
// through Load, encodes and decodes exactly like the .bin tokenizer.
func TestLlama2C_HFJSON(t *testing.T) {
	native := tok512(t)
	data, err := native.HFJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	hf := loaded.(*HF)
	if hf.VocabSize() != native.VocabSize() || hf.Specials() != native.Specials() {
		t.Errorf("vocab %d specials %+v, want %d %+v", hf.VocabSize(), hf.Specials(), native.VocabSize(), native.Specials())
	}
	corpus := append(storyCorpus(rand.New(rand.NewPCG(5, 6)), 400), gsm8kQuestions(t)...)
	corpus = append(corpus, "<s>Hi</s> and <unk>", "a<s>b", "")
	for _, text := range corpus {
		for _, o := range []EncodeOptions{{}, {ParseSpecial: true}} {
			want := native.EncodeWith(text, o)
			got := hf.EncodeWith(text, o)
			if !slices.Equal(got, want) {
				t.Fatalf("%q %+v:\nexported %v\n    .bin %v", text, o, got, want)
			}
			if d, w := hf.Decode(want), native.Decode(want); d != w {
				t.Fatalf("Decode(%v): exported %q, .bin %q", want, d, w)
			}
		}
	}
}

// TestLlama2C_HFJSONMetaspaceChar pins the one documented difference: the
// exported normalizer turns spaces into "▁", so a literal "▁" in the text
// reads as a space there, while run.c sees an unknown character.
func TestLlama2C_HFJSONMetaspaceChar(t *testing.T) {
	native := tok512(t)
	data, err := native.HFJSON()
	if err != nil {
		t.Fatal(err)
	}
	hf, err := ParseHF(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hf.Encode("a\u2581b"), hf.Encode("a b"); !slices.Equal(got, want) {
		t.Errorf("exported: %v vs %v", got, want)
	}
	if got := native.Encode("a\u2581b"); slices.Equal(got, native.Encode("a b")) {
		t.Errorf(".bin should byte-fallback U+2581, got %v", got)
	}
}
