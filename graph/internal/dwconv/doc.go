// Package dwconv holds graft's vectorised depthwise convolution: one
// input plane, one k×k filter (k 3 or 5), stride 1 or 2 on both axes, no
// dilation, any zero padding. These are the depthwise layers of
// MobileNet and EfficientNet.
//
// # Method
//
// [ForwardN] runs a run of planes in one assembly call, which for each
// plane copies the input into a scratch buffer with its zero padding
// written out, so that every output, border ones included, is computed
// by the same vector code without bounds tests. (The copy writes only
// the input's values and the zeros after each row, so the padding, once
// cleared, stays zero from one plane of a geometry to the next.) The
// assembly then walks the output rows in blocks of 16 (AVX-512) or 8
// (AVX2) outputs: the bias, then one fused multiply-add per tap in
// row-major tap order, a padded tap adding w·0. A row's last, partial
// block is stored through a mask. At stride 2 the taps' inputs, every
// other value, are gathered from two vector loads by a permutation.
//
// Planes at most 16 values wide in and out (14×14 and 7×7 in MobileNet
// and EfficientNet) take narrow kernels on the avx512 path: no copy, one
// input row per vector, loaded through a mask (of no lanes for a row of
// the padding), and each tap column's inputs made from it by a
// permutation that zeroes the lanes in the left or right padding. Their
// arithmetic is the same, so they give the same bits.
//
// # Paths
//
// The path is chosen once at start-up: "avx512" (AVX-512F, 16 lanes),
// "avx2" (AVX2 and FMA, 8 lanes), or "generic" when the CPU has neither,
// on other architectures, with the purego build tag, or when the
// environment variable GRAFT_CPU says "generic" (GRAFT_CPU=avx2 on an
// AVX-512 machine forces the 8-lane code). On the generic path
// [Supported] is false and callers use their own pure-Go code.
//
// # Reproducibility
//
// Each output depends only on its own window, the filter and the bias,
// and is computed by the same operations wherever it falls in a vector:
// results do not depend on the plane's position in a batch or in a run
// of planes, on the number of goroutines, or on the plane's width. The
// two paths give the same bits (the same fused multiply-adds in the same
// order); they differ from unfused pure-Go code in the last bits only.
package dwconv
