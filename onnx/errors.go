package onnx

import (
	"errors"
	"fmt"
)

// Sentinel causes that callers test with errors.Is; a command-line program
// adds the flag that changes the behaviour (--max-memory, --force).
var (
	// ErrTooLarge: a model file or its declared tensor data exceeds
	// Limits.MaxBytes.
	ErrTooLarge = errors.New("above the memory limit")
	// ErrOverLimit: a model exceeds one of the structural limits of
	// Limits (nodes, subgraph depth, attribute sizes, string lengths).
	ErrOverLimit = errors.New("above a model structure limit")
	// ErrExists: the output file exists and overwriting was not allowed.
	ErrExists = errors.New("file exists")
	// ErrInputModel: the output path is the input model itself.
	ErrInputModel = errors.New("is the input model")
)

// FormatError reports a file that is not a well-formed ONNX model.
type FormatError struct {
	File string // model file, or "" when decoding from a reader
	Elem string // the graph element at fault, e.g. `node "conv1"`; may be empty
	Msg  string
	Err  error // an underlying cause such as ErrTooLarge; may be nil
}

// Unwrap returns the underlying cause, so errors.Is finds ErrTooLarge.
func (e *FormatError) Unwrap() error { return e.Err }

func (e *FormatError) Error() string {
	return prefix(e.File, e.Elem) + "invalid ONNX model: " + e.Msg
}

// UnsupportedError reports a well-formed model that uses a feature graft
// does not handle (a data type, an op, an opset).
type UnsupportedError struct {
	File string
	Elem string
	Msg  string
}

func (e *UnsupportedError) Error() string {
	return prefix(e.File, e.Elem) + "unsupported: " + e.Msg
}

func prefix(file, elem string) string {
	s := ""
	if file != "" {
		s = file + ": "
	}
	if elem != "" {
		s += elem + ": "
	}
	return s
}

func formatErr(file, elem, format string, args ...any) error {
	return &FormatError{File: file, Elem: elem, Msg: fmt.Sprintf(format, args...)}
}

func unsupportedErr(file, elem, format string, args ...any) error {
	return &UnsupportedError{File: file, Elem: elem, Msg: fmt.Sprintf(format, args...)}
}

// OptionError reports a bad value in the options given to a graft library
// call, in the library's terms: Option is the Go field, written as
// Type.Field (for example "AdaptConfig.LR" or "ConvertConfig.Head"). A
// command-line program maps Option to the flag its user typed (see
// cmd/graft), so the same mistake reads "--lr: ..." there.
type OptionError struct {
	Option string
	Err    error
}

func (e *OptionError) Error() string { return e.Option + ": " + e.Err.Error() }

func (e *OptionError) Unwrap() error { return e.Err }

// OptionErrorf makes an *OptionError for option with a formatted message;
// a %w verb wraps an underlying error.
func OptionErrorf(option, format string, args ...any) error {
	return &OptionError{Option: option, Err: fmt.Errorf(format, args...)}
}
