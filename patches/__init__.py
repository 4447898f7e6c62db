"""imgsonic patches."""
