package batch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/graftml/graft/graph"
	"github.com/graftml/graft/onnx"
	"github.com/graftml/graft/onnx/surgery"
	"github.com/graftml/graft/train"
	"go.yaml.in/yaml/v3"
)

// A manifest is a YAML file listing jobs (`graft batch jobs.yaml`):
//
//	out_dir: out          # where outputs go by default: out_dir/<name>.onnx
//	parity_tol: 1e-4      # default parity tolerance of every job
//	jobs:
//	  - name: resnet18-features
//	    model: models/resnet18.onnx
//	    convert: {cut: auto, batch_dim: dynamic, fold_bn: true}
//	  - name: resnet18-pets
//	    model: models/resnet18.onnx
//	    out: pets/resnet18.onnx
//	    adapt: {data: photos, epochs: 20, head: "mlp:256"}
//
// Each job has a name (unique; the output's default file name), a model,
// and exactly one of convert (a recipe: the flags of graft convert) or
// adapt (the flags of graft adapt). Relative paths are relative to the
// manifest's folder. Unknown keys are errors naming the job and the key,
// so a misspelt setting never silently falls back to its default.
type Manifest struct {
	OutDir    string        `yaml:"out_dir"`
	ParityTol float64       `yaml:"parity_tol"`
	Jobs      []ManifestJob `yaml:"jobs"`
}

// ManifestJob is one job of a manifest.
type ManifestJob struct {
	Name      string       `yaml:"name"`
	Model     string       `yaml:"model"`
	Out       string       `yaml:"out"`
	ParityTol float64      `yaml:"parity_tol"`
	Convert   *ConvertSpec `yaml:"convert"`
	Adapt     *AdaptSpec   `yaml:"adapt"`
}

// ConvertSpec is a convert recipe, as graft convert's flags.
type ConvertSpec struct {
	Cut          string            `yaml:"cut"`
	Head         int               `yaml:"head"`
	Labels       []string          `yaml:"labels"`
	Softmax      bool              `yaml:"softmax"`
	Seed         *int64            `yaml:"seed"`
	BatchDim     string            `yaml:"batch_dim"`
	FoldBN       bool              `yaml:"fold_bn"`
	Strip        bool              `yaml:"strip"`
	RenameInput  map[string]string `yaml:"rename_input"`
	RenameOutput map[string]string `yaml:"rename_output"`
	InputShape   map[string][]int  `yaml:"input_shape"`
}

// AdaptSpec is an adapt job's settings, as graft adapt's flags.
type AdaptSpec struct {
	Data           string    `yaml:"data"`
	Cut            string    `yaml:"cut"`
	Head           string    `yaml:"head"`
	Dropout        float64   `yaml:"dropout"`
	Seed           int64     `yaml:"seed"`
	Resize         int       `yaml:"resize"`
	Mean           []float32 `yaml:"mean"`
	Std            []float32 `yaml:"std"`
	ValSplit       float64   `yaml:"val_split"`
	Strict         bool      `yaml:"strict"`
	Optimizer      string    `yaml:"optimizer"`
	LR             float64   `yaml:"lr"`
	Momentum       float64   `yaml:"momentum"`
	Nesterov       bool      `yaml:"nesterov"`
	WeightDecay    float64   `yaml:"weight_decay"`
	Schedule       string    `yaml:"schedule"`
	Warmup         int       `yaml:"warmup"`
	Epochs         int       `yaml:"epochs"`
	Batch          int       `yaml:"batch"`
	LabelSmoothing float64   `yaml:"label_smoothing"`
	Patience       int       `yaml:"patience"`
	Trainable      string    `yaml:"trainable"`
	UnfreezeLast   int       `yaml:"unfreeze_last"`
	FinetuneEpochs int       `yaml:"finetune_epochs"`
	BackboneLRMult float64   `yaml:"backbone_lr_mult"`
	BN             string    `yaml:"bn"`
	Augment        bool      `yaml:"augment"`
	Cache          string    `yaml:"cache"`
	// InputShape binds symbolic input dimensions ({x: [1, 3, 48, 192]}).
	InputShape map[string][]int `yaml:"input_shape"`
	// MemoryBudget is a size like 512MiB (empty: the default).
	MemoryBudget string `yaml:"memory_budget"`
}

// ManifestError is a problem in a manifest, naming the file, the line,
// and the job when there is one.
type ManifestError struct {
	File string
	Line int
	Job  string // "" for the top level
	Err  error
}

