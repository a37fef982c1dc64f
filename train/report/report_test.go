package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/graftml/graft/models"
	"github.com/graftml/graft/onnx/onnxtest"
	"github.com/graftml/graft/train"
	"github.com/graftml/graft/train/report"
	"golang.org/x/net/html"
)

var (
	sampleOnce sync.Once
	sampleDir  string
	sampleErr  error
)

// sampleReport adapts the shipped sample task (as `graft adapt --report`
// does) and writes its report into a new folder.
func sampleReport(t *testing.T) string {
	t.Helper()
	sampleOnce.Do(func() {
		work, err := os.MkdirTemp("", "graft-report-test-")
		if err != nil {
			sampleErr = err
			return
		}
		model, data, err := models.Extract(work)
		if err != nil {
			sampleErr = err
			return
		}
		cfg := train.AdaptConfig{Model: model, Data: data, Out: filepath.Join(work, "adapted.onnx"), KeepImages: true}
		res, err := train.Adapt(context.Background(), cfg)
		if err != nil {
			sampleErr = err
			return
		}
		r, err := report.FromAdapt(cfg, res)
		if err != nil {
			sampleErr = err
			return
		}
		sampleDir = filepath.Join(work, "report")
		sampleErr = r.Write(sampleDir)
	})
	if sampleErr != nil {
		t.Fatal(sampleErr)
	}
	return sampleDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sampleDir != "" {
		os.RemoveAll(filepath.Dir(sampleDir))
	}
	os.Exit(code)
}

// parse reads report.html and report.json.
func parse(t *testing.T, dir string) (*html.Node, map[string]any) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, report.HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := html.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, report.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]any
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	return doc, js
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return strings.TrimSpace(b.String())
}

// lookup follows a dot-separated path through decoded JSON.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, v != nil
}

// TestReportHTMLMatchesJSON checks the sample task's report: the HTML
// parses, every image it references exists and is a PNG, and every
// number it shows is report.json's.
func TestReportHTMLMatchesJSON(t *testing.T) {
	dir := sampleReport(t)
	doc, js := parse(t, dir)
	imgs, nums := 0, 0
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.Data == "img" {
			src, _ := attr(n, "src")
			if strings.Contains(src, "/") || strings.Contains(src, ":") {
				t.Errorf("image %q is not beside report.html", src)
				return
			}
			b, err := os.ReadFile(filepath.Join(dir, src))
			if err != nil {
				t.Errorf("img %s: %v", src, err)
				return
			}
			if _, err := png.Decode(bytes.NewReader(b)); err != nil {
				t.Errorf("img %s: %v", src, err)
			}
			imgs++
		}
		path, ok := attr(n, "data-json")
		if !ok {
			return
		}
		nums++
		want, ok := lookup(js, path)
		if !ok {
			t.Errorf("%s: not in report.json", path)
			return
		}
		wf, ok := want.(float64)
		if !ok {
			t.Errorf("%s: %v is not a number", path, want)
			return
		}
		val, _ := attr(n, "data-value")
		if got, err := strconv.ParseFloat(val, 64); err != nil || got != wf {
			t.Errorf("%s: data-value %q, report.json %v", path, val, wf)
		}
		shown := text(n)
		got, err := strconv.ParseFloat(shown, 64)
		if err != nil {
			t.Errorf("%s: shown %q is not a number", path, shown)
			return
		}
		// the text is the value rounded to the digits shown
		digits := 0
		if i := strings.IndexAny(shown, "."); i >= 0 {
			digits = len(strings.TrimRightFunc(shown[i+1:], func(r rune) bool { return r < '0' || r > '9' }))
		}
		if math.Abs(got-wf) > 0.5*math.Pow(10, -float64(digits))*(1+math.Abs(wf)) {
			t.Errorf("%s: shown %q, report.json %v", path, shown, wf)
		}
	})
	// 4 plots and 12 thumbnails; accuracy, loss, n, 4x4 per-class
	// figures, 16 confusion cells, the kept epoch, the wrong images' probabilities
	if imgs < 4+1 {
		t.Errorf("report.html shows %d images", imgs)
	}
	if nums < 3+16+16+2 {
		t.Errorf("report.html shows %d numbers tied to report.json", nums)
	}
	for _, p := range []string{"eval.accuracy", "eval.confusion.3.3", "stages.0.kept_epoch", "settings.model", "preprocessing", "metadata.labels", "most_confidently_wrong.0.thumbnail"} {
		if _, ok := lookup(js, p); !ok {
			t.Errorf("report.json lacks %s", p)
		}
	}
	if got, _ := lookup(js, "stages.0.kept_epoch"); got != 100.0 {
		t.Errorf("kept epoch %v, want 100 (no validation data: the last)", got)
	}
	// the worst mistakes are wrong, most confident first
	w, _ := lookup(js, "most_confidently_wrong")
	prev := 2.0
	for _, x := range w.([]any) {
		m := x.(map[string]any)
		if m["label"] == m["predicted"] || m["prob"].(float64) > prev {
			t.Errorf("not a mistake in order: %v", m)
		}
		prev = m["prob"].(float64)
	}
}

