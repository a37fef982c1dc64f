package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
)

// Examples are preprocessed inputs (images or cached features) with
// their labels, held in memory.
type Examples struct {
	// X holds len(Labels) rows of Size() floats, unless the rows were
	// spilled to disk (beyond AdaptConfig.MemoryBudget): then X is nil.
	X      []float32
	Shape  []int // the shape of one example, e.g. [3 32 32] or [576]
	Labels []int
	// Refresh, when set, rewrites X at the start of every epoch (data
	// augmentation); Clean then holds the unaugmented examples.
	Refresh func(epoch int) error
	Clean   []float32
	// Paths, when set, names the image each example came from (for
	// per-image predictions).
	Paths []string

	spill *spillFile // the rows, when not in X
}

// close deletes the spill file, if any.
func (e *Examples) close() {
	if e != nil && e.spill != nil {
		e.spill.close()
		e.spill = nil
	}
}

// rows returns the n rows from first on: a slice of X, or dst (resized)
// filled from the spill file.
func (e *Examples) rows(first, n int, dst []float32) ([]float32, error) {
	size := e.Size()
	if e.spill == nil {
		return e.X[first*size : (first+n)*size], nil
	}
	dst = slices.Grow(dst[:0], n*size)[:n*size]
	return dst, e.spill.read(first, dst)
}

// Len is the number of examples.
func (e *Examples) Len() int { return len(e.Labels) }

// Size is the number of floats per example.
func (e *Examples) Size() int { return onnx.NumElems(e.Shape) }

// batch gathers the rows idx into a tensor [len(idx), Shape...].
func (e *Examples) batch(idx []int, dst *onnx.Tensor) (*onnx.Tensor, error) {
	size := e.Size()
	shape := append([]int{len(idx)}, e.Shape...)
	if dst == nil || !slices.Equal(dst.Shape, shape) {
		dst = onnx.NewFloat(shape, nil)
	}
	for r, i := range idx {
		row := dst.F[r*size : (r+1)*size]
		if e.spill != nil {
			if err := e.spill.read(i, row); err != nil {
				return nil, err
			}
			continue
		}
		copy(row, e.X[i*size:(i+1)*size])
	}
	return dst, nil
}

// Net is what the loop trains: a model whose named input takes examples
// and whose logits feed the loss. Graphs are built per batch size (graft
// builds graphs for fixed shapes) and share their weights.
type Net struct {
	Src       *onnx.Model
	Input     string
	Logits    string
	Trainable []string
	// Weights are shared by every graph built for this net; the optimizer
	// updates them in place.
	Weights map[string]*onnx.Tensor
	Seed    int64
	// BNTrain trains the BatchNormalization layers of trainable weights
	// with batch statistics (see graph.TrainOptions.BNTrain).
	BNTrain bool

	train map[int]*graph.TrainGraph
	eval  map[int]*graph.Model
	// front runs the frozen layers before the first trainable one, when
	// they end in one tensor, on the inference executor (which keeps a
	// few activations, where a training graph keeps every one); the
	// graphs then start at its output, in frontSrc. Looked for once, at
	// the first graph (split).
	split    bool
	front    *Extractor
	frontSrc *onnx.Model
}

// graphInput returns the model the graphs are built from, its input and
// the shape of one of its examples, given that of the net's examples.
func (n *Net) graphInput(ex []int) (*onnx.Model, string, []int) {
	if !n.split {
		n.split = true
		if p, sub, err := frozenPrefix(n.Src, n.Input, n.Logits, n.Trainable, DefaultInferBatch, append([]int{1}, ex...)); err == nil && p != nil {
			n.front, n.frontSrc = p, sub
		}
	}
	if n.front == nil {
		return n.Src, n.Input, ex
	}
	return n.frontSrc, n.front.Features, n.front.shape
}

