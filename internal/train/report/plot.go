package report

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// Series is one named curve of a plot.
type Series struct {
	Name   string
	Color  color.RGBA
	X, Y   []float64
	Points bool // draw a marker at every point (sparse series such as eval)
}

// Plot geometry in pixels.
const (
	plotW, plotH                       = 900, 520
	marginL, marginR, marginT, marginB = 78, 24, 44, 52
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grid  = color.RGBA{225, 225, 225, 255}
	// Palette holds distinct colours for curves.
	Palette = []color.RGBA{{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {255, 127, 14, 255}, {148, 103, 189, 255}}
)

// WritePlot draws the series on shared axes (x: step) with a title and a
// legend and writes a PNG to path atomically. Non-finite points are left
// out. It uses no plotting library: lines, ticks and a 5×7 bitmap font.
func WritePlot(path, title, ylabel string, series []Series) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	fill(img, img.Bounds(), white)
	x0, x1, y0, y1, ok := bounds(series)
	if !ok {
		x0, x1, y0, y1 = 0, 1, 0, 1
	}
	p := plotter{img: img, x0: x0, x1: x1, y0: y0, y1: y1}
	p.axes(title, ylabel)
	for _, s := range series {
		p.curve(s)
	}
	p.legend(series)
	return writePNG(path, img)
}

// bounds returns the range of the finite points, padded by 5 % in y.
func bounds(series []Series) (x0, x1, y0, y1 float64, ok bool) {
	x0, y0, x1, y1 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, s := range series {
		for i := range s.X {
			if finite(s.X[i]) && finite(s.Y[i]) {
				x0, x1 = math.Min(x0, s.X[i]), math.Max(x1, s.X[i])
				y0, y1 = math.Min(y0, s.Y[i]), math.Max(y1, s.Y[i])
				ok = true
			}
		}
	}
	if !ok {
		return
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1 == y0 {
		y0, y1 = y0-0.5, y1+0.5
	}
	pad := 0.05 * (y1 - y0)
	return x0, x1, y0 - pad, y1 + pad, true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// plotter maps data coordinates into the plot area of img.
type plotter struct {
	img            *image.RGBA
	x0, x1, y0, y1 float64
}

func (p plotter) px(x float64) int {
	return marginL + int(math.Round((x-p.x0)/(p.x1-p.x0)*float64(plotW-marginL-marginR)))
}

func (p plotter) py(y float64) int {
	return plotH - marginB - int(math.Round((y-p.y0)/(p.y1-p.y0)*float64(plotH-marginT-marginB)))
}

// axes draws the frame, grid lines, tick labels and titles.
func (p plotter) axes(title, ylabel string) {
	for _, v := range ticks(p.y0, p.y1) {
		y := p.py(v)
		line(p.img, marginL, y, plotW-marginR, y, grid)
		s := label(v)
		text(p.img, marginL-8-textWidth(s, 1), y-3, s, 1, black)
	}
	for _, v := range ticks(p.x0, p.x1) {
		x := p.px(v)
		line(p.img, x, marginT, x, plotH-marginB, grid)
		s := label(v)
		text(p.img, x-textWidth(s, 1)/2, plotH-marginB+8, s, 1, black)
	}
	l, r, t, b := marginL, plotW-marginR, marginT, plotH-marginB
	line(p.img, l, t, r, t, black)
	line(p.img, l, b, r, b, black)
	line(p.img, l, t, l, b, black)
	line(p.img, r, t, r, b, black)
	text(p.img, (plotW-textWidth(title, 2))/2, 12, title, 2, black)
	text(p.img, (plotW-textWidth("step", 1))/2, plotH-20, "step", 1, black)
	text(p.img, 8, marginT-14, ylabel, 1, black)
}

// curve draws a series as a 2-pixel polyline (and markers when asked).
func (p plotter) curve(s Series) {
	havePrev := false
	var px0, py0 int
	for i := range s.X {
		if !finite(s.X[i]) || !finite(s.Y[i]) {
			havePrev = false
			continue
		}
		x, y := p.px(s.X[i]), p.py(s.Y[i])
		if havePrev {
			line(p.img, px0, py0, x, y, s.Color)
			line(p.img, px0, py0+1, x, y+1, s.Color)
		}
		if s.Points || len(s.X) == 1 {
			fill(p.img, image.Rect(x-3, y-3, x+4, y+4), s.Color)
		}
		px0, py0, havePrev = x, y, true
	}
}

// legend lists the series in the top-right corner.
func (p plotter) legend(series []Series) {
	w := 0
	for _, s := range series {
		w = max(w, textWidth(s.Name, 1))
	}
	x, y := plotW-marginR-w-40, marginT+10
	for _, s := range series {
		fill(p.img, image.Rect(x, y+2, x+20, y+5), s.Color)
		text(p.img, x+26, y, s.Name, 1, black)
		y += 14
	}
}

// ticks returns about five round values covering [lo, hi].
func ticks(lo, hi float64) []float64 {
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= 6 {
			step *= m
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

// label formats a tick value compactly ("0.25", "1e-05", "1200").
func label(v float64) string {
	if math.Abs(v) < 1e-12 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// text draws s at (x, y) (top-left) with the 5×7 font at an integer scale.
func text(img *image.RGBA, x, y int, s string, scale int, c color.RGBA) {
	for _, r := range strings.ToLower(s) {
		g := font5x7[unicode.ToLower(r)]
		for row := 0; row < 7; row++ {
			for col := 0; col < 5; col++ {
				if g[row]&(1<<(4-col)) != 0 {
					fill(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), c)
				}
			}
		}
		x += 6 * scale
	}
}

func textWidth(s string, scale int) int { return len([]rune(s)) * 6 * scale }

// line draws a 1-pixel line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// writePNG encodes img to path through a temporary file and a rename; the
// file is world-readable (0644, like the report page that shows it).
func writePNG(path string, img image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("plot: %w", err)
	}
	if err := png.Encode(tmp, img); err != nil {
		tmp.Close()
		return fmt.Errorf("plot: %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
