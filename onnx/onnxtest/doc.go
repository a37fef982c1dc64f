// Package onnxtest is the reference machinery graft's tests share: where the
// reference models live, how to load them, and what to compare against.
//
// References, and what makes each:
//
//   - Fixtures: tiny models committed under graph/testdata/fixtures (see
//     FixturesDir, Fixture). Always present.
//   - Generated models: torchvision architectures exported by
//     /usr/bin/python3 graph/testdata/gen_models.py into
//     graph/testdata/generated (git-ignored; $GRAFT_TESTDATA overrides the
//     folder). See GeneratedDir, Generated.
//   - ONNX backend test data from Debian's libonnx-testdata (node,
//     pytorch-converted, ... cases). See BackendTestData.
//   - ONNX Runtime 1.30 (CPU) from the npm package onnxruntime-node, run by
//     Node.js in a helper process (see ORT, Runtime). Install it with
//     `cd onnx/onnxtest/testdata/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install`;
//     $GRAFT_ORT_MODULES may name another node_modules folder holding it.
//   - The ONNX checker of Debian's python3-onnx (see Checker).
//
// All of these use the backend-test layout: a case is a folder holding
// model.onnx and test_data_set_N folders of serialized TensorProto files
// input_N.pb and output_N.pb (see LoadCase).
//
// A test that needs a reference the machine lacks calls Need, which skips
// the test there, but fails it when the environment variable CI is "true":
// CI installs every reference (.ci/run), so a missing one is a bug.
//
// Comparisons are relative to the reference's magnitude (AssertClose,
// Compare), because outputs of randomly initialised networks may be small.
//
// The package imports only the standard library and graft's onnx package,
// so that tests of any graft package can use it.
package onnxtest