// feed maps a batch of the net's examples to its graphs' input: through
// the frozen front, when there is one.
func (n *Net) feed(ctx context.Context, x *onnx.Tensor) (map[string]*onnx.Tensor, error) {
	if n.front == nil {
		return map[string]*onnx.Tensor{n.Input: x}, nil
	}
	b := x.Shape[0]
	f, err := n.front.Run(ctx, x.F, b, x.Shape[1:])
	if err != nil {
		return nil, err
	}
	return map[string]*onnx.Tensor{n.front.Features: onnx.NewFloat(append([]int{b}, n.front.shape...), f)}, nil
}

// NewNet prepares a net; every float initializer of src gets a shared
// weight tensor.
func NewNet(src *onnx.Model, input, logits string, trainable []string, seed int64) (*Net, error) {
	w := map[string]*onnx.Tensor{}
	for _, tp := range src.Proto.Graph.Initializer {
		t, err := onnx.TensorFromProto(tp)
		if err != nil {
			return nil, fmt.Errorf("%s: initializer %q: %w", src.Path, tp.Name, err)
		}
		w[tp.Name] = t
	}
	return &Net{Src: src, Input: input, Logits: logits, Trainable: trainable, Weights: w, Seed: seed,
		train: map[int]*graph.TrainGraph{}, eval: map[int]*graph.Model{}}, nil
}

// trainGraph returns the training graph for batch size b.
func (n *Net) trainGraph(b int, ex []int) (*graph.TrainGraph, error) {
	if tg, ok := n.train[b]; ok {
		return tg, nil
	}
	src, input, shape := n.graphInput(ex)
	tg, err := graph.BuildTraining(src, graph.TrainOptions{
		Options:   graph.Options{Shapes: map[string][]int{input: append([]int{b}, shape...)}, Weights: n.Weights},
		Logits:    n.Logits,
		Trainable: n.Trainable,
		Seed:      n.Seed + int64(b),
		BNTrain:   n.BNTrain,
	})
	if err != nil {
		return nil, err
	}
	n.train[b] = tg
	return tg, nil
}

// evalGraph returns the inference graph for batch size b.
func (n *Net) evalGraph(b int, ex []int) (*graph.Model, error) {
	if m, ok := n.eval[b]; ok {
		return m, nil
	}
	src, input, shape := n.graphInput(ex)
	m, err := graph.Build(src, graph.Options{Shapes: map[string][]int{input: append([]int{b}, shape...)}, Weights: n.Weights, Outputs: []string{n.Logits}})
	if err != nil {
		return nil, err
	}
	n.eval[b] = m
	return m, nil
}

// Predict returns the logits for all examples, computed in batches of
// batch examples (DefaultBatch when batch <= 0).
func (n *Net) Predict(ex *Examples, batch int) (*onnx.Tensor, error) {
	if batch <= 0 {
		batch = DefaultBatch
	}
	var out *onnx.Tensor
	var buf *onnx.Tensor
	for start := 0; start < ex.Len(); start += batch {
		end := min(start+batch, ex.Len())
		idx := make([]int, end-start)
		for i := range idx {
			idx[i] = start + i
		}
		m, err := n.evalGraph(len(idx), ex.Shape)
		if err != nil {
			return nil, err
		}
		if buf, err = ex.batch(idx, buf); err != nil {
			return nil, err
		}
		in, err := n.feed(context.Background(), buf)
		if err != nil {
			return nil, err
		}
		res, err := m.Run(in)
		if err != nil {
			return nil, err
		}
		lg := res[n.Logits]
		if out == nil {
			out = onnx.NewFloat([]int{ex.Len(), lg.Shape[1]}, nil)
		}
		copy(out.F[start*lg.Shape[1]:], lg.F)
	}
	return out, nil
}

