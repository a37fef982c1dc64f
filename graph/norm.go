package graph

var normOps = map[string]opDef{}
