# Corruption augmentation of the EcoTTA warm-ups (the shipped tiny ones
# and the ablations' *-corruptaug-* variants): half of
# the crops get one of ten ImageNet-C corruptions (imagecorruptions, through
# WeatherCorruption) at severity 1-3. None of them is a corruption of the
# weather streams (fog, snow; our darkness and rain) or looks like one
# (frost, spatter, brightness, contrast), and none moves pixels off their
# labels (elastic_transform, glass_blur, zoom_blur).
corruptions = [
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise',
    'defocus_blur', 'motion_blur', 'gaussian_blur', 'jpeg_compression',
    'pixelate', 'saturate'
]
corruption_aug = dict(
    type='RandomApply',
    prob=0.5,
    transforms=dict(
        type='RandomChoice',
        transforms=[[
            dict(
                type='WeatherCorruption',
                corruption=corruption,
                severity=severity)
        ] for corruption in corruptions for severity in (1, 2, 3)]))
