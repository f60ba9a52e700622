"""Joint training of every exit, and the exits' probabilities on the validation split.

The loss is a weighted sum of each exit's cross-entropy, with weights growing with depth: exit k of K
(the final one last) weighs k / K. The final exit keeps weight 1, the loss it has without exits, so the
network it ends is trained as hard as the same network without exits (the accuracy bound is measured
against it); the early exits add a smaller pull on the shared stages, smallest for the earliest, whose
features serve every later exit too (with equal weights the shallow heads would pull on the early stages
as hard as the final exit does). The choice is a design argument, not a measured comparison of weightings.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def exit_weights(exits: int) -> list[float]:
    """The loss weight of each exit, earliest first: k / K."""
    return [(k + 1) / exits for k in range(exits)]


def joint_exit_loss(outputs: list[torch.Tensor], labels: torch.Tensor, label_smoothing: float = 0.0):
    """sum_k w_k CE(exit k): the training loss of a network with early exits (`Network.forward_exits`)."""
    weights = exit_weights(len(outputs))
    return sum(
        w * F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
        for w, logits in zip(weights, outputs)
    )


@torch.no_grad()
def exit_probabilities(model, images: np.ndarray, norm, batch_size: int = 500) -> list[np.ndarray]:
    """Softmax probabilities of every exit (earliest first) for uint8 NHWC `images`, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    per_exit: list[list[np.ndarray]] = []
    for i in range(0, len(images), batch_size):
        x = norm(torch.from_numpy(np.ascontiguousarray(images[i : i + batch_size])).to(device))
        outputs = model.forward_exits(x)
        if not per_exit:
            per_exit = [[] for _ in outputs]
        for store, logits in zip(per_exit, outputs):
            store.append(torch.softmax(logits.float(), 1).cpu().numpy())
    return [np.concatenate(store) for store in per_exit]


def calibrate_network(model, dataset, norm, max_drop: float):
    """Calibrate the exits of a trained `model` on `dataset`'s validation split (`calibrate_thresholds`)."""
    from nas.exits._calibrate import calibrate_thresholds

    probabilities = exit_probabilities(model, dataset.x_val, norm)
    return calibrate_thresholds(probabilities, np.asarray(dataset.y_val), max_drop)
