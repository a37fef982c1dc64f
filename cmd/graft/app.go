package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/graftml/graft/onnx"
	"github.com/urfave/cli/v2"
)

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:                      "graft",
		Usage:                     "transfer learning and fine-tuning for ONNX models",
		Version:                   onnx.GraftVersion(),
		Writer:                    stdout,
		ErrWriter:                 stderr,
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		// graft reports errors itself, once, in run.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			inspectCommand(),
			runCommand(),
			opsCommand(),
			convertCommand(),
			adaptCommand(),
			evalCommand(),
			predictCommand(),
			batchCommand(),
		},
	}
}

// run is the whole program: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	if err := app.Run(reorderArgs(app, args)); err != nil {
		fmt.Fprintf(stderr, "graft: %s\n", errorText(err))
		if interrupted(err) {
			return 130
		}
		return 1
	}
	return 0
}

// reorderArgs moves a command's flags in front of its positional
// arguments: urfave/cli v2 stops reading flags at the first positional
// argument, and users write `graft inspect m.onnx --json`.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	ci := -1
	for i := 1; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			ci = i
			break
		}
	}
	if ci < 0 {
		return args
	}
	cmd := app.Command(args[ci])
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	rest := args[ci+1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue[name] && i+1 < len(rest) {
			flags = append(flags, rest[i+1])
			i++
		}
	}
	out := append([]string{}, args[:ci+1]...)
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}
