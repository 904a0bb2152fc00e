package tokenizer
import "testing"
func BenchmarkLoadQwen(b *testing.B) { for i := 0; i < b.N; i++ { if _, err := Load(qwen3Dir); err != nil { b.Fatal(err) } } }
