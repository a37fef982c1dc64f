// Package models ships graft's default pretrained model and the sample
// task it adapts to, embedded in the binary so that `graft adapt` with no
// flags works from any directory. recipe.py in this folder made both; its
// README says how and what they measure.
package models
