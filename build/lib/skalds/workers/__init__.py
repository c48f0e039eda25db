"""Worker classes shipped with Skalds: the demo pool and the camera pool."""
