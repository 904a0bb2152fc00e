package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestLlama2C_EncodeReference compares with testdata/tok512_ref.json, made by
// tools/tokenizer_llama2c_ref.py (a line-by-line Python port of run.c).
func TestLlama2C_EncodeReference(t *testing.T) {
	b, err := os.ReadFile("testdata/tok512_ref.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 10 {
		t.Fatalf("only %d reference cases", len(ref.Cases))
	}
	tok := tok512(t)
	for _, c := range ref.Cases {
		if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
			t.Errorf("%q:\n got %v\nwant %v", c.Text, got, c.IDs)
		}
	}
}

// TestLlama2C_Encode pins a few encodings and facts of the stories260K
// tokenizer (see the assets README).
func TestLlama2C_Encode(t *testing.T) {
	tok := tok512(t)
	tests := []struct {
		name string
		text string
		want []int
	}{
		{"empty gets no dummy prefix", "", nil},
		{"newline is byte token 13", "\n", []int{410, 13}},
		// The first 15 greedy tokens of reference_greedy.json spell this.
		{"story opening", "Once upon a time, there was a little girl named Lily.",
			[]int{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tok.Encode(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
	if s := tok.Specials(); s != (Specials{BOS: 1, EOS: 2, PAD: -1, UNK: 0}) {
		t.Errorf("Specials() = %+v", s)
	}
	if tok.VocabSize() != 512 {
		t.Errorf("VocabSize() = %d, want 512", tok.VocabSize())
	}
	for _, name := range []string{"<s>", " t", "\u2581t"} {
		id, ok := tok.TokenID(name)
		if !ok || (name == "<s>" && id != 1) || (name != "<s>" && id != 259) {
			t.Errorf("TokenID(%q) = %d, %v", name, id, ok)
		}
	}
}

// runCEncode is a literal port of run.c's quadratic merge loop, kept in the
// test to check the heap-based Llama2C.encodeText on random text.
func runCEncode(t *Llama2C, text string) []int {
	var toks []int
	if text == "" {
		return nil
	}
	toks = append(toks, t.lookup[" "])
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := t.lookup[text[i:j]]; ok {
			toks = append(toks, id)
		} else {
			for k := i; k < j; k++ {
				toks = append(toks, int(text[k])+3)
			}
		}
		i = j
	}
	for {
		best, bestID, bestIdx := float32(-1e10), -1, -1
		for i := 0; i+1 < len(toks); i++ {
			id, ok := t.lookup[t.pieces[toks[i]]+t.pieces[toks[i+1]]]
			if ok && t.scores[id] > best {
				best, bestID, bestIdx = t.scores[id], id, i
			}
		}
		if bestIdx < 0 {
			return toks
		}
		toks[bestIdx] = bestID
		toks = slices.Delete(toks, bestIdx+1, bestIdx+2)
	}
}

func TestLlama2C_EncodeMatchesRunC(t *testing.T) {
	tok := tok512(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, text := range storyCorpus(rng, 300) {
		if got, want := tok.Encode(text), runCEncode(tok, text); !slices.Equal(got, want) {
			t.Fatalf("%q:\n got %v\nwant %v", text, got, want)
		}
	}
}

func TestLlama2C_RoundTrip(t *testing.T) {
	tok := tok512(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, text := range storyCorpus(rng, 300) {
		if got := tok.Decode(tok.Encode(text)); got != text {
			t.Fatalf("Decode(Encode(%q)) = %q", text, got)
		}
	}
}

func TestLlama2C_ParseSpecial(t *testing.T) {
	tok := tok512(t)
	text := "<s>Hi</s>"
	if got := tok.EncodeWith(text, EncodeOptions{ParseSpecial: true}); got[0] != 1 || got[len(got)-1] != 2 {
		t.Errorf("ParseSpecial: %v, want 1 ... 2", got)
	}
	if got := tok.Encode(text); slices.Contains(got, 1) || slices.Contains(got, 2) {
		t.Errorf("plain: %v contains a special id", got)
	}
}

// storyCorpus returns n strings: real text from the stories reference and
// random mixes of vocabulary pieces, spaces, newlines and non-ASCII runes
// (which take the byte fallback).
func storyCorpus(rng *rand.Rand, n int) []string {
	alphabet := []string{"a", "e", "t", "h", " ", " ", " the", "ing", "Lily", ".", ",", "!", "\n", "\t",
		"é", "—", "“", "”", "漢", "😀", "<", "s>", "0x", "'", "\u00a0", "7", "Tom", " was", "  "}
	texts := []string{"Once upon a time, there was a little girl named Lily. She loved to play outside.",
		"Tom and Sue went to the park.\nThey saw a big dog!", "   ", "x", "<s>", "<0x0A>", "\x00\x01\x7f"}
	for len(texts) < n {
		var sb strings.Builder
		for k := rng.IntN(30); k > 0; k-- {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		texts = append(texts, sb.String())
	}
	return texts
}

func TestParseLlama2C_Malformed(t *testing.T) {
	good, err := os.ReadFile(tok512Path)
	if err != nil {
		t.Fatal(err)
	}
	negLen := slices.Clone(good)
	binary.LittleEndian.PutUint32(negLen[4+4:], math.MaxUint32) // token 0 length -1
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "header"},
		{"truncated token", good[:len(good)-3], "runs past the end"},
		{"truncated header", good[:4+8+5+3], "truncated header"},
		{"negative length", negLen, "length -1"},
		{"too few tokens", good[:4+8+5], "byte fallback needs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLlama2C(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
