"""Sonification: the model bundle, encoding images, decoding latents to mels, the offline render, the live
voice's renderer and the reverse direction (sound → images)."""
