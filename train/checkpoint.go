package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/train/dataset"
)

// A checkpoint is a folder holding checkpoint.json, the manifest, and the
// state file it names (state-<sha256 prefix>.gob). Each save writes the
// state file first and the manifest last, both through onnx.WriteAtomic,
// then removes older state files: a crash leaves either the old
// checkpoint or the new one whole.
//
// The manifest records what the checkpoint belongs to (the settings that
// change the trained weights, the base model's SHA-256 and a hash of the
// data listing: every image's path, label, size and SHA-256) and where
// training is. The state holds the trainable weights (and, with BN train,
// the running statistics), the optimizer's state, the early-stopping state
// (its best weights), the metric history, and, in the fine-tune stage,
// the head-only stage's result, which Adapt compares with the fine-tuned
// model.
const (
	checkpointManifest = "checkpoint.json"
	checkpointFormat   = "graft-checkpoint/1"
)

type ckManifest struct {
	Format   string            `json:"format"`
	Settings map[string]string `json:"settings"`
	Model    string            `json:"model_sha256"`
	Data     string            `json:"data_sha256"`
	Images   ImageCounts       `json:"images"`
	Stage    Phase             `json:"stage"`
	Epoch    int               `json:"epochs_done"` // of the stage
	Step     int               `json:"steps_done"`  // of the next epoch
	Epochs   int               `json:"head_epochs"`
	FTEpochs int               `json:"finetune_epochs"`
	State    string            `json:"state"` // the state file's name
	StateSum string            `json:"state_sha256"`
}

// ckState is the state file's content (encoding/gob).
type ckState struct {
	Stage   Phase
	Pos     runPos
	Weights map[string][]float32
	Adam    *ckAdam
	SGD     [][]float32
	ES      ckEarlyStop
	Head    *ckStage // the head-only stage's result, in the fine-tune stage
}

type ckAdam struct {
	T    int
	M, V [][]float32
}

type ckEarlyStop struct {
	Best      float64
	BestEpoch int
	Saved     [][]float32
}

// ckStage is a finished stage: its net's weights after the run (early
// stopping's restore included), its history and why it stopped.
type ckStage struct {
	Weights map[string][]float32
	History []EpochMetrics
	Stopped string
}

// checkpointer saves and restores the training state of one Adapt call.
type checkpointer struct {
	dir      string
	manifest ckManifest // the identity fields, filled by openCheckpoint
	resumed  *ckState   // the state resumed from; nil for a fresh start
	head     *ckStage   // the finished head stage, once it is
}

// checkpointSettings are the settings that change the trained weights, by
// their AdaptConfig names. Epochs and FinetuneEpochs are left out (a run
// can be extended on resume; checked apart), and so are the settings that
// change only what is written or shown.
func checkpointSettings(c *AdaptConfig) map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	fl := func(v []float32) string { return fmt.Sprint(v) }
	return map[string]string{
		"Cut": c.Cut, "Head": fmt.Sprintf("%v dropout %s", c.Head.Hidden, f(c.Head.Dropout)), "Seed": strconv.FormatInt(c.Seed, 10),
		"Resize": strconv.Itoa(c.Resize), "Mean": fl(c.Mean), "Std": fl(c.Std), "ValSplit": f(c.ValSplit), "Strict": strconv.FormatBool(c.Strict),
		"Optimizer": string(c.Optimizer), "LR": f(c.LR), "Momentum": f(c.Momentum), "Nesterov": strconv.FormatBool(c.Nesterov),
		"WeightDecay": f(c.WeightDecay), "Schedule": string(c.Schedule), "Warmup": strconv.Itoa(c.Warmup), "Batch": strconv.Itoa(c.Batch),
		"LabelSmoothing": f(c.LabelSmoothing), "Patience": strconv.Itoa(c.Patience),
		"FineTune": strconv.FormatBool(c.FinetuneEpochs > 0), "Trainable": c.Trainable, "UnfreezeLast": strconv.Itoa(c.UnfreezeLast),
		"BackboneLRMult": f(c.BackboneLRMult), "BN": string(c.BN), "Augment": strconv.FormatBool(c.Augment),
		"MaxPixels": strconv.FormatInt(c.MaxPixels, 10),
	}
}

