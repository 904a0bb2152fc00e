package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// benchText returns about 1 MB of GSM8K questions and answers: the file
// named by $GSM8K_JSONL when set (for example the full train.jsonl of the
// assets folder), otherwise testdata/gsm8k_sample.jsonl repeated.
func benchText(b *testing.B) string {
	b.Helper()
	path := os.Getenv("GSM8K_JSONL")
	if path == "" {
		path = "testdata/gsm8k_sample.jsonl"
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var records []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct{ Question, Answer string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			b.Fatal(err)
		}
		records = append(records, r.Question+"\n"+r.Answer+"\n\n")
	}
	if len(records) == 0 {
		b.Fatalf("%s: no records", path)
	}
	var sb strings.Builder
	for i := 0; sb.Len() < 1<<20; i++ {
		sb.WriteString(records[i%len(records)])
	}
	return sb.String()
}

// BenchmarkEncode measures encoding throughput (MB/s is the "MB/s" column).
// "warm" is the steady state, with the word cache filled by earlier rounds;
// "cold" empties the cache before every round.
func BenchmarkEncode(b *testing.B) {
	text := benchText(b)
	for _, tc := range []struct {
		name string
		tok  func(testing.TB) *HF
	}{{"gpt2", gpt2}, {"qwen3", qwen3}} {
		tok := tc.tok(b)
		b.Run(tc.name+"/warm", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.Encode(text)
			}
		})
		b.Run(tc.name+"/cold", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.model.cache = wordCache{}
				tok.Encode(text)
			}
		})
	}
	b.Run("tok512", func(b *testing.B) {
		tok := tok512(b)
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			tok.Encode(text)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	text := benchText(b)
	tok := qwen3(b)
	ids := tok.Encode(text)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Decode(ids)
	}
}
