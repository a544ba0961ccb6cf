"""Layer 0, the foundation: exceptions (:mod:`.errors`), checks of numbers and names people give
(:mod:`.validation`), settings declared once and their flags (:mod:`.settings`, :mod:`.setting_flags`), terminal
progress bars (:mod:`.progress`), device and precision choices
(:mod:`.runtime`) and the offline check (:mod:`.network`). Imports nothing of anovit.
"""
