"""Ground floor shared by every stage: MATLAB-faithful rounding and percentiles, separable filters, slabs, projections."""