func (e *ManifestError) Error() string {
	where := e.File
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.Job != "" {
		return fmt.Sprintf("%s: job %q: %v", where, e.Job, e.Err)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *ManifestError) Unwrap() error { return e.Err }

// ReadManifest reads a manifest and turns it into jobs. Every problem it
// finds (unknown keys, missing fields, bad values) is returned, joined,
// each a *ManifestError; files are checked later, by Check.
func ReadManifest(path string, lim onnx.Limits, maxPixels int64) (*Manifest, []Job, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	r := &manifestReader{path: path, lim: lim, maxPixels: maxPixels, base: filepath.Dir(path)}
	doc, jobNodes, err := r.checkKeys(data)
	if err != nil {
		return nil, nil, err
	}
	if len(r.errs) > 0 {
		return nil, nil, errors.Join(r.errs...)
	}
	var m Manifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, nil, &ManifestError{File: path, Err: err}
	}
	if len(m.Jobs) == 0 {
		return nil, nil, &ManifestError{File: path, Err: errors.New("no jobs")}
	}
	outDir := r.rel(m.OutDir)
	if m.OutDir == "" {
		outDir = r.base
	}
	if m.ParityTol < 0 {
		r.fail(doc, "", "parity_tol %g is negative", m.ParityTol)
	}
	var jobs []Job
	for i := range m.Jobs {
		if j, ok := r.job(&m, i, jobNodes[i], outDir); ok {
			jobs = append(jobs, j)
		}
	}
	if len(r.errs) > 0 {
		return nil, nil, errors.Join(r.errs...)
	}
	return &m, jobs, nil
}

// manifestReader collects a manifest's errors, each naming its line and
// job, so that one reading reports them all.
type manifestReader struct {
	path, base string
	lim        onnx.Limits
	maxPixels  int64
	errs       []error
}

func (r *manifestReader) fail(n *yaml.Node, job string, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	r.errs = append(r.errs, &ManifestError{File: r.path, Line: line, Job: job, Err: fmt.Errorf(format, args...)})
}

// rel resolves a path relative to the manifest's folder.
func (r *manifestReader) rel(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.base, p)
}

// checkKeys parses data as YAML and checks every key strictly, job by
// job, so each error names its job; it returns the document and the job
// nodes.
func (r *manifestReader) checkKeys(data []byte) (*yaml.Node, []*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, &ManifestError{File: r.path, Err: err}
	}
	if len(root.Content) == 0 {
		return nil, nil, &ManifestError{File: r.path, Err: errors.New("empty manifest: it needs a jobs list")}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, nil, &ManifestError{File: r.path, Line: doc.Line, Err: errors.New("the manifest must be a mapping with a jobs list")}
	}
	var jobNodes []*yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		switch k.Value {
		case "jobs":
			if v.Kind != yaml.SequenceNode {
				r.fail(v, "", "jobs must be a list")
				continue
			}
			jobNodes = v.Content
		case "out_dir", "parity_tol":
		default:
			r.fail(k, "", "unknown key %q (known: out_dir, parity_tol, jobs)", k.Value)
		}
	}
	for i, jn := range jobNodes {
		name := fmt.Sprintf("#%d", i+1)
		if jn.Kind == yaml.MappingNode {
			for k := 0; k+1 < len(jn.Content); k += 2 {
				if jn.Content[k].Value == "name" && jn.Content[k+1].Value != "" {
					name = jn.Content[k+1].Value
				}
			}
		}
		for _, e := range unknownKeys(jn, reflect.TypeFor[ManifestJob](), "") {
			r.fail(e.node, name, "%s", e.msg)
		}
	}
	return doc, jobNodes, nil
}

