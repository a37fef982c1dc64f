package graph

import (
	"context"
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
// with one weight changed, and checks the initializers bit for bit and the
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

			// one weight changed, in graft
			var target string
			for _, tp := range src.Proto.Graph.Initializer {
				if tp.DataType == 1 && len(tp.Dims) == 4 {
					target = tp.Name
					break
				}
			}
			w := gm.Weights()[target]
			for i := range w.F {
				w.F[i] += 0.05
			}
			mp = surgery.CloneProto(src.Proto)
			changed, err = surgery.UpdateWeights(mp, gm.Weights())
			if err != nil || !slices.Equal(changed, []string{target}) {
				t.Fatalf("changed %v (%v), want exactly [%s]", changed, err, target)
			}
			for i, tp := range mp.Graph.Initializer {
				if tp.Name != target && !proto.Equal(tp, src.Proto.Graph.Initializer[i]) {
					t.Fatalf("initializer %q changed, only %q should have", tp.Name, target)
				}
			}
			moved := filepath.Join(dir, "moved.onnx")
			if err := onnx.WriteFile(moved, mp, false); err != nil {
				t.Fatal(err)
			}
			ortMoved, err := ort.Run(moved, feeds)
			if err != nil {
				t.Fatal(err)
			}
			out := src.Proto.Graph.Output[0].Name
			if d, _ := onnxtest.Compare(ortMoved[out], want[out]); d.MaxAbs == 0 {
				t.Fatalf("changing %q did not move ONNX Runtime's output", target)
			}
			mine, err := gm.Run(feeds) // the in-memory model with the changed weight
			if err != nil {
				t.Fatal(err)
			}
			onnxtest.AssertClose(t, "changed weight: graft vs ONNX Runtime", mine[out], ortMoved[out], 1e-4)
		})
	}
}

// TestConvertRecipes runs `graft convert`'s two common recipes on every
// model: the ONNX checker accepts the result, ONNX Runtime runs it at
// batch 1 and 3 and agrees with graft, and graft re-imports it.
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
				for _, n := range []int{1, 3} {
					x := randInput(int64(n), withBatch(shape, n))
					feeds := map[string]*onnx.Tensor{in.Name: x}
					want, err := ort.Run(cfg.Out, feeds)
					if err != nil {
						t.Fatal(err)
					}
					gm, err := Build(m, Options{Batch: n})
					if err != nil {
						t.Fatal(err)
					}
					got, err := gm.Run(feeds)
					if err != nil {
						t.Fatal(err)
					}
					out := res.Outputs[0].Name
					onnxtest.AssertClose(t, r.name+" batch "+string(rune('0'+n)), got[out], want[out], 1e-4)
					if r.cfg.Head != nil && (want[out].Shape[1] != 7 || want[out].Shape[0] != n) {
						t.Fatalf("head output shape %v", want[out].Shape)
					}
				}
				if r.cfg.Head != nil {
					labels, err := m.Labels()
					if err != nil || len(labels) != 7 {
						t.Fatalf("labels %v %v", labels, err)
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
