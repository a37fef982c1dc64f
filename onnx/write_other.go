//go:build !unix

package onnx

func isEINVAL(error) bool { return false }
