package dataset

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/hugemem"
)

// Layouts of an image input tensor.
const (
	NCHW = "NCHW"
	NHWC = "NHWC"
)

// DefaultScale is Preprocess.Scale's default: 8-bit values to [0, 1].
const DefaultScale float32 = 1.0 / 255.0

// Defaults of Preprocess.Mean and Std, used when they are left nil. They
// are functions so that no caller can change them for everyone.
var (
	imageNetMean = [3]float32{0.485, 0.456, 0.406}
	imageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// ImageNetMean is the default Mean for 3 channels, ImageNet's, as
// torchvision uses it. Each call returns a new slice.
func ImageNetMean() []float32 { return slices.Clone(imageNetMean[:]) }

// ImageNetStd is the default Std for 3 channels, ImageNet's. Each call
// returns a new slice.
func ImageNetStd() []float32 { return slices.Clone(imageNetStd[:]) }

// DefaultGrayMean and DefaultGrayStd are the defaults for one channel: 0
// and 1, no normalization beyond Scale.
func DefaultGrayMean() []float32 { return []float32{0} }

// DefaultGrayStd: see DefaultGrayMean.
func DefaultGrayStd() []float32 { return []float32{1} }

// Preprocess turns a decoded image into a model's input tensor: resize the
// shorter side to Resize, center-crop Height x Width, convert to Channels
// channels (in BGR order when BGR is set), multiply the 8-bit values by
// Scale, subtract Mean and divide by Std per channel, and write the values
// in Layout order.
//
// Height and Width must be set. A zero field means its default: Layout
// NCHW, Channels 3, Resize max(Height, Width) (the smallest size from
// which a Height x Width center crop fits whatever the aspect ratio),
// Scale 1/255, Mean and Std ImageNet's for 3 channels and 0 and 1 for one.
// Mean and Std hold one value per channel, or one value for all.
type Preprocess struct {
	Layout        string // NCHW or NHWC
	Channels      int    // 1 or 3
	BGR           bool   // channel order BGR instead of RGB (3 channels)
	Height, Width int    // crop, the model's input size
	Resize        int    // shorter side resized to this before the crop
	Scale         float32
	Mean, Std     []float32
	// MaxPixels bounds the width x height of the images decoded for this
	// preprocessing; 0 means DefaultMaxPixels. It is not part of the
	// preprocessing a model records.
	MaxPixels int64 `json:"-"`
}

// Shape returns the input tensor shape for a batch of n images.
func (p *Preprocess) Shape(n int) []int {
	c := p.channels()
	if p.Layout == NHWC {
		return []int{n, p.Height, p.Width, c}
	}
	return []int{n, c, p.Height, p.Width}
}

// Size returns the number of floats of one image's tensor.
func (p *Preprocess) Size() int {
	return p.channels() * p.Height * p.Width
}

func (p *Preprocess) channels() int {
	if p.Channels == 0 {
		return 3
	}
	return p.Channels
}

// Validate checks the fields, with zero ones standing for their defaults.
func (p *Preprocess) Validate() error {
	_, err := p.compile()
	return err
}

// String describes p on one line, for logs.
func (p *Preprocess) String() string {
	c, err := p.compile()
	if err != nil {
		return "invalid preprocessing: " + err.Error()
	}
	order := "RGB"
	if c.bgr {
		order = "BGR"
	} else if c.c == 1 {
		order = "gray"
	}
	scale := fmtFloat(c.scale)
	if c.scale == DefaultScale {
		scale = "1/255"
	}
	return fmt.Sprintf("%s %dx%dx%d %s, resize %d, center crop, scale %s, mean %s, std %s",
		p.layout(), c.c, c.h, c.w, order, c.resize, scale, fmtFloats(c.mean[:c.c]), fmtFloats(c.std[:c.c]))
}

func (p *Preprocess) layout() string {
	if p.Layout == "" {
		return NCHW
	}
	return p.Layout
}

// Metadata returns p as the model metadata record graft writes, with
// every default spelled out.
func (p *Preprocess) Metadata() (*onnx.Preprocessing, error) {
	c, err := p.compile()
	if err != nil {
		return nil, err
	}
	order := "RGB"
	if c.bgr {
		order = "BGR"
	} else if c.c == 1 {
		order = "gray"
	}
	out := &onnx.Preprocessing{
		Layout: p.layout(), Channels: c.c, ColorOrder: order,
		Height: c.h, Width: c.w, Resize: c.resize, Crop: "center",
		Scale: shortest(c.scale),
	}
	for i := 0; i < c.c; i++ {
		out.Mean = append(out.Mean, shortest(c.mean[i]))
		out.Std = append(out.Std, shortest(c.std[i]))
	}
	return out, nil
}

// shortest widens f to the float64 its shortest decimal form denotes, so
// that 0.485 is recorded as 0.485 and not 0.48500001430511475.
func shortest(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

func fmtFloat(f float32) string { return strconv.FormatFloat(float64(f), 'g', -1, 32) }

func fmtFloats(fs []float32) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = fmtFloat(f)
	}
	return strings.Join(s, ",")
}

