package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplitSpans_Behaviors(t *testing.T) {
	// "a-b--c" split on "-".
	s := "a-b--c"
	matches := literalMatcher("-").findAll(nil, s)
	tests := []struct {
		b      splitBehavior
		invert bool
		want   []string
	}{
		{splitRemoved, false, []string{"a", "b", "c"}},
		{splitIsolated, false, []string{"a", "-", "b", "-", "-", "c"}},
		{splitMergedWithPrevious, false, []string{"a-", "b-", "-", "c"}},
		{splitMergedWithNext, false, []string{"a", "-b", "-", "-c"}},
		{splitContiguous, false, []string{"a", "-", "b", "--", "c"}},
		{splitRemoved, true, []string{"-", "-", "-"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%v", tt.b, tt.invert), func(t *testing.T) {
			var got []string
			for _, sp := range splitSpans(len(s), matches, tt.b, tt.invert) {
				got = append(got, s[sp[0]:sp[1]])
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// sliceSink collects pre-tokens for inspection.
type sliceSink []piece

func (s *sliceSink) add(p piece) { *s = append(*s, p) }

func TestMetaspacePre(t *testing.T) {
	tests := []struct {
		name    string
		m       metaspacePre
		atStart bool
		want    []string
	}{
		{"always split", metaspacePre{"▁", "always", true}, false, []string{"▁hello", "▁world"}},
		{"first at start", metaspacePre{"▁", "first", false}, true, []string{"▁hello▁world"}},
		{"first later", metaspacePre{"▁", "first", false}, false, []string{"hello▁world"}},
		{"never", metaspacePre{"▁", "never", true}, true, []string{"hello", "▁world"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps sliceSink
			tt.m.preTokenize(piece{text: "hello world", atStart: tt.atStart}, &ps)
			var got []string
			for _, p := range ps {
				got = append(got, p.text)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecoders(t *testing.T) {
	tests := []struct {
		name string
		json string
		toks []string
		want string
	}{
		{"llama", llamaDecoderJSON, []string{"▁Hello", "<0xE2>", "<0x82>", "<0xAC>", "▁x"}, "Hello€ x"},
		{"bad bytes", llamaDecoderJSON, []string{"a", "<0xE2>", "<0x82>", "b"}, "a\ufffd\ufffdb"},
		{"metaspace first token", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always"}`, []string{"▁a▁b", "▁c"}, "ab c"},
		{"metaspace never", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"never"}`, []string{"▁a", "▁c"}, " a c"},
		{"strip both", `{"type":"Sequence","decoders":[{"type":"Fuse"},{"type":"Strip","content":"x","start":2,"stop":1}]}`, []string{"xxx", "axx"}, "xax"},
		{"byte level raw added", `{"type":"ByteLevel"}`, []string{"hiĠthere", "<|x|>\n"}, "hi there<|x|>\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseDecoder(json.RawMessage(tt.json), "decoder")
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(d.decodeChain(tt.toks), ""); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNormalizers(t *testing.T) {
	tests := []struct{ json, in, want string }{
		{`{"type":"NFC"}`, "e\u0301", "\u00e9"},
		{`{"type":"NFKD"}`, "\u00bd", "1\u20442"},
		{`{"type":"Lowercase"}`, "ABC", "abc"},
		{`{"type":"Strip","strip_left":true,"strip_right":false}`, "  a  ", "a  "},
		{`{"type":"Replace","pattern":{"Regex":"\\s+"},"content":"_"}`, "a \u00a0b", "a_b"},
		{llamaNormalizerJSON, "a b", "▁a▁b"},
		{llamaNormalizerJSON, "", ""},
	}
	for _, tt := range tests {
		n, err := parseNormalizer(json.RawMessage(tt.json), "normalizer")
		if err != nil {
			t.Fatal(err)
		}
		if got := n.normalize(tt.in); got != tt.want {
			t.Errorf("%s(%q) = %q, want %q", tt.json, tt.in, got, tt.want)
		}
	}
}

// charTokenizer builds a character-level BPE tokenizer.json with the given
// model options and added tokens, for the option tests below.
func charTokenizer(t *testing.T, modelOpts, added string) *HF {
	t.Helper()
	js := `{"added_tokens":[` + added + `],"normalizer":null,"pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true},
"decoder":{"type":"Sequence","decoders":[{"type":"Metaspace","replacement":"▁","prepend_scheme":"always"},{"type":"ByteFallback"},{"type":"Fuse"}]},
"model":{"type":"BPE",` + modelOpts + `"vocab":{"<unk>":0,"<0xC3>":1,"<0xA9>":2,"▁":3,"a":4,"b":5,"▁a":6,"ab":7,"▁ab":8,"<m>":9},
"merges":[["▁","a"],["a","b"],["▁a","b"]]}}`
	tok, err := ParseHF([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestHF_ModelOptions(t *testing.T) {
	tests := []struct {
		name  string
		model string
		text  string
		want  []int
	}{
		{"merges", ``, "ab", []int{8}},
		{"byte fallback", `"byte_fallback":true,"unk_token":"<unk>",`, "é", []int{3, 1, 2}},
		{"unk not fused", `"unk_token":"<unk>",`, "xyb", []int{3, 0, 0, 5}},
		{"unk fused", `"unk_token":"<unk>","fuse_unk":true,`, "xyb", []int{3, 0, 5}},
		{"no unk drops", ``, "xab", []int{8}}, // x vanishes, ▁ab still merges
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := charTokenizer(t, tt.model, "").Encode(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

func TestHF_IgnoreMerges(t *testing.T) {
	// "abab" is in the vocabulary, but merges alone cannot reach it.
	base := `{"added_tokens":[],"pre_tokenizer":null,"model":{"type":"BPE",%s"vocab":{"a":0,"b":1,"ab":2,"abab":3},"merges":[["a","b"]]}}`
	for _, tt := range []struct {
		opt  string
		want []int
	}{{``, []int{2, 2}}, {`"ignore_merges":true,`, []int{3}}} {
		tok, err := ParseHF([]byte(fmt.Sprintf(base, tt.opt)))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("abab"); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.opt, got, tt.want)
		}
	}
}

func TestHF_AddedTokenOptions(t *testing.T) {
	tests := []struct {
		name  string
		added string
		text  string
		want  []int
	}{
		{"plain", `{"id":9,"content":"<m>"}`, "a<m>b", []int{6, 9, 3, 5}},
		{"lstrip", `{"id":9,"content":"<m>","lstrip":true}`, "a  <m>b", []int{6, 9, 3, 5}},
		{"rstrip", `{"id":9,"content":"<m>","rstrip":true}`, "a<m>  b", []int{6, 9, 3, 5}},
		{"single word blocks", `{"id":9,"content":"ab","single_word":true}`, "aab", []int{6, 7}},
		{"single word matches", `{"id":9,"content":"ab","single_word":true}`, "a ab", []int{6, 3, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := charTokenizer(t, "", tt.added).Encode(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

func TestLoad_Forms(t *testing.T) {
	dir := t.TempDir()
	raw, err := readMaybeGzip(gpt2Path)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(plain, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	want := gpt2(t).Encode("Hello world")
	for _, p := range []string{plain, dir, gpt2Path, filepath.Dir(gpt2Path)} {
		tok, err := Load(p)
		if err != nil {
			t.Fatalf("Load(%s): %v", p, err)
		}
		if got := tok.Encode("Hello world"); !slices.Equal(got, want) {
			t.Errorf("Load(%s).Encode = %v, want %v", p, got, want)
		}
	}
	if _, ok := mustLoad(t, tok512Path).(*Llama2C); !ok {
		t.Error("tok512.bin did not load as a llama2.c tokenizer")
	}
}

func TestHF_ApplyConfig(t *testing.T) {
	tok, err := ParseHF([]byte(tinyJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.ApplyConfig([]byte(`{"bos_token": {"content": "<x>"}, "eos_token": "ab", "pad_token": null}`)); err != nil {
		t.Fatal(err)
	}
	if got := tok.Specials(); got != (Specials{BOS: 5, EOS: 2, PAD: -1, UNK: -1}) {
		t.Errorf("Specials = %+v", got)
	}
	if err := tok.ApplyConfig([]byte(`{"eos_token": "<nope>"}`)); err == nil || !strings.Contains(err.Error(), "eos_token") {
		t.Errorf("err = %v, want it to name eos_token", err)
	}
}
