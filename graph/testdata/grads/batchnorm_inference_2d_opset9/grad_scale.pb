B
grad_scaleJœùQ¿ÈœÚ¿Ýÿ¶¿d$!?