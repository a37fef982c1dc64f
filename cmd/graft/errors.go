package main

import (
	"cmp"
	"errors"
	"slices"
	"strings"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train"
	"github.com/graftml/graft/train/dataset"
)

// optionFlags maps the library's option names (onnx.OptionError.Option,
// "Type.Field") to the flags that set them, so an error about
// AdaptConfig.LR reads "--lr: ..." on the command line. It is the one
// place that knows both names.
var optionFlags = map[string]string{
	"Out": "--out",

	"AdaptConfig.Model":          "--model",
	"AdaptConfig.Data":           "--data",
	"AdaptConfig.Out":            "--out",
	"AdaptConfig.Cut":            "--cut",
	"AdaptConfig.Head":           "--head",
	"AdaptConfig.Head.Hidden":    "--head",
	"AdaptConfig.Head.Dropout":   "--dropout",
	"AdaptConfig.Seed":           "--seed",
	"AdaptConfig.Resize":         "--resize",
	"AdaptConfig.Shapes":         "--input-shape",
	"AdaptConfig.Mean":           "--mean",
	"AdaptConfig.Std":            "--std",
	"AdaptConfig.ValSplit":       "--val-split",
	"AdaptConfig.Strict":         "--strict",
	"AdaptConfig.Optimizer":      "--optimizer",
	"AdaptConfig.LR":             "--lr",
	"AdaptConfig.Momentum":       "--momentum",
	"AdaptConfig.Nesterov":       "--nesterov",
	"AdaptConfig.WeightDecay":    "--weight-decay",
	"AdaptConfig.Schedule":       "--schedule",
	"AdaptConfig.Warmup":         "--warmup",
	"AdaptConfig.Epochs":         "--epochs",
	"AdaptConfig.Batch":          "--batch",
	"AdaptConfig.LabelSmoothing": "--label-smoothing",
	"AdaptConfig.Patience":       "--patience",
	"AdaptConfig.Trainable":      "--trainable",
	"AdaptConfig.UnfreezeLast":   "--unfreeze-last",
	"AdaptConfig.Resume":         "--resume",
	"AdaptConfig.Checkpoint":     "--checkpoint",
	"AdaptConfig.FinetuneEpochs": "--finetune-epochs",
	"AdaptConfig.BackboneLRMult": "--backbone-lr-mult",
	"AdaptConfig.BN":             "--bn",
	"AdaptConfig.Augment":        "--augment",
	"AdaptConfig.CacheDir":       "--cache",
	"AdaptConfig.MemoryBudget":   "--memory-budget",
	"AdaptConfig.Log":            "--log",
	"AdaptConfig.Softmax":        "--softmax",
	"AdaptConfig.BatchDim":       "--batch-dim",
	"AdaptConfig.OutputName":     "--output-name",

	"FeaturesConfig.Model":    "--model",
	"FeaturesConfig.Data":     "--data",
	"FeaturesConfig.CacheDir": "--cache",
	"FeaturesConfig.Out":      "--out",
	"FeaturesConfig.Cut":      "--cut",
	"FeaturesConfig.Resize":   "--resize",
	"FeaturesConfig.Shapes":   "--input-shape",
	"FeaturesConfig.Mean":     "--mean",
	"FeaturesConfig.Std":      "--std",
	"FeaturesConfig.Strict":   "--strict",
	"FeaturesConfig.Shard":    "--shard",
	"FeaturesConfig.Batch":    "--batch",

	"InferConfig.Resize": "--resize",
	"InferConfig.Shapes": "--input-shape",
	"InferConfig.Mean":   "--mean",
	"InferConfig.Std":    "--std",
	"InferConfig.Batch":  "--batch",
	"InferConfig.Strict": "--strict",
	"InferConfig.Labels": "--labels",
	"PredictImages.k":    "--top",

	"ConvertConfig.Out":        "--out",
	"ConvertConfig.Cut":        "--cut",
	"ConvertConfig.Head":       "--head",
	"ConvertConfig.Labels":     "--labels",
	"ConvertConfig.Batch":      "--batch-dim",
	"ConvertConfig.BatchDim":   "--batch-dim",
	"ConvertConfig.OutputName": "--output-name",
	"ConvertConfig.Softmax":    "--softmax",
	"ConvertConfig.Shapes":     "--input-shape",

	"ConvertConfig.RenameInputs":  "--rename-input",
	"ConvertConfig.RenameOutputs": "--rename-output",

	"RunConfig.Inputs": "--input",
	"RunConfig.OutDir": "--out",
	"RunConfig.Shapes": "--input-shape",
	"RunConfig.Seed":   "--seed",
}

// hints follow an error whose cause is one of the library's sentinels
// with the flag that changes the outcome.
var hints = []struct {
	cause error
	hint  string
}{
	{onnx.ErrTooLarge, "raise --max-memory to allow it"},
	{dataset.ErrTooManyPixels, "raise --max-pixels to allow it"},
	{onnx.ErrExists, "use --force to overwrite it"},
	{train.ErrDiverged, "lower --lr or check the data"},
}

// qualifiedOptions are optionFlags' "Type.Field" names, longest first so
// that AdaptConfig.Head.Dropout is replaced before AdaptConfig.Head.
var qualifiedOptions = func() []string {
	var names []string
	for name := range optionFlags {
		if strings.Contains(name, ".") {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(len(b)-len(a), strings.Compare(a, b))
	})
	return names
}()

// optionsAsFlags writes the library's option names in msg as flags.
func optionsAsFlags(msg string) string {
	for _, name := range qualifiedOptions {
		msg = strings.ReplaceAll(msg, name, optionFlags[name])
	}
	return msg
}

// errorText is err as the command line shows it: option names become
// flag names, and a hint follows a cause a flag can change.
func errorText(err error) string {
	msg := err.Error()
	var oe *onnx.OptionError
	if errors.As(err, &oe) && !strings.Contains(oe.Option, ".") {
		if flag, ok := optionFlags[oe.Option]; ok {
			msg = strings.Replace(msg, oe.Option+": ", flag+": ", 1)
		}
	}
	msg = optionsAsFlags(msg)
	for _, h := range hints {
		if errors.Is(err, h.cause) {
			msg += " (" + h.hint + ")"
			break
		}
	}
	return msg
}
