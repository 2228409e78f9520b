"""What the always-on service decides, without scheduling code: its config, when a timepoint is
complete, what is already done on disk, which windows are filled, and the journal of work done."""