// prep is a validated Preprocess with the defaults filled in.
type prep struct {
	nhwc      bool
	c, h, w   int
	resize    int
	bgr       bool
	scale     float32
	mean, std [3]float32
	// lut[ch][v] is the tensor value of 8-bit value v in channel ch
	lut [3][256]float32
}

func (p *Preprocess) compile() (*prep, error) {
	c := &prep{c: p.channels(), h: p.Height, w: p.Width, resize: p.Resize, bgr: p.BGR, scale: p.Scale}
	switch p.Layout {
	case "", NCHW:
	case NHWC:
		c.nhwc = true
	default:
		return nil, fmt.Errorf("layout %q: want %s or %s", p.Layout, NCHW, NHWC)
	}
	if c.c != 1 && c.c != 3 {
		return nil, fmt.Errorf("%d channels: images have 1 (gray) or 3 (color)", c.c)
	}
	if c.bgr && c.c != 3 {
		return nil, fmt.Errorf("BGR color order needs 3 channels, not %d", c.c)
	}
	if c.h <= 0 || c.w <= 0 {
		return nil, fmt.Errorf("input size %dx%d: height and width must be positive", c.h, c.w)
	}
	if c.resize == 0 {
		c.resize = max(c.h, c.w)
	}
	if c.resize < max(c.h, c.w) {
		return nil, fmt.Errorf("resize %d is smaller than the %dx%d input; give a resize of at least %d", c.resize, c.h, c.w, max(c.h, c.w))
	}
	if c.scale == 0 {
		c.scale = DefaultScale
	}
	if !finite(c.scale) {
		return nil, fmt.Errorf("scale %g is not a finite number", c.scale)
	}
	mean, std := p.Mean, p.Std
	if mean == nil {
		mean = imageNetMean[:]
		if c.c == 1 {
			mean = DefaultGrayMean()
		}
	}
	if std == nil {
		std = imageNetStd[:]
		if c.c == 1 {
			std = DefaultGrayStd()
		}
	}
	if err := spread(c.mean[:], mean, c.c, "mean"); err != nil {
		return nil, err
	}
	if err := spread(c.std[:], std, c.c, "std"); err != nil {
		return nil, err
	}
	for i := 0; i < c.c; i++ {
		if c.std[i] == 0 {
			return nil, fmt.Errorf("std %s: a standard deviation of 0 divides by zero", fmtFloats(std))
		}
		for v := range 256 {
			// The conversions round each step to float32, so that no
			// fused multiply-add changes the result between machines.
			c.lut[i][v] = (float32(float32(v)*c.scale) - c.mean[i]) / c.std[i]
		}
	}
	return c, nil
}

// spread copies vals into dst[:c], broadcasting a single value.
func spread(dst, vals []float32, c int, what string) error {
	if len(vals) != c && len(vals) != 1 {
		return fmt.Errorf("%s %s has %d values; give %d (one per channel) or 1", what, fmtFloats(vals), len(vals), c)
	}
	for i := 0; i < c; i++ {
		v := vals[0]
		if len(vals) > 1 {
			v = vals[i]
		}
		if !finite(v) {
			return fmt.Errorf("%s %s: %g is not a finite number", what, fmtFloats(vals), v)
		}
		dst[i] = v
	}
	return nil
}

func finite(f float32) bool {
	return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0)
}

// Overrides are preprocessing settings given on the command line; they
// win over the model's metadata. Zero fields override nothing.
type Overrides struct {
	Resize    int
	Mean, Std []float32
	// Shapes gives input shapes by name (--input-shape); the one of the
	// image input binds its symbolic height, width and channels. Its
	// batch is not used: the batch size is set per call.
	Shapes map[string][]int
}

