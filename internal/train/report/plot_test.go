package report

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestWritePlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loss.png")
	s := []Series{
		{Name: "train loss", Color: Palette[0], X: []float64{1, 2, 3, 4}, Y: []float64{3, 2.5, math.NaN(), 1.2}},
		{Name: "eval loss", Color: Palette[1], X: []float64{2, 4}, Y: []float64{2.8, 1.5}, Points: true},
	}
	if err := WritePlot(path, "sft loss", "loss", s); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != plotH {
		t.Fatalf("size %v", b)
	}
	// Both curve colours are present.
	for _, c := range []int{0, 1} {
		want := Palette[c]
		found := false
		for y := 0; y < plotH && !found; y++ {
			for x := 0; x < plotW; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(b>>8) == want.B {
					found = true
					break
				}
			}
		}
		if !found {
			t.Errorf("curve %d not drawn", c)
		}
	}
	if got := ticks(0, 1); len(got) < 3 || got[0] != 0 {
		t.Errorf("ticks(0, 1) = %v", got)
	}
}

// A plot is readable by others (a report page served from the run folder
// shows it), like every other file of the run: 0644, not CreateTemp's 0600.
func TestWritePlot_WorldReadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "reward.png")
	s := []Series{{Name: "train reward", Color: Palette[0], X: []float64{1, 2}, Y: []float64{0.1, 0.2}}}
	if err := WritePlot(path, "ppo reward", "reward", s); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("%s has mode %v, want -rw-r--r--", path, st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}
