package train

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// Outputs are a run's files and console, the same for every trainer:
// train.log (JSON lines; text on the console), metrics.jsonl and
// TensorBoard events (Metrics), the progress bar, and at the end one PNG
// per plotted metric and whatever the trainer's report hook writes.
//
// They open in two stages so that resuming can log: OpenOutputs gives the
// log, Start (once the resume point is known) the metrics and the bar.
// Close (or Finish) closes everything. Not safe for concurrent use.
type Outputs struct {
	// Log is the run's structured log; every record carries trainer=name.
	Log *slog.Logger

	dir, name string
	run       *RunDir
	console   io.Writer
	tty       bool
	logFile   *os.File
	metrics   *Metrics
	progress  *Progress
	kept      []Row // the rows, once metrics is closed
}

// OpenOutputs opens the outputs of a run in the claimed folder dir
// (ClaimRunDir) and takes it over: Close releases it. It opens
// <dir>/train.log (appended to) and logs dir's Notes as warnings. name is
// the trainer ("sft", "ppo"): log records and plot titles carry it.
// Console receives the text log and the progress bar (nil: discarded);
// tty redraws the bar in place.
func OpenOutputs(dir *RunDir, name string, console io.Writer, tty bool) (*Outputs, error) {
	if console == nil {
		console = io.Discard
	}
	o := &Outputs{dir: dir.Path, name: name, run: dir, console: console, tty: tty}
	f, err := os.OpenFile(filepath.Join(dir.Path, "train.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		dir.Release()
		return nil, fmt.Errorf("train: %w", err)
	}
	o.logFile = f
	o.Log = NewRunLogger(f, barWriter{o}, name)
	for _, n := range dir.Notes {
		o.Log.Warn(n, "dir", dir.Path)
	}
	return o, nil
}

// ConsoleOutputs are the outputs of a data-parallel rank other than 0:
// the log on console alone, metrics kept in memory, no files, no plots.
func ConsoleOutputs(name string, console io.Writer) *Outputs {
	if console == nil {
		console = io.Discard
	}
	o := &Outputs{name: name, console: console}
	o.Log = NewRunLogger(io.Discard, console, name)
	return o
}

// Start opens metrics.jsonl and a TensorBoard event file in tbDir ("" =
// <dir>/tensorboard) and the progress bar of a run of total steps that
// starts at step start. resumed keeps the rows logged up to start by the
// run this one resumes; otherwise the metrics log starts empty.
func (o *Outputs) Start(tbDir string, resumed bool, start, total int) error {
	keep := -1
	if resumed {
		keep = start
	}
	o.progress = NewProgress(o.console, o.tty, total, start)
	if o.dir == "" { // ConsoleOutputs
		return nil
	}
	if tbDir == "" {
		tbDir = filepath.Join(o.dir, "tensorboard")
	}
	m, err := OpenMetrics(o.dir, tbDir, keep)
	if err != nil {
		return err
	}
	o.metrics = m
	return nil
}

// Progress redraws the bar: step is done, after tokens more tokens;
// headline is its text (e.g. "loss 2.314").
func (o *Outputs) Progress(step, tokens int, headline string) {
	o.progress.Update(step, tokens, headline)
}

// EndProgress ends the bar's line; log lines after it print plainly.
func (o *Outputs) EndProgress() {
	if o.progress != nil {
		o.progress.Finish()
	}
}

// LogTrain records the train metrics of a step.
func (o *Outputs) LogTrain(step int, values map[string]float64) error {
	return o.log(Row{Step: step, Split: "train", Values: values})
}

// LogEval records an evaluation at a step.
func (o *Outputs) LogEval(step int, values map[string]float64) error {
	return o.log(Row{Step: step, Split: "eval", Values: values})
}

// log writes a row (ConsoleOutputs keep it in memory).
func (o *Outputs) log(r Row) error {
	if o.metrics == nil {
		o.kept = append(o.kept, r)
		return nil
	}
	return o.metrics.Log(r)
}

// Rows returns every row logged so far (also after Close).
func (o *Outputs) Rows() []Row {
	if o.metrics == nil {
		return o.kept
	}
	return o.metrics.Rows()
}

// ReportFunc writes a trainer's own end-of-run files from the logged rows
// and the file names of the plots drawn (e.g. PPO's report.html).
type ReportFunc func(rows []Row, plots []string) error

// Finish draws <dir>/<key>.png for every key (titled "<name> <key>"),
// then calls report (when not nil) with the plots that were drawn, and
// closes the outputs. A plot that fails is reported and skipped.
func (o *Outputs) Finish(keys []string, report ReportFunc) error {
	o.EndProgress()
	var errs []error
	var plots []string
	for _, key := range keys {
		if o.metrics == nil {
			break // ConsoleOutputs draw nothing
		}
		if err := o.metrics.Plot(filepath.Join(o.dir, key+".png"), o.name+" "+key, key); err != nil {
			errs = append(errs, err)
			continue
		}
		plots = append(plots, key+".png")
	}
	if report != nil {
		errs = append(errs, report(o.Rows(), plots))
	}
	errs = append(errs, o.Close())
	return errors.Join(errs...)
}

// Close ends the bar, closes the files without writing anything more and
// releases the run folder. It is safe to call again.
func (o *Outputs) Close() error {
	o.EndProgress()
	var errs []error
	if o.metrics != nil {
		o.kept = o.metrics.Rows()
		errs = append(errs, o.metrics.Close())
		o.metrics = nil
	}
	if o.logFile != nil {
		errs = append(errs, o.logFile.Close())
		o.logFile = nil
	}
	if o.run != nil {
		errs = append(errs, o.run.Release())
	}
	return errors.Join(errs...)
}

// Logged reports whether any row has a value for key.
func Logged(rows []Row, key string) bool {
	for _, r := range rows {
		if _, ok := r.Values[key]; ok {
			return true
		}
	}
	return false
}

// barWriter sends console log lines through the progress bar once it
// exists (before that, straight to the console), so the two never garble
// each other.
type barWriter struct{ o *Outputs }

func (w barWriter) Write(b []byte) (int, error) {
	if w.o.progress != nil {
		return w.o.progress.Write(b)
	}
	return w.o.console.Write(b)
}
