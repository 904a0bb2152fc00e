package train

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress draws the training progress on one line: steps done, a bar,
// the step's headline metrics, tokens per second and the time left. On a
// terminal the line is redrawn in place; elsewhere (a log file, CI) a line
// is printed at most every few seconds. Log lines written through Progress
// (it is an io.Writer) clear the bar first and redraw it after, so the two
// never garble each other. Safe for concurrent use.
type Progress struct {
	mu        sync.Mutex // guards everything below
	w         io.Writer
	tty       bool
	total     int
	startStep int
	start     time.Time
	tokens    int64
	line      string // the bar as last drawn (tty)
	lastPrint time.Time
	now       func() time.Time
}

// plainEvery is how often a non-terminal progress line is printed.
const plainEvery = 5 * time.Second

// NewProgress returns a progress line for a run of total steps that starts
// (or resumes) at startStep. tty selects in-place redrawing.
func NewProgress(w io.Writer, tty bool, total, startStep int) *Progress {
	return &Progress{w: w, tty: tty, total: total, startStep: startStep, start: time.Now(), now: time.Now}
}

// Update reports that step (1-based) is done after processing tokens more
// tokens; stats is the headline, e.g. "loss 2.314".
func (p *Progress) Update(step, tokens int, stats string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens += int64(tokens)
	now := p.now()
	elapsed := now.Sub(p.start)
	done := step - p.startStep
	var tps float64
	var eta time.Duration
	if s := elapsed.Seconds(); s > 0 && done > 0 {
		tps = float64(p.tokens) / s
		eta = time.Duration(float64(elapsed) / float64(done) * float64(p.total-step))
	}
	p.line = fmt.Sprintf("%*d/%d %s %3.0f%% | %s | %s tok/s | %s | ETA %s", len(fmt.Sprint(p.total)), step, p.total,
		bar(step, p.total, 24), 100*float64(step)/float64(max(p.total, 1)), stats, human(tps),
		elapsed.Round(time.Second), eta.Round(time.Second))
	switch {
	case p.tty:
		fmt.Fprintf(p.w, "\r\033[K%s", p.line)
	case step == p.total || now.Sub(p.lastPrint) >= plainEvery:
		fmt.Fprintln(p.w, p.line)
		p.lastPrint = now
	}
}

// Write prints log output above the bar.
func (p *Progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.line != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
	n, err := p.w.Write(b)
	if p.tty && p.line != "" {
		fmt.Fprint(p.w, p.line)
	}
	return n, err
}

// Finish ends the bar's line.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.line != "" {
		fmt.Fprintln(p.w)
	}
	p.line = ""
}

// bar draws a width-character bar for done out of total.
func bar(done, total, width int) string {
	n := width
	if total > 0 {
		n = min(width, width*done/total)
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// human writes 12345 as "12.3k".
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
