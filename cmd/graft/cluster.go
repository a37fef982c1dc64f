package main

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/graftml/graft/onnx"
	"github.com/urfave/cli/v2"
)

// clusterFiles are the job templates `graft cluster` renders, one folder
// per kind of cluster.
//
//go:embed cluster
var clusterFiles embed.FS

// clusterJob is what the templates under cluster/ are rendered with.
type clusterJob struct {
	Name     string
	Shards   int
	Threads  int
	Image    string // k8s: the container image with graft in it
	Claim    string // k8s: the PersistentVolumeClaim mounted at Dir
	Graft    string // the graft binary as the job runs it
	Dir      string // the shared folder
	Model    string
	Data     string
	Cache    string
	Result   string // the adapted model the head writes
	Features []string
	Adapt    []string // extra adapt flags
}

// LastShard is the last shard's index (a Slurm array's range).
func (j clusterJob) LastShard() int { return j.Shards - 1 }

// FeaturesArgs are the arguments of every shard's graft features, but
// --shard.
func (j clusterJob) FeaturesArgs() []string {
	args := []string{"features", "--model", j.Model, "--data", j.Data, "--cache", j.Cache, "--threads", strconv.Itoa(j.Threads)}
	return append(args, j.Features...)
}

// IndexedArgs are a Kubernetes Indexed Job pod's: FeaturesArgs with the
// shard of its completion index.
func (j clusterJob) IndexedArgs() []string {
	return append(j.FeaturesArgs(), "--shard", fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", j.Shards))
}

// HeadArgs are the head job's graft adapt arguments.
func (j clusterJob) HeadArgs() []string {
	args := []string{"adapt", "--model", j.Model, "--data", j.Data, "--cache", j.Cache, "--out", j.Result}
	return append(args, j.Adapt...)
}

var clusterFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	// sh quotes a word for a POSIX shell
	"sh": func(s string) string {
		if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			return s
		}
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	},
}

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:      "cluster",
		Usage:     "write ready jobs that extract features in shards on a cluster and train the head on the merged cache: k8s or slurm",
		ArgsUsage: "k8s|slurm",
		Description: `Writes two job files into --out-dir: a job of --shards parallel tasks, each
running graft features --shard i/N into the shared feature cache, and a head job
running graft adapt --cache on it once they are done (every image a cache hit).

k8s:   features-job.yaml (an Indexed Job: JOB_COMPLETION_INDEX -> --shard) and
       head-job.yaml, with a ReadWriteMany PersistentVolumeClaim (--claim) at --dir.
slurm: features.sbatch (a job array: SLURM_ARRAY_TASK_ID -> --shard) and
       head.sbatch, with --dir on a file system every node mounts.

Under --dir: model.onnx, data/ (the images), cache/ and adapted.onnx unless
--model, --data, --cache or --result say otherwise. The files say how to submit
them; the templates are in cmd/graft/cluster/.

Examples:
   graft cluster k8s --shards 8 --image registry.example.com/graft:v1 --out-dir jobs
   graft cluster slurm --shards 32 --dir /scratch/flowers --adapt-args "--epochs 50 --val-split 0.2" --out-dir jobs`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "shards", Usage: "`N` feature tasks, 1 or more"},
			&cli.StringFlag{Name: "out-dir", Usage: "write the job files into `DIR` (created when missing)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite existing job files"},
			&cli.StringFlag{Name: "name", Value: "graft", Usage: "job `NAME` prefix"},
			&cli.StringFlag{Name: "image", Usage: "k8s: container `IMAGE` with graft in it"},
			&cli.StringFlag{Name: "claim", Value: "graft-work", Usage: "k8s: the PersistentVolumeClaim `NAME` mounted at --dir"},
			&cli.StringFlag{Name: "graft", Value: "graft", Usage: "the graft binary as the jobs run it: a `PATH` or a name on their PATH"},
			&cli.StringFlag{Name: "dir", Value: "/graft", Usage: "the shared folder `DIR` the jobs see"},
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "the model `FILE` as the jobs see it (default: DIR/model.onnx)"},
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "the image folder as the jobs see it (default: DIR/data)"},
			&cli.StringFlag{Name: "cache", Usage: "the feature cache folder as the jobs see it (default: DIR/cache)"},
			&cli.StringFlag{Name: "result", Usage: "the adapted model `FILE` the head job writes (default: DIR/adapted.onnx)"},
			&cli.IntFlag{Name: "threads", Value: 1, Usage: "cores each task uses and requests, `N`"},
			&cli.StringFlag{Name: "features-args", Usage: "more graft features flags for every shard, e.g. \"--cut TENSOR\" (`ARGS`, split at spaces)"},
			&cli.StringFlag{Name: "adapt-args", Usage: "more graft adapt flags for the head job, e.g. \"--epochs 50 --val-split 0.2\" (`ARGS`, split at spaces)"},
			quietFlag(),
		},
		Action: func(c *cli.Context) error {
			kind, err := oneArg(c, "k8s|slurm")
			if err != nil {
				return err
			}
			job, err := clusterConfig(c, kind)
			if err != nil {
				return err
			}
			written, err := renderCluster(kind, job, c.String("out-dir"), c.Bool("force"))
			if err != nil {
				return err
			}
			for _, f := range written {
				fmt.Fprintf(c.App.Writer, "wrote %s\n", f)
			}
			notef(c, "submit them as the first file's comments say")
			return nil
		},
	}
}

