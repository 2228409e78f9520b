"""What the always-on service decides, without scheduling code: when a timepoint is complete, what is
already done on disk, which windows are filled, and the journal of work done (its config: :mod:`flows.service_config`)."""
