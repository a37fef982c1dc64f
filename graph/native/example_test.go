package native_test

import (
	"fmt"
	"log"

	"github.com/graftml/graft/graph/native"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A linear layer with a ReLU, built with gorgonia's own API, exported as
// an ONNX model whose batch size is left to run time.
func ExampleExportGorgonia() {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 3), G.WithName("x"))
	w := G.NewMatrix(g, tensor.Float32, G.WithShape(3, 4), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithShape(3, 4), tensor.WithBacking([]float32{
			1, 0, -1, 2,
			0, 1, 1, -2,
			1, 1, 0, 1,
		}))))
	y := G.Must(G.Rectify(G.Must(G.Mul(x, w))))

	mp, err := native.ExportGorgonia(g, native.NativeExport{
		Inputs:       []*G.Node{x},
		Outputs:      []*G.Node{y},
		Names:        map[*G.Node]string{y: "y"},
		DynamicBatch: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range mp.Graph.Node {
		fmt.Println(n.OpType, n.Input, "->", n.Output)
	}
	for _, init := range mp.Graph.Initializer {
		fmt.Println("weight", init.Name, init.Dims)
	}
	out := mp.Graph.Output[0]
	fmt.Print("output ", out.Name, " [")
	for i, d := range out.Type.GetTensorType().Shape.Dim {
		if i > 0 {
			fmt.Print(" ")
		}
		if p := d.GetDimParam(); p != "" {
			fmt.Print(p)
		} else {
			fmt.Print(d.GetDimValue())
		}
	}
	fmt.Println("]")
	// Output:
	// MatMul [x w] -> [MatMul_2]
	// Relu [MatMul_2] -> [y]
	// weight w [3 4]
	// output y [N 4]
}
