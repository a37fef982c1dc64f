package graph

var shapeOps = map[string]opDef{}
