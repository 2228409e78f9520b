"""Drivers above the stages: read inputs, run a stage, write outputs where the layout says; call diagnostics after publishing."""
