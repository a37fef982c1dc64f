// Command graft does transfer learning and fine-tuning for ONNX models:
// it imports a pretrained model into a gorgonia graph, trains a new head
// (and optionally the last layers) on a folder of images, and exports the
// adapted model back to ONNX.
//
// One file per command (inspect, run, ops, convert, adapt, eval, predict,
// bench, batch, features, cluster, completion). Each Action checks its
// flags before any work (validate.go: a bad value is a usage error, exit
// status 2, with a one-line hint), maps them to a library config, makes
// one library call, and prints the result on stdout (or JSON with --json);
// progress and notes go to stderr (progress.go), silenced by -q.
//
// Failure modes: library errors name options in the library's terms
// ("AdaptConfig.LR"); errors.go maps them to the flags the user typed and
// adds hints for the library's sentinel causes (--max-memory, --force,
// --max-pixels). SIGINT and SIGTERM cancel the context the library checks
// between batches: the command exits 130 and writes no output model.
// Exit statuses and flag names follow the project's table of conventions.
package main
