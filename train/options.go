package train

import (
	"strconv"
	"strings"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
)

// OptimizerKind names an optimizer (see NewOptimizer).
type OptimizerKind string

// The optimizers graft has.
const (
	OptimizerAdam  OptimizerKind = "adam"  // torch.optim.Adam, L2 weight decay
	OptimizerAdamW OptimizerKind = "adamw" // torch.optim.AdamW, decoupled weight decay
	OptimizerSGD   OptimizerKind = "sgd"   // torch.optim.SGD, with optional (Nesterov) momentum
)

// ScheduleKind names a learning-rate schedule (see NewSchedule).
type ScheduleKind string

// The learning-rate schedules graft has.
const (
	ScheduleConstant ScheduleKind = "constant" // the base rate throughout
	ScheduleCosine   ScheduleKind = "cosine"   // cosine annealing to 0 over the training steps
	ScheduleStep     ScheduleKind = "step"     // multiplied by a factor at regular intervals
)

// BNMode says how BatchNormalization layers behave while fine-tuning.
type BNMode string

// The BatchNormalization modes.
const (
	// BNFrozen uses the running statistics (the inference formula).
	BNFrozen BNMode = "frozen"
	// BNTrain uses batch statistics and updates the running statistics
	// of the BatchNormalization layers that fine-tune.
	BNTrain BNMode = "train"
)

// Head describes the classifier head Adapt attaches. The zero value is a
// linear head (one Gemm from the features to the classes).
type Head struct {
	// Hidden holds the sizes of an MLP head's hidden layers (ReLU after
	// each); none for a linear head.
	Hidden []int
	// Dropout is the dropout probability before each Gemm after the first
	// of an MLP head, in [0, 1).
	Dropout float64
}

// String gives the head's short form: "linear" or "mlp:256,128".
func (h Head) String() string {
	if len(h.Hidden) == 0 {
		return "linear"
	}
	s := make([]string, len(h.Hidden))
	for i, n := range h.Hidden {
		s[i] = strconv.Itoa(n)
	}
	return "mlp:" + strings.Join(s, ",")
}

// check validates the head; option names the field holding it, e.g.
// "AdaptConfig.Head".
func (h Head) check(option string) error {
	for _, n := range h.Hidden {
		if n < 1 {
			return onnx.OptionErrorf(option, "hidden layer sizes must be positive, got %d", n)
		}
	}
	if h.Dropout != 0 && len(h.Hidden) == 0 {
		return onnx.OptionErrorf(option+".Dropout", "applies to an MLP head (%s.Hidden)", option)
	}
	if h.Dropout < 0 || h.Dropout >= 1 {
		return onnx.OptionErrorf(option+".Dropout", "%g must be in [0, 1)", h.Dropout)
	}
	return nil
}

// spec is the surgery spec of a head for classes classes.
func (h Head) spec(classes int, seed int64) surgery.HeadSpec {
	return surgery.HeadSpec{Classes: classes, Hidden: h.Hidden, Dropout: float32(h.Dropout), Seed: seed}
}

// OptimizerConfig selects and configures an optimizer. The zero value is
// Adam without weight decay.
type OptimizerConfig struct {
	Kind        OptimizerKind // default OptimizerAdam
	WeightDecay float64       // 0 (the default) means none
	Momentum    float64       // SGD only; 0 (the default) means none
	Nesterov    bool          // SGD only; needs Momentum > 0
}

// check validates c; typ names the type whose fields hold the settings in
// errors, e.g. "AdaptConfig".
func (c OptimizerConfig) check(typ string) error {
	switch c.Kind {
	case "", OptimizerAdam, OptimizerAdamW:
		if c.Momentum != 0 {
			return onnx.OptionErrorf(typ+".Momentum", "applies to sgd, not %s", c.kind())
		}
		if c.Nesterov {
			return onnx.OptionErrorf(typ+".Nesterov", "applies to sgd, not %s", c.kind())
		}
	case OptimizerSGD:
		if c.Nesterov && c.Momentum == 0 {
			return onnx.OptionErrorf(typ+".Nesterov", "needs %s.Momentum above 0", typ)
		}
	default:
		return onnx.OptionErrorf(typ+".Optimizer", "unknown optimizer %q (adam, adamw or sgd)", string(c.Kind))
	}
	return nil
}

func (c OptimizerConfig) kind() OptimizerKind {
	if c.Kind == "" {
		return OptimizerAdam
	}
	return c.Kind
}

// NewOptimizer makes the optimizer c describes.
func NewOptimizer(c OptimizerConfig) (Optimizer, error) {
	if err := c.check("OptimizerConfig"); err != nil {
		return nil, err
	}
	switch c.kind() {
	case OptimizerAdamW:
		return NewAdam(c.WeightDecay, true), nil
	case OptimizerSGD:
		return &SGD{Momentum: c.Momentum, Nesterov: c.Nesterov, WeightDecay: c.WeightDecay}, nil
	}
	return NewAdam(c.WeightDecay, false), nil
}
