"""Live quality checks of an acquisition: parameter jumps, dark and missing cameras."""
