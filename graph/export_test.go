package graph

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graftml/graft/onnx/surgery"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/onnxtest"
	"google.golang.org/protobuf/proto"
)

// exportCases are the models the export checks run on: the fixtures with
// a classifier, and every generated architecture.
func exportCases(t *testing.T, fixtureNames ...string) []*onnxtest.Case {
	var cs []*onnxtest.Case
	for _, name := range fixtureNames {
		cs = append(cs, onnxtest.Fixture(t, name))
	}
	if testing.Short() {
		return cs
	}
	onnxtest.GeneratedDir(t)
	for _, name := range realArchs {
		cs = append(cs, onnxtest.Generated(t, name))
	}
	return cs
}

func randInput(seed int64, shape []int) *onnx.Tensor {
	r := rand.New(rand.NewSource(seed))
	x := onnx.NewFloat(shape, nil)
	for i := range x.F {
		x.F[i] = float32(r.NormFloat64())
	}
	return x
}

func withBatch(shape []int, n int) []int {
	s := slices.Clone(shape)
	s[0] = n
	return s
}

// TestExportRoundTrip imports each model, exports it unchanged and then
// with a 4-D weight and a bias changed, and checks initializers byte for
// byte (proto.Equal would accept, say, float_data for raw_data) and the
// outputs with ONNX Runtime.
func TestExportRoundTrip(t *testing.T) {
	ort := onnxtest.ORT(t)
	for _, c := range exportCases(t, "conv_bn_pool_fc", "mobile_block_op11", "fire", "dense_bnkeep") {
		t.Run(c.Name, func(t *testing.T) {
			src, err := onnx.ReadFile(c.ModelPath, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			feeds, err := c.Feeds(0)
			if err != nil {
				t.Fatal(err)
			}
			gm, err := Build(src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()

			// nothing changed
			mp := surgery.CloneProto(src.Proto)
			changed, err := surgery.UpdateWeights(mp, gm.Weights())
			if err != nil || len(changed) != 0 {
				t.Fatalf("unchanged weights reported changed: %v %v", changed, err)
			}
			same := filepath.Join(dir, "same.onnx")
			if err := onnx.WriteFile(same, mp, false); err != nil {
				t.Fatal(err)
			}
			back, err := onnx.ReadFile(same, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(back.Proto, src.Proto) {
				t.Fatal("an export with nothing changed differs from the original model")
			}
			// Byte for byte: every initializer as the source holds it, and
			// graft's file reproduces itself. The file as a whole is not
			// the source's bytes: graft's protobuf types are proto3, which
			// pack repeated integers (dims, ints attributes) where ONNX's
			// proto2 files from PyTorch do not, so a few bytes differ
			// (4221 against 4227 for conv_bn_pool_fc).
			for i, tp := range back.Proto.Graph.Initializer {
				if a, b := marshal(t, tp), marshal(t, src.Proto.Graph.Initializer[i]); !bytes.Equal(a, b) {
					t.Fatalf("initializer %q: an export with nothing changed has other bytes", tp.Name)
				}
			}
			again := filepath.Join(dir, "again.onnx")
			if err := onnx.WriteFile(again, back.Proto, false); err != nil {
				t.Fatal(err)
			}
			if a, b := readBytes(t, again), readBytes(t, same); !bytes.Equal(a, b) {
				t.Fatalf("re-exporting graft's own export changed its bytes: %d, then %d", len(b), len(a))
			}
			want, err := ort.Run(c.ModelPath, feeds)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ort.Run(same, feeds)
			if err != nil {
				t.Fatal(err)
			}
			for name := range want {
				onnxtest.AssertClose(t, "unchanged export "+name, got[name], want[name], 0)
			}

			// a weight and a bias changed, in graft
			targets := changeTargets(src.Proto)
			if len(targets) != 2 {
				t.Fatalf("found %v to change, want a 4-D weight and a bias", targets)
			}
			for k, name := range targets {
				w := gm.Weights()[name]
				for i := range w.F {
					w.F[i] += 0.05 * float32(k+1)
				}
			}
			mp = surgery.CloneProto(src.Proto)
			changed, err = surgery.UpdateWeights(mp, gm.Weights())
			slices.Sort(changed)
			if want := slices.Sorted(slices.Values(targets)); err != nil || !slices.Equal(changed, want) {
				t.Fatalf("changed %v (%v), want exactly %v", changed, err, want)
			}
			for i, tp := range mp.Graph.Initializer {
				if slices.Contains(targets, tp.Name) {
					continue
				}
				if a, b := marshal(t, tp), marshal(t, src.Proto.Graph.Initializer[i]); !bytes.Equal(a, b) {
					t.Fatalf("initializer %q changed, only %v should have", tp.Name, targets)
				}
			}
			moved := filepath.Join(dir, "moved.onnx")
			if err := onnx.WriteFile(moved, mp, false); err != nil {
				t.Fatal(err)
			}
			back, err = onnx.ReadFile(moved, onnx.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for _, tp := range back.Proto.Graph.Initializer {
				if !slices.Contains(targets, tp.Name) {
					continue
				}
				wt, err := onnx.TensorFromProto(tp)
				if err != nil {
					t.Fatal(err)
				}
				if a, b := floatBytes(wt.F), floatBytes(gm.Weights()[tp.Name].F); !bytes.Equal(a, b) {
					t.Fatalf("written %q is not graft's changed values bit for bit", tp.Name)
				}
			}
			ortMoved, err := ort.Run(moved, feeds)
			if err != nil {
				t.Fatal(err)
			}
			out := src.Proto.Graph.Output[0].Name
			if d, _ := onnxtest.Compare(ortMoved[out], want[out]); d.MaxAbs == 0 {
				t.Fatalf("changing %v did not move ONNX Runtime's output", targets)
			}
			mine, err := gm.Run(feeds) // the in-memory model with the changed weight
			if err != nil {
				t.Fatal(err)
			}
			onnxtest.AssertClose(t, "changed weights: graft vs ONNX Runtime", mine[out], ortMoved[out], relTol)
		})
	}
}

// changeTargets picks what TestExportRoundTrip changes: the first 4-D float
// initializer and the first bias (third input of a Conv or Gemm, else of a
// BatchNormalization).
func changeTargets(mp *onnx.ModelProto) []string {
	inits := map[string]*onnx.TensorProto{}
	var out []string
	for _, tp := range mp.Graph.Initializer {
		inits[tp.Name] = tp
		if len(out) == 0 && tp.DataType == 1 && len(tp.Dims) == 4 {
			out = append(out, tp.Name)
		}
	}
	for _, ops := range [][]string{{"Conv", "Gemm"}, {"BatchNormalization"}} {
		for _, n := range mp.Graph.Node {
			if slices.Contains(ops, n.OpType) && len(n.Input) > 2 {
				if tp := inits[n.Input[2]]; tp != nil && tp.DataType == 1 && len(tp.Dims) == 1 {
					return append(out, tp.Name)
				}
			}
		}
	}
	return out
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func floatBytes(f []float32) []byte {
	b := make([]byte, 4*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// TestConvertRecipes runs `graft convert`'s two common recipes on every
// model: the ONNX checker accepts the result, and at batch 1 and 3 both
// ONNX Runtime and graft running it agree with references that do not
// come from the written file's graph: the features with the cut tensor as
// ONNX Runtime computes it in the SOURCE model (pooled over space in the
// test when it is 4-D), the head with softmax(features x W^T + b)
// computed in the test from the written head's initializers. The labels
// must be the given ones, in order.
func TestConvertRecipes(t *testing.T) {
	ort := onnxtest.ORT(t)
	check := onnxtest.Checker(t)
	recipes := []struct {
		name string
		cfg  ConvertConfig
	}{
		{"features", ConvertConfig{Cut: "auto", Batch: "dynamic"}},
		{"head7", ConvertConfig{Head: &surgery.HeadSpec{Classes: 7, Softmax: true, Seed: 3}, Batch: "dynamic", Labels: []string{"a", "b", "c", "d", "e", "f", "g"}}},
	}
	for _, c := range exportCases(t, "conv_bn_pool_fc", "fire", "dynbatch_view") {
		for _, r := range recipes {
			t.Run(c.Name+"/"+r.name, func(t *testing.T) {
				cfg := r.cfg
				cfg.Model = c.ModelPath
				cfg.Out = filepath.Join(t.TempDir(), "out.onnx")
				res, err := Convert(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := check(cfg.Out); err != nil {
					t.Fatalf("ONNX checker: %v", err)
				}
				m, err := onnx.ReadFile(cfg.Out, onnx.Limits{})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Outputs) != 1 || res.Outputs[0].Shape[0] != "N" {
					t.Fatalf("outputs %+v: want one output with a symbolic batch", res.Outputs)
				}
				in := m.Inputs()[0]
				shape, err := InputShape(in, 1)
				if err != nil {
					t.Fatal(err)
				}
				srcCut := sourceWithOutput(t, c.ModelPath, res.Cut)
				for _, n := range []int{1, 3} {
					x := randInput(int64(n), withBatch(shape, n))
					feeds := map[string]*onnx.Tensor{in.Name: x}
					want, err := ort.Run(cfg.Out, feeds)
					if err != nil {
						t.Fatal(err)
					}
					ref, err := ort.Run(srcCut, feeds)
					if err != nil {
						t.Fatal(err)
					}
					features := pooled(ref[res.Cut])
					indep := features
					if r.cfg.Head != nil {
						indep = headReference(t, m, features)
					}
					out := res.Outputs[0].Name
					onnxtest.AssertClose(t, fmt.Sprintf("%s batch %d: ONNX Runtime on the written file vs the independent reference", r.name, n), want[out], indep, relTol)
					gm, err := Build(m, Options{Batch: n})
					if err != nil {
						t.Fatal(err)
					}
					got, err := gm.Run(feeds)
					if err != nil {
						t.Fatal(err)
					}
					onnxtest.AssertClose(t, fmt.Sprintf("%s batch %d: graft vs the independent reference", r.name, n), got[out], indep, relTol)
					if r.cfg.Head != nil && (want[out].Shape[1] != 7 || want[out].Shape[0] != n) {
						t.Fatalf("head output shape %v", want[out].Shape)
					}
				}
				if r.cfg.Head != nil {
					labels, err := m.Labels()
					if err != nil || !slices.Equal(labels, r.cfg.Labels) {
						t.Fatalf("labels %q (%v), want %q in that order", labels, err, r.cfg.Labels)
					}
				}
				g, err := m.Graft()
				if err != nil || g == nil || g.Cut == "" || g.BaseSHA256 == "" {
					t.Fatalf("graft metadata %+v %v", g, err)
				}
			})
		}
	}
}

// sourceWithOutput writes a copy of the model at path whose batch is
// dynamic and which also outputs tensor name, and returns its path.
func sourceWithOutput(t *testing.T, path, name string) string {
	t.Helper()
	src, err := onnx.ReadFile(path, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	mp := surgery.CloneProto(src.Proto)
	if err := surgery.SetBatch(mp, "dynamic"); err != nil {
		t.Fatal(err)
	}
	mp.Graph.Output = append(mp.Graph.Output, &onnx.ValueInfoProto{Name: name,
		Type: &onnx.TypeProto{Value: &onnx.TypeTensor{TensorType: &onnx.TypeProtoTensor{ElemType: 1}}}})
	out := filepath.Join(t.TempDir(), "source_with_"+strings.NewReplacer("/", "_", ":", "_").Replace(name)+".onnx")
	if err := onnx.WriteFile(out, mp, false); err != nil {
		t.Fatal(err)
	}
	return out
}

// pooled averages a 4-D tensor over its spatial dimensions, to [N, C];
// other tensors it flattens to [N, rest].
func pooled(x *onnx.Tensor) *onnx.Tensor {
	n := x.Shape[0]
	if len(x.Shape) != 4 {
		return onnx.NewFloat([]int{n, x.Len() / n}, x.F)
	}
	c, hw := x.Shape[1], x.Shape[2]*x.Shape[3]
	out := onnx.NewFloat([]int{n, c}, nil)
	for i := range n * c {
		var s float64
		for _, v := range x.F[i*hw : (i+1)*hw] {
			s += float64(v)
		}
		out.F[i] = float32(s / float64(hw))
	}
	return out
}

// headReference computes softmax(features x W^T + b) from the initializers
// of the written model's last Gemm, which must be the head convert attached
// (transB 1, alpha and beta 1, followed by the Softmax).
func headReference(t *testing.T, m *onnx.Model, features *onnx.Tensor) *onnx.Tensor {
	t.Helper()
	var gemm *onnx.NodeProto
	for _, n := range m.Proto.Graph.Node {
		if n.OpType == "Gemm" {
			gemm = n
		}
	}
	if gemm == nil || len(gemm.Input) != 3 {
		t.Fatalf("no head Gemm with a bias in the written model")
	}
	for _, a := range gemm.Attribute {
		if a.Name == "transB" && a.I != 1 || a.Name == "transA" && a.I != 0 || (a.Name == "alpha" || a.Name == "beta") && a.F != 1 {
			t.Fatalf("head Gemm attribute %s = %v %v", a.Name, a.I, a.F)
		}
	}
	inits := m.Initializers()
	w, err := onnx.TensorFromProto(inits[gemm.Input[1]])
	if err != nil {
		t.Fatal(err)
	}
	b, err := onnx.TensorFromProto(inits[gemm.Input[2]])
	if err != nil {
		t.Fatal(err)
	}
	n, d := features.Shape[0], features.Shape[1]
	k := w.Shape[0]
	if w.Shape[1] != d || b.Len() != k {
		t.Fatalf("head W %v, b %v for features %v", w.Shape, b.Shape, features.Shape)
	}
	out := onnx.NewFloat([]int{n, k}, nil)
	for i := range n {
		z := make([]float64, k)
		mx := math.Inf(-1)
		for j := range k {
			s := float64(b.F[j])
			for e := range d {
				s += float64(features.F[i*d+e]) * float64(w.F[j*d+e])
			}
			z[j] = s
			mx = math.Max(mx, s)
		}
		var sum float64
		for j := range z {
			z[j] = math.Exp(z[j] - mx)
			sum += z[j]
		}
		for j := range z {
			out.F[i*k+j] = float32(z[j] / sum)
		}
	}
	return out
}

// TestConvertDropsStaleLabels: a new head without labels must not keep the
// source model's labels, which name the classifier it replaced.
func TestConvertDropsStaleLabels(t *testing.T) {
	c := onnxtest.Fixture(t, "conv_bn_pool_fc")
	src, err := onnx.ReadFile(c.ModelPath, onnx.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mp := surgery.CloneProto(src.Proto)
	surgery.SetMetadata(mp, onnx.KeyLabels, `["old0","old1","old2","old3","old4"]`)
	labelled := filepath.Join(dir, "labelled.onnx")
	if err := onnx.WriteFile(labelled, mp, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels []string
		want   []string
	}{{nil, nil}, {[]string{"x", "y", "z"}, []string{"x", "y", "z"}}} {
		out := filepath.Join(dir, fmt.Sprintf("head%d.onnx", len(tc.labels)))
		if _, err := Convert(context.Background(), ConvertConfig{Model: labelled, Out: out, Head: &surgery.HeadSpec{Classes: 3, Seed: 1}, Labels: tc.labels}); err != nil {
			t.Fatal(err)
		}
		m, err := onnx.ReadFile(out, onnx.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		labels, err := m.Labels()
		if err != nil || !slices.Equal(labels, tc.want) {
			t.Errorf("new head with labels %q: the written model has %q (%v), want %q", tc.labels, labels, err, tc.want)
		}
	}
	// without a head, the classifier and its labels stay
	out := filepath.Join(dir, "batch.onnx")
	if _, err := Convert(context.Background(), ConvertConfig{Model: labelled, Out: out, Batch: "dynamic"}); err != nil {
		t.Fatal(err)
	}
	m, _ := onnx.ReadFile(out, onnx.Limits{})
	if labels, _ := m.Labels(); len(labels) != 5 || labels[0] != "old0" {
		t.Errorf("a batch change lost the labels: %q", labels)
	}
}

// TestConvertErrors pairs bad requests with their messages; none may leave
// a file behind.
func TestConvertErrors(t *testing.T) {
	c := onnxtest.Fixture(t, "conv_bn_pool_fc")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.onnx")
	cases := []struct {
		cfg  ConvertConfig
		want string
	}{
		{ConvertConfig{Cut: "nope"}, `no tensor named "nope" to cut at; candidates:`},
		{ConvertConfig{Head: &surgery.HeadSpec{Classes: 1}}, "at least 2 classes"},
		{ConvertConfig{Head: &surgery.HeadSpec{Classes: 3}, Labels: []string{"a", "b"}}, "2 labels for a head of 3 classes"},
		{ConvertConfig{Out: filepath.Join(dir, "missing", "x.onnx"), Cut: "auto"}, "does not exist"},
		{ConvertConfig{Out: c.ModelPath, Cut: "auto"}, "is the input model"},
		{ConvertConfig{Batch: "zero"}, `neither "dynamic" nor a positive number`},
	}
	for _, tc := range cases {
		cfg := tc.cfg
		cfg.Model = c.ModelPath
		if cfg.Out == "" {
			cfg.Out = out
		}
		_, err := Convert(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left behind: %v", ents)
	}
}
