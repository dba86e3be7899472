"""Getting started: ``login`` and ``logout`` (the authtoken), ``init`` (a starter config) and
``doctor`` (does every part of the config work?).

``agent/cli.py`` registers the sub-commands through ``agent.setup.cli.add_arguments``.
"""
