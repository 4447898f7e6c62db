"""imgsonic training."""
