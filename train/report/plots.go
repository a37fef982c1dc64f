package report

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"github.com/graftml/graft/train"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot sizes in pixels (CSS pixels in report.html).
const (
	plotW, plotH = 560, 360
	dpi          = 96
)

var (
	colTrain = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colVal   = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colKept  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	colGrey  = color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff}
	colF1    = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
)

// plotPNG draws p as a plotW x plotH PNG.
func plotPNG(p *plot.Plot) ([]byte, error) {
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(plotW)*vg.Inch/dpi, vg.Length(plotH)*vg.Inch/dpi), vgimg.UseDPI(dpi))
	p.Draw(draw.New(c))
	return encodePNG(c.Image())
}

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// curvePlot plots one metric of every stage against a running epoch
// axis: training and validation, a dashed line where fine-tuning starts,
// and a ring on each stage's kept epoch.
func curvePlot(stages []Stage, title, ylabel string, train func(EpochRow) float64, val func(EpochRow) *float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = title == "loss per epoch" // accuracy rises to the top right
	off := 0
	var kept plotter.XYs
	for si, s := range stages {
		var tr, va plotter.XYs
		for _, e := range s.Epochs {
			x := float64(off + e.Epoch)
			tr = append(tr, plotter.XY{X: x, Y: train(e)})
			if v := val(e); v != nil {
				va = append(va, plotter.XY{X: x, Y: *v})
			}
			if e.Epoch == s.Kept {
				y := train(e)
				if v := val(e); v != nil {
					y = *v
				}
				kept = append(kept, plotter.XY{X: x, Y: y})
			}
		}
		if si > 0 {
			l, err := plotter.NewLine(plotter.XYs{{X: float64(off) + 0.5, Y: 0}, {X: float64(off) + 0.5, Y: maxOf(tr)}})
			if err != nil {
				return nil, err
			}
			l.Color, l.Dashes = colGrey, []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(l)
		}
		if err := addLine(p, tr, colTrain, si == 0, "train"); err != nil {
			return nil, err
		}
		if len(va) > 0 {
			if err := addLine(p, va, colVal, si == 0, "validation"); err != nil {
				return nil, err
			}
		}
		off += len(s.Epochs)
	}
	if len(kept) > 0 {
		sc, err := plotter.NewScatter(kept)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Shape = draw.RingGlyph{}
		sc.GlyphStyle.Radius = vg.Points(5)
		sc.GlyphStyle.Color = colKept
		p.Add(sc)
		p.Legend.Add("kept epoch", sc)
	}
	return p, nil
}

func addLine(p *plot.Plot, xys plotter.XYs, c color.Color, legend bool, name string) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color, l.Width = c, vg.Points(1.5)
	p.Add(l)
	if legend {
		p.Legend.Add(name, l)
	}
	return nil
}

func maxOf(xys plotter.XYs) float64 {
	m := 0.0
	for _, v := range xys {
		m = math.Max(m, v.Y)
	}
	return m
}

// confusionGrid is a confusion matrix as a heat map: column c is the
// predicted class, row r the true class with class 0 at the top.
type confusionGrid [][]int

func (g confusionGrid) Dims() (c, r int) { return len(g), len(g) }
func (g confusionGrid) Z(c, r int) float64 {
	return float64(g[len(g)-1-r][c])
}
func (g confusionGrid) X(c int) float64 { return float64(c) }
func (g confusionGrid) Y(r int) float64 { return float64(r) }

// confusionPlot draws the confusion matrix with class names and counts.
func confusionPlot(conf [][]int, classes []string) (*plot.Plot, error) {
	n := len(conf)
	p := plot.New()
	p.Title.Text = "confusion matrix"
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	hm := plotter.NewHeatMap(confusionGrid(conf), moreland.SmoothBlueRed().Palette(255))
	p.Add(hm)
	var xys plotter.XYs
	var labels []string
	hi := 0
	for _, row := range conf {
		for _, v := range row {
			hi = max(hi, v)
		}
	}
	for r, row := range conf {
		for c, v := range row {
			xys = append(xys, plotter.XY{X: float64(c), Y: float64(n - 1 - r)})
			labels = append(labels, fmt.Sprint(v))
		}
	}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].XAlign, lb.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
		lb.TextStyle[i].Font.Size = vg.Points(11)
	}
	p.Add(lb)
	names := make([]string, n)
	rev := make([]string, n)
	for i := 0; i < n; i++ {
		names[i] = className(classes, i)
		rev[n-1-i] = names[i]
	}
	p.NominalX(names...)
	p.NominalY(rev...)
	return p, nil
}

func className(classes []string, i int) string {
	if i < len(classes) && classes[i] != "" {
		return classes[i]
	}
	return fmt.Sprint(i)
}

// perClassPlot draws precision, recall and F1 per class as grouped bars.
func perClassPlot(r *Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "per-class precision, recall and F1"
	p.Y.Min, p.Y.Max = 0, 1.3 // room for the legend above the bars
	p.Add(plotter.NewGrid())
	var prec, rec, f1 plotter.Values
	var names []string
	for i, s := range r.Eval.PerClass {
		prec, rec, f1 = append(prec, s.Precision), append(rec, s.Recall), append(f1, s.F1)
		names = append(names, className(r.Classes, i))
	}
	w := vg.Points(14)
	for i, set := range []struct {
		v    plotter.Values
		c    color.Color
		name string
	}{{prec, colTrain, "precision"}, {rec, colVal, "recall"}, {f1, colF1, "F1"}} {
		b, err := plotter.NewBarChart(set.v, w)
		if err != nil {
			return nil, err
		}
		b.Color, b.LineStyle.Width = set.c, 0
		b.Offset = w * vg.Length(i-1)
		p.Add(b)
		p.Legend.Add(set.name, b)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.NominalX(names...)
	return p, nil
}

// lrPlot draws the learning-rate finder's loss against the rate on a
// log axis, with the suggested rate marked.
func lrPlot(f *train.LRFindResult) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "learning-rate finder"
	p.X.Label.Text = "learning rate"
	p.Y.Label.Text = "loss"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	var raw, smooth plotter.XYs
	for i, lr := range f.LR {
		raw = append(raw, plotter.XY{X: lr, Y: f.Loss[i]})
		smooth = append(smooth, plotter.XY{X: lr, Y: f.SmoothedLoss[i]})
	}
	sc, err := plotter.NewScatter(raw)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle.Color, sc.GlyphStyle.Radius = color.RGBA{R: 0xaa, G: 0xc4, B: 0xdd, A: 0xff}, vg.Points(1.5)
	p.Add(sc)
	p.Legend.Add("batch loss", sc)
	if err := addLine(p, smooth, colTrain, true, "smoothed"); err != nil {
		return nil, err
	}
	i := 0
	for i < len(f.LR)-1 && f.LR[i] < f.Suggested {
		i++
	}
	mark, err := plotter.NewScatter(plotter.XYs{{X: f.LR[i], Y: f.SmoothedLoss[i]}})
	if err != nil {
		return nil, err
	}
	mark.GlyphStyle.Shape, mark.GlyphStyle.Radius, mark.GlyphStyle.Color = draw.CircleGlyph{}, vg.Points(5), colKept
	p.Add(mark)
	p.Legend.Add(fmt.Sprintf("suggested %.2g", f.Suggested), mark)
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}