// PreprocessFor returns the preprocessing of m's first input (the first
// graph input that is not an initializer). That input must be a 4-D image
// tensor: NCHW when its second dimension is 1 or 3, otherwise NHWC when
// its last one is. The model's "preprocessing" metadata, when present,
// gives the layout, color order, resize, scale, mean and std, and must
// agree with the input's shape; ov overrides it; the rest takes
// Preprocess's defaults.
//
// A height or width the model leaves symbolic (x: [N, 3, H, W]) is bound,
// in this order, by ov.Shapes, by the size the metadata records, or by
// ov.Resize (a square center crop of the resized image); when none gives
// it, the error says how to.
func PreprocessFor(m *onnx.Model, ov Overrides) (*Preprocess, error) {
	ins := m.Inputs()
	if len(ins) == 0 {
		return nil, fmt.Errorf("%s: the model has no inputs", m.Path)
	}
	in := ins[0]
	meta, err := m.Preprocessing()
	if err != nil {
		return nil, err
	}
	layout := ""
	if meta != nil {
		layout = meta.Layout
	}
	p, err := imageInput(in, layout)
	if err != nil {
		return nil, fmt.Errorf("%s: input %q: %w", m.Path, in.Name, err)
	}
	fixedH, fixedW := p.Height, p.Width // 0 where the model leaves them free
	if meta != nil {
		if err := p.apply(meta); err != nil {
			return nil, fmt.Errorf("%s: metadata %q: %w", m.Path, onnx.KeyPreprocessing, err)
		}
	}
	if given, ok := ov.Shapes[in.Name]; ok {
		if err := p.bind(given, fixedH, fixedW); err != nil {
			return nil, fmt.Errorf("%s: input %q: %w", m.Path, in.Name, err)
		}
	}
	if ov.Resize != 0 {
		p.Resize = ov.Resize
	}
	if p.Height == 0 || p.Width == 0 {
		if ov.Resize == 0 {
			return nil, fmt.Errorf("%s: input %q: shape %s leaves the image size free; choose one: the input's shape (Shapes; `--input-shape %s=%s` on the command line), or a resize to N x N crops (Resize; `--resize N`)", m.Path, in.Name, onnx.ShapeString(in.GetType().GetTensorType().GetShape()), in.Name, p.example())
		}
		p.Height, p.Width = cmp.Or(p.Height, ov.Resize), cmp.Or(p.Width, ov.Resize)
	}
	if ov.Mean != nil {
		p.Mean = ov.Mean
	}
	if ov.Std != nil {
		p.Std = ov.Std
	}
	c, err := p.compile()
	if err != nil {
		return nil, fmt.Errorf("%s: preprocessing: %w", m.Path, err)
	}
	// Spell out the defaults, so that callers see what will be done.
	p.Resize, p.Scale = c.resize, c.scale
	p.Mean = append([]float32(nil), c.mean[:c.c]...)
	p.Std = append([]float32(nil), c.std[:c.c]...)
	return p, nil
}

// imageInput reads layout, channels and size from an input's shape. The
// layout is inferred unless given.
func imageInput(in *onnx.ValueInfoProto, layout string) (*Preprocess, error) {
	tt := in.GetType().GetTensorType()
	if tt == nil {
		return nil, fmt.Errorf("not a tensor; graft feeds images to a 4-D float tensor")
	}
	switch tt.ElemType {
	case 1, 10, 11, 16: // float, float16, double, bfloat16
	default:
		return nil, fmt.Errorf("element type %d is not a float type; graft feeds images as floats", tt.ElemType)
	}
	sp := tt.GetShape()
	if sp == nil {
		return nil, fmt.Errorf("the model declares no shape; graft needs [batch, channels, height, width] or [batch, height, width, channels]")
	}
	dims := make([]int, len(sp.Dim))
	for i, d := range sp.Dim {
		dims[i] = int(d.GetDimValue())
	}
	shape := onnx.ShapeString(sp)
	if len(dims) != 4 {
		return nil, fmt.Errorf("shape %s is %d-D, not an image tensor [batch, channels, height, width] or [batch, height, width, channels]", shape, len(dims))
	}
	isChan := func(d int) bool { return d == 1 || d == 3 }
	if layout == "" {
		switch {
		case isChan(dims[1]):
			layout = NCHW
		case isChan(dims[3]):
			layout = NHWC
		default:
			return nil, fmt.Errorf("shape %s is not an image tensor: neither its second (NCHW) nor its last (NHWC) dimension is 1 or 3 channels", shape)
		}
	}
	p := &Preprocess{Layout: layout}
	switch layout {
	case NCHW:
		p.Channels, p.Height, p.Width = dims[1], dims[2], dims[3]
	case NHWC:
		p.Channels, p.Height, p.Width = dims[3], dims[1], dims[2]
	default:
		return nil, fmt.Errorf("metadata %q gives layout %q; want %s or %s", onnx.KeyPreprocessing, layout, NCHW, NHWC)
	}
	if !isChan(p.Channels) {
		return nil, fmt.Errorf("shape %s read as %s has %d channels, not 1 or 3", shape, layout, p.Channels)
	}
	// a symbolic height or width stays 0 until something binds it
	p.Height, p.Width = max(p.Height, 0), max(p.Width, 0)
	return p, nil
}

