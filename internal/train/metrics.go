package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gorlhf/gorlhf/internal/train/report"
)

// MetricsFile is the name of the metrics log in the run folder.
const MetricsFile = "metrics.jsonl"

// Row is one logged set of values: the train metrics of a step or the
// result of an evaluation.
type Row struct {
	Step   int
	Split  string // "train" or "eval"
	Time   time.Time
	Values map[string]float64
}

// Metrics writes every logged row to metrics.jsonl (one JSON object per
// line: step, split, time and the values) and to TensorBoard (tags
// "<split>/<name>"), and keeps the rows for the final plots.
type Metrics struct {
	path string
	f    *os.File
	w    *bufio.Writer
	tb   *report.EventWriter
	rows []Row
}

// OpenMetrics opens <dir>/metrics.jsonl and a new TensorBoard event file in
// tbDir ("" = no TensorBoard). keepUpTo < 0 starts a fresh log; otherwise
// the rows of an earlier run up to step keepUpTo are kept and the rest
// dropped, so that a resumed run's log reads as one uninterrupted run.
func OpenMetrics(dir, tbDir string, keepUpTo int) (*Metrics, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m := &Metrics{path: filepath.Join(dir, MetricsFile)}
	if keepUpTo >= 0 {
		rows, err := ReadMetrics(m.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, r := range rows {
			if r.Step <= keepUpTo {
				m.rows = append(m.rows, r)
			}
		}
	}
	if err := m.rewrite(); err != nil {
		return nil, err
	}
	if tbDir != "" {
		tb, err := report.NewEventWriter(tbDir, nil)
		if err != nil {
			m.f.Close()
			return nil, err
		}
		m.tb = tb
	}
	return m, nil
}

// rewrite writes the kept rows to a fresh file and leaves it open for appending.
func (m *Metrics) rewrite() error {
	tmp := m.path + ".tmp"
	var buf bytes.Buffer
	for _, r := range m.rows {
		buf.Write(encodeRow(r))
	}
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := os.Rename(tmp, m.path); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	f, err := os.OpenFile(m.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.f, m.w = f, bufio.NewWriter(f)
	return nil
}

// Log records one row and flushes it to both sinks.
func (m *Metrics) Log(r Row) error {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	m.rows = append(m.rows, r)
	if _, err := m.w.Write(encodeRow(r)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if m.tb == nil {
		return nil
	}
	keys := slices.Sorted(maps.Keys(r.Values))
	tags, vals := make([]string, len(keys)), make([]float64, len(keys))
	for i, k := range keys {
		tags[i], vals[i] = r.Split+"/"+k, r.Values[k]
	}
	if err := m.tb.Scalars(r.Step, tags, vals); err != nil {
		return err
	}
	return m.tb.Flush()
}

// Rows returns the rows logged so far (including kept earlier ones).
func (m *Metrics) Rows() []Row { return m.rows }

// Close flushes and closes the sinks.
func (m *Metrics) Close() error {
	err := m.w.Flush()
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	if m.tb != nil {
		if cerr := m.tb.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Plot writes a PNG of one metric over steps: the train curve and, when
// logged, the eval curve.
func (m *Metrics) Plot(path, title, key string) error {
	var series []report.Series
	for i, split := range []string{"train", "eval"} {
		s := report.Series{Name: split + " " + key, Color: report.Palette[i], Points: split == "eval"}
		for _, r := range m.rows {
			if v, ok := r.Values[key]; ok && r.Split == split {
				s.X, s.Y = append(s.X, float64(r.Step)), append(s.Y, v)
			}
		}
		if len(s.X) > 0 {
			series = append(series, s)
		}
	}
	return report.WritePlot(path, title, key, series)
}

// encodeRow formats a row as one JSON line; NaN and ±Inf become null.
func encodeRow(r Row) []byte {
	obj := make(map[string]any, len(r.Values)+3)
	for k, v := range r.Values {
		if finite(v) {
			obj[k] = v
		} else {
			obj[k] = nil
		}
	}
	obj["step"], obj["split"] = r.Step, r.Split
	obj["time"] = math.Round(float64(r.Time.UnixMilli())) / 1000
	b, _ := json.Marshal(obj) // numbers, strings and nulls: cannot fail
	return append(b, '\n')
}

// ReadMetrics parses a metrics.jsonl file (null values read as NaN).
func ReadMetrics(path string) ([]Row, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			return nil, fmt.Errorf("metrics: %s:%d: %w", path, i+1, err)
		}
		r := Row{Values: map[string]float64{}}
		for k, v := range obj {
			switch k {
			case "step":
				f, _ := v.(float64)
				r.Step = int(f)
			case "split":
				r.Split, _ = v.(string)
			case "time":
				f, _ := v.(float64)
				r.Time = time.UnixMilli(int64(f * 1000))
			default:
				f, ok := v.(float64)
				if !ok {
					f = math.NaN()
				}
				r.Values[k] = f
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}
