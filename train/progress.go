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
	data = make([]float32, 0, len(samples)*p.Size())
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
// tensors and kept samples to emit, so that only two chunks of decoded
// images are alive at once; otherwise it is loadTensors. emit must not
// keep data: its buffer is reused (see decodeAhead).
func eachChunk(ctx context.Context, samples []dataset.Sample, p *dataset.Preprocess, strict bool, report func(done int), emit func(data []float32, kept []dataset.Sample) error) (skipped []dataset.Skipped, err error) {
	err = decodeAhead(ctx, samples, p, strict, "decoding", func(c decoded) error {
		if len(c.kept) > 0 {
			if err := emit(c.data[:len(c.kept)*p.Size()], c.kept); err != nil {
				return err
			}
		}
		skipped = append(skipped, c.skipped...)
		if report != nil {
			report(c.end)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return skipped, nil
}

// decoded is one chunk of samples[start:end] decoded by decodeAhead: the
// tensors of the kept samples, one after another, and the skipped ones.
type decoded struct {
	start, end int
	data       []float32
	kept       []dataset.Sample
	skipped    []dataset.Skipped
}

// decodeAhead decodes samples progressChunk at a time (each chunk in
// parallel, see dataset.LoadTensors) on a goroutine of its own, one chunk
// ahead of use, which takes the chunks in order on the calling goroutine:
// decoding a chunk overlaps what use does with the one before, such as
// running a model on it. A chunk's data is valid only during use: two
// buffers take turns, as memory fresh from the system costs page faults
// that take about as long as the preprocessing written into it. It stops
// at the first error of decoding or of use, and between chunks when ctx
// is done, with an error naming the image reached ("<what> image 65 of
// 300: context canceled"). It returns once its goroutine has stopped.
func decodeAhead(ctx context.Context, samples []dataset.Sample, p *dataset.Preprocess, strict bool, what string, use func(c decoded) error) error {
	type result struct {
		decoded
		err error
	}
	inner, stop := context.WithCancel(ctx)
	results := make(chan result)
	free := make(chan []float32, 1) // a buffer use is done with
	go func() {
		defer close(results)
		for start := 0; start < len(samples) && inner.Err() == nil; start += progressChunk {
			var buf []float32
			select {
			case buf = <-free:
			default:
			}
			r := result{decoded: decoded{start: start, end: min(start+progressChunk, len(samples))}}
			r.data, r.kept, r.skipped, r.err = dataset.LoadTensorsInto(buf, samples[start:r.end], p, graph.Threads(), strict)
			select {
			case results <- r:
			case <-inner.Done():
				return
			}
			if r.err != nil {
				return
			}
		}
	}()
	defer func() {
		stop()
		for range results { // wait for the decoder to stop
		}
	}()
	done := 0
	for r := range results {
		if r.err != nil {
			return r.err
		}
		if ctx.Err() != nil {
			break
		}
		if err := use(r.decoded); err != nil {
			return err
		}
		done = r.end
		select {
		case free <- r.data:
		default:
		}
	}
	if done < len(samples) {
		return fmt.Errorf("%s image %d of %d: %w", what, done+1, len(samples), context.Cause(ctx))
	}
	return nil
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