// bind takes the height and width of a shape given for the input, which
// must agree with its channels and with the height and width the model
// fixes (0 where free; a given size wins over the metadata's there).
func (p *Preprocess) bind(given []int, fixedH, fixedW int) error {
	if len(given) != 4 {
		return fmt.Errorf("the shape given for it, %v, is not 4-D", given)
	}
	c, h, w := given[1], given[2], given[3]
	if p.Layout == NHWC {
		c, h, w = given[3], given[1], given[2]
	}
	switch {
	case c != p.Channels:
		return fmt.Errorf("the shape given for it, %v, has %d channels; the model's input has %d (%s)", given, c, p.Channels, p.Layout)
	case fixedH != 0 && h != fixedH || fixedW != 0 && w != fixedW:
		return fmt.Errorf("the shape given for it, %v, is %dx%d; the model fixes %dx%d", given, h, w, fixedH, fixedW)
	case h < 1 || w < 1:
		return fmt.Errorf("the shape given for it, %v, has no positive height and width", given)
	}
	p.Height, p.Width = h, w
	return nil
}

// example is an input shape to suggest for a model with a free image
// size: batch 1, the input's channels, 224x224 where the size is free.
func (p *Preprocess) example() string {
	h, w := cmp.Or(p.Height, 224), cmp.Or(p.Width, 224)
	if p.Layout == NHWC {
		return fmt.Sprintf("1x%dx%dx%d", h, w, p.Channels)
	}
	return fmt.Sprintf("1x%dx%dx%d", p.Channels, h, w)
}

// apply takes the settings of a metadata record, checking it against the
// input shape read into p (in the record's layout).
func (p *Preprocess) apply(m *onnx.Preprocessing) error {
	if m.Channels != 0 && m.Channels != p.Channels {
		return fmt.Errorf("%d channels, but the input has %d", m.Channels, p.Channels)
	}
	// a free height or width takes the recorded size; a bound one must
	// agree with it
	if p.Height == 0 {
		p.Height = m.Height
	}
	if p.Width == 0 {
		p.Width = m.Width
	}
	if m.Height != 0 && m.Height != p.Height || m.Width != 0 && m.Width != p.Width {
		return fmt.Errorf("size %dx%d, but the input is %dx%d", m.Height, m.Width, p.Height, p.Width)
	}
	switch strings.ToUpper(m.ColorOrder) {
	case "", "RGB":
	case "BGR":
		p.BGR = true
	case "GRAY":
		if p.Channels != 1 {
			return fmt.Errorf("color order %q, but the input has %d channels", m.ColorOrder, p.Channels)
		}
	default:
		return fmt.Errorf("color order %q: want RGB, BGR or gray", m.ColorOrder)
	}
	if m.Crop != "" && m.Crop != "center" {
		return fmt.Errorf("crop %q: graft does only center crops", m.Crop)
	}
	p.Resize = m.Resize
	p.Scale = float32(m.Scale)
	p.Mean = floats32(m.Mean)
	p.Std = floats32(m.Std)
	return nil
}

func floats32(fs []float64) []float32 {
	if len(fs) == 0 {
		return nil
	}
	out := make([]float32, len(fs))
	for i, f := range fs {
		out[i] = float32(f)
	}
	return out
}

// Tensor writes img's input tensor into dst, which must hold Size()
// floats.
//
// The shorter side is resized to Resize (the longer one in proportion,
// truncated, as torchvision's Resize does) with a bilinear filter that
// widens when shrinking (antialiased, as PIL and torchvision with
// antialias=True). An image whose shorter side already is Resize is not
// resampled at all, so that its pixels arrive exactly. The Height x Width
// crop is then taken from the center (offsets rounded half to even, as
// torchvision's CenterCrop). Gray images are replicated to RGB; color
// images become gray by ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B).
// 16-bit images are reduced to 8 bits (value>>8) and transparent pixels
// are composited over black, so that Scale always applies to 0..255.
func (p *Preprocess) Tensor(img image.Image, dst []float32) error {
	c, err := p.compile()
	if err != nil {
		return err
	}
	return c.tensor(img, dst)
}

