"""A profile calibrated on a device's own measurements, the prior profile's model refitted.

`nas profile fit --from-run` saves what a hybrid search (`--latency hybrid`) calibrated online: the same
refit as `nas profile calibrate` (`calibrate_model`: the prior's weights times fitted multipliers and a
refitted overhead), with its error and interval by leave-one-out over the measurements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.errors import NasError
from nas.latency._calibrate import _require_model
from nas.latency._hardware_profile import HardwareProfile
from nas.latency._machine import calibrate_model, leave_one_out
from nas.latency._model import error_metrics
from nas.latency._prediction import conformal_interval

CALIBRATED_MIN = 5  # fewer device measurements give no honest leave-one-out error


def calibrated_profile(
    prior: HardwareProfile, samples: list[tuple[Any, float]], *, name: str, data: str, provenance: str
) -> dict[str, Any]:
    """A `latency: predicted` profile dict (see `write_profile`): `prior`'s model calibrated to the
    device's measurements (`calibrate_model`: the prior's weights times fitted multipliers and a refitted
    overhead), its error and 90% interval by leave-one-out over `samples` ((GraphFeatures, ms) of the
    device). `data` says where the measurements come from; the prior's coverage, prior section and
    measurement protocol (runtime, measurement) stay."""
    model = _require_model(prior)
    if len(samples) < CALIBRATED_MIN:
        raise NasError(
            f"{data}: {len(samples)} device measurements; calibrating a profile needs at least {CALIBRATED_MIN}"
        )
    predicted = leave_one_out(model, samples)
    measured = np.asarray([latency for _, latency in samples])
    before = error_metrics([model.predict(features) for features, _ in samples], measured)
    raw = {k: v for k, v in prior.raw.items() if k not in ("measurements", "machine")}
    raw.update(
        {
            "name": name,
            "description": f"{prior.description} (calibrated on {len(samples)} device measurements)",
            "latency": "predicted",
            "provenance": f"{prior.provenance} {provenance} Before calibration the model's MAPE on these "
            f"measurements was {before['mape']:.1f}%.",
            "model": calibrate_model(model, samples).to_dict(),
            "validation": {**error_metrics(predicted, measured), "data": f"leave-one-out over {data}"},
            "interval": conformal_interval(
                measured / np.maximum(predicted, 1e-9), data=f"leave-one-out over {data}: measured/predicted"
            ).to_dict(),
            "coverage": prior.predictor.coverage.to_dict(),
        }
    )
    return raw
