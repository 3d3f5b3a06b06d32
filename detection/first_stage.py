"""A cheap first opinion before the whole ensemble: one member scores every window first.

An ``Ensemble`` of K networks scores a window as ``sigmoid(mean of the K logits)``. Most windows
of ordinary audio are nothing like a scream, and every member says so with a very low logit.
With a ``FirstStage``, member ``member`` scores every window; a window whose logit there is below
``logit_floor`` is *settled*: the other members are not run and its probability counts as 0
(as a window under the live level gate does). Only the other windows get the whole ensemble's
score, which is then the same as without the first stage (the same sum of member logits, in the
same order; batches of another size round differently, by about 1e-7).

At the default floor of -6 (the member's probability 0.0025) the other members would have to
average a logit above +6.9 for the ensemble to reach the shipped model's second-stage gate
(0.61), the lowest score that can count for a decision. On real-v1 (39,661 windows of the
shipped model, ``docs/models.md``) the floor settles 55 % of all windows and 62 % of the
non-scream ones; the highest ensemble score among them is 0.054, and every window at or above
the gate has a first-member logit of -2.0 or more (at 16 kHz: 51 %, 0.154 and -4.1).
``tests/detection/test_first_stage.py`` shows on every real-v1 recording, as recorded and at
16 kHz, that ``detect`` finds the same segments with and without it, and the live decision
opens and closes the same incidents.

Networks that are not an ensemble have no first stage (every window gets the network). It serves
``detect`` (``detect_file``; ``--no-first-stage`` turns it off) and the live ``Scorer``;
``evaluate``, ``train`` and the second-stage choice score every member (their ROC and threshold
figures need every window's real score).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_LOGIT_FLOOR = -6.0


@dataclass(frozen=True)
class FirstStage:
    member: int = 0
    logit_floor: float = DEFAULT_LOGIT_FLOOR

    def __post_init__(self) -> None:
        if int(self.member) != self.member or self.member < 0:
            raise ValueError(f"first stage member {self.member} is not an index >= 0")
        if not np.isfinite(self.logit_floor):
            raise ValueError(f"first stage logit_floor {self.logit_floor} is not finite")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FirstStage:
        unknown = set(data) - {"member", "logit_floor"}
        if unknown:
            raise ValueError(f"unknown first stage parameters: {sorted(unknown)}")
        return cls(**data)


def applies_to(net) -> bool:
    """True for networks a first stage can gate (an ``Ensemble``: several ``members``)."""
    members = getattr(net, "members", None)
    return members is not None and len(members) >= 2


def gated_probabilities(net, x, stage: FirstStage) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, passed)`` of ``net`` (an ``Ensemble`` in eval mode) for the normalised
    windows ``x`` (a float tensor ``(N, n_mels, T)``), computed under ``torch.inference_mode``.

    ``passed[i]`` is False where member ``stage.member`` settled window ``i`` (probability 0);
    elsewhere the probability is the ensemble's, its member logits summed in member order as
    ``Ensemble.forward`` sums them.
    """
    import torch

    with torch.inference_mode():
        members = net.members
        if stage.member >= len(members):
            raise ValueError(f"first stage member {stage.member} of an ensemble of {len(members)}")
        first = members[stage.member](x)
        passed = first >= stage.logit_floor
        probs = torch.zeros(first.shape, dtype=first.dtype)
        if bool(passed.any()):
            rest = x[passed] if not bool(passed.all()) else x
            logits = [first[passed] if rest is not x else first]
            for i, member in enumerate(members):
                if i != stage.member:
                    logits.append(member(rest))
            # Member logits in member order, as Ensemble.forward adds them.
            ordered = logits[1 : stage.member + 1] + logits[:1] + logits[stage.member + 1 :]
            total = ordered[0]
            for logit in ordered[1:]:
                total = total + logit
            probs[passed] = torch.sigmoid(total / len(members))
        return probs.numpy(), passed.numpy()
