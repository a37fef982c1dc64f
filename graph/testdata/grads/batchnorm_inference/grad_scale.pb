B
grad_scaleJÜJ|@ž7ÀñœÈ?