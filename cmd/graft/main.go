// Command graft does transfer learning and fine-tuning for ONNX models:
// it imports a pretrained model into a gorgonia graph, trains a new head
// (and optionally the last layers) on a folder of images, and exports the
// adapted model back to ONNX.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}
