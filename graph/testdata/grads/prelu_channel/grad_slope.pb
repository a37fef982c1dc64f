B
grad_slopeJ64–Àq.Ô?®L™¿