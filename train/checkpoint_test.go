package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stopAt cancels the run after an epoch of a phase (Step 0) or after a
// step of that epoch: deterministic, no timing.
type stopAt struct {
	NopReporter
	phase       Phase
	epoch, step int
	cancel      func()
}

func (c *stopAt) Step(p Phase, s StepInfo) {
	if c.step > 0 && p == c.phase && s.Epoch == c.epoch && s.Step == c.step {
		c.cancel()
	}
}

func (c *stopAt) Epoch(p Phase, m EpochMetrics, _ int) {
	if c.step == 0 && p == c.phase && m.Epoch == c.epoch {
		c.cancel()
	}
}

// interrupted runs Adapt until stopAt fires and checks what an
// interrupted run leaves: an error wrapping context.Canceled, no model, a
// checkpoint.
func interrupted(t *testing.T, cfg AdaptConfig, stop stopAt) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop.cancel = cancel
	cfg.Reporter = &stop
	_, err := Adapt(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted at %s epoch %d step %d: got %v, want context.Canceled", stop.phase, stop.epoch, stop.step, err)
	}
	if _, err := os.Stat(cfg.Out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an interrupted run wrote %s (%v)", cfg.Out, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Checkpoint, checkpointManifest)); err != nil {
		t.Fatalf("no checkpoint: %v", err)
	}
}

// TestResumeBitIdentical: a run interrupted once or twice, in either
// stage, at the end of an epoch or after a step within one, and resumed,
// writes the same bytes as an uninterrupted run. The written model's
// metadata records no times, so the whole files are compared.
func TestResumeBitIdentical(t *testing.T) {
	model, data, dir := sample(t)
	base := AdaptConfig{Model: model, Data: data, ValSplit: 0.25, Seed: 3, Batch: 8}
	cases := []struct {
		name  string
		edit  func(*AdaptConfig)
		stops []stopAt
	}{
		{"head-only", func(c *AdaptConfig) { c.Epochs, c.Patience = 5, 2 }, []stopAt{{phase: PhaseHead, epoch: 2}}},
		{"head-only-mid-epoch-sgd", func(c *AdaptConfig) {
			c.Epochs, c.Optimizer, c.Momentum, c.Schedule = 4, OptimizerSGD, 0.9, ScheduleCosine
		}, []stopAt{{phase: PhaseHead, epoch: 2, step: 2}}},
		{"two-stage-in-head", func(c *AdaptConfig) { c.Epochs, c.FinetuneEpochs, c.UnfreezeLast = 3, 2, 2 }, []stopAt{{phase: PhaseHead, epoch: 1}}},
		{"two-stage-in-finetune-twice", func(c *AdaptConfig) { c.Epochs, c.FinetuneEpochs, c.UnfreezeLast, c.Warmup = 3, 3, 2, 1 },
			[]stopAt{{phase: PhaseHead, epoch: 3}, {phase: PhaseFineTune, epoch: 1, step: 3}}},
		{"augmented-two-stage", func(c *AdaptConfig) { c.Augment, c.Epochs, c.FinetuneEpochs, c.UnfreezeLast = true, 2, 2, 1 },
			[]stopAt{{phase: PhaseFineTune, epoch: 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			cfg.Out = filepath.Join(dir, tc.name+"-straight.onnx")
			if _, err := Adapt(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(cfg.Out)

			cfg.Out = filepath.Join(dir, tc.name+"-resumed.onnx")
			cfg.Checkpoint = filepath.Join(dir, tc.name+"-ck")
			for i, stop := range tc.stops {
				c := cfg
				c.Resume = i > 0
				interrupted(t, c, stop)
			}
			cfg.Resume = true
			if _, err := Adapt(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(cfg.Out)
			if len(want) == 0 || !bytes.Equal(got, want) {
				t.Fatalf("the resumed run wrote %d bytes unlike the uninterrupted run's %d", len(got), len(want))
			}
			if st, _ := filepath.Glob(filepath.Join(cfg.Checkpoint, "state-*.gob")); len(st) != 1 {
				t.Errorf("checkpoint folder holds %d state files, want 1", len(st))
			}
		})
	}
}

// TestResumeExtendsEpochs: a finished head-only run resumed with more
// epochs (constant schedule) equals a run given that many from the start.
func TestResumeExtendsEpochs(t *testing.T) {
	model, data, dir := sample(t)
	cfg := AdaptConfig{Model: model, Data: data, ValSplit: 0.25, Seed: 1, Batch: 8, Epochs: 5, Out: filepath.Join(dir, "straight.onnx")}
	if _, err := Adapt(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(cfg.Out)
	cfg.Epochs, cfg.Out, cfg.Checkpoint = 3, filepath.Join(dir, "short.onnx"), filepath.Join(dir, "ck")
	if _, err := Adapt(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Epochs, cfg.Out, cfg.Resume = 5, filepath.Join(dir, "extended.onnx"), true
	if _, err := Adapt(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(cfg.Out); !bytes.Equal(got, want) {
		t.Fatal("3 epochs extended to 5 differ from 5 epochs")
	}
	// fewer epochs than are done: refused
	cfg.Epochs, cfg.Out = 2, filepath.Join(dir, "fewer.onnx")
	if _, err := Adapt(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "AdaptConfig.Epochs") {
		t.Fatalf("resuming 5 done epochs with Epochs 2: %v", err)
	}
}

// TestResumeRefusesOtherRun: a checkpoint of other settings or another
// data set is refused, naming what differs; one in the folder without
// Resume is refused; Resume needs Checkpoint.
func TestResumeRefusesOtherRun(t *testing.T) {
	model, data, dir := sample(t)
	ck := filepath.Join(dir, "ck")
	cfg := AdaptConfig{Model: model, Data: data, Seed: 1, Batch: 8, Epochs: 3, Checkpoint: ck, Out: filepath.Join(dir, "a.onnx")}
	interrupted(t, cfg, stopAt{phase: PhaseHead, epoch: 1})

	refused := func(c AdaptConfig, want ...string) {
		t.Helper()
		_, err := Adapt(context.Background(), c)
		if err == nil {
			t.Fatalf("accepted; want an error naming %q", want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not name %q", err, w)
			}
		}
	}
	refused(cfg, "holds a checkpoint", "Resume")
	other := cfg
	other.Resume, other.LR, other.Seed = true, 0.05, 2
	refused(other, "AdaptConfig.LR", "AdaptConfig.Seed")
	// one more training image
	entries, _ := os.ReadDir(filepath.Join(data, "train"))
	class := filepath.Join(data, "train", entries[0].Name())
	imgs, _ := os.ReadDir(class)
	b, _ := os.ReadFile(filepath.Join(class, imgs[0].Name()))
	if err := os.WriteFile(filepath.Join(class, "zz-extra"+filepath.Ext(imgs[0].Name())), b, 0o644); err != nil {
		t.Fatal(err)
	}
	other = cfg
	other.Resume = true
	refused(other, "the data set")
	noDir := cfg
	noDir.Checkpoint, noDir.Resume = "", true
	refused(noDir, "AdaptConfig.Resume", "AdaptConfig.Checkpoint")
}
