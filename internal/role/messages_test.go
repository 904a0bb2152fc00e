package role

import (
	"slices"
	"strings"
	"testing"
)

func TestSequences_Validate(t *testing.T) {
	cases := []struct {
		name string
		s    Sequences
		want string // "" = valid
	}{
		{"OK", Sequences{Tokens: [][]int32{{1, 2, 3}, {1, 4}}, PromptLens: []int{1, 1}}, ""},
		{"Masks", Sequences{Tokens: [][]int32{{1, 2, 3}}, PromptLens: []int{1}, ActionMasks: [][]bool{{true, false}}}, ""},
		{"Lengths", Sequences{Tokens: [][]int32{{1, 2}}, PromptLens: []int{1, 1}}, "2 prompt lengths for 1 sequences"},
		{"NoPrompt", Sequences{Tokens: [][]int32{{1, 2}}, PromptLens: []int{0}}, "leaves no prompt or no response"},
		{"NoResponse", Sequences{Tokens: [][]int32{{1, 2}}, PromptLens: []int{2}}, "leaves no prompt or no response"},
		{"MaskLength", Sequences{Tokens: [][]int32{{1, 2, 3}}, PromptLens: []int{1}, ActionMasks: [][]bool{{true}}}, "action mask has 1 entries for 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSequences_MaskPad(t *testing.T) {
	s := Sequences{Tokens: [][]int32{{1, 5, 6, 7}, {1, 2, 8}}, PromptLens: []int{1, 2}, ActionMasks: [][]bool{{true, false, true}, {true}}}
	if s.Width() != 3 || !slices.Equal(s.ResponseLens(), []int{3, 1}) || !slices.Equal(s.Response(1), []int32{8}) {
		t.Fatalf("width %d, lens %v", s.Width(), s.ResponseLens())
	}
	if m := s.Mask(); !slices.Equal(m.Data, []float32{1, 0, 1, 1, 0, 0}) {
		t.Fatalf("mask %v", m.Data)
	}
	rows := PerToken{{0.5, -1, 2}, {3}}
	p := rows.Pad(3)
	if !slices.Equal(p.Data, []float32{0.5, -1, 2, 3, 0, 0}) {
		t.Fatalf("pad %v", p.Data)
	}
	back := Unpad(p, s.ResponseLens())
	for i := range rows {
		if !slices.Equal(back[i], rows[i]) {
			t.Fatalf("round trip row %d: %v", i, back[i])
		}
	}
	back[0][0] = 9
	if p.Data[0] == 9 {
		t.Fatal("Unpad returned views, not copies")
	}
	sel := s.Select([]int{1, 0})
	if sel.PromptLens[0] != 2 || !sel.ActionMasks[1][2] || rows.Select([]int{1})[0][0] != 3 {
		t.Fatalf("select %+v", sel)
	}
}

func TestActorMicroBatch_Validate(t *testing.T) {
	s := Sequences{Tokens: [][]int32{{1, 2, 3}}, PromptLens: []int{1}}
	good := ActorMicroBatch{Seqs: s, OldLogProbs: PerToken{{0, 0}}, Advantages: PerToken{{1, 1}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.Advantages = PerToken{{1}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "advantages row 0 has 1 values for 2") {
		t.Fatalf("got %v", err)
	}
	c := CriticMicroBatch{Seqs: s, OldValues: PerToken{{0, 0}}, Returns: PerToken{}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "returns has 0 rows") {
		t.Fatalf("got %v", err)
	}
}
