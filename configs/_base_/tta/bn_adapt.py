# BN adapt (Schneider et al., NeurIPS 2020): every BN layer normalises by
# the test batch's statistics; nothing trains, so no optimizer.
adaptation = dict(method=dict(type='BNAdapt'))