// Config drives Run. A zero field means its documented default, so the
// zero Config trains with Adapt's defaults.
type Config struct {
	Epochs    int       // default DefaultEpochs
	Batch     int       // default DefaultBatch
	Optimizer Optimizer // default Adam without weight decay
	// Schedule gives the learning rate per step; the zero Schedule means
	// DefaultLR throughout.
	Schedule Schedule
	// LRScale scales the learning rate per trainable weight (nil: all 1).
	LRScale        []float64
	LabelSmoothing float64 // 0: none
	// Seed and Stage choose the order of the examples: epoch e visits
	// them in BatchOrder(Seed, Stage, e, n), a documented portable stream
	// (see Stream), so an epoch's order depends on nothing but these. A
	// Seed of 0 and a Stage of "" are values like any other; Adapt uses
	// its Phase names ("head", "fine-tune") as stages.
	Seed  int64
	Stage string
	// Classes is the number of classes; 0 means one more than the
	// largest label of the training and validation examples.
	Classes int
	Hooks   []Hook

	// resume, when set, continues a run from a saved position (see
	// checkpoint.go); save, when set, is called after every epoch (after
	// the hooks) and when ctx is cancelled between steps.
	resume *runPos
	save   func(runPos) error
}

// runPos is where a run is: the next epoch (from 1) and the steps of it
// already taken, with that epoch's running sums, the metrics of the
// epochs done, and whether a hook stopped training.
type runPos struct {
	Epoch, Step int
	LossSum     float64
	Correct     int
	History     []EpochMetrics
	Stopped     bool   // a hook returned ErrStop after the last epoch done
	StopReason  string // Fit.Stopped then
}

