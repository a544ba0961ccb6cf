"""Layer 9, the command line: ``anovit`` / ``python -m anovit`` (:mod:`.main`) and its subcommands' own modules
(:mod:`.data`, :mod:`.score`, :mod:`.report`, :mod:`.hub`). May import every layer below; nothing imports it
but ``anovit.__main__``.
"""
