package ppo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"slices"

	"github.com/gorlhf/gorlhf/internal/train"
)

// reportPage is the run report: the final numbers, the curves and sample
// completions from the start and the end of the run.
var reportPage = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>gorlhf ppo report</title>
<style>
body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:1.5em}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
td.num{text-align:right;font-family:monospace}
pre{white-space:pre-wrap;margin:0}
img{max-width:100%}
</style></head><body>
<h1>gorlhf ppo: {{.Estimator}}</h1>
<p>{{.Iterations}} iterations on {{.Actor}}.</p>
{{if .Evals}}<h2>Evaluation (held-out prompts)</h2>
<table><tr><th>iteration</th>{{range .EvalKeys}}<th>{{.}}</th>{{end}}</tr>
{{range .Evals}}<tr><td class="num">{{.Step}}</td>{{range .Cells}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
<h2>Curves</h2>
{{range .Plots}}<img src="{{.}}" alt="{{.}}"><br>
{{end}}
{{range .Sections}}<h2>{{.Title}}</h2>
<table><tr><th>prompt</th><th>response</th><th>reward</th></tr>
{{range .Rows}}<tr><td><pre>{{.Prompt}}</pre></td><td><pre>{{.Response}}</pre></td><td class="num">{{printf "%.4f" .Reward}}</td></tr>
{{end}}</table>
{{end}}
<h2>Configuration</h2>
<pre>{{.Config}}</pre>
</body></html>
`))

// reportSection is a table of samples.
type reportSection struct {
	Title string
	Rows  []sampleRow
}

// evalRow is one evaluation in the report.
type evalRow struct {
	Step  int
	Cells []string
}

// plotKeys are the curves drawn at the end, when logged.
var plotKeys = []string{"reward", "kl", "response_length", "policy_loss", "value_loss", "entropy", "clip_frac"}

// finishOutputs draws the logged curves, writes report.html and closes the
// run's outputs.
func (t *Trainer) finishOutputs() error {
	var keys []string
	for _, key := range plotKeys {
		if train.Logged(t.out.Rows(), key) {
			keys = append(keys, key)
		}
	}
	sections := t.reportSections()
	return t.out.Finish(keys, func(rows []train.Row, plots []string) error {
		return writeReport(filepath.Join(t.cfg.Ckpt.OutputDir, "report.html"), t.cfg, rows, plots, sections)
	})
}

// reportSections are the sample tables of the run report.
func (t *Trainer) reportSections() []reportSection {
	var out []reportSection
	if n := len(t.evals); n > 0 {
		out = append(out, reportSection{fmt.Sprintf("Eval samples at iteration %d", t.evals[0].Iteration), t.evals[0].Samples})
		if n > 1 {
			out = append(out, reportSection{fmt.Sprintf("Eval samples at iteration %d", t.evals[n-1].Iteration), t.evals[n-1].Samples})
		}
	}
	if t.firstRun != nil {
		out = append(out, reportSection{fmt.Sprintf("Rollout samples of iteration %d", t.firstRun[0].Iteration), t.firstRun})
	}
	if t.lastRun != nil && t.lastRun[0].Iteration != t.firstRun[0].Iteration {
		out = append(out, reportSection{fmt.Sprintf("Rollout samples of iteration %d", t.lastRun[0].Iteration), t.lastRun})
	}
	return out
}

// writeReport writes report.html.
func writeReport(path string, cfg Config, rows []train.Row, plots []string, sections []reportSection) error {
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("ppo: report: %w", err)
	}
	keys := []string{"reward", "score", "kl", "response_length"}
	var evals []evalRow
	iters := 0
	for _, r := range rows {
		if r.Split == "train" {
			iters = max(iters, r.Step)
			continue
		}
		e := evalRow{Step: r.Step}
		for _, k := range keys {
			cell := "–"
			if v, ok := r.Values[k]; ok {
				cell = fmt.Sprintf("%.4f", v)
			}
			e.Cells = append(e.Cells, cell)
		}
		evals = append(evals, e)
	}
	var buf bytes.Buffer
	err = reportPage.Execute(&buf, map[string]any{
		"Estimator": cfg.Algo.Advantage.Estimator, "Iterations": iters, "Actor": cfg.Actor.Model,
		"EvalKeys": keys, "Evals": evals, "Plots": plots, "Config": string(cfgJSON),
		"Sections": slices.DeleteFunc(sections, func(s reportSection) bool { return len(s.Rows) == 0 }),
	})
	if err != nil {
		return fmt.Errorf("ppo: report: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("ppo: report: %w", err)
	}
	return nil
}
