package graph

var linalgOps = map[string]opDef{}
