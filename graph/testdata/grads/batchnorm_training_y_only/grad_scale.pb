B
grad_scaleJ:-\¿9¸@Àõ>