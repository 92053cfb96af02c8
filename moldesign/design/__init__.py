"""The design commands over a model: generate, interpolate, optimize, and the filters they share."""
