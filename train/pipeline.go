package train

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
	"github.com/graftml/graft/train/dataset"
)

// adaptation is one Adapt call. Adapt runs its steps in order: load,
// resolveCut, attachHead, selectTrainable, then (unless a dry run)
// openLog, trainHead, fineTune, evaluate, export and verify. Each step
// reads what the earlier ones left in the fields and adds its own.
type adaptation struct {
	ctx context.Context
	cfg AdaptConfig // with defaults
	rep Reporter
	res *AdaptResult

	// load
	src   *onnx.Model
	input string // the image input's name
	prep  *dataset.Preprocess
	ds    *dataset.Dataset
	// resolveCut
	cut      string
	cutShape []int
	// attachHead: the cut model with its head, edited in place until export
	adapted *onnx.Model
	spec    surgery.HeadSpec
	head    *surgery.Head
	// selectTrainable
	backbone []string
	// training
	log       *MetricsLog
	images    map[string]*Examples    // preprocessed images by split, once a stage needs them
	weights   map[string]*onnx.Tensor // trained weights by initializer name
	final     *Net                    // the last trained net
	finalEx   map[string]*Examples    // what final reads, by split
	prefix    *Extractor              // maps images to final's input; nil when final reads images
	features  *Extractor              // what extractFeatures ran, its graphs kept for prefix
	trainFrom time.Time
	// export: the model written but not yet verified and put in place
	pending *onnx.AtomicFile
	// ck saves the training state (AdaptConfig.Checkpoint); nil without
	ck *checkpointer
	// mem is what is left of AdaptConfig.MemoryBudget for the examples
	// fine-tuning trains from, and their spill files
	mem *budget
}