// job turns manifest job i into a Job; ok is false when it is unusable
// (the reason is in r.errs).
func (r *manifestReader) job(m *Manifest, i int, node *yaml.Node, outDir string) (Job, bool) {
	mj := &m.Jobs[i]
	name := mj.Name
	if name == "" {
		name = fmt.Sprintf("#%d", i+1)
		r.fail(node, name, "name is required")
	}
	if mj.Model == "" {
		r.fail(node, name, "model is required")
	}
	if (mj.Convert == nil) == (mj.Adapt == nil) {
		r.fail(node, name, "give exactly one of convert or adapt")
		return Job{}, false
	}
	out := r.rel(mj.Out)
	if mj.Out == "" {
		out = filepath.Join(outDir, onnx.SafeFileName(name)+".onnx")
	}
	j := Job{Name: name, ParityTol: mj.ParityTol}
	if j.ParityTol == 0 {
		j.ParityTol = m.ParityTol
	}
	if mj.Convert != nil {
		c := mj.Convert
		j.Kind = KindConvert
		j.Convert = graph.ConvertConfig{Model: r.rel(mj.Model), Out: out, Cut: c.Cut, Labels: c.Labels, Batch: c.BatchDim,
			FoldBN: c.FoldBN, Strip: c.Strip, RenameInputs: c.RenameInput, RenameOutputs: c.RenameOutput, Limits: r.lim, Shapes: c.InputShape}
		if c.Head != 0 {
			seed := int64(1)
			if c.Seed != nil {
				seed = *c.Seed
			}
			j.Convert.Head = &surgery.HeadSpec{Classes: c.Head, Softmax: c.Softmax, Seed: seed}
		} else if c.Softmax {
			r.fail(node, name, "softmax goes with head")
		}
		if err := j.Convert.Validate(); err != nil {
			r.fail(node, name, "%v", manifestOption(err))
		}
		return j, true
	}
	a := mj.Adapt
	j.Kind = KindAdapt
	if a.Data == "" {
		r.fail(node, name, "adapt needs data")
	}
	head, err := ParseHead(a.Head, a.Dropout)
	if err != nil {
		r.fail(node, name, "head: %v", err)
	}
	j.Adapt = train.AdaptConfig{Model: r.rel(mj.Model), Data: r.rel(a.Data), Out: out, Cut: a.Cut, Head: head, Seed: a.Seed,
		Resize: a.Resize, Mean: a.Mean, Std: a.Std, ValSplit: a.ValSplit, Strict: a.Strict,
		Optimizer: train.OptimizerKind(a.Optimizer), LR: a.LR, Momentum: a.Momentum, Nesterov: a.Nesterov, WeightDecay: a.WeightDecay,
		Schedule: train.ScheduleKind(a.Schedule), Warmup: a.Warmup, Epochs: a.Epochs, Batch: a.Batch, LabelSmoothing: a.LabelSmoothing,
		Patience: a.Patience, Trainable: a.Trainable, UnfreezeLast: a.UnfreezeLast, FinetuneEpochs: a.FinetuneEpochs,
		BackboneLRMult: a.BackboneLRMult, BN: train.BNMode(a.BN), Augment: a.Augment, CacheDir: r.rel(a.Cache),
		Limits: r.lim, MaxPixels: r.maxPixels, Shapes: a.InputShape}
	if a.MemoryBudget != "" {
		if j.Adapt.MemoryBudget, err = onnx.ParseSize(a.MemoryBudget); err != nil {
			r.fail(node, name, "memory_budget: %v", err)
		}
	}
	return j, true
}

// manifestOption rewrites a ConvertConfig option name as the manifest's
// key.
func manifestOption(err error) error {
	var oe *onnx.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	keys := map[string]string{"ConvertConfig.Head": "head", "ConvertConfig.Labels": "labels", "ConvertConfig.RenameInputs": "rename_input", "ConvertConfig.RenameOutputs": "rename_output", "ConvertConfig.Batch": "batch_dim", "ConvertConfig.Cut": "cut"}
	if k, ok := keys[oe.Option]; ok {
		return fmt.Errorf("%s: %w", k, oe.Err)
	}
	return err
}

// ParseHead reads a head: "" or "linear", or "mlp:256[,128]".
func ParseHead(s string, dropout float64) (train.Head, error) {
	h := train.Head{Dropout: dropout}
	switch {
	case s == "" || s == "linear":
	case strings.HasPrefix(s, "mlp:"):
		for _, p := range strings.Split(strings.TrimPrefix(s, "mlp:"), ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n < 1 {
				return h, fmt.Errorf("%q: hidden sizes must be positive numbers, like mlp:256,128", s)
			}
			h.Hidden = append(h.Hidden, n)
		}
	default:
		return h, fmt.Errorf("%q: use linear or mlp:SIZE[,SIZE...]", s)
	}
	return h, nil
}

type keyError struct {
	node *yaml.Node
	msg  string
}

// unknownKeys walks a mapping node against a struct type's yaml tags and
// reports keys the type does not have, with the path to them.
func unknownKeys(n *yaml.Node, t reflect.Type, path string) []keyError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return []keyError{{n, fmt.Sprintf("%s must be a mapping of keys to values", orTop(path))}}
	}
	fields := map[string]reflect.Type{}
	var known []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		fields[tag] = f.Type
		known = append(known, tag)
	}
	var errs []keyError
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			slices.Sort(known)
			errs = append(errs, keyError{k, fmt.Sprintf("unknown key %q%s (known: %s)", k.Value, in(path), strings.Join(known, ", "))})
			continue
		}
		errs = append(errs, unknownKeys(v, ft, strings.TrimPrefix(path+"."+k.Value, "."))...)
	}
	return errs
}

func in(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

func orTop(path string) string {
	if path == "" {
		return "a job"
	}
	return path
}
