//go:build amd64 && !purego

package dwconv

// planeLanes4 sets lanes[4q+j] to the sum, in float64 and in order, of
// the values j, j+4, ... below size&^3 of plane q of the four planes of
// size values from x (sums_amd64.s; AVX).
//
//go:noescape
func planeLanes4(x *float32, size int, lanes *[16]float64)
