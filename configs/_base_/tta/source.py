# Source: the frozen source model, no adaptation (the reference row).
adaptation = dict(method=dict(type='Source'))
