B
grad_scaleJ(ÍÀÍ¿ÀMVK¿áÏ†?