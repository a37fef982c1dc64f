B
grad_valueJëÀ