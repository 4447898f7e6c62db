"""Controls: the latent timeline, the parameter mapping (one curve and its inverse), smoothing, the MIDI spec
of a mapping, and the limits every control is checked or clamped against."""
