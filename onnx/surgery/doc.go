// Package surgery edits ONNX models without building them: it works on the
// ModelProto message alone, so it needs no gorgonia and can run on models
// whose ops graft cannot compute.
//
// What it does, one file each:
//
//   - cut.go: FindCut finds the classifier of an image model (the last
//     Gemm, MatMul+Add, or SqueezeNet's 1x1 Conv before global pooling) and
//     the features tensor it reads; ResolveCut turns "auto" or a tensor name
//     into that tensor; CutAt removes everything computed from it.
//   - head.go: AttachHead appends a new linear or MLP classifier (HeadSpec),
//     initialised as PyTorch's nn.Linear from a seed; PoolFeatures turns a
//     4-D cut into pooled 2-D features for a feature extractor.
//   - freeze.go: Layers lists the weighted layers before a cut, in order;
//     SelectTrainable picks the weights to train (a pattern and/or the last
//     K layers); Frontier finds the tensors where frozen computation ends.
//   - edit.go: UpdateWeights writes trained weights back (unchanged ones
//     keep their exact encoding), Prune drops what no output needs,
//     SubModel extracts the part between two tensors, SetMetadata and
//     RemoveMetadata edit metadata_props, CountParams counts parameters.
//   - batch.go: SetBatch makes the batch dimension symbolic or fixed and
//     mends Reshape constants that hard-code the old batch size.
//
// Every function edits the ModelProto it is given in place (CloneProto
// first to keep the original) and changes nothing it was not asked to, so
// a model written after surgery differs from its source only where graft
// changed it.
//
// Failure modes: a tensor or node that does not exist, a model with no
// classifier FindCut recognises (the error lists candidate cut tensors), a
// pattern that selects no weight, a head spec with fewer than 2 classes.
// Errors say what went wrong in the library's terms; callers add the flag
// or option that caused it. Shapes that need the model to be built (the
// cut tensor's shape, the outputs' shapes) are passed in by the caller,
// package graph.
package surgery
