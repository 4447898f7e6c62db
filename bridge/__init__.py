"""imgsonic bridge."""
