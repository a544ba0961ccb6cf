"""Layer 1, pictures: array image operations (:mod:`.imaging`: uint8 RGB, colour scales, overlays) and the plotly
figures of the app (:mod:`.figures`: arrays in, figures out). Imports only :mod:`anovit.utils`; never reads
files or runs models.
"""