// dataListingHash hashes every image of the data set: split, path
// relative to the data folder, label, size and content.
func dataListingHash(ds *dataset.Dataset) (string, error) {
	h := sha256.New()
	for _, sp := range []split{{"train", ds.Train}, {"val", ds.Val}, {"test", ds.Test}} {
		for _, s := range sp.samples {
			b, err := os.ReadFile(s.Path)
			if err != nil {
				return "", err
			}
			rel, err := filepath.Rel(ds.Dir, s.Path)
			if err != nil {
				rel = s.Path
			}
			fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%s\n", sp.name, filepath.ToSlash(rel), s.Label, len(b), FileHashBytes(b))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openCheckpoint identifies the run and, with Resume, reads the
// checkpoint and checks it belongs to this run.
func (a *adaptation) openCheckpoint() error {
	if a.cfg.Checkpoint == "" {
		return nil
	}
	dir := a.cfg.Checkpoint
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return &onnx.OptionError{Option: "AdaptConfig.Checkpoint", Err: err}
	}
	dh, err := dataListingHash(a.ds)
	if err != nil {
		return fmt.Errorf("checkpoint: hashing the data set: %w", err)
	}
	ck := &checkpointer{dir: dir, manifest: ckManifest{Format: checkpointFormat, Settings: checkpointSettings(&a.cfg),
		Model: FileHashBytes(a.src.Raw), Data: dh, Images: a.res.Images, Epochs: a.cfg.Epochs, FTEpochs: a.cfg.FinetuneEpochs}}
	old, err := readManifest(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if a.cfg.Resume {
			notef(a.rep, "checkpoint: %s holds no checkpoint yet; starting from the beginning", dir)
		}
		a.ck = ck
		return nil
	case err != nil:
		return err
	case !a.cfg.Resume:
		return onnx.OptionErrorf("AdaptConfig.Checkpoint", "%s holds a checkpoint (%s epoch %d); resume it (AdaptConfig.Resume, --resume), or remove it or choose another folder to start afresh", dir, old.Stage, old.Epoch)
	}
	if err := ck.compatible(old); err != nil {
		return onnx.OptionErrorf("AdaptConfig.Resume", "checkpoint %s is from another run: %w", dir, err)
	}
	st, err := readState(dir, old)
	if err != nil {
		return err
	}
	ck.resumed = st
	if st.Head != nil {
		ck.head = st.Head
	}
	a.ck = ck
	notef(a.rep, "checkpoint: resuming %s at epoch %d, step %d", old.Stage, old.Epoch+1, old.Step)
	return nil
}

// compatible says what differs between the run a checkpoint was written
// by (old) and this one.
func (ck *checkpointer) compatible(old *ckManifest) error {
	m := &ck.manifest
	var diff []string
	if old.Model != m.Model {
		diff = append(diff, "the base model (AdaptConfig.Model's content)")
	}
	if old.Data != m.Data {
		diff = append(diff, fmt.Sprintf("the data set (AdaptConfig.Data: %d/%d/%d train/val/test images then, %d/%d/%d now, or their names, labels or contents)",
			old.Images.Train, old.Images.Val, old.Images.Test, m.Images.Train, m.Images.Val, m.Images.Test))
	}
	keys := make([]string, 0, len(m.Settings))
	for k := range m.Settings {
		keys = append(keys, k)
	}
	for k := range old.Settings {
		if _, ok := m.Settings[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if old.Settings[k] != m.Settings[k] {
			diff = append(diff, fmt.Sprintf("AdaptConfig.%s (%q then, %q now)", k, old.Settings[k], m.Settings[k]))
		}
	}
	// a run may be extended, not cut below where it is, nor a stage
	// that has finished
	switch old.Stage {
	case PhaseHead:
		if m.Epochs < old.Epoch {
			diff = append(diff, fmt.Sprintf("AdaptConfig.Epochs (%d, but %d head epochs are done)", m.Epochs, old.Epoch))
		}
	case PhaseFineTune:
		if m.Epochs != old.Epochs {
			diff = append(diff, fmt.Sprintf("AdaptConfig.Epochs (%d then, %d now; the head stage has finished)", old.Epochs, m.Epochs))
		}
		if m.FTEpochs < old.Epoch {
			diff = append(diff, fmt.Sprintf("AdaptConfig.FinetuneEpochs (%d, but %d fine-tune epochs are done)", m.FTEpochs, old.Epoch))
		}
	}
	if len(diff) > 0 {
		return errors.New(strings.Join(diff, "; "))
	}
	return nil
}

func readManifest(dir string) (*ckManifest, error) {
	path := filepath.Join(dir, checkpointManifest)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m ckManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if m.Format != checkpointFormat {
		return nil, fmt.Errorf("checkpoint %s: format %q, want %q", path, m.Format, checkpointFormat)
	}
	return &m, nil
}

func readState(dir string, m *ckManifest) (*ckState, error) {
	path := filepath.Join(dir, filepath.Base(m.State))
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if FileHashBytes(b) != m.StateSum {
		return nil, fmt.Errorf("checkpoint %s: damaged (its SHA-256 is not the manifest's)", path)
	}
	var st ckState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return &st, nil
}

// savedWeights names the weights of net a checkpoint keeps: the trainable
// ones, and with BN train every other (the running statistics move).
func savedWeights(net *Net) map[string][]float32 {
	w := map[string][]float32{}
	for _, name := range net.Trainable {
		w[name] = net.Weights[name].F
	}
	if net.BNTrain {
		for name, t := range net.Weights {
			if t.F != nil {
				w[name] = t.F
			}
		}
	}
	return w
}

// loadWeights copies saved weights into net.
func loadWeights(net *Net, w map[string][]float32) error {
	for name, v := range w {
		t, ok := net.Weights[name]
		if !ok || len(t.F) != len(v) {
			return fmt.Errorf("checkpoint: weight %q does not fit the model", name)
		}
		copy(t.F, v)
	}
	return nil
}

// save writes the state of a stage's run at pos.
func (ck *checkpointer) save(stage Phase, net *Net, opt Optimizer, es *EarlyStop, pos runPos) error {
	st := ckState{Stage: stage, Pos: pos, Weights: savedWeights(net),
		ES: ckEarlyStop{Best: es.best, BestEpoch: es.bestEpoch, Saved: es.saved}}
	if stage == PhaseFineTune {
		st.Head = ck.head
	}
	switch o := opt.(type) {
	case *Adam:
		st.Adam = &ckAdam{T: o.t, M: o.m, V: o.v}
	case *SGD:
		st.SGD = o.buf
	default:
		return fmt.Errorf("checkpoint: optimizer %s has no saved state", opt.Name())
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	sum := FileHashBytes(buf.Bytes())
	m := ck.manifest
	m.Stage, m.Epoch, m.Step = stage, pos.Epoch-1, pos.Step
	m.State, m.StateSum = "state-"+sum[:16]+".gob", sum
	if err := onnx.WriteAtomic(filepath.Join(ck.dir, m.State), buf.Bytes(), true); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	mj, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := onnx.WriteAtomic(filepath.Join(ck.dir, checkpointManifest), append(mj, '\n'), true); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	// the manifest names the new state: older ones can go
	old, _ := filepath.Glob(filepath.Join(ck.dir, "state-*.gob"))
	for _, p := range old {
		if filepath.Base(p) != m.State {
			os.Remove(p)
		}
	}
	return nil
}

// restore puts a resumed stage's state into its net, optimizer and early
// stopping, and returns where its run continues.
func (ck *checkpointer) restore(net *Net, opt Optimizer, es *EarlyStop) (*runPos, error) {
	st := ck.resumed
	if err := loadWeights(net, st.Weights); err != nil {
		return nil, err
	}
	switch o := opt.(type) {
	case *Adam:
		if st.Adam == nil {
			return nil, fmt.Errorf("checkpoint: no Adam state")
		}
		o.t, o.m, o.v = st.Adam.T, st.Adam.M, st.Adam.V
	case *SGD:
		o.buf = st.SGD
	}
	es.best, es.bestEpoch, es.saved = st.ES.Best, st.ES.BestEpoch, st.ES.Saved
	pos := st.Pos
	return &pos, nil
}

// finished records a finished stage for the checkpoints of later ones.
func (ck *checkpointer) finished(stage Phase, f *Fit) {
	if stage != PhaseHead {
		return
	}
	w := map[string][]float32{}
	for name, v := range savedWeights(f.Net) {
		w[name] = slices.Clone(v)
	}
	ck.head = &ckStage{Weights: w, History: slices.Clone(f.History), Stopped: f.Stopped}
}
