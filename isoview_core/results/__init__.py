"""Results people look at and hand on: the lazy acquisition array, live time series, BigStitcher export."""
