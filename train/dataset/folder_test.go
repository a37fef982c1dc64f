package dataset

import (
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// tree writes files under root: a name ending in "/" is a folder, a name
// ending in .png or .jpg (any case) holds a small image whose gray level
// is the file's position in files, and anything else holds text.
func tree(t *testing.T, root string, files ...string) {
	t.Helper()
	for i, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		img := uniformGray(4, 4, uint8(10*i))
		switch strings.ToLower(filepath.Ext(f)) {
		case ".png":
			writePNG(t, p, img)
		case ".jpg", ".jpeg":
			writeJPEG(t, p, img)
		default:
			if err := os.WriteFile(p, []byte("not an image"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func uniformGray(w, h int, v uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	return img
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeJPEG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// rel returns samples as "path relative to root:label" strings.
func rel(root string, ss []Sample) []string {
	var out []string
	for _, s := range ss {
		r, _ := filepath.Rel(root, s.Path)
		out = append(out, filepath.ToSlash(r)+":"+string(rune('0'+s.Label)))
	}
	return out
}

func TestLoadDatasetSplitFolders(t *testing.T) {
	root := t.TempDir()
	tree(t, root,
		"train/dog/b.png", "train/dog/a.JPG", "train/dog/notes.txt", "train/dog/.hidden.png",
		"train/dog/sub/deep.png",
		"train/cat/1.png", "train/cat/2.png", "train/.cache/x.png", "train/readme.md",
		"val/cat/v.png",
		"test/dog/t1.png", "test/cat/t2.png",
	)
	ds, err := LoadDataset(DataConfig{Dir: root, ValSplit: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cat", "dog"}; !slices.Equal(ds.Classes, want) {
		t.Errorf("classes %v, want %v", ds.Classes, want)
	}
	check := func(what string, got []Sample, want ...string) {
		t.Helper()
		if g := rel(root, got); !slices.Equal(g, want) {
			t.Errorf("%s: %v, want %v", what, g, want)
		}
	}
	check("train", ds.Train, "train/cat/1.png:0", "train/cat/2.png:0", "train/dog/a.JPG:1", "train/dog/b.png:1")
	// With a val folder, ValSplit is not used.
	check("val", ds.Val, "val/cat/v.png:0")
	check("test", ds.Test, "test/cat/t2.png:0", "test/dog/t1.png:1")
	if len(ds.Skipped) != 0 {
		t.Errorf("skipped %v", ds.Skipped)
	}
}

func TestLoadDatasetFlat(t *testing.T) {
	root := t.TempDir()
	tree(t, root, "b/x.png", "a/y.png", "a/x.webp.txt", "a/z.jpeg", "c.png")
	ds, err := LoadDataset(DataConfig{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b"}; !slices.Equal(ds.Classes, want) {
		t.Errorf("classes %v, want %v", ds.Classes, want)
	}
	if got, want := rel(root, ds.Train), []string{"a/y.png:0", "a/z.jpeg:0", "b/x.png:1"}; !slices.Equal(got, want) {
		t.Errorf("train %v, want %v", got, want)
	}
	if ds.Val != nil || ds.Test != nil {
		t.Errorf("val %v test %v, want none", ds.Val, ds.Test)
	}
}

func TestLoadDatasetValidationAlias(t *testing.T) {
	root := t.TempDir()
	tree(t, root, "train/a/1.png", "train/b/1.png", "validation/b/2.png")
	ds, err := LoadDataset(DataConfig{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rel(root, ds.Val), []string{"validation/b/2.png:1"}; !slices.Equal(got, want) {
		t.Errorf("val %v, want %v", got, want)
	}
}

func TestValSplit(t *testing.T) {
	root := t.TempDir()
	var files []string
	counts := map[string]int{"a": 10, "b": 5, "c": 1, "d": 2}
	for c, n := range counts {
		for i := range n {
			files = append(files, c+"/"+string(rune('a'+i))+".png")
		}
	}
	tree(t, root, files...)
	for _, tc := range []struct {
		split float64
		val   []int // per class a, b, c, d
	}{
		{0.2, []int{2, 1, 0, 0}},   // round(2), round(1), round(0.2), round(0.4)
		{0.25, []int{3, 1, 0, 1}},  // round(2.5)=3, round(1.25), round(0.25), round(0.5)=1
		{0.9, []int{9, 4, 0, 1}},   // 5 -> round(4.5)=5, capped at 4; 1 stays; 2 -> 2, capped at 1
		{0.001, []int{0, 0, 0, 0}}, // nothing rounds up
	} {
		ds, err := LoadDataset(DataConfig{Dir: root, ValSplit: tc.split, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]int, 4)
		for _, s := range ds.Val {
			got[s.Label]++
		}
		if !slices.Equal(got, tc.val) {
			t.Errorf("split %g: val per class %v, want %v", tc.split, got, tc.val)
		}
		if len(ds.Train)+len(ds.Val) != 18 {
			t.Errorf("split %g: %d train + %d val, want 18 images", tc.split, len(ds.Train), len(ds.Val))
		}
		// Both keep file order, and together they are the data set.
		all := append(slices.Clone(ds.Train), ds.Val...)
		slices.SortFunc(all, func(a, b Sample) int { return strings.Compare(a.Path, b.Path) })
		if len(slices.CompactFunc(all, func(a, b Sample) bool { return a.Path == b.Path })) != 18 {
			t.Errorf("split %g: train and val overlap", tc.split)
		}
		for _, set := range [][]Sample{ds.Train, ds.Val} {
			if !slices.IsSortedFunc(set, func(a, b Sample) int { return strings.Compare(a.Path, b.Path) }) {
				t.Errorf("split %g: not in file order: %v", tc.split, rel(root, set))
			}
		}
	}

	// One seed, one split; another seed, another split.
	load := func(seed int64) []string {
		ds, err := LoadDataset(DataConfig{Dir: root, ValSplit: 0.3, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return rel(root, ds.Val)
	}
	a, b, c := load(1), load(1), load(2)
	if !slices.Equal(a, b) {
		t.Errorf("seed 1 gave %v, then %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 1 and 2 gave the same split %v", a)
	}
}

func TestLoadDatasetSkipsNonImages(t *testing.T) {
	root := t.TempDir()
	tree(t, root, "a/1.png", "a/fake.png", "b/1.png", "b/empty.jpg")
	for name, data := range map[string]string{"a/fake.png": "text", "b/empty.jpg": ""} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := LoadDataset(DataConfig{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rel(root, ds.Train), []string{"a/1.png:0", "b/1.png:1"}; !slices.Equal(got, want) {
		t.Errorf("train %v, want %v", got, want)
	}
	if len(ds.Skipped) != 2 {
		t.Fatalf("skipped %v, want 2", ds.Skipped)
	}
	for i, name := range []string{"a/fake.png", "b/empty.jpg"} {
		sk := ds.Skipped[i]
		p := filepath.Join(root, filepath.FromSlash(name))
		if sk.Path != p || !strings.Contains(sk.Err.Error(), p) {
			t.Errorf("skipped %d: %s: %v, want %s named", i, sk.Path, sk.Err, p)
		}
	}
}

func TestLoadDatasetErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		dir   string  // relative to the root; "" is the root
		split float64 // DataConfig.ValSplit
		want  []string
	}{
		{name: "missing", dir: "nope", want: []string{"nope: no such folder", "DIR/<class>"}},
		{name: "file", files: []string{"f.png"}, dir: "f.png", want: []string{"f.png: is a file, not a folder"}},
		{name: "empty", want: []string{": no class folders", "folder named after the class"}},
		{name: "loose images", files: []string{"1.png", "2.png"}, want: []string{": no class folders (its 2 images are not in class folders)"}},
		{name: "one class", files: []string{"train/cat/1.png"}, want: []string{"train: only 1 class folder (cat)", "at least 2"}},
		{name: "empty class", files: []string{"train/cat/", "train/dog/1.png"},
			want: []string{"train/cat: no images (JPEG, PNG, BMP, GIF or WebP); add images or remove the folder"}},
		{name: "no image files", files: []string{"cat/a.tiff", "cat/b.txt", "dog/1.png"},
			want: []string{"cat: no images (JPEG, PNG, BMP, GIF or WebP) (2 other files ignored, such as a.tiff)"}},
		{name: "unknown val class", files: []string{"train/cat/1.png", "train/dog/1.png", "val/bird/1.png"},
			want: []string{"val/bird: class \"bird\" has no folder in", "classes: cat, dog"}},
		{name: "unknown test class", files: []string{"train/cat/1.png", "train/dog/1.png", "test/Cat/1.png"},
			want: []string{"test/Cat: class \"Cat\""}},
		{name: "empty val class", files: []string{"train/cat/1.png", "train/dog/1.png", "val/cat/"},
			want: []string{"val/cat: no images"}},
		{name: "val without train", files: []string{"val/cat/1.png", "val/dog/1.png"},
			want: []string{": has a val folder but no train folder", "train/<class>"}},
		{name: "two val folders", files: []string{"train/cat/1.png", "train/dog/1.png", "val/cat/1.png", "valid/cat/1.png"},
			want: []string{": has both val and valid; keep one of them"}},
		{name: "unreadable class", files: []string{"cat/1.png", "dog/1.png", "dog/2.txt"}, // 1.png is replaced by text below
			want: []string{"dog: none of its images can be read", "dog/1.png: not a JPEG, PNG, BMP, GIF or WebP image"}},
		{name: "negative split", files: []string{"cat/1.png", "dog/1.png"}, split: -0.1, want: []string{"validation split -0.1 must be in [0, 1)"}},
		{name: "split 1", files: []string{"cat/1.png", "dog/1.png"}, split: 1, want: []string{"validation split 1 must be in [0, 1)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tree(t, root, tc.files...)
			if tc.name == "unreadable class" {
				if err := os.WriteFile(filepath.Join(root, "dog", "1.png"), []byte("text"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadDataset(DataConfig{Dir: filepath.Join(root, tc.dir), ValSplit: tc.split})
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			msg := filepath.ToSlash(err.Error())
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tc.split == 0 && !strings.Contains(msg, filepath.ToSlash(root)) {
				t.Errorf("error %q does not name the path", msg)
			}
		})
	}
}

func TestLoadSplitFolder(t *testing.T) {
	labels := []string{"Ankle boot", "Bag", "T-shirt/top", "Sandal"}
	t.Run("labels", func(t *testing.T) {
		root := t.TempDir()
		tree(t, root, "Sandal/1.png", "Bag/2.png", "Bag/1.png", "Ankle_boot/1.png", "T-shirt_top/9.png")
		got, err := LoadSplitFolder(root, labels)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"Ankle_boot/1.png:0", "Bag/1.png:1", "Bag/2.png:1", "T-shirt_top/9.png:2", "Sandal/1.png:3"}
		if g := rel(root, got); !slices.Equal(g, want) {
			t.Errorf("got %v, want %v", g, want)
		}
	})
	t.Run("test subfolder", func(t *testing.T) {
		root := t.TempDir()
		tree(t, root, "train/b/1.png", "test/b/1.png", "test/a/1.png")
		got, err := LoadSplitFolder(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		if g, want := rel(root, got), []string{"test/a/1.png:0", "test/b/1.png:1"}; !slices.Equal(g, want) {
			t.Errorf("got %v, want %v", g, want)
		}
	})
	t.Run("folder not a label", func(t *testing.T) {
		root := t.TempDir()
		tree(t, root, "Bag/1.png", "Boot/1.png")
		_, err := LoadSplitFolder(root, labels)
		want := filepath.Join(root, "Boot") + `: folder "Boot" is not one of the model's labels (Ankle boot, Bag, T-shirt/top, Sandal)`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	})
	t.Run("train but no test", func(t *testing.T) {
		root := t.TempDir()
		tree(t, root, "train/a/1.png", "val/a/1.png")
		_, err := LoadSplitFolder(root, nil)
		want := root + ": has a train folder but no test folder"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	})
	t.Run("missing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "gone")
		_, err := LoadSplitFolder(dir, nil)
		if err == nil || !strings.Contains(err.Error(), dir+": no such folder") {
			t.Errorf("error %v, want the folder named", err)
		}
	})
	t.Run("empty class", func(t *testing.T) {
		root := t.TempDir()
		tree(t, root, "a/1.png", "b/")
		_, err := LoadSplitFolder(root, nil)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "b")+": no images") {
			t.Errorf("error %v, want the empty folder named", err)
		}
	})
}

// The header check must not mistake a real image of each format for a
// bad one.
func TestLoadDatasetFormats(t *testing.T) {
	root := t.TempDir()
	tree(t, root, "a/1.png", "b/1.jpg")
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.NRGBA{1, 2, 3, 255})
	for name, data := range encodeAll(t, img) {
		if err := os.WriteFile(filepath.Join(root, "a", "x."+name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := LoadDataset(DataConfig{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Skipped) != 0 {
		t.Errorf("skipped %v", ds.Skipped)
	}
	if got, want := len(ds.Train), 2+len(encodeAll(t, img)); got != want {
		t.Errorf("%d training images, want %d: %v", got, want, rel(root, ds.Train))
	}
	if !reflect.DeepEqual(ds.Classes, []string{"a", "b"}) {
		t.Errorf("classes %v", ds.Classes)
	}
}