// TestReportRefusesForeignFolder: a folder with other files is not a
// report folder.
func TestReportRefusesForeignFolder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	r := &report.Report{Kind: "eval"}
	if err := r.Write(dir); err == nil || !strings.Contains(err.Error(), "no report.json") {
		t.Fatalf("Write into a foreign folder: %v", err)
	}
}

// chromium finds Debian's chromium.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	onnxtest.Need(t, "chromium is not installed (apt-get install chromium); .ci/run installs it")
	return ""
}

// TestReportScreenshot opens the sample report in headless Chromium and
// checks that each plot's region of the screenshot shows a plot: mostly
// not the page's background, and with the variety of lines and text.
// A missing or broken image leaves its region background-coloured.
func TestReportScreenshot(t *testing.T) {
	bin := chromium(t)
	dir := sampleReport(t)
	shot := filepath.Join(t.TempDir(), "shot.png")
	abs, _ := filepath.Abs(filepath.Join(dir, report.HTMLFile))
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--force-device-scale-factor=1", "--user-data-dir=" + t.TempDir(),
		"--screenshot=" + shot, "--window-size=1200,2400", "file://" + abs}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("GRAFT_REPORT_SCREENSHOT") != "" {
		b, _ := os.ReadFile(shot)
		os.WriteFile(os.Getenv("GRAFT_REPORT_SCREENSHOT"), b, 0o644)
	}
	doc, _ := parse(t, dir)
	bg := color.RGBA{0xee, 0xf0, 0xf3, 0xff} // the page background
	plots := 0
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode || n.Data != "figure" {
			return
		}
		id, _ := attr(n, "id")
		num := func(k string) int {
			s, _ := attr(n, k)
			v, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("figure %s: %s=%q", id, k, s)
			}
			return v
		}
		x, y, w, h := num("data-page-x"), num("data-page-y"), num("data-width"), num("data-height")
		plots++
		r := image.Rect(x, y, x+w, y+h)
		if !r.In(img.Bounds()) {
			t.Errorf("figure %s at %v is outside the %v screenshot", id, r, img.Bounds())
			return
		}
		differ, dark := 0, 0
		var sum, sum2 float64
		for py := r.Min.Y; py < r.Max.Y; py++ {
			for px := r.Min.X; px < r.Max.X; px++ {
				c := color.RGBAModel.Convert(img.At(px, py)).(color.RGBA)
				if absDiff(c.R, bg.R)+absDiff(c.G, bg.G)+absDiff(c.B, bg.B) > 12 {
					differ++
				}
				l := (float64(c.R) + float64(c.G) + float64(c.B)) / 3
				if l < 128 {
					dark++
				}
				sum += l
				sum2 += l * l
			}
		}
		n2 := float64(r.Dx() * r.Dy())
		sd := math.Sqrt(sum2/n2 - (sum/n2)*(sum/n2))
		t.Logf("figure %s: %.0f%% differs from the background, %.1f%% dark, luminance sd %.1f", id, 100*float64(differ)/n2, 100*float64(dark)/n2, sd)
		if float64(differ) < 0.5*n2 || dark < 200 || sd < 10 {
			t.Errorf("figure %s (%v): the screenshot shows no plot there", id, r)
		}
	})
	if plots < 4 {
		t.Errorf("report.html has %d plots, want loss, accuracy, confusion and per-class", plots)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
