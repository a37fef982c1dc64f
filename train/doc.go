// Package train adapts ONNX image classifiers to new classes: transfer
// learning (a new head on a frozen backbone) and fine-tuning (the head
// with the backbone's last layers), in Go, on graft's gorgonia graphs.
//
// # One call
//
// Adapt does everything `graft adapt` does: it reads the model and the
// image folder (see package dataset), cuts the model's classifier off,
// attaches a new head whose labels are the data set's classes, trains it
// on backbone features computed once per image (or cached on disk with
// AdaptConfig.CacheDir), optionally fine-tunes the last backbone layers,
// evaluates every split, and writes the adapted model after checking that
// the file reproduces the trained model. AdaptConfig's zero value means
// the documented defaults (DefaultEpochs, DefaultLR, ...), so
//
//	res, err := train.Adapt(ctx, train.AdaptConfig{Model: "base.onnx", Data: "images", Out: "adapted.onnx"})
//
// is a complete run. Every option is checked before the model or an
// image is read. With validation data, Adapt keeps the better of the
// head-only and the fine-tuned model by validation loss (AdaptResult.Kept
// says which, at which epoch, and why); AdaptConfig.Softmax, BatchDim and
// OutputName shape the written file for deployment. What it assumes
// (ImageNet normalisation for a model without preprocessing metadata, a
// ValSplit or Patience that cannot apply) it says in a Reporter note.
// Options are typed: OptimizerKind, ScheduleKind,
// BNMode and Head; command-line strings such as "mlp:256" are the
// program's to parse.
//
// # Step by step
//
// The parts Adapt is made of are exported for programs that need another
// route: package onnx/surgery cuts models and attaches heads, NewNet
// wraps a model with named trainable weights, Run is the training loop
// (Config's zero value again means the defaults) with Hooks such as
// EarlyStop and MetricsLog, Extractor and Features compute backbone
// features (with a FeatureCache; ExtractFeatures fills the cache Adapt
// reads, for one Shard of a folder at a time), Evaluate and Score measure a net, and
// EvalModel and PredictImages use a written model. The examples show both
// routes.
//
// # Progress
//
// Long calls report to a Reporter: the start and end of each Phase, every
// training step and epoch, and notes such as a skipped image. A nil
// Reporter reports nothing; cmd/graft implements one that prints a bar
// or plain lines.
//
// # Cancellation and failure modes
//
// Every call that can run long takes a context.Context and checks it
// between batches; a cancelled call returns the context's error wrapped
// with where it stopped, and Adapt then leaves no output file. Errors
// wrap their causes with %w, so errors.As finds:
//
//   - *onnx.OptionError for a bad option, naming it as Type.Field (for
//     example "AdaptConfig.LR"), which a command-line program maps to
//     its flag;
//   - *onnx.FormatError for a file that is not a valid ONNX model, and
//     onnx.ErrTooLarge beneath it for one above onnx.Limits;
//   - *graph.UnsupportedOpsError and *graph.NodeError for a model graft
//     cannot build;
//   - ErrDiverged for a run whose loss or weights became NaN or infinite;
//   - onnx.ErrExists and onnx.ErrInputModel for an output path that may
//     not be written.
//
// Training is deterministic: the same seed, data and settings give
// bit-identical weights.
package train
