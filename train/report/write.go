package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
	"golang.org/x/image/draw"
	"gonum.org/v1/plot"
)

// File names in the report folder.
const (
	JSONFile = "report.json"
	HTMLFile = "report.html"
)

// thumbSize bounds a thumbnail's sides, in pixels.
const thumbSize = 112

// Write writes the report into dir (created when missing): the plots and
// thumbnails as PNG, report.json and report.html. dir must be new,
// empty, or hold a previous report (its report.json), whose files are
// replaced.
func (r *Report) Write(dir string) error {
	if err := checkDir(dir); err != nil {
		return err
	}
	r.Plots = map[string]string{}
	files := map[string][]byte{}
	add := func(id string, p *plot.Plot, err error) error {
		if err != nil {
			return fmt.Errorf("report: plot %s: %w", id, err)
		}
		b, err := plotPNG(p)
		if err != nil {
			return fmt.Errorf("report: plot %s: %w", id, err)
		}
		name := id + ".png"
		r.Plots[id], files[name] = name, b
		return nil
	}
	if len(r.Stages) > 0 {
		p, err := curvePlot(r.Stages, "loss per epoch", "cross-entropy", func(e EpochRow) float64 { return e.TrainLoss }, func(e EpochRow) *float64 { return e.ValLoss })
		if err := add("loss", p, err); err != nil {
			return err
		}
		p, err = curvePlot(r.Stages, "accuracy per epoch", "accuracy", func(e EpochRow) float64 { return e.TrainAcc }, func(e EpochRow) *float64 { return e.ValAcc })
		if err := add("accuracy", p, err); err != nil {
			return err
		}
	}
	if r.Eval != nil && len(r.Eval.Confusion) > 0 {
		p, err := confusionPlot(r.Eval.Confusion, r.Classes)
		if err := add("confusion", p, err); err != nil {
			return err
		}
		p, err = perClassPlot(r)
		if err := add("per_class", p, err); err != nil {
			return err
		}
	}
	if r.LRFind != nil {
		p, err := lrPlot(r.LRFind)
		if err := add("lr_find", p, err); err != nil {
			return err
		}
	}
	for _, w := range r.Wrong {
		b, err := thumbnail(w.Image, r.maxPixels)
		if err != nil {
			return fmt.Errorf("report: thumbnail of %s: %w", w.Image, err)
		}
		files[w.Thumbnail] = b
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files[JSONFile] = append(js, '\n')
	page, err := r.html()
	if err != nil {
		return err
	}
	files[HTMLFile] = page
	// report.json last but one and report.html last: a folder with
	// report.html holds a whole report.
	for name, b := range files {
		if name == JSONFile || name == HTMLFile {
			continue
		}
		if err := onnx.WriteAtomic(filepath.Join(dir, name), b, true); err != nil {
			return err
		}
	}
	if err := onnx.WriteAtomic(filepath.Join(dir, JSONFile), files[JSONFile], true); err != nil {
		return err
	}
	return onnx.WriteAtomic(filepath.Join(dir, HTMLFile), files[HTMLFile], true)
}

// checkDir makes dir, or checks it is empty or a previous report.
func checkDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o777)
	}
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, JSONFile)); err == nil {
		return nil
	}
	return fmt.Errorf("report folder %s holds files but no %s: give a new or empty folder, or one holding a previous report", dir, JSONFile)
}

// thumbnail decodes an image and scales it to fit thumbSize.
func thumbnail(path string, maxPixels int64) ([]byte, error) {
	img, err := dataset.DecodeFile(path, maxPixels)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	scale := float64(thumbSize) / float64(max(b.Dx(), b.Dy()))
	w, h := max(1, int(float64(b.Dx())*scale+0.5)), max(1, int(float64(b.Dy())*scale+0.5))
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return encodePNG(dst)
}

// num is one number shown in the HTML: its path in report.json, its
// exact value and its text.
type num struct {
	Path  string
	Value string
	Text  string
}

func numOf(path string, v float64, format string) num {
	return num{Path: path, Value: strconv.FormatFloat(v, 'g', -1, 64), Text: fmt.Sprintf(format, v)}
}

func intOf(path string, v int) num {
	return num{Path: path, Value: strconv.Itoa(v), Text: strconv.Itoa(v)}
}

// figure is a plot's place on the page.
type figure struct {
	ID, File, Caption string
	Left, Top         int // in the plots section
	PageX, PageY      int
}

// Page layout, in CSS pixels: a header of fixed height, then the plots
// in two columns of fixed cells, then the tables.
const (
	headerH = 120
	margin  = 20
	cellW   = plotW + 20
	cellH   = plotH + 40
)

func (r *Report) figures() []figure {
	captions := map[string]string{
		"loss":      "Training curves: cross-entropy per epoch (train and validation; fine-tuning after the dashed line; the ring marks the epoch kept).",
		"accuracy":  "Accuracy per epoch.",
		"confusion": "Confusion matrix: rows are the true class, columns the predicted one.",
		"per_class": "Precision, recall and F1 per class.",
		"lr_find":   "Learning-rate finder: loss while the rate rises exponentially; the dot marks the suggested rate.",
	}
	var out []figure
	for _, id := range []string{"loss", "accuracy", "confusion", "per_class", "lr_find"} {
		f, ok := r.Plots[id]
		if !ok {
			continue
		}
		i := len(out)
		left, top := margin+(i%2)*cellW, (i/2)*cellH
		out = append(out, figure{ID: id, File: f, Caption: captions[id], Left: left, Top: top, PageX: left, PageY: headerH + top})
	}
	return out
}

