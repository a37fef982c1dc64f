// Package report writes the report of an adaptation or an evaluation: a
// folder holding report.json (the numbers), report.html (the same
// numbers, for people: self-contained, its CSS inline) and the PNG
// images report.html shows beside it: training curves, the confusion
// matrix as a heat map, per-class precision/recall/F1, the
// learning-rate finder's curve and thumbnails of the most confidently
// wrong images.
//
// Build a Report with FromAdapt or FromEval and write it with Write.
// Every file goes through onnx.WriteAtomic, so a report is never torn;
// Write refuses a folder that holds other files than a previous report.
//
// The HTML is laid out for machines too: every number it shows carries
// data-json (its path in report.json, dot-separated) and data-value (the
// exact value), and every plot is a figure with a fixed size and a
// position given in data-page-x and data-page-y (CSS pixels from the top
// left of the page), so a test can compare the page's numbers with the
// JSON and check a screenshot shows every plot.
//
// Plots are drawn with gonum.org/v1/plot, which draws PNGs in pure Go
// with its own embedded fonts (no system fonts, no cgo) and is kept by
// the gonum project, whose numeric packages graft already uses.
package report
