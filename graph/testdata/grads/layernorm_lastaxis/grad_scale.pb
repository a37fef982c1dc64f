B
grad_scaleJ PÒ¶¾œ¿)?Wƒ?•\è¾˜ÌW½Q§¿U1w?