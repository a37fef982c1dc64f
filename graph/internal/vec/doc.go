// Package vec holds graft's float32 kernels over contiguous slices:
// activations (Relu, LeakyRelu, Clip, HardSigmoid, HardSwish, Sigmoid,
// SiLU, Tanh), Exp and Erf, same-shape arithmetic and maximum, scalar and per-channel
// scale and shift, and the backward counterparts of the activations.
//
// Every kernel writes dst[i] from the inputs' element i for i < len(x);
// dst may be the same slice as an input but must not overlap it
// otherwise, and it must be at least as long as the inputs (a shorter one
// panics, as an index out of range would).
//
// # Implementations
//
// On amd64 CPUs with AVX-512F the kernels run in AVX-512 assembly, 16
// values per instruction, the last len%16 through a mask; on those with
// AVX2 and FMA but not AVX-512, in AVX2 assembly, 8 values per
// instruction, with pure Go for the last len%8; elsewhere in pure Go
// written without data-dependent branches (the compiler turns the
// built-in min and max into branch-free code), so that random signs cost
// no mispredictions. The choice is made once, at start-up: the best the
// CPU has, unless the environment variable GRAFT_CPU names a slower one
// ("avx2" or "generic"; see [Impl]). Any length and alignment is
// accepted.
//
// The AVX-512 kernels give the AVX2 assembly's results bit for bit (the
// same operations on each value, in the same order, with the same
// operands in the same places), so only the AVX2 path's pure-Go tail can
// tell the two apart; under AVX-512 a value's result does not depend on
// where it falls in the slice.
//
// # Accuracy
//
// Exp, Sigmoid, SiLU, Tanh and Erf are float32 polynomial approximations
// (coefficients fitted for this package by Lawson's iteratively
// reweighted least squares in float64, then rounded to float32), not
// calls to float64 math: their largest error against float64 math over
// dense sweeps is a few units in the last place (see vec_test.go, which
// asserts the bounds). They saturate to the limits where the true value
// rounds to them (Exp(89) = +Inf, Exp(-104) = 0, Sigmoid(±100) = 1 or
// 0, Tanh(±10) = ±1, Erf(±5) = ±1), propagate NaN and keep the sign of
// zero where the function is odd. The assembly and the pure-Go code
// evaluate the same formulas, but the assembly fuses multiply-adds, so
// they may differ in the last bit.
//
// # Parallelism
//
// The kernels run on the caller's goroutine. [Par] splits a long slice
// into chunks of [Chunk] values that run on up to cores.N() goroutines (graft's --threads);
// the chunking is fixed, so results never depend on the number of
// goroutines.
package vec
