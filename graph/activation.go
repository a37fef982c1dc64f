package graph

var activationOps = map[string]opDef{}
