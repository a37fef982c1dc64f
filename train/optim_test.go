package train

import (
	"encoding/json"
	"math"
	"os/exec"
	"testing"

	"github.com/graftml/graft/onnx/onnxtest"
)

// torchScript applies 5 steps of each optimizer to a fixed weight with
// fixed gradients (gradient k of step s is sin(s+k)) and prints the
// weights after each optimizer, as JSON.
const torchScript = `
import json, math, torch
w0 = [0.5, -0.25, 1.5, -2.0]
cases = {
 "adam": lambda p: torch.optim.Adam([p], lr=0.01),
 "adam_wd": lambda p: torch.optim.Adam([p], lr=0.01, weight_decay=0.1),
 "adamw": lambda p: torch.optim.AdamW([p], lr=0.01, weight_decay=0.1),
 "sgd": lambda p: torch.optim.SGD([p], lr=0.1),
 "sgd_mom": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01),
 "sgd_nesterov": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True),
}
out = {}
for name, make in cases.items():
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = make(p)
    for s in range(5):
        opt.zero_grad()
        p.grad = torch.tensor([math.sin(s + k) for k in range(4)])
        opt.step()
    out[name] = p.detach().tolist()
print(json.dumps(out))
`

func TestOptimizersMatchPyTorch(t *testing.T) {
	outb, err := exec.Command(onnxtest.Python, "-c", torchScript).Output()
	if err != nil {
		onnxtest.Need(t, "PyTorch reference unavailable (apt-get install python3-torch): %v", err)
	}
	var want map[string][]float64
	if err := json.Unmarshal(outb, &want); err != nil {
		t.Fatal(err)
	}
	makers := map[string]func() (Optimizer, float64){
		"adam":         func() (Optimizer, float64) { return NewAdam(0, false), 0.01 },
		"adam_wd":      func() (Optimizer, float64) { return NewAdam(0.1, false), 0.01 },
		"adamw":        func() (Optimizer, float64) { return NewAdam(0.1, true), 0.01 },
		"sgd":          func() (Optimizer, float64) { return &SGD{}, 0.1 },
		"sgd_mom":      func() (Optimizer, float64) { return &SGD{Momentum: 0.9, WeightDecay: 0.01}, 0.1 },
		"sgd_nesterov": func() (Optimizer, float64) { return &SGD{Momentum: 0.9, Nesterov: true}, 0.1 },
	}
	for name, mk := range makers {
		opt, lr := mk()
		w := []float32{0.5, -0.25, 1.5, -2.0}
		for s := 0; s < 5; s++ {
			g := make([]float32, 4)
			for k := range g {
				g[k] = float32(math.Sin(float64(s + k)))
			}
			opt.Step([][]float32{w}, [][]float32{g}, lr, nil)
		}
		for k := range w {
			if d := math.Abs(float64(w[k]) - want[name][k]); d > 1e-6 {
				t.Errorf("%s: weight %d = %.8f, PyTorch %.8f", name, k, w[k], want[name][k])
			}
		}
	}
}

func TestSchedules(t *testing.T) {
	s, err := NewSchedule("cosine", 1, 10, 2, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := []float64{s.LR(0), s.LR(1), s.LR(2), s.LR(6), s.LR(9)}
	want := []float64{0.5, 1, 1, 0.5, 0.5 * (1 + math.Cos(math.Pi*7/8))}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("cosine step %d: %g, want %g", i, got[i], want[i])
		}
	}
	st, _ := NewSchedule("step", 1, 9, 0, 3, 0.5)
	if st.LR(2) != 1 || st.LR(3) != 0.5 || st.LR(8) != 0.25 {
		t.Errorf("step schedule: %g %g %g", st.LR(2), st.LR(3), st.LR(8))
	}
	if _, err := NewSchedule("linear", 1, 10, 0, 0, 0); err == nil {
		t.Error("unknown schedule accepted")
	}
	if _, err := NewSchedule("constant", 1, 10, 11, 0, 0); err == nil {
		t.Error("warmup longer than training accepted")
	}
	if _, err := NewOptimizer(OptimizerConfig{Kind: OptimizerAdam, Momentum: 0.9}); err == nil {
		t.Error("momentum accepted for adam")
	}
}
