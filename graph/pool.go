package graph

var poolOps = map[string]opDef{}
