package dwconv

// PlaneSums sets sums[p] to the sum of the plane y[p·size:(p+1)·size]
// for p < len(sums), in float64: four partial sums, s_j of the values
// at j, j+4, j+8, ... in order, the values past the last multiple of 4
// then added to s_0, and the result (s_0+s_1)+(s_2+s_3). That is the
// order of graph's planeSum (GlobalAveragePool's sum), bit for bit, so
// that a mean fused into a convolution matches the pool's. Four planes
// go through the vector code at once: each partial sum is one chain of
// dependent additions, and four planes keep four times as many in
// flight.
func PlaneSums(y []float32, size int, sums []float64) {
	n := len(sums)
	y = y[:n*size]
	p := 0
	if size >= 4 && path != "generic" {
		var lanes [16]float64
		for ; p+4 <= n; p += 4 {
			planeLanes4(&y[p*size], size, &lanes)
			for q := range 4 {
				sums[p+q] = finishSum(lanes[4*q:][:4], y[(p+q)*size:][:size])
			}
		}
	}
	for ; p < n; p++ {
		var s0, s1, s2, s3 float64 // in registers: not an array
		x := y[p*size:][:size]
		for i := 0; i+4 <= len(x); i += 4 {
			s0 += float64(x[i])
			s1 += float64(x[i+1])
			s2 += float64(x[i+2])
			s3 += float64(x[i+3])
		}
		sums[p] = finishSum([]float64{s0, s1, s2, s3}, x)
	}
}

// finishSum adds the values of x past its last multiple of 4 to the
// partial sum s[0] and combines the four.
func finishSum(s []float64, x []float32) float64 {
	s0 := s[0]
	for _, v := range x[len(x)&^3:] {
		s0 += float64(v)
	}
	return (s0 + s[1]) + (s[2] + s[3])
}
