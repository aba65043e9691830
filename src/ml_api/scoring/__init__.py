"""Batch scoring's parts: file formats, readers, cell rules, the vectorised check, the writer.

``ml_api.predict`` (``ml-api predict``) puts them together; open this package to add a batch
reader or an output format.
"""