type classRow struct {
	Name                        string
	Precision, Recall, F1, Supp num
}

type confCell struct {
	N     num
	Color template.CSS
}

type confRow struct {
	Name  string
	Cells []confCell
}

type epochView struct {
	Stage               string
	Kept                int
	TrainLoss, TrainAcc num
	ValLoss, ValAcc     *num
	Epochs              int
}

type wrongView struct {
	Wrong
	Prob, LabelProb num
	Name            string
}

type kv struct{ Key, Value string }

// html renders report.html.
func (r *Report) html() ([]byte, error) {
	figs := r.figures()
	height := 0
	if len(figs) > 0 {
		height = figs[len(figs)-1].Top + cellH
	}
	v := map[string]any{"R": r, "Figures": figs, "PlotsHeight": height, "HeaderH": headerH, "PlotW": plotW, "PlotH": plotH, "CellW": cellW}
	title := "graft " + r.Kind + ": " + filepath.Base(r.Model)
	if r.Out != "" {
		title = "graft adapt: " + filepath.Base(r.Out)
	}
	v["Title"] = title
	if ev := r.Eval; ev != nil {
		v["Accuracy"] = numOf("eval.accuracy", ev.Accuracy, "%.4f")
		v["Loss"] = numOf("eval.loss", ev.Loss, "%.4f")
		v["N"] = intOf("eval.n", ev.N)
		var rows []classRow
		for i, s := range ev.PerClass {
			p := fmt.Sprintf("eval.per_class.%d.", i)
			rows = append(rows, classRow{Name: className(r.Classes, i), Precision: numOf(p+"precision", s.Precision, "%.3f"),
				Recall: numOf(p+"recall", s.Recall, "%.3f"), F1: numOf(p+"f1", s.F1, "%.3f"), Supp: intOf(p+"support", s.Support)})
		}
		v["PerClass"] = rows
		hi := 1
		for _, row := range ev.Confusion {
			for _, n := range row {
				hi = max(hi, n)
			}
		}
		var conf []confRow
		var names []string
		for i, row := range ev.Confusion {
			cr := confRow{Name: className(r.Classes, i)}
			names = append(names, cr.Name)
			for j, n := range row {
				a := 0.08 + 0.85*float64(n)/float64(hi)
				if n == 0 {
					a = 0
				}
				cr.Cells = append(cr.Cells, confCell{N: intOf(fmt.Sprintf("eval.confusion.%d.%d", i, j), n), Color: template.CSS(fmt.Sprintf("rgba(59,76,192,%.3f)", a))})
			}
			conf = append(conf, cr)
		}
		v["Confusion"], v["ConfNames"] = conf, names
	}
	if r.Train != nil {
		v["TrainAcc"] = numOf("train.accuracy", r.Train.Accuracy, "%.4f")
	}
	var eps []epochView
	for si, s := range r.Stages {
		for ei, e := range s.Epochs {
			if e.Epoch != s.Kept {
				continue
			}
			p := fmt.Sprintf("stages.%d.epochs.%d.", si, ei)
			ev := epochView{Stage: s.Name, Kept: s.Kept, Epochs: len(s.Epochs), TrainLoss: numOf(p+"train_loss", e.TrainLoss, "%.4f"), TrainAcc: numOf(p+"train_acc", e.TrainAcc, "%.4f")}
			if e.ValLoss != nil {
				vl, va := numOf(p+"val_loss", *e.ValLoss, "%.4f"), numOf(p+"val_acc", *e.ValAcc, "%.4f")
				ev.ValLoss, ev.ValAcc = &vl, &va
			}
			eps = append(eps, ev)
		}
	}
	v["Kept"] = eps
	var wv []wrongView
	for i, w := range r.Wrong {
		p := fmt.Sprintf("most_confidently_wrong.%d.", i)
		wv = append(wv, wrongView{Wrong: w, Name: filepath.Base(w.Image), Prob: numOf(p+"prob", w.Prob, "%.3f"), LabelProb: numOf(p+"label_prob", w.LabelProb, "%.3f")})
	}
	v["Wrong"] = wv
	if f := r.LRFind; f != nil {
		v["Suggested"] = numOf("lr_find.suggested_lr", f.Suggested, "%.3g")
		v["MinLossLR"] = numOf("lr_find.min_loss_lr", f.MinLossLR, "%.3g")
	}
	v["Settings"] = pairs(r.Settings)
	v["Prep"] = pretty(r.Preprocessing)
	var meta []kv
	for _, kvp := range pairs(r.Metadata) {
		meta = append(meta, kv{kvp.Key, pretty(r.Metadata[kvp.Key])})
	}
	v["Meta"] = meta
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return buf.Bytes(), nil
}

// pairs lists a map's entries sorted by key, values as compact JSON.
func pairs(m map[string]any) []kv {
	var out []kv
	for k, val := range m {
		b, _ := json.Marshal(val)
		out = append(out, kv{k, string(b)})
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Key < out[j-1].Key; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func pretty(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return strings.TrimSpace(string(b))
}
