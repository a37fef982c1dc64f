B
grad_slopeJ,¿