func newAdaptation(ctx context.Context, cfg AdaptConfig) (*adaptation, error) {
	cfg.defaults()
	if cfg.Out != "" && !cfg.DryRun && !cfg.FindLR {
		if err := cfg.checkOut(); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &adaptation{ctx: ctx, cfg: cfg, rep: orNop(cfg.Reporter), weights: map[string]*onnx.Tensor{},
		res: &AdaptResult{Out: cfg.Out, Head: cfg.Head.String(), DryRun: cfg.DryRun},
		mem: &budget{left: cfg.MemoryBudget, dir: cfg.CacheDir}}, nil
}

// close releases what the steps opened.
func (a *adaptation) close() {
	if a.log != nil {
		a.log.Close()
	}
	if a.pending != nil {
		a.pending.Abort() // after Commit, this does nothing
	}
	a.mem.close()
}

// load reads the model, works out its preprocessing and lists the data.
func (a *adaptation) load() error {
	var err error
	ov := dataset.Overrides{Resize: a.cfg.Resize, Mean: a.cfg.Mean, Std: a.cfg.Std, Shapes: a.cfg.Shapes}
	a.src, a.input, a.prep, err = openImageModel(a.cfg.Model, a.cfg.Limits, ov, a.cfg.MaxPixels)
	if err != nil {
		return err
	}
	if note := preprocessNote(a.src, a.prep, ov, "AdaptConfig"); note != "" {
		a.rep.Note(note)
	}
	a.ds, err = dataset.LoadDataset(dataset.DataConfig{Dir: a.cfg.Data, ValSplit: a.cfg.ValSplit, Seed: a.cfg.Seed, MaxPixels: a.cfg.MaxPixels})
	if err != nil {
		return err
	}
	a.noteValidation()
	if a.cfg.Strict && len(a.ds.Skipped) > 0 {
		return &onnx.OptionError{Option: "AdaptConfig.Strict", Err: a.ds.Skipped[0].Err}
	}
	a.res.Classes = a.ds.Classes
	a.skipped(a.ds.Skipped, true)
	a.spec = a.cfg.Head.spec(len(a.ds.Classes), a.cfg.Seed)
	if err := a.spec.Validate(); err != nil {
		return onnx.OptionErrorf("AdaptConfig.Head", "%w", err)
	}
	a.res.Images = ImageCounts{Train: len(a.ds.Train), Val: len(a.ds.Val), Test: len(a.ds.Test)}
	return nil
}

// noteValidation says what the data's validation images change: a
// ValSplit that does not apply, a Patience without validation, training
// accuracy as the only measure.
func (a *adaptation) noteValidation() {
	if a.cfg.ValSplit > 0 && a.ds.ValDir != "" {
		notef(a.rep, "AdaptConfig.ValSplit %g ignored: %s has a validation folder (%s), which is used instead", a.cfg.ValSplit, a.cfg.Data, a.ds.ValDir)
	}
	if len(a.ds.Val) > 0 {
		return
	}
	if a.cfg.Patience > 0 {
		notef(a.rep, "AdaptConfig.Patience %d ignored: early stopping needs validation images", a.cfg.Patience)
	}
	if len(a.ds.Test) == 0 && !a.cfg.DryRun {
		notef(a.rep, "warning: no validation or test images, so only training accuracy is reported, which overstates how the model does on new images; hold some out with AdaptConfig.ValSplit 0.2")
	} else if !a.cfg.DryRun && a.cfg.FinetuneEpochs > 0 {
		notef(a.rep, "no validation images: the fine-tuned model is kept without checking it beats the head-only one; hold some out with AdaptConfig.ValSplit 0.2")
	}
}

// resolveCut finds the tensor the head will read, and its shape.
func (a *adaptation) resolveCut() error {
	cut, err := surgery.ResolveCut(a.src, a.cfg.Cut)
	if err != nil {
		return err
	}
	// the images' size binds symbolic input dimensions (x: [N, 3, H, W])
	probe, err := graph.Build(a.src, graph.Options{Freeze: true, Outputs: []string{cut}, Shapes: map[string][]int{a.input: a.prep.Shape(1)}})
	if err != nil {
		return err
	}
	a.cut, a.res.Cut = cut, cut
	a.cutShape, _ = probe.Shape(cut)
	return nil
}

// attachHead cuts a copy of the model and attaches the new head. The
// model's labels become the data set's classes: the base model's describe
// its old classifier.
func (a *adaptation) attachHead() error {
	mp := surgery.CloneProto(a.src.Proto)
	if err := surgery.CutAt(mp, a.cut); err != nil {
		return err
	}
	head, err := surgery.AttachHead(mp, a.cut, a.cutShape, a.spec)
	if err != nil {
		return fmt.Errorf("%s: %w", a.cfg.Model, err)
	}
	labels, _ := json.Marshal(a.ds.Classes)
	surgery.SetMetadata(mp, onnx.KeyLabels, string(labels))
	a.adapted, a.head = &onnx.Model{Proto: mp, Path: a.cfg.Model}, head
	return nil
}

// selectTrainable picks the backbone weights that fine-tune and counts
// the trainable and frozen parameters.
func (a *adaptation) selectTrainable() error {
	layers := surgery.Layers(a.adapted.Proto, a.cut)
	if a.cfg.UnfreezeLast > len(layers) {
		return onnx.OptionErrorf("AdaptConfig.UnfreezeLast", "%d: the backbone has only %d layers with weights before the cut", a.cfg.UnfreezeLast, len(layers))
	}
	backbone, err := surgery.SelectTrainable(layers, a.cfg.Trainable, a.cfg.UnfreezeLast)
	if err != nil {
		return &onnx.OptionError{Option: "AdaptConfig.Trainable", Err: err}
	}
	quant := surgery.QuantizedWeights(a.adapted.Proto)
	for _, p := range backbone {
		if q, ok := quant[p]; ok {
			return onnx.OptionErrorf("AdaptConfig.Trainable", "selects %q, a quantized weight (DequantizeLinear of initializer %q); graft trains float weights only, so quantized layers stay frozen", p, q.Tensor.Name)
		}
	}
	for _, l := range layers {
		if slices.ContainsFunc(l.Params, func(p string) bool { return slices.Contains(backbone, p) }) {
			a.res.TrainableLayers = append(a.res.TrainableLayers, l)
		} else {
			a.res.FrozenLayers = append(a.res.FrozenLayers, l)
		}
	}
	var trainable []*onnx.TensorProto
	for _, t := range a.adapted.Proto.Graph.Initializer {
		if slices.Contains(a.head.Params, t.Name) || slices.Contains(backbone, t.Name) {
			trainable = append(trainable, t)
		}
	}
	a.res.Trainable = surgery.CountParams(&onnx.ModelProto{Graph: &onnx.GraphProto{Initializer: trainable}})
	a.res.Frozen = surgery.CountParams(a.adapted.Proto) - a.res.Trainable
	if len(backbone) > 0 && a.cfg.FinetuneEpochs == 0 {
		return onnx.OptionErrorf("AdaptConfig.FinetuneEpochs", "is 0 but AdaptConfig.Trainable/AdaptConfig.UnfreezeLast select %d backbone weights; give N > 0 to train them after the head", len(backbone))
	}
	a.backbone = backbone
	return nil
}

// openLog opens the metrics log, when asked for.
func (a *adaptation) openLog() error {
	if a.cfg.Log == "" {
		return nil
	}
	var err error
	if a.log, err = NewMetricsLog(a.cfg.Log, string(PhaseHead)); err != nil {
		return &onnx.OptionError{Option: "AdaptConfig.Log", Err: err}
	}
	return nil
}

// trainHead trains the head, on backbone features computed once per
// image, or through the whole network when augmenting (augmented images
// change every epoch).
func (a *adaptation) trainHead() error {
	a.noteCache()
	if a.cfg.Augment {
		t0 := time.Now()
		if err := a.loadImages(true); err != nil {
			return err
		}
		a.res.FeatureSeconds = time.Since(t0).Seconds()
		a.trainFrom = time.Now()
		fit, err := a.trainOnImages(PhaseHead, a.head.Params, nil, a.cfg.Epochs, nil)
		if err != nil {
			return err
		}
		stageHistory(fit.History, PhaseHead)
		a.res.History, a.res.Stopped = fit.History, joinStops("", PhaseHead, fit.Stopped)
		for _, p := range a.head.Params {
			a.weights[p] = fit.Net.Weights[p]
		}
		return nil
	}
	// Fine-tuning needs the images themselves later: without a feature
	// cache, decode them once and take the features from them, when they
	// take at most half the memory budget (else each stage decodes them
	// as it goes).
	if a.cfg.FinetuneEpochs > 0 && a.cfg.CacheDir == "" && a.imageBytes() <= a.mem.left/2 {
		if err := a.loadImages(true); err != nil {
			return err
		}
	}
	feats, err := a.extractFeatures()
	if err != nil {
		return err
	}
	h := a.head
	headProto, err := surgery.SubModel(a.adapted.Proto, h.Features, []int{1, h.FeatureDim}, h.Logits)
	if err != nil {
		return err
	}
	net, err := NewNet(&onnx.Model{Proto: headProto, Path: a.cfg.Model + " (head)"}, h.Features, h.Logits, h.Params, a.cfg.Seed)
	if err != nil {
		return err
	}
	a.trainFrom = time.Now()
	fit, err := a.fit(net, PhaseHead, a.cfg.Epochs, nil, feats)
	if err != nil {
		return err
	}
	stageHistory(fit.History, PhaseHead)
	a.res.History, a.res.Stopped = fit.History, joinStops("", PhaseHead, fit.Stopped)
	for _, p := range h.Params {
		a.weights[p] = net.Weights[p]
	}
	a.final, a.finalEx = net, feats
	// The frozen backbone computed the features: its graphs serve again,
	// without a build and first run (a quarter second for mobilenet_v2
	// at batch 8).
	a.prefix = a.features
	a.prefix.shape = []int{h.FeatureDim}
	return nil
}

// fineTune trains the selected backbone layers with the head, starting
// from the trained head. With validation data it then keeps whichever of
// the head-only and the fine-tuned model has the lower validation loss
// (each stage at its best epoch), and says so: fine-tuning can hurt.
func (a *adaptation) fineTune() error {
	if a.cfg.FinetuneEpochs == 0 {
		a.res.TrainSeconds = time.Since(a.trainFrom).Seconds()
		a.res.Kept = bestEpoch(PhaseHead, a.res.History)
		if a.res.Kept != nil {
			a.res.Kept.Reason = "the head's best validation loss"
		}
		return nil
	}
	headOnly := struct {
		final   *Net
		ex      map[string]*Examples
		prefix  *Extractor
		weights map[string]*onnx.Tensor
	}{a.final, a.finalEx, a.prefix, maps.Clone(a.weights)}
	headBest := bestEpoch(PhaseHead, a.res.History)
	// The head-only model's backbone graphs wait unused while the
	// backbone trains: they are built again if that model is kept.
	if headOnly.prefix != nil {
		headOnly.prefix.release()
	}

	trainable := append(slices.Clone(a.head.Params), a.backbone...)
	scale := make([]float64, len(trainable))
	for i := range scale {
		scale[i] = 1
		if i >= len(a.head.Params) {
			scale[i] = a.cfg.BackboneLRMult
		}
	}
	ft, err := a.trainOnImages(PhaseFineTune, trainable, a.weights, a.cfg.FinetuneEpochs, scale)
	if err != nil {
		return err
	}
	stageHistory(ft.History, PhaseFineTune)
	a.res.History = append(a.res.History, ft.History...)
	a.res.Stopped = joinStops(a.res.Stopped, PhaseFineTune, ft.Stopped)
	for name, t := range ft.Net.Weights {
		a.weights[name] = t // trained weights and updated BN statistics
	}
	a.res.TrainSeconds = time.Since(a.trainFrom).Seconds()

	ftBest := bestEpoch(PhaseFineTune, ft.History)
	switch {
	case headBest == nil || ftBest == nil:
		return nil
	case headBest.ValLoss <= ftBest.ValLoss:
		a.final, a.finalEx, a.prefix, a.weights = headOnly.final, headOnly.ex, headOnly.prefix, headOnly.weights
		a.res.Kept = headBest
		a.res.Kept.Reason = fmt.Sprintf("fine-tuning did not improve the validation loss (its best: %.4f at fine-tune epoch %d)", ftBest.ValLoss, ftBest.Epoch)
	default:
		a.res.Kept = ftBest
		a.res.Kept.Reason = fmt.Sprintf("it beats the head-only model's best validation loss (%.4f at head epoch %d)", headBest.ValLoss, headBest.Epoch)
	}
	notef(a.rep, "kept the %s", a.res.Kept)
	return nil
}

// Kept says which trained model Adapt kept, and why.
type Kept struct {
	Stage   Phase   `json:"stage"` // PhaseHead (the head-only model) or PhaseFineTune
	Epoch   int     `json:"epoch"` // the epoch of that stage whose weights were kept
	ValLoss float64 `json:"val_loss"`
	ValAcc  float64 `json:"val_accuracy"`
	Reason  string  `json:"reason"`
}

// String reads "head-only model of head epoch 7 (validation loss 0.4100):
// <reason>".
func (k *Kept) String() string {
	what := "head-only model"
	if k.Stage == PhaseFineTune {
		what = "fine-tuned model"
	}
	return fmt.Sprintf("%s of %s epoch %d (validation loss %.4f, accuracy %.3f): %s", what, k.Stage, k.Epoch, k.ValLoss, k.ValAcc, k.Reason)
}

// bestEpoch is the epoch of a stage with the lowest validation loss, the
// one EarlyStop restores; nil without validation.
func bestEpoch(stage Phase, history []EpochMetrics) *Kept {
	var best *Kept
	for _, m := range history {
		if m.HasVal && (m.Stage == "" || m.Stage == stage) && (best == nil || m.ValLoss < best.ValLoss) {
			best = &Kept{Stage: stage, Epoch: m.Epoch, ValLoss: m.ValLoss, ValAcc: m.ValAcc}
		}
	}
	return best
}

// stageHistory labels a stage's epochs.
func stageHistory(h []EpochMetrics, stage Phase) {
	for i := range h {
		h[i].Stage = stage
	}
}

// joinStops adds a stage's reason for stopping, named with the stage.
func joinStops(prev string, stage Phase, stopped string) string {
	if stopped == "" {
		return prev
	}
	s := string(stage) + ": " + stopped
	if prev == "" {
		return s
	}
	return prev + "; " + s
}

// evaluate scores the trained net on every split.
func (a *adaptation) evaluate() error {
	t0 := time.Now()
	a.rep.PhaseStart(PhaseEval, countAll(a.finalEx))
	defer func() { a.rep.PhaseEnd(PhaseEval, time.Since(t0)) }()
	done := 0
	for _, name := range []string{"train", "val", "test"} {
		ex := a.finalEx[name]
		if ex == nil || ex.Len() == 0 {
			continue
		}
		if ex.Clean != nil { // score the images, not their last augmentation
			ex = &Examples{X: ex.Clean, Shape: ex.Shape, Labels: ex.Labels, Paths: ex.Paths}
		}
		ev, err := a.evaluateSplit(name, ex)
		if err != nil {
			return err
		}
		for k := range ev.PerClass {
			ev.PerClass[k].Label = a.ds.Classes[k]
		}
		switch name {
		case "train":
			a.res.Train = ev
		case "val":
			a.res.Val = ev
		case "test":
			a.res.Test = ev
		}
		done += ex.Len()
		progress(a.rep, PhaseEval, done)
	}
	return nil
}

// fit trains net for epochs with the configured optimizer and schedule.
func (a *adaptation) fit(net *Net, phase Phase, epochs int, lrScale []float64, ex map[string]*Examples) (*Fit, error) {
	cfg := a.cfg
	opt, err := NewOptimizer(cfg.optimizer())
	if err != nil {
		return nil, err
	}
	train := ex["train"]
	steps := (train.Len() + cfg.Batch - 1) / cfg.Batch
	sched, err := NewSchedule(cfg.Schedule, cfg.LR, steps*epochs, steps*cfg.Warmup, 0, 0)
	if err != nil {
		return nil, &onnx.OptionError{Option: "AdaptConfig.Warmup", Err: err}
	}
	es := &EarlyStop{Patience: cfg.Patience}
	hooks := []Hook{es, reportHook{r: a.rep, phase: phase}}
	if a.log != nil {
		a.log.SetStage(string(phase))
		hooks = append(hooks, a.log)
	}
	rc := Config{Epochs: epochs, Batch: cfg.Batch, Optimizer: opt, Schedule: sched, LRScale: lrScale,
		LabelSmoothing: cfg.LabelSmoothing, Seed: cfg.Seed, Stage: string(phase), Classes: len(a.ds.Classes), Hooks: hooks}
	if ck := a.ck; ck != nil {
		switch {
		case ck.resumed != nil && ck.resumed.Stage == PhaseFineTune && phase == PhaseHead:
			// the head stage had finished: its result is in the checkpoint
			if err := loadWeights(net, ck.head.Weights); err != nil {
				return nil, err
			}
			if err := a.replayLog(ck.head.History); err != nil {
				return nil, err
			}
			return &Fit{Net: net, Cfg: rc, History: slices.Clone(ck.head.History), Stopped: ck.head.Stopped}, nil
		case ck.resumed != nil && ck.resumed.Stage == phase:
			pos, err := ck.restore(net, opt, es)
			if err != nil {
				return nil, err
			}
			ck.resumed = nil
			if err := a.replayLog(pos.History); err != nil {
				return nil, err
			}
			rc.resume = pos
		}
		rc.save = func(p runPos) error { return ck.save(phase, net, opt, es, p) }
	}
	t0 := time.Now()
	a.rep.PhaseStart(phase, epochs)
	fit, err := Run(a.ctx, net, rc, train, ex["val"])
	a.rep.PhaseEnd(phase, time.Since(t0))
	if a.ck != nil {
		if err == nil {
			a.ck.finished(phase, fit)
		} else if a.ctx.Err() != nil {
			notef(a.rep, "interrupted: training state saved in %s; resume with AdaptConfig.Resume (--resume)", a.ck.dir)
		}
	}
	return fit, err
}

// replayLog writes the epochs a resumed run had done to the metrics log,
// which starts afresh.
func (a *adaptation) replayLog(history []EpochMetrics) error {
	if a.log == nil {
		return nil
	}
	for _, m := range history {
		if err := a.log.OnEpoch(nil, m); err != nil {
			return err
		}
	}
	return nil
}

// extractFeatures runs every image through the backbone once (or reads
// its features from the cache) for head training. When the images are
// loaded already, it computes the features from them.
func (a *adaptation) extractFeatures() (map[string]*Examples, error) {
	t0 := time.Now()
	a.rep.PhaseStart(PhaseFeatures, a.res.Images.Train+a.res.Images.Val+a.res.Images.Test)
	h := a.head
	ext := &Extractor{Src: a.adapted, Input: a.input, Features: h.Features, Batch: DefaultInferBatch, Dim: h.FeatureDim}
	a.features = ext
	var cache *FeatureCache
	if a.cfg.CacheDir != "" {
		var err error
		if cache, err = OpenFeatureCache(a.cfg.CacheDir, FileHashBytes(a.src.Raw), a.cut, a.prep); err != nil {
			return nil, &onnx.OptionError{Option: "AdaptConfig.CacheDir", Err: err}
		}
	}
	feats := map[string]*Examples{}
	base := 0 // images of the splits done, for progress
	ext.Progress = func(done int) { progress(a.rep, PhaseFeatures, base+done) }
	for name, im := range a.images {
		f := &Examples{Shape: []int{h.FeatureDim}, Labels: im.Labels, Paths: im.Paths}
		if err := a.runRows(ext, im, base, func(rows []float32) error { f.X = append(f.X, rows...); return nil }); err != nil {
			return nil, err
		}
		feats[name] = f
		a.res.Cache.Misses += im.Len()
		base += im.Len()
	}
	ext.Progress = nil
	for _, split := range splits(a.ds) {
		if a.images != nil {
			break
		}
		ex, sk, err := Features(a.ctx, ext, split.samples, a.prep, FeatureOptions{Cache: cache, Strict: a.cfg.Strict, Stats: &a.res.Cache,
			Progress: func(done int) { progress(a.rep, PhaseFeatures, base+done) }})
		if err != nil {
			return nil, err
		}
		a.skipped(sk, true)
		feats[split.name] = ex
		base += len(split.samples)
	}
	a.res.FeatureSeconds = time.Since(t0).Seconds()
	a.rep.PhaseEnd(PhaseFeatures, time.Since(t0))
	if feats["train"] == nil || feats["train"].Len() == 0 {
		return nil, fmt.Errorf("%s: no training image could be read", a.cfg.Data)
	}
	notef(a.rep, "features: %d images through the backbone in %.2fs (cache: %d hits, %d misses)", countAll(feats), a.res.FeatureSeconds, a.res.Cache.Hits, a.res.Cache.Misses)
	if c := a.res.Cache; c.Corrupt > 0 {
		notef(a.rep, "feature cache: %d damaged or stale entries (first: %s) were recomputed and rewritten", c.Corrupt, c.FirstCorrupt)
	}
	return feats, nil
}

// skipped notes images that could not be read, and records them in the
// result when record is set.
func (a *adaptation) skipped(sk []dataset.Skipped, record bool) {
	for _, s := range sk {
		if record {
			a.res.Skipped = append(a.res.Skipped, s.Err.Error())
		}
		notef(a.rep, "skipped %s: %v", s.Path, s.Err)
	}
}

// loadImages preprocesses every image for training through the whole
// network; record adds the images it skips to the result. With Augment
// the training split re-draws a random resized crop and flip of each
// image every epoch, seeded by Seed.
func (a *adaptation) loadImages(record bool) error {
	images := map[string]*Examples{}
	t0, base := time.Now(), 0
	a.rep.PhaseStart(PhaseDecode, len(a.ds.Train)+len(a.ds.Val)+len(a.ds.Test))
	for _, sp := range splits(a.ds) {
		ex := &Examples{Shape: a.prep.Shape(1)[1:]}
		var kept []dataset.Sample
		rows := newRowBuilder(a.mem, a.prep.Size())
		emit := rows.add
		if a.cfg.Augment { // rewritten every epoch: kept in memory
			emit = func(d []float32) error { ex.X = append(ex.X, d...); return nil }
		}
		skipped, err := eachChunk(a.ctx, sp.samples, a.prep, a.cfg.Strict, func(done int) { progress(a.rep, PhaseDecode, base+done) },
			func(d []float32, k []dataset.Sample) error {
				kept = append(kept, k...)
				return emit(d)
			})
		if err != nil {
			return err
		}
		if !a.cfg.Augment {
			rows.fill(ex)
		}
		base += len(sp.samples)
		a.skipped(skipped, record)
		for _, s := range kept {
			ex.Labels = append(ex.Labels, s.Label)
			ex.Paths = append(ex.Paths, s.Path)
		}
		if sp.name == "train" && a.cfg.Augment {
			ex.Clean = slices.Clone(ex.X)
			ex.Refresh = augmenter(ex, kept, a.prep, a.cfg.Seed)
		}
		images[sp.name] = ex
	}
	a.rep.PhaseEnd(PhaseDecode, time.Since(t0))
	if images["train"] == nil || images["train"].Len() == 0 {
		return fmt.Errorf("%s: no training image could be read", a.cfg.Data)
	}
	a.images = images
	return nil
}

// trainOnImages trains the given weights of the adapted model on the
// images, starting from the weights in start (others as in the model),
// and makes the result the final net.
//
// Without augmentation the frozen layers before the first trainable one
// compute the same values for an image every epoch: when they end in one
// tensor, they run once per image and training starts from that tensor;
// a.prefix then maps images to the net's input.
func (a *adaptation) trainOnImages(phase Phase, trainable []string, start map[string]*onnx.Tensor, epochs int, lrScale []float64) (*Fit, error) {
	src, netInput := a.adapted, a.input
	var ex map[string]*Examples
	var prefix *Extractor
	if !a.cfg.Augment {
		if p, sub, err := frozenPrefix(a.adapted, a.input, a.head.Logits, trainable, a.cfg.Batch, a.prep.Shape(1)); err != nil {
			notef(a.rep, "%s: frozen layers run every step: %v", phase, err)
		} else if p != nil {
			if ex, err = a.boundary(phase, p); err != nil {
				return nil, err
			}
			src, netInput, prefix = sub, p.Features, p
		}
	}
	if prefix == nil { // the trainable layers read the images
		if a.images == nil {
			if err := a.loadImages(false); err != nil {
				return nil, err
			}
			a.noteSpill(phase, "decoded images")
		}
		ex = a.images
	}
	net, err := NewNet(src, netInput, a.head.Logits, trainable, a.cfg.Seed)
	if err != nil {
		return nil, err
	}
	net.BNTrain = a.cfg.BN == BNTrain
	for name, t := range start {
		if w, ok := net.Weights[name]; ok {
			copy(w.F, t.F)
		}
	}
	fit, err := a.fit(net, phase, epochs, lrScale, ex)
	if err != nil {
		return nil, err
	}
	a.final, a.finalEx, a.prefix = fit.Net, ex, prefix
	return fit, nil
}

// frozenPrefix splits the model where its frozen layers end, when they
// end in one tensor: an Extractor computing that tensor from images, and
// the model from that tensor to the logits. It returns nil when the
// trainable part reads the images directly.
func frozenPrefix(adapted *onnx.Model, input, logits string, trainable []string, batch int, inputShape []int) (*Extractor, *onnx.Model, error) {
	front := surgery.Frontier(adapted.Proto, trainable)
	if len(front) != 1 {
		return nil, nil, fmt.Errorf("the trainable layers read %d tensors of the frozen ones (%s)", len(front), strings.Join(front, ", "))
	}
	if front[0] == input {
		return nil, nil, nil
	}
	probe, err := graph.Build(adapted, graph.Options{Freeze: true, Outputs: []string{front[0]}, Shapes: map[string][]int{input: inputShape}})
	if err != nil {
		return nil, nil, err
	}
	shape, _ := probe.Shape(front[0])
	if len(shape) == 0 || shape[0] != 1 {
		return nil, nil, fmt.Errorf("tensor %q has shape %v at batch 1", front[0], shape)
	}
	sub, err := surgery.SubModel(adapted.Proto, front[0], shape, logits)
	if err != nil {
		return nil, nil, err
	}
	ext := &Extractor{Src: adapted, Input: input, Features: front[0], Batch: max(batch, 16), Dim: onnx.NumElems(shape[1:]), shape: shape[1:]}
	return ext, &onnx.Model{Proto: sub, Path: adapted.Path}, nil
}

// boundary computes the frozen layers' outputs that fine-tuning trains
// from, once per image: from the decoded images when they are loaded
// (which are then released), else decoding the images a chunk at a time.
// The outputs stay in RAM within the memory budget and are spilled to
// disk beyond it.
func (a *adaptation) boundary(phase Phase, p *Extractor) (map[string]*Examples, error) {
	t0, base := time.Now(), 0
	a.rep.PhaseStart(PhaseFeatures, len(a.ds.Train)+len(a.ds.Val)+len(a.ds.Test))
	out := map[string]*Examples{}
	for _, sp := range splits(a.ds) {
		rows := newRowBuilder(a.mem, p.Dim)
		e := &Examples{Shape: p.shape}
		if a.images != nil {
			im := a.images[sp.name]
			if im == nil {
				continue
			}
			if err := a.runRows(p, im, base, rows.add); err != nil {
				return nil, err
			}
			e.Labels, e.Paths = im.Labels, im.Paths
		} else {
			shape := a.prep.Shape(1)[1:]
			done := 0
			p.Progress = func(n int) { progress(a.rep, PhaseFeatures, base+done+n) }
			sk, err := eachChunk(a.ctx, sp.samples, a.prep, a.cfg.Strict, nil, func(d []float32, k []dataset.Sample) error {
				f, err := p.Run(a.ctx, d, len(k), shape)
				if err != nil {
					return err
				}
				for _, s := range k {
					e.Labels = append(e.Labels, s.Label)
					e.Paths = append(e.Paths, s.Path)
				}
				done += len(k)
				return rows.add(f)
			})
			p.Progress = nil
			if err != nil {
				return nil, err
			}
			a.skipped(sk, false)
		}
		base += len(sp.samples)
		rows.fill(e)
		out[sp.name] = e
	}
	a.rep.PhaseEnd(PhaseFeatures, time.Since(t0))
	notef(a.rep, "%s: frozen layers up to %q ran once per image (%.2fs)", phase, p.Features, time.Since(t0).Seconds())
	if a.images != nil { // the outputs replace them
		for _, im := range a.images {
			a.mem.release(im)
		}
		a.images = nil
	}
	a.noteSpill(phase, fmt.Sprintf("outputs of %q", p.Features))
	return out, nil
}

// runRows runs ext over the examples' rows a chunk at a time (they may
// be on disk), handing each chunk's outputs to emit; progress counts from
// base.
func (a *adaptation) runRows(ext *Extractor, e *Examples, base int, emit func([]float32) error) error {
	var buf []float32
	defer func(prev func(int)) { ext.Progress = prev }(ext.Progress)
	for start := 0; start < e.Len(); start += featureChunk {
		n := min(featureChunk, e.Len()-start)
		x, err := e.rows(start, n, buf)
		if err != nil {
			return err
		}
		buf = x[:0]
		ext.Progress = func(done int) { progress(a.rep, PhaseFeatures, base+start+done) }
		f, err := ext.Run(a.ctx, x, n, e.Shape)
		if err != nil {
			return err
		}
		if err := emit(f); err != nil {
			return err
		}
	}
	return nil
}

// imageBytes is the size of every image of the data set decoded.
func (a *adaptation) imageBytes() int64 {
	return int64(len(a.ds.Train)+len(a.ds.Val)+len(a.ds.Test)) * int64(a.prep.Size()) * 4
}

// noteSpill says, once per stage, how much went to disk.
func (a *adaptation) noteSpill(phase Phase, what string) {
	if a.mem.spilled > a.mem.noted {
		notef(a.rep, "%s: %.1f MB of %s beyond the memory budget (%.1f MB; AdaptConfig.MemoryBudget) spilled to a temporary file in %s",
			phase, float64(a.mem.spilled-a.mem.noted)/1e6, what, float64(a.cfg.MemoryBudget)/1e6, cmp.Or(a.mem.dir, os.TempDir()))
		a.mem.noted = a.mem.spilled
	}
}

func countAll(m map[string]*Examples) int {
	n := 0
	for _, e := range m {
		if e != nil {
			n += e.Len()
		}
	}
	return n
}

type split struct {
	name    string
	samples []dataset.Sample
}

func splits(ds *dataset.Dataset) []split {
	var out []split
	for _, s := range []split{{"train", ds.Train}, {"val", ds.Val}, {"test", ds.Test}} {
		if len(s.samples) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// augmenter returns an Examples.Refresh that writes a fresh augmentation
// of every training image into ex.X (see dataset.Preprocess.AugmentSamples).
func augmenter(ex *Examples, samples []dataset.Sample, prep *dataset.Preprocess, seed int64) func(epoch int) error {
	return func(epoch int) error {
		return prep.AugmentSamples(samples, seed, epoch, ex.X, graph.Threads())
	}
}
