package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit statuses (shared/CLI.md).
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// usageError is a command line graft refuses before doing any work: an
// unknown flag or command, a bad flag value, a combination that makes no
// sense. It exits with status 2, followed by a one-line hint.
type usageError struct {
	cmd string // the command, "" for graft itself
	msg string
}

func (e *usageError) Error() string { return e.msg }

// hint is the line printed after a usage error.
func (e *usageError) hint() string {
	if e.cmd == "" {
		return "Run 'graft --help' for the commands."
	}
	return fmt.Sprintf("Run 'graft %s --help' for its flags and examples.", e.cmd)
}

func usagef(c *cli.Context, format string, args ...any) error {
	return &usageError{cmd: commandName(c), msg: fmt.Sprintf(format, args...)}
}

func commandName(c *cli.Context) string {
	if c == nil || c.Command == nil || c.Command.Name == "" || c.Command.Name == c.App.Name {
		return ""
	}
	return c.Command.Name
}

// onUsageError turns urfave/cli's flag parsing errors into usage errors
// that name the flag as typed and suggest the nearest known flag.
func onUsageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	var flags []cli.Flag
	if c.Command != nil {
		flags = c.Command.Flags
	}
	if len(flags) == 0 {
		flags = c.App.Flags
	}
	switch {
	case strings.HasPrefix(msg, "flag provided but not defined: "):
		name := strings.TrimLeft(strings.TrimPrefix(msg, "flag provided but not defined: "), "-")
		msg = "unknown flag " + dashes(name)
		var names []string
		for _, f := range flags {
			names = append(names, f.Names()...)
		}
		if s := nearest(name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", dashes(s))
		}
	case strings.HasPrefix(msg, "invalid value "):
		// invalid value "x" for flag -lr: parse error
		var val, name string
		rest := strings.TrimPrefix(msg, "invalid value ")
		if i := strings.Index(rest, " for flag -"); i >= 0 {
			val, rest = rest[:i], rest[i+len(" for flag -"):]
			if j := strings.Index(rest, ":"); j >= 0 {
				name = rest[:j]
			}
		}
		if name != "" {
			msg = fmt.Sprintf("%s %s: %s", dashes(name), val, valueKind(flags, name))
		}
	case strings.HasPrefix(msg, "flag needs an argument: "):
		name := strings.TrimLeft(strings.TrimPrefix(msg, "flag needs an argument: "), "-")
		msg = dashes(name) + " needs a value"
	}
	return &usageError{cmd: commandName(c), msg: msg}
}

// dashes writes a flag name as typed: -q, --epochs.
func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// valueKind says what a flag's value must be.
func valueKind(flags []cli.Flag, name string) string {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			switch f.(type) {
			case *cli.IntFlag, *cli.Int64Flag:
				return "not a whole number"
			case *cli.Float64Flag:
				return "not a number"
			case *cli.BoolFlag:
				return "takes no value (write --" + name + " or --" + name + "=false)"
			}
		}
	}
	return "not a valid value"
}

// commandNotFound is graft's root action: graft with no command prints
// the help, an unknown command is a usage error with a suggestion.
func commandNotFound(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowAppHelp(c)
	}
	name := c.Args().First()
	msg := fmt.Sprintf("unknown command %q", name)
	var names []string
	for _, cmd := range c.App.VisibleCommands() {
		names = append(names, cmd.Name)
	}
	if s := nearest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return &usageError{msg: msg}
}

// nearest is the name in names closest to s by edit distance, or "" when
// none is close enough to be what the user meant (urfave/cli's own
// suggestion always names something, however far).
func nearest(s string, names []string) string {
	best, bestD := "", -1
	for _, n := range names {
		if len(n) < 2 { // -q and friends are no suggestion for a long name
			continue
		}
		if d := editDistance(s, n); bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	if bestD < 0 || bestD > max(1, len(s)/3) {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment): a swapped pair of letters, as in "epohcs", counts once.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// isUsage reports whether err is a usage error.
func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

// tidyHelp makes each flag's help show its default once: a default
// described in the usage text ("(default: the model's metadata)") becomes
// the flag's default text instead of following urfave/cli's own
// "(default: 0)", and booleans, off unless given, show none.
func tidyHelp(flags []cli.Flag) {
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.BoolFlag:
			f.DisableDefaultText = true
		case *cli.StringFlag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.IntFlag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.Int64Flag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.Float64Flag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		}
	}
}

func splitDefault(usage, def string) (string, string) {
	i := strings.LastIndex(usage, " (default: ")
	if i < 0 || !strings.HasSuffix(usage, ")") {
		return usage, def
	}
	return usage[:i], strings.TrimSuffix(usage[i+len(" (default: "):], ")")
}
