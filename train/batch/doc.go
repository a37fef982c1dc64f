// Package batch runs many graft jobs at once: convert jobs (one recipe of
// model surgery applied to a model, graph.ConvertModel) and adapt jobs (a
// model adapted to a data set, train.Adapt), from the command line's list
// of inputs or from a manifest (see ReadManifest).
//
// Every job is checked before any work starts (Check): missing models,
// two jobs writing one file, an output folder that does not exist or
// cannot be written, an existing output without Force or Resume. Then
// jobs run Config.Jobs at a time; a failed job does not stop the others.
//
// A convert job's model is written to a temporary file beside its target
// (onnx.CreateAtomic), re-imported from there, compared byte for byte
// with what was encoded, and run beside the source on a random batch: the
// parity figure is the largest difference over the part of the model the
// recipe should leave unchanged (the cut tensor for a cut or a new head,
// else every output), relative to the source's largest magnitude there.
// Only a job whose parity is within its tolerance is renamed into place.
// An adapt job's model is written and re-imported by train.Adapt itself;
// its parity compares the backbone features (the cut tensor) of source and
// output.
//
// Cancelling the context stops the batch: running jobs stop at their next
// check, their temporary files are removed, and finished outputs stay.
// With Resume, a job whose output exists is verified instead of redone: a
// convert job's output must be byte-identical to what the recipe makes
// now, an adapt job's must record the same source model and pass the
// parity check; an output that fails verification is redone.
package batch