func (c *prep) tensor(img image.Image, dst []float32) error {
	if err := c.checkDst(dst); err != nil {
		return err
	}
	b := img.Bounds()
	if b.Empty() {
		return fmt.Errorf("image is empty (%dx%d)", b.Dx(), b.Dy())
	}
	rw, rh := resizeDims(b.Dx(), b.Dy(), c.resize)
	x0, y0 := cropOffset(rw, c.w), cropOffset(rh, c.h)
	// The crop is dr's part inside the c.w x c.h destination.
	dr := image.Rect(-x0, -y0, rw-x0, rh-y0)
	c.render(img, b, dr, false, dst)
	return nil
}

func (c *prep) checkDst(dst []float32) error {
	if n := c.c * c.h * c.w; len(dst) != n {
		return fmt.Errorf("destination holds %d floats, an image's tensor %d", len(dst), n)
	}
	return nil
}

// resizeDims returns the size of a w x h image whose shorter side is
// resized to r, the longer one truncated as torchvision's Resize does.
func resizeDims(w, h, r int) (int, int) {
	if w <= h {
		return r, int(int64(r) * int64(h) / int64(w))
	}
	return int(int64(r) * int64(w) / int64(h)), r
}

// cropOffset returns where a center crop of length n starts in length m:
// round((m-n)/2) with halves to even, as torchvision's CenterCrop.
func cropOffset(m, n int) int {
	return int(math.RoundToEven(float64(m-n) / 2))
}

// render maps src's part sr onto dr, which must contain the c.w x c.h
// window at the origin, and writes the window's tensor into dst, mirrored
// left to right when flip is set. When sr and dr have the same size no
// filtering is done: the pixels are copied.
func (c *prep) render(src image.Image, sr, dr image.Rectangle, flip bool, dst []float32) {
	resampleRows(src, sr, dr, c.w, c.h, func(y int, row []uint8, nc int) {
		if c.c == 1 {
			c.writeGray(row, nc, flip, dst[y*c.w:(y+1)*c.w])
		} else {
			c.writeColor(y, row, nc, flip, dst)
		}
	})
}

// writeGray writes one row of nc-byte pixels (see resampleRows) into dst,
// a one-channel tensor's row: gray pixels as they are, color ones by their
// luma (ITU-R 601).
func (c *prep) writeGray(row []uint8, nc int, flip bool, dst []float32) {
	w := len(dst)
	l := &c.lut[0]
	row = row[:nc*w]
	for x := range dst {
		sx := x
		if flip {
			sx = w - 1 - x
		}
		if nc == 1 {
			dst[x] = l[row[sx]]
			continue
		}
		px := row[3*sx : 3*sx+3 : 3*sx+3]
		if px[0] == px[1] && px[1] == px[2] {
			dst[x] = l[px[0]]
			continue
		}
		v := float32(0.299*float32(px[0])) + float32(0.587*float32(px[1])) + float32(0.114*float32(px[2]))
		dst[x] = (float32(v*c.scale) - c.mean[0]) / c.std[0]
	}
}

// writeColor writes row y of nc-byte pixels (see resampleRows) into dst,
// the three-channel tensor (channels R, G, B, or B, G, R in BGR order).
func (c *prep) writeColor(y int, row []uint8, nc int, flip bool, dst []float32) {
	w := c.w
	row = row[:nc*w]
	l0, l1, l2 := &c.lut[0], &c.lut[1], &c.lut[2]
	// pixel x's three values go to d0[o], d1[o], d2[o], o = x (or w-1-x
	// flipped) in NCHW layout and 3x (3(w-1-x)) in NHWC
	var d0, d1, d2 []float32
	step := 1
	if c.nhwc {
		d := dst[3*w*y : 3*w*(y+1)]
		d0, d1, d2 = d, d[1:], d[2:]
		step = 3
	} else {
		plane := c.h * w
		d0, d1, d2 = dst[w*y:w*(y+1)], dst[plane+w*y:plane+w*(y+1)], dst[2*plane+w*y:2*plane+w*(y+1)]
	}
	d0, d1, d2 = d0[:step*(w-1)+1], d1[:step*(w-1)+1], d2[:step*(w-1)+1]
	if nc == 3 && step == 1 && !flip && !c.bgr {
		// the usual case, in a loop the compiler keeps free of checks:
		// 2.2 ns a pixel with the general one below, 0.85 with this
		d0, d1, d2 = d0[:w], d1[:w], d2[:w]
		for x := range d0 {
			px := row[3*x : 3*x+3 : 3*x+3]
			d0[x], d1[x], d2[x] = l0[px[0]], l1[px[1]], l2[px[2]]
		}
		return
	}
	for x := range w {
		var r, g, b uint8
		if nc == 3 {
			px := row[3*x : 3*x+3 : 3*x+3]
			r, g, b = px[0], px[1], px[2]
		} else {
			r = row[x]
			g, b = r, r
		}
		if c.bgr {
			r, b = b, r
		}
		o := x
		if flip {
			o = w - 1 - x
		}
		o *= step
		d0[o], d1[o], d2[o] = l0[r], l1[g], l2[b]
	}
}