// withDefaults fills the zero fields of c for training on train and val.
func (c Config) withDefaults(train, val *Examples) (Config, error) {
	if c.Epochs == 0 {
		c.Epochs = DefaultEpochs
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Batch < 1 || c.Epochs < 0 {
		return c, onnx.OptionErrorf("Config.Batch", "batch size %d and epochs %d must be positive", c.Batch, c.Epochs)
	}
	if c.Optimizer == nil {
		c.Optimizer = NewAdam(0, false)
	}
	if c.Schedule.Base == 0 {
		steps := (train.Len() + c.Batch - 1) / c.Batch
		s, err := NewSchedule(c.Schedule.Kind, DefaultLR, steps*c.Epochs, 0, 0, 0)
		if err != nil {
			return c, onnx.OptionErrorf("Config.Schedule", "%w", err)
		}
		c.Schedule = s
	}
	if c.Classes == 0 {
		for _, ex := range []*Examples{train, val} {
			if ex != nil {
				for _, l := range ex.Labels {
					c.Classes = max(c.Classes, l+1)
				}
			}
		}
	}
	return c, nil
}

// StepInfo is passed to hooks after every optimizer step.
type StepInfo struct {
	Epoch, Epochs      int
	Step, StepsInEpoch int
	Loss               float64
	Acc                float64 // running accuracy in this epoch
	LR                 float64
	Elapsed            time.Duration
	TotalSteps, Done   int
}

// EpochMetrics are passed to hooks after every epoch.
type EpochMetrics struct {
	// Stage is the phase of Adapt the epoch belongs to ("" in a Run of
	// one's own).
	Stage     Phase   `json:"stage,omitempty"`
	Epoch     int     `json:"epoch"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	ValLoss   float64 `json:"val_loss,omitempty"`
	ValAcc    float64 `json:"val_acc,omitempty"`
	HasVal    bool    `json:"-"`
	LR        float64 `json:"lr"`
	Seconds   float64 `json:"seconds"`
}

// Hook observes training. OnEpoch may stop training by returning
// ErrStop, or fail it with another error.
type Hook interface {
	OnStep(StepInfo)
	OnEpoch(*Fit, EpochMetrics) error
	OnEnd(*Fit) error
}

// ErrStop is returned by a hook to end training early without error.
var ErrStop = errors.New("stop training")

// ErrDiverged is wrapped by the error of a run whose loss or weights
// became NaN or infinite: the learning rate is too high for the data.
var ErrDiverged = errors.New("training diverged")

// Fit is one training run.
type Fit struct {
	Net     *Net
	Cfg     Config
	History []EpochMetrics
	Stopped string // why training ended before its last epoch, if it did
}

// Run trains net on train, validating on val (which may be nil or
// empty). It checks ctx between steps and returns its error, wrapped with
// the epoch and step, when it is done.
func Run(ctx context.Context, net *Net, cfg Config, train, val *Examples) (*Fit, error) {
	if train == nil || train.Len() == 0 {
		return nil, fmt.Errorf("no training examples")
	}
	cfg, err := cfg.withDefaults(train, val)
	if err != nil {
		return nil, err
	}
	r := &runner{ctx: ctx, net: net, cfg: cfg, train: train, val: val, f: &Fit{Net: net, Cfg: cfg},
		targets: map[int]*onnx.Tensor{}, start: time.Now()}
	r.steps = (train.Len() + cfg.Batch - 1) / cfg.Batch
	total := r.steps * cfg.Epochs
	r.total = total
	first, firstStep := 1, 0
	stopped := false
	if p := cfg.resume; p != nil {
		if p.Epoch < 1 || p.Epoch > cfg.Epochs+1 || p.Step < 0 || p.Step > r.steps || p.Epoch == cfg.Epochs+1 && p.Step > 0 {
			return nil, fmt.Errorf("cannot resume at epoch %d, step %d of a run of %d epochs of %d steps", p.Epoch, p.Step, cfg.Epochs, r.steps)
		}
		first, firstStep = p.Epoch, p.Step
		r.lossSum, r.correct = p.LossSum, p.Correct
		r.f.History = slices.Clone(p.History)
		stopped, r.f.Stopped = p.Stopped, p.StopReason
		r.done = (first-1)*r.steps + firstStep
	}
	for epoch := first; epoch <= cfg.Epochs && !stopped; epoch++ {
		t0 := time.Now()
		if train.Refresh != nil {
			if err := train.Refresh(epoch); err != nil {
				return nil, err
			}
		}
		perm := BatchOrder(cfg.Seed, cfg.Stage, epoch, train.Len())
		s0 := 0
		if epoch == first {
			s0 = firstStep
		} else {
			r.lossSum, r.correct = 0, 0
		}
		var lr float64
		for s := s0; s < r.steps; s++ {
			if lr, err = r.step(epoch, s, perm); err != nil {
				return nil, err
			}
		}
		if stopped, err = r.endEpoch(epoch, lr, t0); err != nil {
			return nil, err
		}
	}
	for _, h := range cfg.Hooks {
		if err := h.OnEnd(r.f); err != nil {
			return nil, err
		}
	}
	return r.f, nil
}

// runner is the state of one Run: the position, the running sums of the
// current epoch, and the buffers reused from step to step.
type runner struct {
	ctx                context.Context
	net                *Net
	cfg                Config
	train, val         *Examples
	f                  *Fit
	steps, total, done int
	weights            [][]float32
	targets            map[int]*onnx.Tensor
	xbuf               *onnx.Tensor
	start              time.Time
	lossSum            float64
	correct            int
}

// save writes a checkpoint at p, when the config asks for them.
func (r *runner) save(p runPos) error {
	if r.cfg.save == nil {
		return nil
	}
	p.History, p.StopReason = r.f.History, r.f.Stopped
	return r.cfg.save(p)
}

// step runs optimizer step s of epoch (batch s of perm) and returns its
// learning rate. A cancelled context saves the position first.
func (r *runner) step(epoch, s int, perm []int) (float64, error) {
	cfg, train := r.cfg, r.train
	if err := r.ctx.Err(); err != nil {
		err = fmt.Errorf("epoch %d, step %d: %w", epoch, s+1, err)
		if serr := r.save(runPos{Epoch: epoch, Step: s, LossSum: r.lossSum, Correct: r.correct}); serr != nil {
			err = errors.Join(err, serr)
		}
		return 0, err
	}
	idx := perm[s*cfg.Batch : min((s+1)*cfg.Batch, train.Len())]
	tg, err := r.net.trainGraph(len(idx), train.Shape)
	if err != nil {
		return 0, err
	}
	if r.weights == nil {
		for i := range r.net.Trainable {
			r.weights = append(r.weights, tg.Weight(i).F)
		}
	}
	tgt, ok := r.targets[len(idx)]
	if !ok {
		tgt = onnx.NewFloat([]int{len(idx), cfg.Classes}, nil)
		r.targets[len(idx)] = tgt
	}
	fillTargets(tgt, idx, train.Labels, cfg.Classes, cfg.LabelSmoothing)
	if r.xbuf, err = train.batch(idx, r.xbuf); err != nil {
		return 0, err
	}
	in, err := r.net.feed(r.ctx, r.xbuf)
	if err != nil {
		return 0, err
	}
	loss, logits, grads, err := tg.Step(in, tgt)
	if err != nil {
		return 0, fmt.Errorf("epoch %d, step %d: %w", epoch, s+1, err)
	}
	lr := cfg.Schedule.LR(r.done)
	if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
		return 0, fmt.Errorf("epoch %d, step %d, learning rate %g: the loss is %v: %w", epoch, s+1, lr, loss, ErrDiverged)
	}
	cfg.Optimizer.Step(r.weights, grads, lr, cfg.LRScale)
	r.lossSum += float64(loss) * float64(len(idx))
	r.correct += countCorrect(logits, idx, train.Labels)
	r.done++
	seen := min((s+1)*cfg.Batch, train.Len())
	for _, h := range cfg.Hooks {
		h.OnStep(StepInfo{Epoch: epoch, Epochs: cfg.Epochs, Step: s + 1, StepsInEpoch: r.steps, Loss: r.lossSum / float64(seen),
			Acc: float64(r.correct) / float64(seen), LR: lr, Elapsed: time.Since(r.start), TotalSteps: r.total, Done: r.done})
	}
	return lr, nil
}

// endEpoch checks the weights, evaluates, records the epoch's metrics,
// runs the hooks and saves the position; it reports whether a hook
// stopped training.
func (r *runner) endEpoch(epoch int, lr float64, t0 time.Time) (bool, error) {
	cfg, train, val := r.cfg, r.train, r.val
	for i, w := range r.weights {
		for _, v := range w {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return false, fmt.Errorf("epoch %d, learning rate %g: weight %q is %v: %w", epoch, lr, r.net.Trainable[i], v, ErrDiverged)
			}
		}
	}
	m := EpochMetrics{Epoch: epoch, TrainLoss: r.lossSum / float64(train.Len()), TrainAcc: float64(r.correct) / float64(train.Len()), LR: lr}
	if val != nil && val.Len() > 0 {
		ev, err := Evaluate(r.net, val, cfg.Batch, cfg.Classes)
		if err != nil {
			return false, err
		}
		m.ValLoss, m.ValAcc, m.HasVal = ev.Loss, ev.Accuracy, true
	}
	m.Seconds = time.Since(t0).Seconds()
	r.f.History = append(r.f.History, m)
	stopped := false
	for _, h := range cfg.Hooks {
		if err := h.OnEpoch(r.f, m); errors.Is(err, ErrStop) {
			stopped = true
		} else if err != nil {
			return false, err
		}
	}
	return stopped, r.save(runPos{Epoch: epoch + 1, Stopped: stopped})
}

// fillTargets writes one-hot rows, smoothed: (1-eps) on the label plus
// eps/classes everywhere, as PyTorch's label_smoothing does.
func fillTargets(t *onnx.Tensor, idx, labels []int, classes int, eps float64) {
	off := float32(eps / float64(classes))
	on := float32(1-eps) + off
	for r, i := range idx {
		row := t.F[r*classes : (r+1)*classes]
		for j := range row {
			row[j] = off
		}
		row[labels[i]] = on
	}
}

func countCorrect(logits *onnx.Tensor, idx, labels []int) int {
	c := logits.Shape[1]
	n := 0
	for r, i := range idx {
		if argmaxRow(logits.F[r*c:(r+1)*c]) == labels[i] {
			n++
		}
	}
	return n
}

func argmaxRow(row []float32) int {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return best
}
