# Source: the frozen source model, no adaptation (the reference row).
custom_hooks = [
    dict(type='TestTimeAdaptationHook', method=dict(type='Source'))
]
