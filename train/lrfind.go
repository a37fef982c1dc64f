package train

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"time"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
)

// Defaults of LRFindConfig, as fastai's lr_find.
const (
	DefaultLRFindStart = 1e-7
	DefaultLRFindEnd   = 10
	DefaultLRFindSteps = 100
)

// LRFindConfig configures FindLR; zero fields mean their defaults.
type LRFindConfig struct {
	Start, End float64         // the learning-rate range; default DefaultLRFindStart to DefaultLRFindEnd
	Steps      int             // optimizer steps; default DefaultLRFindSteps
	Batch      int             // default DefaultBatch
	Optimizer  OptimizerConfig // the zero value is Adam
	Seed       int64           // the order of the examples
	Classes    int             // 0: one more than the largest label
	// Smoothing is the weight of the exponential moving average of the
	// loss (default 0.9; fastai uses 0.98 over longer sweeps; bias-corrected as fastai does).
	Smoothing float64
	// StopFactor ends the sweep once the smoothed loss exceeds this many
	// times its minimum (default 4).
	StopFactor float64
}

// LRFindResult is the curve of a learning-rate sweep and the rate it
// suggests.
type LRFindResult struct {
	LR           []float64 `json:"lr"`
	Loss         []float64 `json:"loss"`          // each step's batch loss
	SmoothedLoss []float64 `json:"smoothed_loss"` // its bias-corrected moving average
	// Suggested is the rate fastai's "valley" rule picks: two thirds
	// down the longest stretch of falling loss, where the loss falls
	// fast and is still far from diverging.
	Suggested float64 `json:"suggested_lr"`
	// MinLossLR is the rate of the lowest smoothed loss; a tenth of it is
	// the older rule of thumb.
	MinLossLR float64 `json:"min_loss_lr"`
	Stopped   string  `json:"stopped,omitempty"`
}

// FindLR trains net on train for cfg.Steps optimizer steps with a
// learning rate rising exponentially from cfg.Start to cfg.End, records
// the loss at each rate, and suggests a rate (see LRFindResult). It ends
// early when the loss diverges. net's weights are changed: pass a fresh
// net. Progress goes to r as PhaseFindLR, in steps.
func FindLR(ctx context.Context, net *Net, train *Examples, cfg LRFindConfig, r Reporter) (*LRFindResult, error) {
	r = orNop(r)
	if train == nil || train.Len() == 0 {
		return nil, fmt.Errorf("no training examples")
	}
	if cfg.Start == 0 {
		cfg.Start = DefaultLRFindStart
	}
	if cfg.End == 0 {
		cfg.End = DefaultLRFindEnd
	}
	if cfg.Steps == 0 {
		cfg.Steps = DefaultLRFindSteps
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Smoothing == 0 {
		cfg.Smoothing = 0.9
	}
	if cfg.StopFactor == 0 {
		cfg.StopFactor = 4
	}
	if !(cfg.Start > 0 && cfg.End > cfg.Start) || cfg.Steps < 2 || cfg.Batch < 1 {
		return nil, onnx.OptionErrorf("LRFindConfig", "need 0 < Start < End, Steps >= 2 and Batch >= 1; got %g, %g, %d, %d", cfg.Start, cfg.End, cfg.Steps, cfg.Batch)
	}
	if cfg.Classes == 0 {
		for _, l := range train.Labels {
			cfg.Classes = max(cfg.Classes, l+1)
		}
	}
	opt, err := NewOptimizer(cfg.Optimizer)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	r.PhaseStart(PhaseFindLR, cfg.Steps)
	defer func() { r.PhaseEnd(PhaseFindLR, time.Since(t0)) }()

	res := &LRFindResult{}
	rng := rand.New(rand.NewSource(cfg.Seed))
	var perm []int
	var weights [][]float32
	var xbuf *onnx.Tensor
	targets := map[int]*onnx.Tensor{}
	avg, best := 0.0, math.Inf(1)
	for step := 0; step < cfg.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("learning-rate finder, step %d: %w", step+1, err)
		}
		if len(perm) == 0 {
			perm = rng.Perm(train.Len())
		}
		idx := perm[:min(cfg.Batch, len(perm))]
		perm = perm[len(idx):]
		tg, err := net.trainGraph(len(idx), train.Shape)
		if err != nil {
			return nil, err
		}
		if weights == nil {
			for i := range net.Trainable {
				weights = append(weights, tg.Weight(i).F)
			}
		}
		tgt, ok := targets[len(idx)]
		if !ok {
			tgt = onnx.NewFloat([]int{len(idx), cfg.Classes}, nil)
			targets[len(idx)] = tgt
		}
		fillTargets(tgt, idx, train.Labels, cfg.Classes, 0)
		if xbuf, err = train.batch(idx, xbuf); err != nil {
			return nil, err
		}
		in, err := net.feed(ctx, xbuf)
		if err != nil {
			return nil, err
		}
		loss, _, grads, err := tg.Step(in, tgt)
		if err != nil {
			return nil, fmt.Errorf("learning-rate finder, step %d: %w", step+1, err)
		}
		lr := cfg.Start * math.Pow(cfg.End/cfg.Start, float64(step)/float64(cfg.Steps-1))
		l := float64(loss)
		if math.IsNaN(l) || math.IsInf(l, 0) {
			res.Stopped = fmt.Sprintf("the loss became %v at learning rate %.3g", l, lr)
			break
		}
		avg = cfg.Smoothing*avg + (1-cfg.Smoothing)*l
		smooth := avg / (1 - math.Pow(cfg.Smoothing, float64(step+1)))
		res.LR = append(res.LR, lr)
		res.Loss = append(res.Loss, l)
		res.SmoothedLoss = append(res.SmoothedLoss, smooth)
		progress(r, PhaseFindLR, step+1)
		if smooth < best {
			best = smooth
			res.MinLossLR = lr
		}
		if step > 0 && smooth > cfg.StopFactor*best {
			res.Stopped = fmt.Sprintf("the loss rose above %g times its minimum at learning rate %.3g", cfg.StopFactor, lr)
			break
		}
		opt.Step(weights, grads, lr, nil)
	}
	if len(res.LR) < 2 {
		return nil, fmt.Errorf("learning-rate finder: the loss diverged at the first steps (from %g): %w", cfg.Start, ErrDiverged)
	}
	res.Suggested = res.LR[valley(res.SmoothedLoss)]
	return res, nil
}

