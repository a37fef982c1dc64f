BBJÔS
?tˆx?IÇ3¿