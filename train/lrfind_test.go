package train_test

import (
	"context"
	"testing"

	"github.com/graftml/graft/models"
	"github.com/graftml/graft/train"
)

// TestFindLRSample runs the learning-rate finder on the sample task: the
// loss falls from its start, then rises at high rates, and the suggested
// rate lies where a head trains well (the default 1e-2 is one).
func TestFindLRSample(t *testing.T) {
	model, data, err := models.Extract(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := train.Adapt(context.Background(), train.AdaptConfig{Model: model, Data: data, FindLR: true})
	if err != nil {
		t.Fatal(err)
	}
	f := res.LRFind
	if f == nil || len(f.LR) < 20 {
		t.Fatalf("no sweep: %+v", f)
	}
	t.Logf("%d steps, suggested %.3g, min loss at %.3g, stopped: %s", len(f.LR), f.Suggested, f.MinLossLR, f.Stopped)
	if f.Suggested < 1e-4 || f.Suggested > 0.3 {
		t.Errorf("suggested learning rate %g outside [1e-4, 0.3]", f.Suggested)
	}
	lo := 0
	for i, v := range f.SmoothedLoss {
		if v < f.SmoothedLoss[lo] {
			lo = i
		}
	}
	first, last := f.SmoothedLoss[0], f.SmoothedLoss[len(f.SmoothedLoss)-1]
	if !(f.SmoothedLoss[lo] < 0.85*first) {
		t.Errorf("the loss did not fall: from %.3f to a minimum of %.3f", first, f.SmoothedLoss[lo])
	}
	if !(last > 1.5*f.SmoothedLoss[lo]) || lo == len(f.LR)-1 {
		t.Errorf("the loss did not rise after its minimum %.3f (at %g): ends at %.3f", f.SmoothedLoss[lo], f.LR[lo], last)
	}
	if f.Suggested > f.MinLossLR {
		t.Errorf("suggested %g beyond the minimum's rate %g", f.Suggested, f.MinLossLR)
	}
	if res.Test != nil || len(res.History) > 0 {
		t.Errorf("the finder trained or wrote a model")
	}
}
