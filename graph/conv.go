package graph

var convOps = map[string]opDef{}
