package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Sample is one image of a data set and its class index.
type Sample struct {
	Path  string
	Label int
}

// Skipped is an image left out because it could not be read.
type Skipped struct {
	Path string
	Err  error // names the file
}

// Dataset is a folder of images sorted into class folders, split into
// training, validation and test samples.
type Dataset struct {
	Dir     string
	Classes []string // class folder names, sorted; a Sample's Label indexes it
	Train   []Sample
	Val     []Sample // from val/, or split off Train; may be empty
	ValDir  string   // the validation folder, "" when there is none
	Test    []Sample // from test/; may be empty
	Skipped []Skipped

	classPath []string // the training class folders
	maxPixels int64
}

// DataConfig says where a data set is and how to split it. The zero
// ValSplit and Seed mean no validation split and seed 0.
type DataConfig struct {
	Dir string
	// ValSplit is the fraction of each class's training images held out
	// for validation when Dir has no val/ folder, in [0, 1).
	ValSplit float64
	// Seed seeds the choice of the validation images.
	Seed int64
	// MaxPixels bounds each image's declared width x height, read from
	// its header; larger images are skipped like unreadable ones. 0 means
	// DefaultMaxPixels.
	MaxPixels int64
}

// imageExts are the file extensions of images, lower case.
var imageExts = []string{".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}

// ImageExts returns the file extensions of images, lower case, in a new
// slice. Files with other extensions are ignored.
func ImageExts() []string { return slices.Clone(imageExts) }

// Names of a data set's split folders. The first of each is the one
// documented; the others are accepted as well.
var (
	trainNames = []string{"train"}
	valNames   = []string{"val", "valid", "validation"}
	testNames  = []string{"test"}
)

// LoadDataset lists the images of the data set in cfg.Dir; see the
// package documentation for the layouts it reads and the errors it
// reports. It reads each image's header, so that a file that is not an
// image of a known format is skipped (and listed in Skipped) before any
// training starts; images whose data turn out corrupt later are
// LoadTensors' to report.
func LoadDataset(cfg DataConfig) (*Dataset, error) {
	if cfg.ValSplit < 0 || cfg.ValSplit >= 1 || math.IsNaN(cfg.ValSplit) {
		return nil, fmt.Errorf("validation split %g must be in [0, 1): the fraction of each class's training images held out", cfg.ValSplit)
	}
	dir := cfg.Dir
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	ds := &Dataset{Dir: dir, maxPixels: cfg.MaxPixels}
	trainDir, err := splitDir(dir, trainNames)
	if err != nil {
		return nil, err
	}
	valDir, err := splitDir(dir, valNames)
	if err != nil {
		return nil, err
	}
	testDir, err := splitDir(dir, testNames)
	if err != nil {
		return nil, err
	}
	if trainDir == "" {
		if valDir != "" || testDir != "" {
			return nil, fmt.Errorf("%s: has a %s folder but no train folder; put the training images in %s",
				dir, filepath.Base(firstNonEmpty(valDir, testDir)), filepath.Join(dir, "train", "<class>"))
		}
		trainDir = dir
	}

	train, err := readClasses(trainDir)
	if err != nil {
		return nil, err
	}
	if len(train) < 2 {
		return nil, fmt.Errorf("%s: only 1 class folder (%s); a classifier needs at least 2, one folder of images per class",
			trainDir, train[0].name)
	}
	for _, c := range train {
		ds.Classes = append(ds.Classes, c.name)
		ds.classPath = append(ds.classPath, c.path)
	}
	index := func(d string, classes []classDir) ([]Sample, error) {
		var out []Sample
		for _, c := range classes {
			i := slices.Index(ds.Classes, c.name)
			if i < 0 {
				return nil, fmt.Errorf("%s: class %q has no folder in %s (classes: %s); the classes of %s must be training classes",
					c.path, c.name, trainDir, strings.Join(ds.Classes, ", "), d)
			}
			for _, f := range c.files {
				out = append(out, Sample{Path: f, Label: i})
			}
		}
		return out, nil
	}
	ds.Train, _ = index(trainDir, train)
	for _, s := range []struct {
		dir string
		out *[]Sample
	}{{valDir, &ds.Val}, {testDir, &ds.Test}} {
		if s.dir == "" {
			continue
		}
		classes, err := readClasses(s.dir)
		if err != nil {
			return nil, err
		}
		if *s.out, err = index(s.dir, classes); err != nil {
			return nil, err
		}
	}

	// Drop files that are not images, now, so that the split below and
	// the class counts are of real images.
	if err := ds.checkHeaders(); err != nil {
		return nil, err
	}
	ds.ValDir = valDir
	if valDir == "" && cfg.ValSplit > 0 {
		ds.Train, ds.Val = splitVal(ds.Train, len(ds.Classes), cfg.ValSplit, cfg.Seed)
	}
	return ds, nil
}

// checkHeaders moves the samples whose header does not read to Skipped,
// and fails when that leaves a training class without images.
func (ds *Dataset) checkHeaders() error {
	for _, set := range []*[]Sample{&ds.Train, &ds.Val, &ds.Test} {
		errs := make([]error, len(*set))
		parallel(len(*set), 0, func(i int) bool {
			_, errs[i] = decodeConfig((*set)[i].Path, ds.maxPixels)
			return true
		})
		kept := (*set)[:0]
		for i, s := range *set {
			if errs[i] != nil {
				ds.Skipped = append(ds.Skipped, Skipped{Path: s.Path, Err: errs[i]})
				continue
			}
			kept = append(kept, s)
		}
		*set = kept
	}
	if len(ds.Skipped) == 0 {
		return nil
	}
	count := make([]int, len(ds.Classes))
	for _, s := range ds.Train {
		count[s.Label]++
	}
	for _, sk := range ds.Skipped {
		for i, n := range count {
			if n == 0 && filepath.Dir(sk.Path) == ds.classPath[i] {
				return fmt.Errorf("%s: none of its images can be read (%v); replace them or remove the folder",
					ds.classPath[i], sk.Err)
			}
		}
	}
	return nil
}

// splitVal moves round(frac*n) of each class's n samples, chosen by a
// shuffle seeded with seed, to the validation set, keeping at least one in
// training. Both sets keep the order of train.
func splitVal(train []Sample, classes int, frac float64, seed int64) (keep, val []Sample) {
	rng := rand.New(rand.NewSource(seed))
	byClass := make([][]int, classes)
	for i, s := range train {
		byClass[s.Label] = append(byClass[s.Label], i)
	}
	toVal := make([]bool, len(train))
	for _, idx := range byClass {
		k := min(int(math.Round(frac*float64(len(idx)))), len(idx)-1)
		perm := rng.Perm(len(idx))
		for _, j := range perm[:max(k, 0)] {
			toVal[idx[j]] = true
		}
	}
	for i, s := range train {
		if toVal[i] {
			val = append(val, s)
		} else {
			keep = append(keep, s)
		}
	}
	return keep, val
}

// LoadSplitFolder lists the images of an evaluation folder: dir/<class>/*,
// or dir/test/<class>/* when dir has a test folder. With classes (a
// model's labels) a folder must name one of them, exactly or with spaces
// and slashes written as underscores ("Ankle_boot" for "Ankle boot"), and
// a Sample's Label indexes classes; without, the classes are the sorted
// folder names. Headers are not read: LoadTensors reports bad images.
func LoadSplitFolder(dir string, classes []string) ([]Sample, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	testDir, err := splitDir(dir, testNames)
	if err != nil {
		return nil, err
	}
	if testDir != "" {
		dir = testDir
	} else if d, _ := splitDir(dir, trainNames); d != "" && classIndex(classes, "train") < 0 {
		return nil, fmt.Errorf("%s: has a train folder but no test folder; give the folder of images to evaluate, e.g. %s",
			dir, filepath.Join(dir, "val"))
	}
	found, err := readClasses(dir)
	if err != nil {
		return nil, err
	}
	if len(classes) == 0 {
		classes = make([]string, len(found))
		for i, c := range found {
			classes[i] = c.name
		}
	}
	type labelled struct {
		label int
		c     classDir
	}
	var ls []labelled
	for _, c := range found {
		i := classIndex(classes, c.name)
		if i < 0 {
			return nil, fmt.Errorf("%s: folder %q is not one of the model's labels (%s); rename it to its label, with spaces as underscores if you like",
				c.path, c.name, strings.Join(classes, ", "))
		}
		ls = append(ls, labelled{i, c})
	}
	sort.SliceStable(ls, func(a, b int) bool { return ls[a].label < ls[b].label })
	var out []Sample
	for _, l := range ls {
		for _, f := range l.c.files {
			out = append(out, Sample{Path: f, Label: l.label})
		}
	}
	return out, nil
}

// classIndex finds the class a folder name denotes: the first class equal
// to it, else the first whose spaces and slashes become its underscores.
func classIndex(classes []string, folder string) int {
	if i := slices.Index(classes, folder); i >= 0 {
		return i
	}
	for i, c := range classes {
		if strings.NewReplacer(" ", "_", "/", "_", "\\", "_").Replace(c) == folder {
			return i
		}
	}
	return -1
}

// classDir is a class folder and its image files, sorted by name.
type classDir struct {
	name, path string
	files      []string
}

// checkDir reports a missing folder or one that is a file.
func checkDir(dir string) error {
	if dir == "" {
		return errors.New("no data folder given; give the folder holding your images (DIR/train/<class>/... or DIR/<class>/...)")
	}
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such folder; give the folder holding your images (DIR/train/<class>/... or DIR/<class>/...)", dir)
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: is a file, not a folder; give the folder holding your images (DIR/train/<class>/... or DIR/<class>/...)", dir)
	}
	return nil
}

