"""HTTP adapters: Flask and Django (REST framework) over the same core."""
