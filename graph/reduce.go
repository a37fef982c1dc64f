package graph

var reduceOps = map[string]opDef{}
