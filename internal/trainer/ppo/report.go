package ppo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
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
