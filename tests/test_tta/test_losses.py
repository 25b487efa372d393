"""The entropy losses' averaging, against hand-computed values."""
import math

import pytest
import torch

from mmseg_ecotta.tta.losses import (class_balanced_confident_entropy,
                                     confident_entropy_loss)


def two_class_logits(confidences):
    """(1, 2, 1, W) logits whose pixel i has p(class 0) = confidences[i]."""
    p = torch.tensor(confidences)
    return torch.stack([p.log(), (1 - p).log()])[None, :, None, :]


def binary_entropy(p):
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_class_balanced_entropy_weights_each_predicted_class_equally():
    # three confident pixels of class 0, one of class 1, one unsure pixel
    ps = [0.9, 0.9, 0.9, 0.05, 0.5]
    logits = two_class_logits(ps)
    threshold = 0.6  # below ln 2: the 0.5 pixel is left out
    per_pixel = confident_entropy_loss(logits, threshold)
    per_class = class_balanced_confident_entropy(logits, threshold)
    h0, h1 = binary_entropy(0.9), binary_entropy(0.05)
    assert per_pixel.item() == pytest.approx((3 * h0 + h1) / 4, rel=1e-5)
    assert per_class.item() == pytest.approx((h0 + h1) / 2, rel=1e-5)


def test_class_balanced_entropy_is_a_connected_zero_without_confidence():
    logits = two_class_logits([0.5, 0.5]).requires_grad_()
    loss = class_balanced_confident_entropy(logits, 0.1)
    loss.backward()
    assert loss.item() == 0 and torch.equal(logits.grad,
                                            torch.zeros_like(logits))