// splitDir returns the path of dir's split folder named by one of names,
// "" when there is none, and an error when there are several.
func splitDir(dir string, names []string) (string, error) {
	var found []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			found = append(found, p)
		}
	}
	if len(found) > 1 {
		return "", fmt.Errorf("%s: has both %s and %s; keep one of them", dir, filepath.Base(found[0]), filepath.Base(found[1]))
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return "", nil
}

// readClasses lists dir's class folders, sorted by name, and their image
// files. Hidden entries (names starting with a dot) are ignored. A class
// folder without images is an error.
func readClasses(dir string) ([]classDir, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var classes []classDir
	var loose int
	for _, e := range entries {
		if hidden(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !isDir(p, e) {
			if isImage(e.Name()) {
				loose++
			}
			continue
		}
		c := classDir{name: e.Name(), path: p}
		files, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var others []string
		for _, f := range files {
			fp := filepath.Join(p, f.Name())
			switch {
			case hidden(f.Name()) || isDir(fp, f):
			case isImage(f.Name()):
				c.files = append(c.files, fp)
			default:
				others = append(others, f.Name())
			}
		}
		if len(c.files) == 0 {
			what := ""
			if len(others) > 0 {
				what = fmt.Sprintf(" (%d other files ignored, such as %s)", len(others), others[0])
			}
			return nil, fmt.Errorf("%s: no images (%s)%s; add images or remove the folder", p, formatNames, what)
		}
		classes = append(classes, c)
	}
	if len(classes) == 0 {
		hint := ""
		if loose > 0 {
			hint = fmt.Sprintf(" (its %d images are not in class folders)", loose)
		}
		return nil, fmt.Errorf("%s: no class folders%s; put each class's images in a folder named after the class, e.g. %s",
			dir, hint, filepath.Join(dir, "cat", "1.jpg"))
	}
	// os.ReadDir sorts by name already; the files of each class too.
	return classes, nil
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

func isImage(name string) bool {
	return slices.Contains(imageExts, strings.ToLower(filepath.Ext(name)))
}

// isDir reports whether an entry is a folder, following symbolic links.
func isDir(path string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink != 0 {
		st, err := os.Stat(path)
		return err == nil && st.IsDir()
	}
	return e.IsDir()
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
