"""The HTML pages: the Swagger UI page and the model card page."""
