package ppo

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gorlhf/gorlhf/internal/train"
)

// outputs are a run's files and console: train.log (JSON lines, text on
// the console), metrics.jsonl and TensorBoard (train.Metrics), the
// progress bar, and at the end the PNG curves and report.html.
type outputs struct {
	dir      string
	console  io.Writer
	tty      bool
	logFile  *os.File
	metrics  *train.Metrics
	progress *train.Progress
	kept     []train.Row // the rows, once metrics is closed
}

// openOutputs creates the run folder and the log.
func openOutputs(cfg Config, rt Runtime) (*outputs, *slog.Logger, error) {
	o := &outputs{dir: cfg.Ckpt.OutputDir, console: rt.Console, tty: rt.TTY}
	if o.console == nil {
		o.console = io.Discard
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("ppo: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(o.dir, "train.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("ppo: %w", err)
	}
	o.logFile = f
	log := train.NewRunLogger(f, consoleWriter{o}, "ppo")
	return o, log, nil
}

// open starts the metrics log (keeping the rows up to iter when resuming)
// and the progress bar.
func (o *outputs) open(cfg Config, resumed bool, iter, total int) error {
	keep := -1
	if resumed {
		keep = iter
	}
	tb := cfg.Logger.TensorboardDir
	if tb == "" {
		tb = filepath.Join(o.dir, "tensorboard")
	}
	m, err := train.OpenMetrics(o.dir, tb, keep)
	if err != nil {
		return err
	}
	o.metrics = m
	o.progress = train.NewProgress(o.console, o.tty, total, iter)
	return nil
}

// logTrain records an iteration's metrics.
func (o *outputs) logTrain(iter int, values map[string]float64) error {
	return o.metrics.Log(train.Row{Step: iter, Split: "train", Values: values})
}

// logEval records an evaluation at iteration iter.
func (o *outputs) logEval(iter int, values map[string]float64) error {
	return o.metrics.Log(train.Row{Step: iter, Split: "eval", Values: values})
}

// rows returns every row logged (also after close).
func (o *outputs) rows() []train.Row {
	if o.metrics == nil {
		return o.kept
	}
	return o.metrics.Rows()
}

// plotKeys are the curves drawn at the end, when logged.
var plotKeys = []string{"reward", "kl", "response_length", "policy_loss", "value_loss", "entropy", "clip_frac"}

// finish draws the curves, writes report.html and closes everything.
func (o *outputs) finish(cfg Config, sections []reportSection) error {
	o.progress.Finish()
	var errs []error
	var plots []string
	for _, key := range plotKeys {
		if !logged(o.rows(), key) {
			continue
		}
		path := filepath.Join(o.dir, key+".png")
		if err := o.metrics.Plot(path, "ppo "+key, key); err != nil {
			errs = append(errs, err)
			continue
		}
		plots = append(plots, key+".png")
	}
	errs = append(errs, writeReport(filepath.Join(o.dir, "report.html"), cfg, o.rows(), plots, sections))
	errs = append(errs, o.close())
	return errors.Join(errs...)
}

// close closes the outputs without writing anything more.
func (o *outputs) close() error {
	var errs []error
	if o.progress != nil {
		o.progress.Finish()
	}
	if o.metrics != nil {
		o.kept = o.metrics.Rows()
		errs = append(errs, o.metrics.Close())
		o.metrics = nil
	}
	if o.logFile != nil {
		errs = append(errs, o.logFile.Close())
		o.logFile = nil
	}
	return errors.Join(errs...)
}

// logged reports whether any row has key.
func logged(rows []train.Row, key string) bool {
	for _, r := range rows {
		if _, ok := r.Values[key]; ok {
			return true
		}
	}
	return false
}

// consoleWriter sends log lines through the progress bar once it exists,
// so the two never garble each other.
type consoleWriter struct{ o *outputs }

func (w consoleWriter) Write(b []byte) (int, error) {
	if w.o.progress != nil {
		return w.o.progress.Write(b)
	}
	return w.o.console.Write(b)
}