// clusterConfig checks cluster's flags before anything is written.
func clusterConfig(c *cli.Context, kind string) (clusterJob, error) {
	j := clusterJob{Name: c.String("name"), Shards: c.Int("shards"), Threads: c.Int("threads"), Image: c.String("image"), Claim: c.String("claim"),
		Graft: c.String("graft"), Dir: c.String("dir"), Model: c.String("model"), Data: c.String("data"), Cache: c.String("cache"), Result: c.String("result"),
		Features: strings.Fields(c.String("features-args")), Adapt: strings.Fields(c.String("adapt-args"))}
	switch {
	case kind != "k8s" && kind != "slurm":
		return j, usagef(c, "cluster %q: use k8s or slurm", kind)
	case j.Shards < 1:
		return j, usagef(c, "--shards %d: give the number of feature tasks, 1 or more", j.Shards)
	case j.Threads < 1:
		return j, usagef(c, "--threads %d: must be at least 1", j.Threads)
	case c.String("out-dir") == "":
		return j, usagef(c, "--out-dir is required: the folder for the job files")
	case kind == "k8s" && j.Image == "":
		return j, usagef(c, "k8s needs --image: a container image with graft in it")
	case j.Dir == "" || j.Name == "" || j.Graft == "":
		return j, usagef(c, "--dir, --name and --graft must not be empty")
	}
	for _, a := range j.Features {
		if a == "--shard" || strings.HasPrefix(a, "--shard=") {
			return j, usagef(c, "--features-args: the jobs set --shard themselves")
		}
	}
	under := func(v *string, name string) {
		if *v == "" {
			*v = path.Join(j.Dir, name)
		}
	}
	under(&j.Model, "model.onnx")
	under(&j.Data, "data")
	under(&j.Cache, "cache")
	under(&j.Result, "adapted.onnx")
	return j, nil
}

// renderCluster renders the kind's templates into dir and returns the
// files written.
func renderCluster(kind string, j clusterJob, dir string, force bool) ([]string, error) {
	names, err := fs.Glob(clusterFiles, "cluster/"+kind+"/*")
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, name := range names {
		tmpl, err := template.New(path.Base(name)).Funcs(clusterFuncs).Option("missingkey=error").ParseFS(clusterFiles, name)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, j); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		file := filepath.Join(dir, path.Base(name))
		if st, err := os.Stat(file); err == nil && (st.IsDir() || !force) {
			return nil, fmt.Errorf("%s: %w; not overwriting it", file, onnx.ErrExists)
		}
		out = append(out, [2]string{file, b.String()})
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	var written []string
	for _, f := range out {
		if err := onnx.WriteAtomic(f[0], []byte(f[1]), force); err != nil {
			return written, err
		}
		written = append(written, f[0])
	}
	return written, nil
}
