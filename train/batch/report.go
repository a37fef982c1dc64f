package batch

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"slices"

	"github.com/graftml/graft/onnx"
)

// This file is the batch's minimal report: report.json and a
// self-contained index.html table. The full per-run HTML report is built
// elsewhere; this one can be swapped for it without touching the runner.

// Leaderboard orders a batch's adapt jobs, best first: by validation
// accuracy, then test accuracy, then name. Jobs without a result come last.
func Leaderboard(res *Result) []*JobResult {
	var rows []*JobResult
	for _, r := range res.Jobs {
		if r.Kind == KindAdapt {
			rows = append(rows, r)
		}
	}
	acc := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	slices.SortStableFunc(rows, func(a, b *JobResult) int {
		return cmp.Or(cmp.Compare(acc(b.ValAccuracy), acc(a.ValAccuracy)), cmp.Compare(acc(b.TestAccuracy), acc(a.TestAccuracy)), cmp.Compare(a.Name, b.Name))
	})
	return rows
}

// WriteReport writes dir/report.json (the Result) and dir/index.html (a
// table of the jobs and, when there are adapt jobs, the leaderboard),
// creating dir if needed. Both files are written atomically.
func WriteReport(dir string, res *Result) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	js, err := json.MarshalIndent(struct {
		*Result
		Leaderboard []string `json:"leaderboard,omitempty"`
	}{res, names(Leaderboard(res))}, "", "  ")
	if err != nil {
		return err
	}
	if err := onnx.WriteAtomic(filepath.Join(dir, "report.json"), append(js, '\n'), true); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := indexTmpl.Execute(&buf, struct {
		*Result
		Board []*JobResult
	}{res, Leaderboard(res)}); err != nil {
		return err
	}
	return onnx.WriteAtomic(filepath.Join(dir, "index.html"), buf.Bytes(), true)
}

func names(rs []*JobResult) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

var indexTmpl = template.Must(template.New("index").Funcs(template.FuncMap{
	"pct": func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", 100**p)
	},
	"mb":  func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) },
	"sci": func(v float64) string { return fmt.Sprintf("%.2g", v) },
	"f2":  func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"add": func(a, b int) int { return a + b },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>graft batch report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em}
table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child,td.l{text-align:left}
.failed,.cancelled{background:#fdd}.ok,.resumed{background:#dfd}
</style></head><body>
<h1>graft batch</h1>
<p>{{.OK}} ok, {{.Resumed}} resumed, {{.Failed}} failed, {{.Canceled}} cancelled; {{.Parallel}} at a time; {{f2 .Seconds}} s.</p>
{{if .Board}}<h2>Leaderboard</h2>
<table><tr><th>#</th><th>job</th><th>model</th><th>val accuracy</th><th>test accuracy</th><th>parameters</th><th>features/s</th><th>training s</th><th>file</th></tr>
{{range $i, $r := .Board}}<tr class="{{$r.Status}}"><td>{{add $i 1}}</td><td class="l">{{$r.Name}}</td><td class="l">{{$r.Model}}</td><td>{{pct $r.ValAccuracy}}</td><td>{{pct $r.TestAccuracy}}</td><td>{{$r.Params}}</td><td>{{f2 $r.FeaturesPerSec}}</td><td>{{f2 $r.TrainSeconds}}</td><td>{{mb $r.FileBytes}}</td></tr>
{{end}}</table>{{end}}
<h2>Jobs</h2>
<table><tr><th>job</th><th>kind</th><th>status</th><th>output</th><th>ops before</th><th>ops after</th><th>parameters</th><th>wall s</th><th>parity</th><th>error</th></tr>
{{range .Jobs}}<tr class="{{.Status}}"><td>{{.Name}}</td><td class="l">{{.Kind}}</td><td class="l">{{.Status}}</td><td class="l">{{.Out}}</td><td>{{.OpsBefore}}</td><td>{{.OpsAfter}}</td><td>{{.Params}}</td><td>{{f2 .Seconds}}</td><td>{{sci .Parity}}</td><td class="l">{{.Error}}</td></tr>
{{end}}</table>
</body></html>
`))