// valley is fastai's suggestion rule: the longest run of decreasing loss
// (as a longest decreasing subsequence), and the point two thirds of the
// way down it.
func valley(loss []float64) int {
	n := len(loss)
	lds := make([]int, n)
	maxStart, maxEnd := 0, 0
	for i := range lds {
		lds[i] = 1
	}
	for i := 1; i < n; i++ {
		for j := 0; j < i; j++ {
			if loss[i] < loss[j] && lds[i] < lds[j]+1 {
				lds[i] = lds[j] + 1
			}
		}
		if lds[maxEnd] < lds[i] {
			maxEnd = i
			maxStart = maxEnd - lds[maxEnd]
		}
	}
	sections := float64(maxEnd-maxStart) / 3
	return min(n-1, max(0, maxStart+int(sections)+int(sections/2)))
}

// headNet is a fresh net of the head alone, reading backbone features.
func (a *adaptation) headNet() (*Net, error) {
	h := a.head
	headProto, err := surgery.SubModel(a.adapted.Proto, h.Features, []int{1, h.FeatureDim}, h.Logits)
	if err != nil {
		return nil, err
	}
	return NewNet(&onnx.Model{Proto: headProto, Path: a.cfg.Model + " (head)"}, h.Features, h.Logits, h.Params, a.cfg.Seed)
}

// findLR runs the learning-rate finder on the head, on backbone
// features, with the configured optimizer, batch and seed.
func (a *adaptation) findLR() error {
	feats, err := a.extractFeatures()
	if err != nil {
		return err
	}
	net, err := a.headNet()
	if err != nil {
		return err
	}
	res, err := FindLR(a.ctx, net, feats["train"], LRFindConfig{Batch: a.cfg.Batch, Optimizer: a.cfg.optimizer(), Seed: a.cfg.Seed, Classes: len(a.ds.Classes)}, a.rep)
	if err != nil {
		return err
	}
	a.res.LRFind = res
	return nil
}
