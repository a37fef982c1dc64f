package train

import (
	"context"
	"fmt"
	"time"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
)

// The phases of the calls besides Adapt's training, and of Adapt's image
// loading.
const (
	PhaseDecode  Phase = "decode"  // images decoded and preprocessed (images)
	PhaseEval    Phase = "eval"    // a model scored on labelled images (images)
	PhasePredict Phase = "predict" // a model run on images (images)
	PhaseFindLR  Phase = "find-lr" // the learning-rate sweep (steps)
)

// ProgressReporter is a Reporter that also takes progress within a
// phase: done units of the total that PhaseStart announced (images for
// decoding, feature extraction, eval and predict; steps for the
// learning-rate finder). Training phases report their steps through Step.
// The long calls check for it with a type assertion, so a Reporter
// without Progress works as before.
type ProgressReporter interface {
	Reporter
	Progress(p Phase, done int)
}

// progress passes done to r when r takes progress.
func progress(r Reporter, p Phase, done int) {
	if pr, ok := r.(ProgressReporter); ok {
		pr.Progress(p, done)
	}
}

// progressChunk is how many images the calls that report progress decode
// at once between two reports.
const progressChunk = featureChunk

// loadTensors is dataset.LoadTensors a chunk at a time, calling report
// with the number of samples done after each chunk and checking ctx
// between chunks.
func loadTensors(ctx context.Context, samples []dataset.Sample, p *dataset.Preprocess, strict bool, report func(done int)) (data []float32, kept []dataset.Sample, skipped []dataset.Skipped, err error) {
	skipped, err = eachChunk(ctx, samples, p, strict, report, func(d []float32, k []dataset.Sample) error {
		data = append(data, d...)
		kept = append(kept, k...)
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return data, kept, skipped, nil
}

// eachChunk decodes the samples a chunk at a time and hands each chunk's
// tensors and kept samples to emit, so that only one chunk of decoded
// images is alive at once; otherwise it is loadTensors.
func eachChunk(ctx context.Context, samples []dataset.Sample, p *dataset.Preprocess, strict bool, report func(done int), emit func(data []float32, kept []dataset.Sample) error) (skipped []dataset.Skipped, err error) {
	for start := 0; start < len(samples); start += progressChunk {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("decoding image %d of %d: %w", start+1, len(samples), err)
		}
		end := min(start+progressChunk, len(samples))
		d, k, s, err := dataset.LoadTensors(samples[start:end], p, graph.Threads(), strict)
		if err != nil {
			return nil, err
		}
		if len(k) > 0 {
			if err := emit(d[:len(k)*p.Size()], k); err != nil {
				return nil, err
			}
		}
		skipped = append(skipped, s...)
		if report != nil {
			report(end)
		}
	}
	return skipped, nil
}

// scoreSamples decodes the samples and runs the model on them a chunk at
// a time, reporting one phase of len(samples) images to r. It returns
// the outputs of the images kept, in order.
func (c *classifier) scoreSamples(ctx context.Context, samples []dataset.Sample, strict bool, r Reporter, phase Phase) (*onnx.Tensor, []dataset.Sample, []dataset.Skipped, error) {
	t0 := time.Now()
	r.PhaseStart(phase, len(samples))
	defer func() { r.PhaseEnd(phase, time.Since(t0)) }()
	chunk := max(progressChunk, c.batch)
	var out *onnx.Tensor
	var kept []dataset.Sample
	var skipped []dataset.Skipped
	for start := 0; start < len(samples); start += chunk {
		end := min(start+chunk, len(samples))
		data, k, s, err := loadTensors(ctx, samples[start:end], c.prep, strict, nil)
		if err != nil {
			return nil, nil, nil, err
		}
		skipped = append(skipped, s...)
		if len(k) > 0 {
			o, err := c.scores(ctx, data, len(k))
			if err != nil {
				return nil, nil, nil, err
			}
			if out == nil {
				out = onnx.NewFloat([]int{0, o.Shape[1]}, nil)
			}
			out.F = append(out.F, o.F...)
			out.Shape[0] += o.Shape[0]
			kept = append(kept, k...)
		}
		progress(r, phase, end)
	}
	return out, kept, skipped, nil
}