// Augment writes a randomly cropped and flipped input tensor of img into
// dst, for fine-tuning. It does what torchvision's RandomResizedCrop
// (scale 0.08 to 1, aspect ratio 3/4 to 4/3, 10 attempts before falling
// back to the largest center crop within those ratios) followed by
// RandomHorizontalFlip (probability 0.5) do, drawing from rng only, then
// converts, scales and normalizes as Tensor. The crop is resized to
// Height x Width with Tensor's bilinear filter; Resize is not used.
func (p *Preprocess) Augment(img image.Image, rng *rand.Rand, dst []float32) error {
	c, err := p.compile()
	if err != nil {
		return err
	}
	return c.augment(img, rng, dst)
}

func (c *prep) augment(img image.Image, rng *rand.Rand, dst []float32) error {
	if err := c.checkDst(dst); err != nil {
		return err
	}
	b := img.Bounds()
	if b.Empty() {
		return fmt.Errorf("image is empty (%dx%d)", b.Dx(), b.Dy())
	}
	sr := randomResizedCrop(b.Dx(), b.Dy(), rng).Add(b.Min)
	flip := rng.Float64() < 0.5
	c.render(img, sr, image.Rect(0, 0, c.w, c.h), flip, dst)
	return nil
}

// AugmentSamples decodes every sample again and writes a fresh
// augmentation of it into dst (Size() values each, in order), with
// workers goroutines (runtime.GOMAXPROCS(0) when workers <= 0). It decodes
// the files each epoch rather than keeping them decoded: a decoded
// 12-megapixel photo takes 48 MB, so memory, not decoding time, bounds the
// data set size. Image i of epoch e draws from its own generator, seeded by
// (seed, e, i), so results do not depend on scheduling.
func (p *Preprocess) AugmentSamples(samples []Sample, seed int64, epoch int, dst []float32, workers int) error {
	c, err := p.compile()
	if err != nil {
		return err
	}
	size := p.Size()
	if len(dst) < len(samples)*size {
		return fmt.Errorf("augment: %d values for %d images of %d", len(dst), len(samples), size)
	}
	errs := make([]error, len(samples))
	parallel(len(samples), workers, func(i int) bool {
		err := decodePooled(samples[i].Path, p.MaxPixels, func(img image.Image) error {
			rng := rand.New(rand.NewSource(seed*1_000_003 + int64(epoch)*7_919 + int64(i)))
			return c.augment(img, rng, dst[i*size:(i+1)*size])
		})
		errs[i] = err
		return err == nil
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// randomResizedCrop picks a crop of a w x h image as torchvision's
// RandomResizedCrop.get_params does.
func randomResizedCrop(w, h int, rng *rand.Rand) image.Rectangle {
	const minScale, maxScale = 0.08, 1.0
	minRatio, maxRatio := 3.0/4.0, 4.0/3.0
	area := float64(w * h)
	logMin, logMax := math.Log(minRatio), math.Log(maxRatio)
	for range 10 {
		target := area * (minScale + (maxScale-minScale)*rng.Float64())
		ratio := math.Exp(logMin + (logMax-logMin)*rng.Float64())
		cw := int(math.RoundToEven(math.Sqrt(target * ratio)))
		ch := int(math.RoundToEven(math.Sqrt(target / ratio)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			y := rng.Intn(h - ch + 1)
			x := rng.Intn(w - cw + 1)
			return image.Rect(x, y, x+cw, y+ch)
		}
	}
	cw, ch := w, h
	switch in := float64(w) / float64(h); {
	case in < minRatio:
		ch = int(math.RoundToEven(float64(cw) / minRatio))
	case in > maxRatio:
		cw = int(math.RoundToEven(float64(ch) * maxRatio))
	}
	x, y := (w-cw)/2, (h-ch)/2
	return image.Rect(x, y, x+cw, y+ch)
}

// DefaultMaxPixels bounds the size of an image graft decodes (width times
// height) unless Preprocess.MaxPixels or DataConfig.MaxPixels says
// otherwise, so that a small file claiming a huge image cannot exhaust
// memory: 50 million pixels decode to 200 MB of RGBA. The limit is checked
// from the file's header, before decoding.
const DefaultMaxPixels = 50_000_000

// ErrTooManyPixels marks an image refused for its declared size.
var ErrTooManyPixels = errors.New("above the pixel limit")

// format is an image format DecodeFile reads.
type format struct {
	name   string
	decode func(io.Reader) (image.Image, error)
	config func(io.Reader) (image.Config, error)
	// fast, when set, is tried first on the file's bytes, with memory
	// from s when s is not nil; it checks the size against maxPixels
	// itself. decode and config read the files it returns an error for.
	fast func(data []byte, maxPixels int64, s *decodeScratch) (image.Image, error)
}

// sniff tells an image's format by the bytes its file starts with (12
// are enough), or returns nil.
func sniff(h []byte) *format {
	has := func(magic string) bool { return bytes.HasPrefix(h, []byte(magic)) }
	switch {
	case has("\xff\xd8"):
		return &format{"JPEG", jpeg.Decode, jpeg.DecodeConfig, decodeJPEGLimit}
	case has("\x89PNG\r\n\x1a\n"):
		return &format{"PNG", png.Decode, png.DecodeConfig, nil}
	case has("GIF87a"), has("GIF89a"):
		return &format{"GIF", gif.Decode, gif.DecodeConfig, nil}
	case has("BM"):
		return &format{"BMP", bmp.Decode, bmp.DecodeConfig, nil}
	case has("RIFF") && len(h) >= 12 && string(h[8:12]) == "WEBP":
		return &format{"WebP", webp.Decode, webp.DecodeConfig, nil}
	}
	return nil
}

// formatNames is the list users read in error messages.
const formatNames = "JPEG, PNG, BMP, GIF or WebP"

// DecodeFile decodes the image file at path: JPEG, PNG, BMP, GIF (its
// first frame) or WebP, told apart by content rather than by extension.
// An image of more than maxPixels pixels (0: DefaultMaxPixels) is refused
// from its header with an error wrapping ErrTooManyPixels. Errors name the
// file.
func DecodeFile(path string, maxPixels int64) (image.Image, error) {
	return decodeFile(path, maxPixels, nil)
}

// decodeScratch is the memory one goroutine decoding image after image reuses:
// the file's bytes and the decoded pixels of the last image, which stay
// valid until the next decodeFile with it. Fresh memory costs page faults:
// with scratches, decoding 300 photos (640x480) in adapt took 0.30 s
// instead of 0.50.
type decodeScratch struct {
	file, pix []byte
	huff      *jpegTables // the last JPEG's Huffman tables
}

var decodeScratches = sync.Pool{New: func() any { return new(decodeScratch) }}

// decodePooled decodes the image file at path with a pooled scratch and
// hands the image to use, which must not keep it: the scratch goes back
// to the pool after use returns.
func decodePooled(path string, maxPixels int64, use func(image.Image) error) error {
	s := decodeScratches.Get().(*decodeScratch)
	defer decodeScratches.Put(s)
	img, err := decodeFile(path, maxPixels, s)
	if err != nil {
		return err
	}
	return use(img)
}

// decodeFile is DecodeFile with the memory of s, when s is not nil.
func decodeFile(path string, maxPixels int64, s *decodeScratch) (image.Image, error) {
	var data []byte
	var err error
	if s == nil {
		data, err = os.ReadFile(path)
	} else {
		data, err = readFileInto(path, s.file[:0])
		if err == nil {
			s.file = data // on an error s keeps its buffer
		}
	}
	if err != nil {
		return nil, err
	}
	img, err := decodeWith(data, maxPixels, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// readFileInto is os.ReadFile reading into buf's array when it holds
// the file.
func readFileInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := bytes.NewBuffer(buf[:0])
	if st, err := f.Stat(); err == nil && st.Size() < 1<<40 {
		b.Grow(int(st.Size()) + bytes.MinRead)
	}
	if _, err = b.ReadFrom(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decode(data []byte, maxPixels int64) (image.Image, error) {
	return decodeWith(data, maxPixels, nil)
}

func decodeWith(data []byte, maxPixels int64, s *decodeScratch) (image.Image, error) {
	f := sniff(data)
	if f == nil {
		return nil, fmt.Errorf("not a %s image", formatNames)
	}
	if f.fast != nil {
		if img, err := f.fast(data, maxPixels, s); err == nil {
			return img, nil
		}
	}
	cfg, err := f.config(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	if err := checkSize(cfg, maxPixels); err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	img, err := f.decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	return img, nil
}

// decodeConfig reads the header of the image file at path and checks its
// size against maxPixels (0: DefaultMaxPixels).
func decodeConfig(path string, maxPixels int64) (image.Config, error) {
	file, err := os.Open(path)
	if err != nil {
		return image.Config{}, err
	}
	defer file.Close()
	r := bufio.NewReader(file)
	head, _ := r.Peek(12)
	f := sniff(head)
	if f == nil {
		return image.Config{}, fmt.Errorf("%s: not a %s image", path, formatNames)
	}
	cfg, err := f.config(r)
	if err == nil {
		err = checkSize(cfg, maxPixels)
	}
	if err != nil {
		return image.Config{}, fmt.Errorf("%s: %s: %w", path, f.name, err)
	}
	return cfg, nil
}

func checkSize(cfg image.Config, maxPixels int64) error {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Errorf("image is empty (%dx%d)", cfg.Width, cfg.Height)
	}
	if n := int64(cfg.Width) * int64(cfg.Height); n > maxPixels {
		return fmt.Errorf("image is %dx%d = %d pixels, %w of %d", cfg.Width, cfg.Height, n, ErrTooManyPixels, maxPixels)
	}
	return nil
}

// LoadTensors decodes and preprocesses samples with workers goroutines
// (runtime.GOMAXPROCS(0) when workers <= 0). data holds the tensors of the
// kept samples one after another, in the order of samples whatever the
// scheduling. An image that cannot be decoded or preprocessed is left out
// and listed in skipped; when strict is set it is an error instead, naming
// the file.
func LoadTensors(samples []Sample, p *Preprocess, workers int, strict bool) (data []float32, kept []Sample, skipped []Skipped, err error) {
	return LoadTensorsInto(nil, samples, p, workers, strict)
}

// LoadTensorsInto is LoadTensors writing into buf's array when its
// capacity holds the tensors of all samples, so that a caller decoding
// chunk after chunk can reuse one buffer: memory fresh from the system
// costs page faults that take about as long as preprocessing the images
// written into it.
func LoadTensorsInto(buf []float32, samples []Sample, p *Preprocess, workers int, strict bool) (data []float32, kept []Sample, skipped []Skipped, err error) {
	c, err := p.compile()
	if err != nil {
		return nil, nil, nil, err
	}
	size := p.Size()
	data = buf[:0]
	if n := len(samples) * size; cap(data) >= n {
		data = data[:n]
	} else {
		data = hugemem.Floats(n)
	}
	errs := make([]error, len(samples))
	parallel(len(samples), workers, func(i int) bool {
		err := decodePooled(samples[i].Path, p.MaxPixels, func(img image.Image) error {
			if err := c.tensor(img, data[i*size:(i+1)*size]); err != nil {
				return fmt.Errorf("%s: %w", samples[i].Path, err)
			}
			return nil
		})
		if err != nil {
			errs[i] = err
			return !strict
		}
		return true
	})
	// Compact in sample order; the first failure is the one reported.
	n := 0
	for i, s := range samples {
		if errs[i] != nil {
			if strict {
				return nil, nil, nil, errs[i]
			}
			skipped = append(skipped, Skipped{Path: s.Path, Err: errs[i]})
			continue
		}
		if n != i {
			copy(data[n*size:(n+1)*size], data[i*size:(i+1)*size])
		}
		kept = append(kept, s)
		n++
	}
	return data[:n*size], kept, skipped, nil
}

// parallel calls f(i) for i in [0, n) on workers goroutines
// (runtime.GOMAXPROCS(0) when workers <= 0), handing out indexes in order.
// Once an f returns false no further index is handed out.
func parallel(n, workers int, f func(i int) bool) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if !f(i) {
					stop.Store(true)
				}
			}
		})
	}
	wg.Wait()
}
