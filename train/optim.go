package train

import (
	"fmt"
	"math"
)

// An Optimizer updates weights in place from their gradients. Each
// optimizer has its own settings type, so an option for another optimizer
// cannot be silently ignored. State (moments, momentum buffers) is kept
// per weight, for trainable weights only.
type Optimizer interface {
	// Step applies one update with learning rate lr; lrs optionally
	// scales lr per weight (nil means 1 for all).
	Step(weights, grads [][]float32, lr float64, lrs []float64)
	Name() string
}

// Adam is PyTorch's torch.optim.Adam (L2 weight decay added to the
// gradient), or AdamW when Decoupled (weight decay applied to the weight).
type Adam struct {
	Beta1, Beta2, Eps float64
	WeightDecay       float64
	Decoupled         bool

	t    int
	m, v [][]float32
}

// NewAdam returns Adam with PyTorch's defaults (0.9, 0.999, 1e-8).
func NewAdam(weightDecay float64, decoupled bool) *Adam {
	return &Adam{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay, Decoupled: decoupled}
}

func (a *Adam) Name() string {
	if a.Decoupled {
		return "adamw"
	}
	return "adam"
}

func (a *Adam) Step(weights, grads [][]float32, lr float64, lrs []float64) {
	if a.m == nil {
		a.m, a.v = zerosLike(weights), zerosLike(weights)
	}
	a.t++
	bc1 := 1 - math.Pow(a.Beta1, float64(a.t))
	bc2 := 1 - math.Pow(a.Beta2, float64(a.t))
	for i, w := range weights {
		l := scaled(lr, lrs, i)
		g, m, v := grads[i], a.m[i], a.v[i]
		step := l / bc1
		sq := math.Sqrt(bc2)
		for j := range w {
			gj := float64(g[j])
			if a.WeightDecay != 0 {
				if a.Decoupled {
					w[j] = float32(float64(w[j]) * (1 - l*a.WeightDecay))
				} else {
					gj += a.WeightDecay * float64(w[j])
				}
			}
			mj := a.Beta1*float64(m[j]) + (1-a.Beta1)*gj
			vj := a.Beta2*float64(v[j]) + (1-a.Beta2)*gj*gj
			m[j], v[j] = float32(mj), float32(vj)
			w[j] = float32(float64(w[j]) - step*mj/(math.Sqrt(vj)/sq+a.Eps))
		}
	}
}

// SGD is PyTorch's torch.optim.SGD with momentum, Nesterov momentum and L2
// weight decay.
type SGD struct {
	Momentum    float64
	Nesterov    bool
	WeightDecay float64

	buf [][]float32
}

func (s *SGD) Name() string { return "sgd" }

func (s *SGD) Step(weights, grads [][]float32, lr float64, lrs []float64) {
	first := s.buf == nil
	if first && s.Momentum != 0 {
		s.buf = zerosLike(weights)
	}
	for i, w := range weights {
		l := scaled(lr, lrs, i)
		for j := range w {
			gj := float64(grads[i][j])
			if s.WeightDecay != 0 {
				gj += s.WeightDecay * float64(w[j])
			}
			if s.Momentum != 0 {
				b := gj
				if !first {
					b = s.Momentum*float64(s.buf[i][j]) + gj
				}
				s.buf[i][j] = float32(b)
				if s.Nesterov {
					gj += s.Momentum * b
				} else {
					gj = b
				}
			}
			w[j] = float32(float64(w[j]) - l*gj)
		}
	}
}

func scaled(lr float64, lrs []float64, i int) float64 {
	if lrs == nil {
		return lr
	}
	return lr * lrs[i]
}

func zerosLike(ws [][]float32) [][]float32 {
	out := make([][]float32, len(ws))
	for i, w := range ws {
		out[i] = make([]float32, len(w))
	}
	return out
}

// Schedule gives the learning rate at a step.
type Schedule struct {
	Kind        ScheduleKind
	Base        float64
	TotalSteps  int
	WarmupSteps int
	// StepEvery and Gamma drive "step": multiply by Gamma every StepEvery
	// steps.
	StepEvery int
	Gamma     float64
}

// NewSchedule checks and makes a schedule of totalSteps optimizer steps
// from learning rate base; kind "" means ScheduleConstant, stepEvery 0 a
// third of the steps and gamma 0 a factor of 0.1.
func NewSchedule(kind ScheduleKind, base float64, totalSteps, warmupSteps, stepEvery int, gamma float64) (Schedule, error) {
	if kind == "" {
		kind = ScheduleConstant
	}
	switch kind {
	case ScheduleConstant, ScheduleCosine, ScheduleStep:
	default:
		return Schedule{}, fmt.Errorf("unknown schedule %q (constant, cosine or step)", kind)
	}
	if base <= 0 || math.IsNaN(base) || math.IsInf(base, 0) {
		return Schedule{}, fmt.Errorf("learning rate %g must be positive", base)
	}
	if warmupSteps < 0 || warmupSteps > totalSteps {
		return Schedule{}, fmt.Errorf("warmup of %d steps must be between 0 and the %d training steps", warmupSteps, totalSteps)
	}
	if stepEvery <= 0 {
		stepEvery = max(1, totalSteps/3)
	}
	if gamma <= 0 {
		gamma = 0.1
	}
	return Schedule{Kind: kind, Base: base, TotalSteps: totalSteps, WarmupSteps: warmupSteps, StepEvery: stepEvery, Gamma: gamma}, nil
}

// LR is the learning rate for step (counted from 0).
func (s Schedule) LR(step int) float64 {
	if step < s.WarmupSteps {
		return s.Base * float64(step+1) / float64(s.WarmupSteps)
	}
	switch s.Kind {
	case ScheduleCosine:
		span := s.TotalSteps - s.WarmupSteps
		if span <= 0 {
			return s.Base
		}
		p := float64(step-s.WarmupSteps) / float64(span)
		return s.Base * 0.5 * (1 + math.Cos(math.Pi*p))
	case ScheduleStep:
		return s.Base * math.Pow(s.Gamma, float64((step-s.WarmupSteps)/s.StepEvery))
	}
	return s.Base
}
