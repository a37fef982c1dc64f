package report

import "html/template"

// page is report.html. Numbers are {{template "num"}}: the text shown,
// with its report.json path and exact value in data attributes.
var page = template.Must(template.New("report").Parse(`{{define "num"}}<span class="num" data-json="{{.Path}}" data-value="{{.Value}}">{{.Text}}</span>{{end}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
html, body { margin: 0; padding: 0; background: #eef0f3; color: #1d2330; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { box-sizing: border-box; height: {{.HeaderH}}px; overflow: hidden; padding: 16px 20px; background: #1d2330; color: #f4f5f7; }
header h1 { margin: 0 0 6px; font-size: 22px; }
header p { margin: 0; color: #c8ccd4; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
header .num { color: #fff; font-weight: 600; }
#plots { position: relative; height: {{.PlotsHeight}}px; margin: 16px 0 0; }
figure.plot { position: absolute; margin: 0; width: {{.PlotW}}px; }
figure.plot img { display: block; width: {{.PlotW}}px; height: {{.PlotH}}px; background: #fff; border: 0; }
figure.plot figcaption { font-size: 12px; color: #555; height: 34px; overflow: hidden; }
section { margin: 8px 20px 20px; max-width: 1160px; }
h2 { font-size: 17px; margin: 18px 0 8px; }
table { border-collapse: collapse; background: #fff; }
th, td { padding: 4px 10px; border: 1px solid #d5d9e0; text-align: right; }
th { background: #f4f5f7; }
td.name, th.name { text-align: left; }
table.confusion td { min-width: 48px; text-align: center; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.thumb { width: 140px; background: #fff; border: 1px solid #d5d9e0; padding: 6px; font-size: 12px; }
.thumb img { display: block; margin: 0 auto 4px; max-width: 112px; max-height: 112px; image-rendering: pixelated; width: 112px; }
.thumb .pred { color: #c0392b; font-weight: 600; }
pre { background: #fff; border: 1px solid #d5d9e0; padding: 8px; overflow-x: auto; font-size: 12px; }
</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
<p>model {{.R.Model}}{{if .R.Out}} &rarr; {{.R.Out}}{{end}} &middot; data {{.R.Data}} &middot; {{len .R.Classes}} classes</p>
<p>{{if .Accuracy}}{{.R.Split}} accuracy {{template "num" .Accuracy}} on {{template "num" .N}} images, mean cross-entropy {{template "num" .Loss}}{{end}}{{if .TrainAcc}} &middot; train accuracy {{template "num" .TrainAcc}}{{end}}{{if .Suggested}} &middot; suggested learning rate {{template "num" .Suggested}}{{end}}</p>
</header>
<div id="plots">
{{range .Figures}}<figure class="plot" id="plot-{{.ID}}" style="left:{{.Left}}px;top:{{.Top}}px" data-page-x="{{.PageX}}" data-page-y="{{.PageY}}" data-width="{{$.PlotW}}" data-height="{{$.PlotH}}"><img src="{{.File}}" width="{{$.PlotW}}" height="{{$.PlotH}}" alt="{{.ID}}"><figcaption>{{.Caption}}</figcaption></figure>
{{end}}</div>
{{if .Kept}}<section id="curves">
<h2>Kept epochs</h2>
<table><tr><th class="name">stage</th><th>epochs</th><th>kept epoch</th><th>train loss</th><th>train accuracy</th><th>val loss</th><th>val accuracy</th></tr>
{{range .Kept}}<tr><td class="name">{{.Stage}}</td><td>{{.Epochs}}</td><td>{{.Kept}}</td><td>{{template "num" .TrainLoss}}</td><td>{{template "num" .TrainAcc}}</td><td>{{with .ValLoss}}{{template "num" .}}{{else}}&ndash;{{end}}</td><td>{{with .ValAcc}}{{template "num" .}}{{else}}&ndash;{{end}}</td></tr>
{{end}}</table>
</section>{{end}}
{{if .PerClass}}<section id="per-class">
<h2>Per class ({{.R.Split}})</h2>
<table><tr><th class="name">class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{{range .PerClass}}<tr><td class="name">{{.Name}}</td><td>{{template "num" .Precision}}</td><td>{{template "num" .Recall}}</td><td>{{template "num" .F1}}</td><td>{{template "num" .Supp}}</td></tr>
{{end}}</table>
<h2>Confusion matrix (rows: true class, columns: predicted)</h2>
<table class="confusion"><tr><th class="name">true \ predicted</th>{{range .ConfNames}}<th>{{.}}</th>{{end}}</tr>
{{range .Confusion}}<tr><th class="name">{{.Name}}</th>{{range .Cells}}<td style="background:{{.Color}}">{{template "num" .N}}</td>{{end}}</tr>
{{end}}</table>
</section>{{end}}
{{if .Wrong}}<section id="wrong">
<h2>Most confidently wrong</h2>
<div class="grid">
{{range .Wrong}}<div class="thumb"><img src="{{.Thumbnail}}" alt="{{.Name}}"><div title="{{.Image}}">{{.Name}}</div><div>true {{.Label}} ({{template "num" .LabelProb}})</div><div class="pred">predicted {{.Predicted}} ({{template "num" .Prob}})</div></div>
{{end}}</div>
</section>{{end}}
{{if .Suggested}}<section id="lr-find">
<h2>Learning-rate finder</h2>
<p>Suggested learning rate {{template "num" .Suggested}} (fastai's valley rule); lowest loss at {{template "num" .MinLossLR}}.{{with .R.LRFind.Stopped}} Stopped: {{.}}.{{end}}</p>
</section>{{end}}
<section id="settings">
<h2>Settings</h2>
<table>{{range .Settings}}<tr><td class="name">{{.Key}}</td><td class="name"><code>{{.Value}}</code></td></tr>{{end}}</table>
{{if .Prep}}<h2>Preprocessing</h2>
<pre>{{.Prep}}</pre>{{end}}
{{if .Meta}}<h2>Model metadata</h2>
{{range .Meta}}<h3>{{.Key}}</h3><pre>{{.Value}}</pre>
{{end}}{{end}}
</section>
</body>
</html>
`))
