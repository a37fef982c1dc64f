package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/graftml/graft/onnx"
	"github.com/urfave/cli/v2"
)

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                      "graft",
		Usage:                     "transfer learning and fine-tuning for ONNX models",
		Version:                   onnx.GraftVersion(),
		Writer:                    stdout,
		ErrWriter:                 stderr,
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		Suggest:                   true,
		EnableBashCompletion:      true,
		// graft reports errors itself, once, in run.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Action:         commandNotFound,
		Commands: []*cli.Command{
			inspectCommand(),
			runCommand(),
			opsCommand(),
			convertCommand(),
			adaptCommand(),
			evalCommand(),
			predictCommand(),
			benchCommand(),
			completionCommand(),
			batchCommand(),
			featuresCommand(),
			clusterCommand(),
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
		cmd.HideHelpCommand = true
		tidyHelp(cmd.Flags)
		if hasFlag(cmd, "threads") {
			cmd.Before = applyThreads
		}
	}
	return app
}

// run is the whole program without signal handling (tests).
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext runs graft with ctx, which SIGINT and SIGTERM cancel, and
// returns the exit status of shared/CLI.md: 0 success, 1 failure, 2 usage
// error (with a one-line hint), 130 interrupted.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	app.Metadata = map[string]any{"args": args} // for the flag names as typed
	args, err := reorderArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "graft: %s\n", errorText(err))
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, ue.hint())
		return exitUsage
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintln(stderr, "interrupted: no output was written")
		return exitInterrupted
	}
	return exitFailure
}

// reorderArgs moves a command's flags in front of its positional
// arguments: urfave/cli v2 stops reading flags at the first positional
// argument, and users write `graft inspect m.onnx --json`.
// A flag that takes a value but ends the line is a usage error.
func reorderArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	ci := -1
	for i := 1; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			ci = i
			break
		}
	}
	if ci < 0 {
		return args, nil
	}
	cmd := app.Command(args[ci])
	if cmd == nil {
		return args, nil
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
		if takesValue[name] {
			if i+1 == len(rest) {
				return nil, &usageError{cmd: cmd.Name, msg: a + " needs a value"}
			}
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
	return out, nil
}
